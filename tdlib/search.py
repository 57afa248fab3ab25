"""Search for a program that draws a target (paper §3.3, §4.2, Appendix F), and its baselines.

Every method shares one accounting, :class:`Expansions`: a *node expansion* is one distinct
program compiled and goal-checked against the target (the paper's "number of compilations
needed").  Each new program is checked as soon as it is made, the start programs included, and a
method stops at its first solution or when the budget is spent.

* :func:`beam_search` (TD search): from start programs, a beam of ``beam`` programs; each kept
  program proposes ``k`` edits; every never-seen program is checked; the beam keeps the best
  new programs by a score (lower is better).  The proposer is the policy (:class:`PolicyEdits`),
  random small mutations (:class:`RandomEdits`, the random-mutation baseline: what the policy
  adds over it is what it has learned) or an oracle (:class:`OracleEdits`, for tests).  Scores:
  :class:`ValueScore` (the paper), :class:`LogprobScore` (the public code: summed log-probability
  of the chosen positions along the path), :class:`PixelScore` (render distance, an ablation),
  :class:`DistanceScore` (the true distance to the target program: what a value network is
  trained to predict, known exactly, for studies).
* :func:`rollouts` (the policy alone): parallel chains, one sampled edit per step each.
* :func:`rejection` (CSGNet / AR baseline): whole programs sampled from the autoregressive model.
* :func:`repl_rollouts` (REPL Flow, CSG2D): shape-by-shape roll-outs; every rendered partial
  program is one expansion.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from dataclasses import dataclass

import numpy as np
import torch

from tdlib.edit_paths import edit_path, first_edit
from tdlib.images import program_images
from tdlib.mutation import SIGMA_SMALL
from tdlib.refine import simplify, unchanged
from tdlib.repl import REPLSteps
from tdlib.seeds import text_key
from tdlib.tree import SyntaxTree


@dataclass
class Outcome:
    """How one search on one problem ended."""

    solved: bool
    expansions: int  # programs checked: to the solution if solved, else all that were spent
    best_error: float  # lowest mean absolute pixel difference to the target reached
    best_program: str  # the solution if solved, else the program of lowest pixel error
    seconds: float = 0.0


class Expansions:
    """Distinct programs compiled and goal-checked against ``target``, at most ``budget`` of
    them.  ``target`` is a program, judged on its clean render at the language's default size,
    or such an image itself (``H x W x C`` in [0, 1], e.g. a user's picture).  ``on_check`` is
    called with every counted program (a progress bar).

    A picture from elsewhere may have no program that passes the goal check, so two more stops
    are offered: ``stop_error`` (done once a program's mean pixel error is at most this) and
    ``patience`` (done once that many programs in a row have not lowered the best error).
    :attr:`stop_reason` says which stop ended the search.  The ``keep_best`` programs of
    lowest error are kept in :attr:`leaders`, for a refinement after the search."""

    def __init__(self, env, target, budget: int = 5000, on_check=None,
                 stop_error: float | None = None, patience: int | None = None,
                 keep_best: int = 1):
        if budget < 1:
            raise ValueError(f"the budget must be at least 1 expansion, not {budget}")
        if patience is not None and patience < 1:
            raise ValueError(f"patience must be at least 1 program, not {patience}")
        self.env, self.budget, self.on_check = env, budget, on_check
        self.stop_error, self.patience, self.keep_best = stop_error, patience, keep_best
        if isinstance(target, np.ndarray):
            expected = (env.default_size, env.default_size, env.channels)
            if target.shape != expected:
                raise ValueError(f"a {env.name} target image is {expected}, got {target.shape}")
            self.target_image = target.astype(np.float32, copy=False)
        else:
            self.target_image = env.render(target)
        self.seen: set[str] = set()
        self.parents: dict[str, str | None] = {}  # program -> the program it was made from
        self.best_scored: tuple[float, str] | None = None  # a search's lowest score, program
        self.spent = 0
        self.solved_at: int | None = None
        self.solution: SyntaxTree | None = None
        self.best_error, self.best_program = float("inf"), ""
        self.improved_at = 0  # programs spent when the best error last fell
        self._leaders: list[tuple[float, str]] = []  # max-heap by error (negated)

    @property
    def done(self) -> bool:
        return self.stop_reason is not None

    @property
    def stop_reason(self) -> str | None:
        """Why the search is done (None while it is not): ``solved`` (the goal check passed),
        ``close enough`` (``stop_error``), ``no improvement`` (``patience``) or ``budget``."""
        if self.solved_at is not None:
            return "solved"
        if self.stop_error is not None and self.best_error <= self.stop_error:
            return "close enough"
        if self.patience is not None and self.spent - self.improved_at >= self.patience:
            return "no improvement"
        if self.spent >= self.budget:
            return "budget"
        return None

    @property
    def leaders(self) -> list[tuple[float, str]]:
        """``(error, program)`` of the ``keep_best`` programs of lowest pixel error, best first."""
        return sorted((-e, p) for e, p in self._leaders)

    def check(self, tree: SyntaxTree, parent: SyntaxTree | None = None) -> bool:
        """Count and goal-check ``tree`` (made by an edit of ``parent``, None for a start) if it
        is new and the search is not done; True if it was (a new program to go on from)."""
        if self.done:
            return False
        text = str(tree)
        if text in self.seen:
            return False
        self.seen.add(text)
        self.parents[text] = None if parent is None else str(parent)
        self.spent += 1
        if self.on_check is not None:
            self.on_check(self)
        image = self.env.render(tree)
        error = float(np.abs(image - self.target_image).mean())
        if error < self.best_error:
            self.best_error, self.best_program = error, text
            self.improved_at = self.spent
        if len(self._leaders) < self.keep_best:
            heapq.heappush(self._leaders, (-error, text))
        elif error < -self._leaders[0][0]:
            heapq.heapreplace(self._leaders, (-error, text))
        if self.env.is_solved(image, self.target_image):
            self.solved_at, self.solution = self.spent, tree
        return True

    def trajectory(self, program: str | None = None) -> list[str]:
        """The programs from a start to ``program`` (default: the outcome's best program), each
        made from the one before by one edit of the search."""
        text = program if program is not None else self.outcome().best_program
        path = []
        while text is not None and text in self.parents and text not in path:
            path.append(text)
            text = self.parents[text]
        return path[::-1]

    def outcome(self, seconds: float = 0.0) -> Outcome:
        """The solution as best program when solved (the goal check, not the pixel error,
        decides), else the program of lowest pixel error."""
        solved = self.solved_at is not None
        return Outcome(solved, self.solved_at if solved else self.spent, self.best_error,
                       str(self.solution) if solved else self.best_program, seconds)


# ------------------------------------------------------------------ proposers
class Renders:
    """Model-size renders of a search's programs, handed from the score to the policy: the value
    network scores each new program's render, and the programs the beam keeps are the ones the
    policy edits next round, from the same renders.  Only the latest call's renders are kept."""

    def __init__(self, env):
        self.env = env
        self.latest: dict[tuple[str, int], torch.Tensor] = {}

    def __call__(self, trees, size: int) -> torch.Tensor:
        """``B x C x size x size`` renders of ``trees``, as :func:`tdlib.images.program_images`."""
        keys = [(str(t), size) for t in trees]
        found = [self.latest.get(key) for key in keys]
        missing = [i for i, image in enumerate(found) if image is None]
        if missing:
            rendered = program_images(self.env, [trees[i] for i in missing], size)
            for i, image in zip(missing, rendered):
                found[i] = image
        self.latest = dict(zip(keys, found))
        return torch.stack(found)


class PolicyEdits:
    """``k`` edits per program sampled from the tree-diffusion policy at ``temperature``."""

    def __init__(self, decoder, env, target_observation: torch.Tensor, temperature: float = 1.0,
                 seed: int = 0, renders: Renders | None = None):
        self.decoder, self.env = decoder, env
        self.target = target_observation  # 1 x C x H x W, what the model sees of the target
        self.size = target_observation.shape[-1]
        self.temperature = temperature
        self.generator = torch.Generator().manual_seed(seed)
        self.renders = renders or Renders(env)

    def __call__(self, trees: list[SyntaxTree], k: int):
        """Per proposal: (index of its program, new program, log-probability of its position)."""
        current = self.renders(trees, self.size)
        target = self.target.expand(len(trees), *self.target.shape[1:])
        edits = self.decoder.edits(trees, current, target, self.temperature, self.generator, k)
        return [(i // k, edit.apply(trees[i // k]), decoded.first_logprob)
                for i, (edit, decoded) in enumerate(edits)]


class RandomEdits:
    """``k`` random small mutations per program (the noising process itself)."""

    def __init__(self, env, seed: int = 0):
        self.env, self.rng = env, random.Random(seed)

    def __call__(self, trees, k):
        return [(i, self.env.mutate(tree, self.rng), 0.0) for i, tree in enumerate(trees)
                for _ in range(k)]


class OracleEdits:
    """The next edit of Algorithm 1's path from each program to the true one (tests)."""

    def __init__(self, env, truth, seed: int = 0):
        self.env, self.truth, self.rng = env, env.tree(truth), random.Random(seed)

    def __call__(self, trees, k):
        out = []
        for i, tree in enumerate(trees):
            edit = first_edit(tree, self.truth, self.rng)
            if edit is not None:
                out.append((i, edit.apply(tree), 0.0))
        return out


# -------------------------------------------------------------------- scores
class ValueScore:
    """The value network's predicted edits left to the target (the paper's beam order).

    The prediction depends on the image alone, and many edits change no pixel (an eighth to two
    fifths of a search's new programs draw an image it has already scored), so each distinct
    image is scored once per search."""

    def __init__(self, value_model, env, target_observation: torch.Tensor,
                 renders: Renders | None = None):
        self.model, self.env, self.target = value_model, env, target_observation
        self.size = target_observation.shape[-1]
        self.renders = renders or Renders(env)
        self.known: dict[bytes, np.float32] = {}  # image digest -> its value

    @torch.no_grad()
    def __call__(self, trees, parents_scores, logprobs) -> np.ndarray:
        current = self.renders(trees, self.size)
        digests = [hashlib.blake2b(image.numpy().tobytes(), digest_size=16).digest()
                   for image in current]
        todo, wanted = [], set()  # the first program of each image not scored before
        for i, digest in enumerate(digests):
            if digest not in self.known and digest not in wanted:
                wanted.add(digest)
                todo.append(i)
        if todo:
            target = self.target.expand(len(todo), *self.target.shape[1:])
            device = next(self.model.parameters()).device
            values = self.model(current[todo].to(device), target.to(device)).float().cpu().numpy()
            self.known.update(zip((digests[i] for i in todo), values))
        return np.array([self.known[d] for d in digests], np.float32)


class LogprobScore:
    """Minus the summed log-probability of the chosen positions along the path (public code)."""

    def __call__(self, trees, parents_scores, logprobs) -> np.ndarray:
        return np.asarray(parents_scores, float) - np.asarray(logprobs, float)


class PixelScore:
    """Mean absolute pixel difference between a program's render and the target observation
    (at the model's size): a render-distance score that needs no network."""

    def __init__(self, env, target_observation: torch.Tensor):
        self.env = env
        self.target = target_observation[0].permute(1, 2, 0).numpy()
        self.size = self.target.shape[0]

    def __call__(self, trees, parents_scores, logprobs) -> np.ndarray:
        return np.array([np.abs(self.env.render(t, self.size) - self.target).mean() for t in trees])


def true_distances(env, trees, truth: SyntaxTree, size: int, rng, count_visible: bool = True,
                   sigma_small: int = SIGMA_SMALL) -> tuple[np.ndarray, np.ndarray | None]:
    """Each program's distance to ``truth``: the length of Algorithm 1's path to it, and (with
    ``count_visible``) the edits of that path that change the render at ``size`` (by more than
    :func:`tdlib.refine.unchanged` allows, as the value network's visible target counts them)."""
    truth_render = env.render(truth, size) if count_visible else None
    path_lengths, visible = [], []
    for tree in trees:
        path = edit_path(env.tree(tree), truth, rng, sigma_small)
        path_lengths.append(len(path) - 1)
        if count_visible:
            previous, changed = env.render(tree, size), 0
            for image in [env.render(program, size) for program in path[1:-1]] + [truth_render]:
                changed += not unchanged(previous, image)
                previous = image
            visible.append(changed)
    return np.array(path_lengths, float), np.array(visible, float) if count_visible else None


class DistanceScore:
    """An oracle for studies: each program's true distance to the target, known exactly, the pixel
    difference (under 1) breaking ties.  The target is the test problem's program with its dead
    parts removed (:func:`tdlib.refine.simplify` at the models' size), so that the distance is to
    what the picture shows, as an image-only value network would judge it; the distance is the
    length of Algorithm 1's path to it, or (``visible``) the edits of that path that change the
    render, the two targets a value network is trained on.  It answers whether a perfect value
    network would rank a beam better than the pixel difference does."""

    def __init__(self, env, truth, target_observation: torch.Tensor, visible: bool = False,
                 seed: int = 0):
        self.env, self.visible = env, visible
        self.pixel = PixelScore(env, target_observation)
        self.truth = simplify(env, truth, size=self.pixel.size)
        self.rng = random.Random(text_key(f"{seed}:distance oracle"))  # not the proposer's stream

    def __call__(self, trees, parents_scores, logprobs) -> np.ndarray:
        path, visible = true_distances(self.env, trees, self.truth, self.pixel.size, self.rng,
                                       count_visible=self.visible)
        return (visible if self.visible else path) + self.pixel(trees, parents_scores, logprobs)


# ------------------------------------------------------------------- methods
def beam_search(expansions: Expansions, starts, propose, score, beam: int = 64, k: int = 3,
                patience: int = 3) -> Outcome:
    """TD search (see the module docstring).  Stops at a solution, at the budget, or after
    ``patience`` rounds in a row that made no new program."""
    frontier = []
    for tree in starts:
        if expansions.check(tree):
            frontier.append(tree)
    scores = [0.0] * len(frontier)
    stalled = 0
    while frontier and not expansions.done:
        new, parents, logprobs = [], [], []
        for parent, tree, logprob in propose(frontier, k):
            if expansions.check(tree, frontier[parent]):
                new.append(tree)
                parents.append(scores[parent])
                logprobs.append(logprob)
            if expansions.done:
                return expansions.outcome()
        if not new:
            stalled += 1
            if stalled >= patience:
                break
            continue
        stalled = 0
        values = score(new, parents, logprobs)
        keep = np.argsort(values, kind="stable")[:beam]
        if expansions.best_scored is None or values[keep[0]] < expansions.best_scored[0]:
            expansions.best_scored = (float(values[keep[0]]), str(new[keep[0]]))
        frontier, scores = [new[i] for i in keep], [float(values[i]) for i in keep]
    return expansions.outcome()


def rollouts(expansions: Expansions, starts, propose, chains: int = 32,
             max_steps: int = 100) -> Outcome:
    """``chains`` parallel chains from the start programs (cycled), one proposed edit per
    step each; a chain goes on from its new program whether or not it was seen before."""
    starts = list(starts)
    for tree in starts:
        expansions.check(tree)
    if expansions.done or not starts:
        return expansions.outcome()
    current = [starts[i % len(starts)] for i in range(chains)]
    for _ in range(max_steps):
        proposals = propose(current, 1)
        for parent, tree, _ in proposals:
            expansions.check(tree, current[parent])
            current[parent] = tree
            if expansions.done:
                return expansions.outcome()
    return expansions.outcome()


def rejection(expansions: Expansions, decoder, target_observation: torch.Tensor,
              batch: int = 64, temperature: float = 1.0, seed: int = 0,
              max_rounds: int | None = None) -> Outcome:
    """Whole programs sampled from the autoregressive model, ``batch`` per call, until a
    solution, the budget, or ``max_rounds`` calls (default: enough for 4x the budget)."""
    generator = torch.Generator().manual_seed(seed)
    env = expansions.env
    rounds = max_rounds if max_rounds is not None else 4 * expansions.budget // batch + 1
    for _ in range(rounds):
        for node, _ in decoder.programs(target_observation, temperature, generator, batch):
            expansions.check(SyntaxTree(node, env.grammar))
            if expansions.done:
                return expansions.outcome()
    return expansions.outcome()


def repl_rollouts(expansions: Expansions, decoder, target_observation: torch.Tensor,
                  batch: int = 32, max_shapes: int = 8, temperature: float = 1.0,
                  seed: int = 0, max_rounds: int | None = None) -> Outcome:
    """REPL Flow as plain roll-outs: ``batch`` sampled shape-by-shape roll-outs per round; each
    rendered partial program is one expansion (the REPL compiles every step)."""
    env = expansions.env
    steps = REPLSteps(env.grammar)
    generator = torch.Generator().manual_seed(seed)
    size = target_observation.shape[-1]
    target = target_observation.expand(batch, *target_observation.shape[1:])
    rounds = max_rounds if max_rounds is not None else 4 * expansions.budget // batch + 1
    for _ in range(rounds):
        shapes = [[] for _ in range(batch)]
        for n in range(max_shapes):
            current, contexts = steps.seen_batch(env, shapes, size, decoder.tok)
            start = steps.start_state(decoder.constraint, first=n == 0)
            decoded = decoder.sequences(current, target, contexts, [start] * batch,
                                        temperature, generator)
            for i, d in enumerate(decoded):
                shapes[i].append(steps.decode_step(decoder.tok, d.tokens, first=n == 0))
                expansions.check(SyntaxTree(steps.fold(shapes[i]), env.grammar))
                if expansions.done:
                    return expansions.outcome()
    return expansions.outcome()
