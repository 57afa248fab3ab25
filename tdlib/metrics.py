"""Held-out measurements of each model kind, one step at a time (the trainer's evaluations).

* policy: one greedy edit on problems made by ``k`` small mutations of a held-out target; solved
  when the clean render of the edited program matches the target's (the paper's goal check);
* value: Spearman correlation of predicted against true edit-path distance, beside that of the
  pixel difference on the same pairs;
* ar: share of targets whose greedy decoding reproduces the program exactly, and visually;
* repl: next-step accuracy (operator and shape exactly right) under greedy decoding;
* any token-emitting kind: :func:`image_reliance`, how much of its loss the images explain.

Held-out problems come from their own seed domain (:func:`tdlib.seeds.held_out_rng`), never
from a training stream.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import islice

import pandas as pd
import torch

from tdlib.checkpoint import example_config, load_model
from tdlib.decode import Decoder
from tdlib.env import make_env
from tdlib.examples import ExampleConfig, ExampleMaker
from tdlib.images import image_batch, program_images
from tdlib.mutation import Mutator
from tdlib.repl import REPLSteps
from tdlib.seeds import held_out_rng
from tdlib.tasks import make_task
from tdlib.tokens import Tokenizer
from tdlib.tree import SyntaxTree


def mutation_problems(env, n: int, steps: int, seed: int = 0, min_primitives: int = 2,
                      max_primitives: int = 8) -> list[tuple[SyntaxTree, SyntaxTree]]:
    """``n`` pairs ``(target, start)``: start = ``steps`` small mutations away from target."""
    r = held_out_rng(seed, f"mutation:{env.name}:{steps}")
    mutator = Mutator(env.grammar)
    out = []
    while len(out) < n:
        target = env.sample(r, min_primitives, max_primitives)
        trees, _ = mutator.chain(target, steps, r)
        if trees[-1] != target and not env.is_solved(env.render(trees[-1]), env.render(target)):
            out.append((target, trees[-1]))
    return out


def greedy_edits(decoder: Decoder, env, problems, size: int, seed: int = 0, batch: int = 64):
    """``(target, start, edit)`` for each problem: the policy's one greedy edit of ``start``,
    read from the target's observation (drawn from the held-out ``observe`` stream)."""
    r = held_out_rng(seed, "observe")
    for i in range(0, len(problems), batch):
        chunk = problems[i:i + batch]
        targets, starts = [t for t, _ in chunk], [s for _, s in chunk]
        results = decoder.edits(starts, program_images(env, starts, size),
                                program_images(env, targets, size, r))
        for (target, start), (edit, _) in zip(chunk, results):
            yield target, start, edit


def one_step_solve_rate(decoder: Decoder, env, problems, size: int, seed: int = 0,
                        batch: int = 64) -> float:
    """Share of problems solved by one greedy edit of the policy."""
    solved = sum(env.is_solved(env.render(edit.apply(start)), env.render(target))
                 for target, start, edit in greedy_edits(decoder, env, problems, size, seed, batch))
    return solved / max(1, len(problems))


def value_examples(env, n: int, seed: int, config: ExampleConfig):
    """The ``n`` held-out examples whose (current, target, distance) are the value networks'
    held-out pairs: every value measurement walks these."""
    maker, r = ExampleMaker(env, config), held_out_rng(seed, "value")
    return (maker.example(r) for _ in range(n))


def value_pairs(env, n: int, size: int, seed: int = 0, config: ExampleConfig | None = None,
                batch: int = 64):
    """The held-out (current, target, distance) pairs that value networks are measured on (the
    distance the config's ``value_target`` counts), in chunks of ``batch``: ``B x C x H x W`` images and a list of distances."""
    stream = value_examples(env, n, seed, config or ExampleConfig(image_size=size))
    while examples := list(islice(stream, batch)):
        yield (image_batch(e.current_image for e in examples),
               image_batch(e.target_image for e in examples), [e.distance for e in examples])


def value_spearman(model, env, n: int, size: int, seed: int = 0,
                   config: ExampleConfig | None = None, batch: int = 64) -> float:
    """Spearman correlation between predicted and true distance (``config.value_target``) on
    held-out pairs."""
    predicted, true = [], []
    device = next(model.parameters()).device
    for cur, tgt, distances in value_pairs(env, n, size, seed, config, batch):
        with torch.no_grad():
            predicted.extend(model(cur.to(device), tgt.to(device)).float().cpu().tolist())
        true.extend(distances)
    return spearman(predicted, true)


