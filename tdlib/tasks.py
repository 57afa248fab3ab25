"""What each network learns from: examples, batches and losses, one class per model kind.

The trainer knows nothing about models; it asks a task for examples (in DataLoader workers), for
batches (``collate``) and for the loss and metrics of a batch.  Example ``i`` of a run is a pure
function of ``(seed, i)``, so a resumed run sees exactly the examples an uninterrupted one would,
and DDP ranks take disjoint example indices.

* ``policy``: a training example of :mod:`tdlib.examples` (noised target, a step of the edit path);
  tokens ``context <EDIT> <POS k> replacement <EOS>``, loss on the edit.
* ``value``: the same examples; regression of the number of edits left.
* ``ar``: a random target alone; tokens ``<EDIT> program <EOS>``, current image blank.
* ``repl``: REPL Flow (CSG2D): a random program flattened into a left-to-right list of shapes;
  the render of a random prefix as current image, the prefix as context, the next shape (with its
  operator) as output.
"""

from __future__ import annotations

import random

import numpy as np
import torch
import torch.nn.functional as F

from tdlib.edit_paths import tree_diff
from tdlib.env import make_env
from tdlib.examples import ExampleConfig, ExampleMaker
from tdlib.footprints import batch_footprints, program_footprints
from tdlib.images import planes
from tdlib.repl import REPLSteps
from tdlib.seeds import example_rng
from tdlib.tokens import EDIT, EOS, PAD, GrammarConstraint, Tokenizer

IGNORE = -100


