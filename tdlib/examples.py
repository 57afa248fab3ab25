"""Training examples: noise a random target, then take a step of the path back (paper §3.2).

For each example: a target z_0 with ``min_primitives..max_primitives`` primitives; a start
z_s made by ``s ~ U{1..max_noise_steps}`` small mutations, or, with probability ``rho``, an
unrelated random program.  Then, by ``mode``:

``"path"`` (the paper)
    the edit path from z_s to z_0; a program on it chosen uniformly (z_0 excluded) and its
    next edit; ``distance`` is the number of edits left, the value network's target.
``"last_step"`` (the No Reverse Path ablation)
    z_s and the edit that undoes the last mutation exactly (z_s -> z_{s-1}); ``distance`` = s.
    Unrelated starts have no last mutation and use the first edit of their path.

The ablation's name everywhere a user chooses it is ``no_reverse_path`` (``tdlib train
--ablation no_reverse_path``, :data:`tdlib.presets.ABLATIONS`); ``"last_step"`` is only the value
of ``ExampleConfig.mode`` it sets, kept because checkpoint records store it.  ``rho = 1`` gives
the No Noising ablation.  Everything is seeded: the same seed gives the same
stream, and each DataLoader worker draws a distinct stream from (seed, worker id).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
from torch.utils.data import IterableDataset, get_worker_info

from tdlib import own_states
from tdlib.edit_paths import edit_steps
from tdlib.env import Env, make_env
from tdlib.mutation import SIGMA_SMALL, Edit, Mutator
from tdlib.refine import simplify, unchanged
from tdlib.sampling import as_random
from tdlib.seeds import worker_seed
from tdlib.tree import SyntaxTree

MODES = ("path", "last_step")
VALUE_TARGETS = ("path", "visible")


@dataclass(frozen=True)
class ExampleConfig:
    """How training examples are made; stored in every checkpoint that uses them."""

    min_primitives: int = 2
    max_primitives: int = 8
    max_noise_steps: int = 5
    rho: float = 0.2
    mode: str = "path"
    sigma_small: int = SIGMA_SMALL
    mutation_scheme: str = "count"
    image_size: int = 128
    # Each output token carries the set the grammar allows there (node starts for <POS k>, what
    # the rule can still derive for the replacement), and the loss is a softmax over that set
    # only, as decoding sees it: no capacity goes to syntax the decoder enforces anyway.
    masked_loss: bool = False
    # The <POS k> loss credits every node where a next edit of the path may start (Algorithm 1
    # returns one edit per differing subtree; the path takes them largest first, but any of them
    # is a correct next step), so the target of the first token is not an arbitrary tie-break.
    # Needs masked_loss (the set travels with the grammar masks).
    all_positions: bool = False
    # Targets without dead parts: every subtree whose removal leaves the target's render (at
    # image_size) unchanged is removed before noising (tdlib.refine.simplify), so that no
    # example asks for a primitive that draws nothing.
    simplify_targets: bool = False
    # Only examples whose edit changes the current image (at image_size): an edit that changes
    # no pixel cannot be read from the images, and a current program that already draws the
    # target needs none.
    visible_edits_only: bool = False
    # DAgger: this share of examples starts from a program the policy reached itself (a file of
    # tdlib.own_states, relative to the project root or absolute), labelled with Algorithm 1's
    # path from there to its target, so that training also sees the far-from-target states a
    # search walks through.  0 draws nothing extra: the stream is the one without the file.
    own_states: str = ""
    own_states_share: float = 0.0
    # What ``distance`` (the value network's target) counts: "path", every edit left on
    # Algorithm 1's path; "visible", only the edits left that change the render (at image_size).
    # A search is judged on pictures: an edit no pixel shows neither brings it nearer nor can be
    # read from the two images.
    value_target: str = "path"

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {self.mode!r}")
        if not 0.0 <= self.rho <= 1.0:
            raise ValueError(f"rho must be in [0, 1], not {self.rho}")
        if self.max_noise_steps < 1:
            raise ValueError("max_noise_steps must be >= 1")
        if not 1 <= self.min_primitives <= self.max_primitives:
            raise ValueError("need 1 <= min_primitives <= max_primitives")
        if self.all_positions and not self.masked_loss:
            raise ValueError("all_positions needs masked_loss")
        if not 0.0 <= self.own_states_share <= 1.0:
            raise ValueError(f"own_states_share must be in [0, 1], not {self.own_states_share}")
        if self.own_states_share > 0 and not self.own_states:
            raise ValueError("own_states_share needs an own_states file (tools/own_states.py)")
        if self.value_target not in VALUE_TARGETS:
            raise ValueError(f"value_target must be one of {VALUE_TARGETS}, "
                             f"not {self.value_target!r}")
        if self.value_target == "visible" and self.mode == "last_step":
            raise ValueError("value_target='visible' counts the edits of a path (mode='path')")


@dataclass
class TrainingExample:
    """One supervised step: from ``current`` towards ``target`` by ``edit``."""

    current: SyntaxTree
    target: SyntaxTree
    current_image: np.ndarray
    target_image: np.ndarray  # the target's observation (a sketch for csg2d-sketch)
    edit: Edit
    distance: int  # edits left to the target (path mode; only visible ones with value_target
                   # "visible") or noise steps left
    noise_steps: int  # 0 for an unrelated start
    chain: list[SyntaxTree] = field(repr=False)  # z_0 .. z_s (just [start] if unrelated)

    @property
    def edit_position(self) -> int:
        """Token index in ``current`` where the edited node starts (the <POS k> target)."""
        return self.edit.locate(self.current).token_start


class ExampleMaker:
    """Makes training examples for one language."""

    def __init__(self, env: Env, config: ExampleConfig = ExampleConfig()):
        self.env = env
        self.config = config
        self.mutator = Mutator(env.grammar, config.sigma_small, config.mutation_scheme)
        self.own_states = own_states.load(config.own_states, env.name)[1] \
            if config.own_states_share > 0 else []

    def example(self, rng, render: bool = True) -> TrainingExample:
        r = as_random(rng)
        cfg = self.config
        while True:
            if self.own_states and r.random() < cfg.own_states_share:
                target, start = self._own_state(r)
                chain, noise = None, 0
            else:
                target = self.env.sample(r, cfg.min_primitives, cfg.max_primitives)
                if cfg.simplify_targets:
                    target = simplify(self.env, target, size=cfg.image_size)
                if r.random() < cfg.rho:
                    start = self.env.sample(r, cfg.min_primitives, cfg.max_primitives)
                    chain, noise = None, 0
                else:
                    noise = 1 + int(r.random() * cfg.max_noise_steps)
                    trees, edits = self.mutator.chain(target, noise, r)
                    start, chain = trees[-1], (trees, edits)
            if start == target:  # a chain can wander back to where it began
                continue
            if cfg.visible_edits_only and self._looks_the_same(start, target):
                continue  # already draws the target: no edit to learn from the images
            if cfg.mode == "last_step" and chain is not None:
                trees, edits = chain
                current, edit, distance = start, edits[-1].inverse(), noise
                if cfg.visible_edits_only and self._looks_the_same(current, edit.apply(current)):
                    continue
                break
            steps = edit_steps(start, target, r, cfg.sigma_small)
            i = int(r.random() * len(steps))
            if cfg.visible_edits_only:  # the first visible step from a random place on, cyclically
                after = [s.tree for s in steps[1:]] + [target]
                order = [(i + j) % len(steps) for j in range(len(steps))]
                i = next((k for k in order if not self._looks_the_same(steps[k].tree, after[k])),
                         None)
                if i is None:
                    continue
            current, edit, distance = steps[i].tree, steps[i].edit, len(steps) - i
            if cfg.value_target == "visible":  # each program of the rest rendered once
                renders = [self.env.render(tree, cfg.image_size)
                           for tree in [s.tree for s in steps[i:]] + [target]]
                distance = sum(not unchanged(a, b) for a, b in zip(renders, renders[1:]))
            break
        if render:
            current_image = self.env.render(current, cfg.image_size)
            target_image = self.env.observe(target, r, cfg.image_size)
        else:
            current_image = target_image = None
        return TrainingExample(current, target, current_image, target_image, edit, distance,
                               noise, chain[0] if chain else [start])

    def _own_state(self, r) -> tuple[SyntaxTree, SyntaxTree]:
        """A target and a program the policy reached on its way there (``own_states``)."""
        target, state = self.own_states[int(r.random() * len(self.own_states))]
        target = self.env.parse(target)
        if self.config.simplify_targets:
            target = simplify(self.env, target, size=self.config.image_size)
        return target, self.env.parse(state)

    def _looks_the_same(self, a: SyntaxTree, b: SyntaxTree) -> bool:
        size = self.config.image_size
        return unchanged(self.env.render(a, size), self.env.render(b, size))


class ExampleStream(IterableDataset):
    """An endless, seeded stream of :class:`TrainingExample` for DataLoader workers.

    Use ``DataLoader(stream, batch_size=..., collate_fn=list)`` (or a tokenizing collate):
    examples hold syntax trees as well as images.
    """

    def __init__(self, env_name: str, config: ExampleConfig = ExampleConfig(), seed: int = 0,
                 rank: int = 0):
        self.env_name = env_name
        self.config = config
        self.seed = seed
        self.rank = rank

    def __iter__(self):
        info = get_worker_info()
        worker = info.id if info is not None else 0
        maker = ExampleMaker(make_env(self.env_name), self.config)
        r = random.Random(worker_seed(self.seed, worker, self.rank))
        while True:
            yield maker.example(r)