def value_spearmans(model, env, n: int, size: int, seed: int = 0,
                    config: ExampleConfig | None = None) -> dict:
    """``spearman`` against the whole path distance and ``spearman_visible`` against the visible
    edits left on it, whatever the network was trained on, so that networks of either
    ``value_target`` compare on both."""
    config = config or ExampleConfig(image_size=size)
    return {f"spearman{suffix}": value_spearman(model, env, n, size, seed,
                                                replace(config, value_target=target))
            for suffix, target in _TARGET_COLUMNS}


def pixel_spearmans(env, n: int, size: int, seed: int = 0,
                    config: ExampleConfig | None = None) -> dict:
    """:func:`pixel_spearman` against both distances (columns as :func:`value_spearmans`)."""
    config = config or ExampleConfig(image_size=size)
    return {f"pixel_spearman{suffix}": pixel_spearman(env, n, size, seed,
                                                      replace(config, value_target=target))
            for suffix, target in _TARGET_COLUMNS}


_TARGET_COLUMNS = (("", "path"), ("_visible", "visible"))


def pixel_spearman(env, n: int, size: int, seed: int = 0,
                   config: ExampleConfig | None = None) -> float:
    """The same correlation for the score a value network has to beat: the summed absolute
    pixel difference of the two images (on the pairs of :func:`value_spearman`)."""
    predicted, true = [], []
    for cur, tgt, distances in value_pairs(env, n, size, seed, config):
        predicted.extend((cur - tgt).abs().flatten(1).sum(1).tolist())
        true.extend(distances)
    return spearman(predicted, true)


def spearman(a, b) -> float:
    """Spearman rank correlation (average ranks for ties)."""
    return float(pd.Series(a, dtype=float).rank().corr(pd.Series(b, dtype=float).rank()))


def ar_reproduction(decoder: Decoder, env, n: int, size: int, seed: int = 0,
                    min_primitives: int = 2, max_primitives: int = 8, batch: int = 64) -> dict:
    """Greedy whole-program decoding of held-out targets: exact and visual matches."""
    r = held_out_rng(seed, f"ar:{env.name}")
    exact = visual = 0
    for i in range(0, n, batch):
        targets = [env.sample(r, min_primitives, max_primitives) for _ in range(min(batch, n - i))]
        decoded = decoder.programs(program_images(env, targets, size, r))
        for target, (node, _) in zip(targets, decoded):
            exact += node == target.root
            visual += env.is_solved(env.render(node), env.render(target))
    return {"ar_exact": exact / n, "ar_visual": visual / n}


def repl_accuracy(decoder: Decoder, task, n: int, seed: int = 0, batch: int = 64) -> float:
    """Share of held-out REPL steps whose operator and shape are decoded exactly."""
    steps = REPLSteps(task.env.grammar)
    env, size = task.env, task.size
    r = held_out_rng(seed, "repl")
    correct = 0
    for i in range(0, n, batch):
        rows = []
        for _ in range(min(batch, n - i)):
            target = env.sample(r, task.example_config.min_primitives,
                                task.example_config.max_primitives)
            shapes = steps.flatten(target.root)
            k = r.randrange(len(shapes))
            rows.append((shapes, k))
        folds = [steps.fold(s) for s, _ in rows]
        current, contexts = steps.seen_batch(env, [s[:k] for s, k in rows], size, decoder.tok)
        starts = [steps.start_state(decoder.constraint, first=k == 0) for _, k in rows]
        decoded = decoder.sequences(current, program_images(env, folds, size, r), contexts, starts)
        for (shapes, k), d in zip(rows, decoded):
            want = steps.step_ids(decoder.tok, shapes[k], first=k == 0)
            correct += d.tokens == want
    return correct / max(1, n)