class Task:
    """Base: holds the language, the tokenizer and how images are drawn."""

    kind = ""

    def __init__(self, env_name: str, model_config, example_config: ExampleConfig, seed: int = 0):
        self.env_name = env_name
        self.env = make_env(env_name)
        self.model_config = model_config
        self.example_config = example_config
        self.seed = seed
        self.tokenizer = Tokenizer(self.env.grammar, model_config.max_positions)
        self.size = model_config.image_size
        if getattr(model_config, "footprints", False) and not self.env.has_footprints:
            raise ValueError(f"footprints=True needs a renderer with footprints; the {env_name} "
                             "renderer has none")

    def __getstate__(self):  # DataLoader workers rebuild the language from its name
        state = dict(self.__dict__)
        del state["env"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.env = make_env(self.env_name)

    def example(self, index: int) -> dict:
        raise NotImplementedError

    def collate(self, items: list[dict]) -> dict:
        raise NotImplementedError

    def loss(self, model, batch: dict) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError

    @staticmethod
    def stack(items, key) -> torch.Tensor:
        return torch.from_numpy(np.stack([it[key] for it in items]))


class SequenceTask(Task):
    """Shared by the token-emitting kinds: right-padded sequences, loss after the context.

    With ``example_config.masked_loss`` an item also holds ``allowed`` (``n_out x V``, bool):
    for each output token, what the grammar allows there; the loss and metrics then see only
    those logits.
    """

    @property
    def constraint(self):
        # Built lazily in each process (its states are numbered in the order they are met).
        if getattr(self, "_constraint", None) is None:
            self._constraint = GrammarConstraint(self.tokenizer)
        return self._constraint

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_constraint", None)
        return state

    def allowed_masks(self, output: list[int], start, positions=None,
                      ar_start: bool = False) -> np.ndarray | None:
        """What the grammar allows at each token of ``output`` (the tokens after ``<EDIT>``,
        ``<EOS>`` included), from automaton state ``start``; with ``positions`` (the token
        indices ``<POS k>`` may name, each mapped to its node's rule) the first token is a
        ``<POS k>`` and ``start`` is ignored; ``ar_start``: from the start rule.  None unless
        the example config asks for it."""
        if not self.example_config.masked_loss:
            return None
        con, tok = self.constraint, self.tokenizer
        if ar_start:
            start = con.start()
        masks = np.zeros((len(output), tok.vocab_size), bool)
        tokens = list(output)
        if positions is not None:
            masks[0, [tok.pos_offset + k for k in positions if k < tok.max_positions]] = True
            start = con.start(positions[tokens[0] - tok.pos_offset])
            first = 1
        else:
            first = 0
        state = start
        for j in range(first, len(tokens)):
            masks[j] = np.isfinite(con.next_min[state])
            if tokens[j] != EOS:
                state = con.step(state, tokens[j])
        return masks

    def collate(self, items):
        width = max(len(it["tokens"]) for it in items)
        tokens = torch.full((len(items), width), PAD, dtype=torch.long)
        targets = torch.full((len(items), width), IGNORE, dtype=torch.long)
        for i, it in enumerate(items):
            seq = torch.as_tensor(it["tokens"], dtype=torch.long)
            tokens[i, :len(seq)] = seq
            start = it["loss_from"]  # index of <EDIT>: it predicts the first output token
            targets[i, start:len(seq) - 1] = seq[start + 1:]
        # The prompt: the context and its <EDIT> (what a decoder is given, not what it emits).
        prompt_lengths = torch.tensor([it["loss_from"] + 1 for it in items])
        batch = {"current": self.stack(items, "current"), "target": self.stack(items, "target"),
                 "tokens": tokens, "targets": targets, "prompt_lengths": prompt_lengths}
        if items and items[0].get("allowed") is not None:  # row-major, as targets[scored]
            batch["allowed"] = torch.from_numpy(np.concatenate([it["allowed"] for it in items]))
        if items and items[0].get("first_valid") is not None:
            batch["first_valid"] = self.stack(items, "first_valid")
        if items and items[0].get("footprints") is not None:
            batch["footprint_masks"], batch["footprint_tokens"] = batch_footprints(
                [it["footprints"] for it in items], width)
        return batch

    def loss(self, model, batch):
        targets = batch["targets"]
        scored = targets != IGNORE
        footprints = None
        if "footprint_masks" in batch:
            footprints = batch["footprint_masks"], batch["footprint_tokens"]
        logits = model(batch["current"], batch["target"], batch["tokens"], scored,
                       prompt_lengths=batch["prompt_lengths"], footprints=footprints)
        if "allowed" in batch:
            logits = logits.masked_fill(~batch["allowed"], float("-inf"))
        wanted = targets[scored]
        first = (scored & (scored.cumsum(1) == 1))[scored]
        if "first_valid" in batch:
            # First token: -log of the probability of any correct <POS k>; the others as usual.
            nll = F.cross_entropy(logits.float(), wanted, reduction="none")
            opening = logits[first].float()
            valid = batch["first_valid"] & batch["allowed"][first]
            credited = opening.masked_fill(~valid, float("-inf")).logsumexp(-1)
            nll[first] = opening.logsumexp(-1) - credited
            loss = nll.mean()
        else:
            loss = F.cross_entropy(logits.float(), wanted)
        with torch.no_grad():
            correct = logits.argmax(-1) == wanted
            if "first_valid" in batch:
                correct[first] = valid.gather(1, logits[first].argmax(-1)[:, None])[:, 0]
            rows = scored.nonzero()[:, 0]
            wrong = torch.zeros(len(targets), device=targets.device).index_add_(
                0, rows, (~correct).float())
            metrics = {"token_acc": correct.float().mean().item(),
                       "first_acc": correct[first].float().mean().item(),
                       "exact": (wrong == 0).float().mean().item()}
        return loss, metrics


class PolicyTask(SequenceTask):
    kind = "policy"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.maker = ExampleMaker(self.env, self.example_config)

    def __setstate__(self, state):
        super().__setstate__(state)
        self.maker = ExampleMaker(self.env, self.example_config)

    def example(self, index):
        r = example_rng(self.seed, index)
        cfg = self.model_config
        limit = cfg.context - cfg.prefix_tokens
        while True:  # rare over-long programs or edits are redrawn, as decoding could not emit them
            ex = self.maker.example(r)
            context = self.tokenizer.encode_program(ex.current)
            if len(context) >= self.tokenizer.max_positions:
                continue
            edit = self.tokenizer.encode_edit(ex.current, ex.edit)
            if len(edit) - 3 <= cfg.max_edit_tokens and len(context) + len(edit) <= limit:
                break
        starts = None
        if self.example_config.masked_loss:
            starts = {k: loc.node.rule for k, loc in self.tokenizer.node_starts(ex.current).items()}
        item = {"current": planes(ex.current_image), "target": planes(ex.target_image),
                "tokens": context + edit, "loss_from": len(context), "distance": ex.distance,
                "allowed": self.allowed_masks(edit[1:], None, starts)}
        if self.example_config.all_positions:
            item["first_valid"] = self.next_edit_positions(ex)
        if cfg.footprints:
            item["footprints"] = program_footprints(self.env, ex.current, self.size)
        return item

    def next_edit_positions(self, ex) -> np.ndarray:
        """``V`` booleans: the ``<POS k>`` tokens of every correct next edit of ``ex`` (the
        edits of :func:`~tdlib.edit_paths.tree_diff` from its program to its target; just its own
        edit in ``last_step`` mode, the No Reverse Path ablation)."""
        tok = self.tokenizer
        valid = np.zeros(tok.vocab_size, bool)
        valid[tok.pos_token(tok.edit_target(ex.current, ex.edit)[0])] = True
        if self.example_config.mode == "path":
            # Which subtrees differ does not depend on the randomness of the replacements.
            for edit in tree_diff(ex.current.root, ex.target.root, self.example_config.sigma_small,
                                  random.Random(0), self.env.grammar):
                k = tok.edit_target(ex.current, edit)[0]
                if k < tok.max_positions:
                    valid[tok.pos_token(k)] = True
        return valid


def pairwise_rank_loss(predicted: torch.Tensor, distance: torch.Tensor) -> torch.Tensor:
    """Mean of softplus(p_i - p_j) over the pairs with distance_i < distance_j (0 if none)."""
    nearer = distance[:, None] < distance[None, :]
    if not nearer.any():
        return predicted.sum() * 0
    return F.softplus(predicted[:, None] - predicted[None, :])[nearer].mean()


class ValueTask(PolicyTask):
    kind = "value"

    def example(self, index):
        ex = self.maker.example(example_rng(self.seed, index))
        return {"current": planes(ex.current_image), "target": planes(ex.target_image),
                "distance": ex.distance}

    def collate(self, items):
        return {"current": self.stack(items, "current"), "target": self.stack(items, "target"),
                "distance": torch.tensor([float(it["distance"]) for it in items])}

    def loss(self, model, batch):
        bins = self.model_config.value_bins
        out = model(batch["current"], batch["target"], logits=bool(bins)).float()
        distance = batch["distance"]
        if bins:
            labels = distance.long().clamp(max=bins - 1)
            loss = F.cross_entropy(out, labels)
            predicted = torch.softmax(out, -1) @ torch.arange(bins, device=out.device,
                                                               dtype=torch.float32)
        else:
            predicted = out
            loss = F.smooth_l1_loss(predicted, distance)
        metrics = {}
        weight = self.model_config.value_rank_weight
        if weight:
            rank = pairwise_rank_loss(predicted, distance)
            loss = loss + weight * rank
            metrics["rank"] = rank.item()
        with torch.no_grad():
            metrics["mae"] = (predicted - distance).abs().mean().item()
        return loss, metrics


class ARTask(SequenceTask):
    kind = "ar"

    def example(self, index):
        r = example_rng(self.seed, index)
        cfg = self.example_config
        while True:
            target = self.env.sample(r, cfg.min_primitives, cfg.max_primitives)
            program = self.tokenizer.encode_program(target)
            if len(program) + 2 <= self.model_config.context - self.model_config.prefix_tokens:
                break
        image = planes(self.env.observe(target, r, self.size))
        return {"current": np.zeros_like(image), "target": image,
                "tokens": [EDIT] + program + [EOS], "loss_from": 0,
                "allowed": self.allowed_masks(program + [EOS], None, ar_start=True)}


class REPLTask(SequenceTask):
    kind = "repl"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.steps = REPLSteps(self.env.grammar)

    def __setstate__(self, state):
        super().__setstate__(state)
        self.steps = REPLSteps(self.env.grammar)

    def example(self, index):
        r = example_rng(self.seed, index)
        cfg = self.example_config
        limit = self.model_config.context - self.model_config.prefix_tokens
        while True:
            target = self.env.sample(r, cfg.min_primitives, cfg.max_primitives)
            shapes = self.steps.flatten(target.root)
            fold = self.steps.fold(shapes)
            k = r.randrange(len(shapes))
            if len(self.tokenizer.node_ids(fold)) + 3 <= limit:
                break
        image = planes(self.env.observe(fold, r, self.size))
        current, context = self.steps.seen(self.env, shapes[:k], self.size, self.tokenizer)
        current = planes(current)
        output = self.steps.step_ids(self.tokenizer, shapes[k], first=k == 0)
        allowed = None
        if self.example_config.masked_loss:
            allowed = self.allowed_masks(
                output + [EOS], self.steps.start_state(self.constraint, first=k == 0))
        return {"current": current, "target": image, "tokens": context + [EDIT] + output + [EOS],
                "loss_from": len(context), "allowed": allowed}


TASKS = {"policy": PolicyTask, "value": ValueTask, "ar": ARTask, "repl": REPLTask}


def make_task(kind: str, env_name: str, model_config, example_config, seed: int = 0) -> Task:
    try:
        cls = TASKS[kind]
    except KeyError:
        raise ValueError(f"unknown model kind {kind!r}; kinds: {', '.join(TASKS)}") from None
    return cls(env_name, model_config, example_config, seed)