def image_reliance(task, model, n: int = 512, seed: int = 0, batch: int = 64) -> pd.DataFrame:
    """How much a token-emitting model reads its images: teacher-forced loss and accuracies on
    ``n`` held-out training examples, as given, with each target image swapped for another
    example's, and with both images blank.  A model that has learnt only the prior over edits
    scores about the same in all three rows.
    """
    held_out = type(task)(task.env_name, task.model_config, task.example_config,
                          seed=int(held_out_rng(seed, "reliance").getrandbits(31)))
    items = [held_out.example(i) for i in range(n)]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    rows = []
    try:
        for images_as in ("given", "other target", "blank"):
            totals: dict[str, float] = {}
            for i in range(0, n, batch):
                chunk = task.collate(items[i:i + batch])
                if images_as == "other target":  # example j gets the target of example j + 1
                    chunk["target"] = task.stack([items[(j + 1) % n] for j in
                                                  range(i, min(i + batch, n))], "target")
                elif images_as == "blank":
                    chunk["target"] = torch.zeros_like(chunk["target"])
                    chunk["current"] = torch.zeros_like(chunk["current"])
                    if "footprint_masks" in chunk:  # drawn from the current program's render
                        chunk["footprint_masks"] = torch.zeros_like(chunk["footprint_masks"])
                chunk = {k: v.to(device) for k, v in chunk.items()}
                with torch.no_grad():
                    loss, metrics = task.loss(model, chunk)
                for key, value in {"loss": loss.item(), **metrics}.items():
                    totals[key] = totals.get(key, 0.0) + value * len(items[i:i + batch]) / n
            rows.append({"images": images_as, **totals})
    finally:
        model.train(was_training)
    return pd.DataFrame(rows)


def held_out_metrics(task, model, n: int, seed: int = 0) -> dict:
    """The held-out metrics of ``task.kind`` for ``model`` (used by the trainer)."""
    was_training = model.training
    model.eval()
    env, size = task.env, task.size
    try:
        if task.kind == "value":
            return value_spearmans(model, env, n, size, seed, task.example_config)
        decoder = Decoder(model, task.tokenizer)
        lo, hi = task.example_config.min_primitives, task.example_config.max_primitives
        if task.kind == "policy":
            return {f"solve_{k}": one_step_solve_rate(
                decoder, env, mutation_problems(env, n, k, seed, lo, hi), size, seed)
                for k in (1, 2)}
        if task.kind == "ar":
            return ar_reproduction(decoder, env, n, size, seed, lo, hi)
        return {"repl_step_acc": repl_accuracy(decoder, task, n, seed)}
    finally:
        model.train(was_training)


def load_checkpoint(folder, device: str = "cpu"):
    """A checkpoint's network, record, language, example config and (but for a value network)
    greedy decoder."""
    model, record = load_model(folder, device)
    env = make_env(model.config.env)
    decoder = (None if model.config.kind == "value"
               else Decoder(model, Tokenizer(env.grammar, model.config.max_positions)))
    return model, record, env, example_config(record), decoder


def policy_problems(env, examples: ExampleConfig, n: int, k: int, seed: int):
    """The held-out ``k``-mutation problems a policy checkpoint is measured on, drawn at the
    sizes it was trained on."""
    return mutation_problems(env, n, k, seed, examples.min_primitives, examples.max_primitives)


def checkpoint_metrics(folder, n: int = 256, seed: int = 0, device: str = "cpu") -> list[dict]:
    """The one-step measurements of a checkpoint, as table rows (``results/tables/one_step.csv``).

    policy: solve rates of one greedy edit on 1-, 2- and 3-mutation problems; value: Spearman on
    ``n`` held-out pairs, and that of the pixel difference on the same pairs; ar: exact and
    visual reproduction; repl: next-step accuracy.
    """
    model, record, env, examples, decoder = load_checkpoint(folder, device)
    config = model.config
    base = {"model": config.kind, "env": config.env, "checkpoint": str(folder),
            "step": record.get("step"), "n": n}
    if config.kind == "value":
        found = value_spearmans(model, env, n, config.image_size, seed, examples)
        found["pixel_spearman"] = pixel_spearman(env, n, config.image_size, seed,
                                                 replace(examples, value_target="path"))
        return [{**base, "metric": metric, "value": value} for metric, value in found.items()]
    if config.kind == "policy":
        return [{**base, "metric": f"solved_{k}_mutation", "value": one_step_solve_rate(
            decoder, env, policy_problems(env, examples, n, k, seed), config.image_size, seed)}
            for k in (1, 2, 3)]
    if config.kind == "ar":
        result = ar_reproduction(decoder, env, n, config.image_size, seed,
                                 examples.min_primitives, examples.max_primitives)
        return [{**base, "metric": k, "value": v} for k, v in result.items()]
    task = make_task("repl", config.env, config, examples, seed)
    return [{**base, "metric": "repl_step_acc", "value": repl_accuracy(decoder, task, n, seed)}]
