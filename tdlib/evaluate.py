"""Held-out measurements of each model kind, one step at a time.

* policy: one greedy edit on problems made by ``k`` small mutations of a held-out target; solved
  when the clean render of the edited program matches the target's (the paper's goal check);
* value: Spearman correlation of predicted against true edit-path distance, and references for
  what the images show of it (:func:`invisible_pairs`, :func:`visible_edits`,
  :func:`differing_shapes`);
* ar: share of targets whose greedy decoding reproduces the program exactly, and visually;
* repl: next-step accuracy (operator and shape exactly right) under greedy decoding;
* any token-emitting kind: :func:`image_reliance`, how much of its loss the images explain.

Held-out problems come from their own seed domain (:data:`EVAL_DOMAIN`), never from a
training stream.
"""

from __future__ import annotations

import random
from collections import Counter
from itertools import islice

import numpy as np
import pandas as pd
import torch

from tdlib.decode import Decoder
from tdlib.examples import ExampleConfig, ExampleMaker
from tdlib.mutation import SIGMA_SMALL, Mutator
from tdlib.paths import edit_path, tree_diff
from tdlib.tree import SyntaxTree

EVAL_DOMAIN = 0xE7A1


def held_out_rng(seed: int, purpose: str) -> random.Random:
    import zlib
    key = np.random.SeedSequence([seed, EVAL_DOMAIN, zlib.crc32(purpose.encode())])
    return random.Random(int(key.generate_state(2, np.uint64)[0] >> 1))


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


def images(env, programs, size: int, observe_rng=None) -> torch.Tensor:
    """``B x C x H x W`` renders (or observations, with ``observe_rng``) of programs."""
    if observe_rng is None:
        arrays = [env.render(p, size) for p in programs]
    else:
        arrays = [env.observe(p, observe_rng, size) for p in programs]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def greedy_edits(decoder: Decoder, env, problems, size: int, seed: int = 0, batch: int = 64):
    """``(target, start, edit)`` for each problem: the policy's one greedy edit of ``start``,
    read from the target's observation (drawn from the held-out ``observe`` stream)."""
    r = held_out_rng(seed, "observe")
    for i in range(0, len(problems), batch):
        chunk = problems[i:i + batch]
        targets, starts = [t for t, _ in chunk], [s for _, s in chunk]
        results = decoder.edits(starts, images(env, starts, size), images(env, targets, size, r))
        for (target, start), (edit, _) in zip(chunk, results):
            yield target, start, edit


def one_step_solve_rate(decoder: Decoder, env, problems, size: int, seed: int = 0,
                        batch: int = 64) -> float:
    """Share of problems solved by one greedy edit of the policy."""
    solved = sum(env.is_solved(env.render(edit.apply(start)), env.render(target))
                 for target, start, edit in greedy_edits(decoder, env, problems, size, seed, batch))
    return solved / max(1, len(problems))


EDIT_PLACES = ("a differing node", "around one", "inside one", "elsewhere")


def edit_place(edit, start: SyntaxTree, target: SyntaxTree) -> str:
    """Where ``edit`` acts on ``start`` relative to the subtrees that differ from ``target``
    (Algorithm 1's edit sites, the tops of the differing subtrees): at one of them, at an
    ancestor of one (it replaces more than needed), inside one, or elsewhere (it touches only
    what already matches)."""
    sites = [e.path for e in tree_diff(start.root, target.root, SIGMA_SMALL, random.Random(0),
                                       start.grammar)]
    path = tuple(edit.path)
    if path in sites:
        return "a differing node"
    if any(site[:len(path)] == path for site in sites):
        return "around one"
    if any(path[:len(site)] == site for site in sites):
        return "inside one"
    return "elsewhere"


def edit_places(decoder: Decoder, env, problems, size: int, seed: int = 0,
                batch: int = 64) -> pd.DataFrame:
    """Per problem, where the policy's one greedy edit acts (:func:`edit_place`) and whether it
    solves the problem: it tells a policy that finds the place but writes the wrong replacement
    from one that does not find the place."""
    rows = [{"place": edit_place(edit, start, target),
             "solved": bool(env.is_solved(env.render(edit.apply(start)), env.render(target)))}
            for target, start, edit in greedy_edits(decoder, env, problems, size, seed, batch)]
    return pd.DataFrame(rows, columns=["place", "solved"])


def value_examples(env, n: int, seed: int, config: ExampleConfig):
    """The ``n`` held-out examples whose (current, target, distance) are the value networks'
    held-out pairs: every value measurement walks these."""
    maker, r = ExampleMaker(env, config), held_out_rng(seed, "value")
    return (maker.example(r) for _ in range(n))


def value_pairs(env, n: int, size: int, seed: int = 0, config: ExampleConfig | None = None,
                batch: int = 64):
    """The held-out (current, target, true path distance) pairs that value networks are
    measured on, in chunks of ``batch``: ``B x C x H x W`` images and a list of distances."""
    stream = value_examples(env, n, seed, config or ExampleConfig(image_size=size))
    while examples := list(islice(stream, batch)):
        cur = torch.from_numpy(np.stack([e.current_image for e in examples])).permute(0, 3, 1, 2)
        tgt = torch.from_numpy(np.stack([e.target_image for e in examples])).permute(0, 3, 1, 2)
        yield cur, tgt, [e.distance for e in examples]


def value_spearman(model, env, n: int, size: int, seed: int = 0,
                   config: ExampleConfig | None = None, batch: int = 64) -> float:
    """Spearman correlation between predicted and true path distance on held-out pairs."""
    predicted, true = [], []
    device = next(model.parameters()).device
    for cur, tgt, distances in value_pairs(env, n, size, seed, config, batch):
        with torch.no_grad():
            predicted.extend(model(cur.to(device), tgt.to(device)).float().cpu().tolist())
        true.extend(distances)
    return spearman(predicted, true)


def pixel_spearman(env, n: int, size: int, seed: int = 0,
                   config: ExampleConfig | None = None) -> float:
    """The same correlation for the score a value network has to beat: the summed absolute
    pixel difference of the two images (on the pairs of :func:`value_spearman`)."""
    predicted, true = [], []
    for cur, tgt, distances in value_pairs(env, n, size, seed, config):
        predicted.extend((cur - tgt).abs().flatten(1).sum(1).tolist())
        true.extend(distances)
    return spearman(predicted, true)


def invisible_pairs(env, n: int, size: int, seed: int = 0,
                    config: ExampleConfig | None = None) -> dict:
    """How much of the path distance an image-only value network can see, on the pairs of
    :func:`value_pairs`: the share of pairs whose two images are identical (edits that change no
    pixel at ``size``: a shape under another, a subtraction of nothing), their mean distance
    beside the mean of all pairs, and the Spearman correlation of a predictor that knows the true
    distance of every pair it can tell apart and gives the identical ones one constant (the best
    one): a ceiling no network reading only the two images can pass."""
    identical, true = [], []
    for cur, tgt, distances in value_pairs(env, n, size, seed, config):
        identical.extend((cur == tgt).flatten(1).all(1).tolist())
        true.extend(distances)
    identical, true = np.array(identical, bool), np.array(true, float)
    return {"pairs": len(true), "identical_share": float(identical.mean()),
            "identical_mean_distance": float(true[identical].mean()) if identical.any()
            else float("nan"),
            "mean_distance": float(true.mean()),
            "ceiling_spearman": identical_pairs_ceiling(true, identical)}


def visible_edits(env, n: int, size: int, seed: int = 0,
                  config: ExampleConfig | None = None) -> dict:
    """How many of the edits left on each held-out value pair (those of :func:`value_pairs`)
    change a pixel at ``size``: the rest of the pair's path is walked again (Algorithm 1 from the
    pair's current program) and consecutive renders compared.  Returns the share of all edits left
    that are visible and the Spearman correlation with the true distance of a predictor that knows
    exactly how many visible edits are left, a reference for what an image-only value network can
    reach (not a strict bound: what a picture shows can hint at edits it does not show)."""
    config = config or ExampleConfig(image_size=size)
    if config.mode != "path":
        raise ValueError("visible_edits needs path-mode pairs (their distance is a path's length)")
    distances, visible, same_length = [], [], []
    for example in value_examples(env, n, seed, config):
        # Algorithm 1 draws only where a subtree must be rebuilt small, so the re-walked path is
        # almost always as long as the pair's own; the share that is, is reported
        path = edit_path(example.current, example.target, random.Random(0), config.sigma_small)
        renders = [env.render(program, size) for program in path]
        distances.append(example.distance)
        same_length.append(len(path) - 1 == example.distance)
        visible.append(sum(not np.array_equal(a, b) for a, b in zip(renders, renders[1:])))
    distances, visible = np.array(distances, float), np.array(visible, float)
    return {"mean_distance": float(distances.mean()),
            "visible_edit_share": float(visible.sum() / distances.sum()),
            "visible_count_spearman": spearman(visible, distances),
            "same_path_length": float(np.mean(same_length))}


def shape_difference(env, current, target) -> tuple[int, int]:
    """How two programs' drawings differ, for a renderer with a drawing list (``shapes``, as
    TinySVG's): the number of the target's placed shapes (kind, centre, size, colours) that the
    current drawing lacks, and the same count with the centres left out (what changed in the
    shapes themselves rather than where a layout put them)."""
    draw = getattr(env.renderer, "shapes", None)
    if draw is None:
        raise ValueError(f"{env.name}'s renderer has no drawing list of placed shapes")
    have, want = draw(env.tree(current).root), draw(env.tree(target).root)
    placed, unplaced = (lambda s: s), (lambda s: s[:1] + s[3:])  # (kind, cx, cy, w, h, ...)
    return tuple(sum((Counter(map(key, want)) - Counter(map(key, have))).values())
                 for key in (placed, unplaced))


def differing_shapes(env, n: int, size: int, seed: int = 0,
                     config: ExampleConfig | None = None) -> dict:
    """On the held-out value pairs (those of :func:`value_pairs`), how well the number of shapes
    that differ predicts the path distance, for a language whose layout places shapes (TinySVG's
    ``Arrange``): the Spearman correlation with the distance of the number of the target's
    placed shapes missing from the current drawing and of the same count without centres, and
    the share of one-edit pairs in which more than one placed shape differs (one edit of a size
    moves every shape laid out after it).  A perfect shape counter does no better than these."""
    distances, placed, unplaced = [], [], []
    for example in value_examples(env, n, seed, config or ExampleConfig(image_size=size)):
        moved, changed = shape_difference(env, example.current, example.target)
        distances.append(example.distance)
        placed.append(moved)
        unplaced.append(changed)
    distances, placed = np.array(distances, float), np.array(placed, float)
    one_edit = distances == 1
    return {"mean_distance": float(distances.mean()),
            "placed_shapes_spearman": spearman(placed, distances),
            "unplaced_shapes_spearman": spearman(unplaced, distances),
            "one_edit_many_shapes_share": float((placed[one_edit] > 1).mean())
            if one_edit.any() else float("nan")}


def identical_pairs_ceiling(distances, identical) -> float:
    """The highest Spearman correlation with ``distances`` of a prediction equal to the distance
    where ``identical`` is False and to one shared constant where it is True.  Only where the
    constant falls among the distances matters, so every distinct value and every gap between
    two of them (and both ends) is tried."""
    distances, identical = np.asarray(distances, float), np.asarray(identical, bool)
    if not identical.any():
        return spearman(distances, distances)
    if identical.all():
        return float("nan")  # every prediction is the one constant
    values = np.unique(distances)
    candidates = np.concatenate([values, (values[:-1] + values[1:]) / 2,
                                 [values[0] - 1, values[-1] + 1]])
    scores = [spearman(np.where(identical, c, distances), distances) for c in candidates]
    return float(np.nanmax(scores))  # nan: a constant prediction, which ranks nothing


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
        decoded = decoder.programs(images(env, targets, size, r))
        for target, (node, _) in zip(targets, decoded):
            exact += node == target.root
            visual += env.is_solved(env.render(node), env.render(target))
    return {"ar_exact": exact / n, "ar_visual": visual / n}


def repl_accuracy(decoder: Decoder, task, n: int, seed: int = 0, batch: int = 64) -> float:
    """Share of held-out REPL steps whose operator and shape are decoded exactly."""
    from tdlib.repl import REPLSteps
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
        decoded = decoder.sequences(current, images(env, folds, size, r), contexts, starts)
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


def evaluate(task, model, n: int, seed: int = 0) -> dict:
    """The held-out metrics of ``task.kind`` for ``model`` (used by the trainer)."""
    was_training = model.training
    model.eval()
    env, size = task.env, task.size
    try:
        if task.kind == "value":
            return {"spearman": value_spearman(model, env, n, size, seed, task.example_config)}
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


def _load_checkpoint(folder, device: str):
    """A checkpoint's network, record, language, example config and (but for a value network)
    greedy decoder."""
    from tdlib.checkpoint import example_config, load_model
    from tdlib.env import make_env
    from tdlib.tokens import Tokenizer
    model, record = load_model(folder, device)
    env = make_env(model.config.env)
    decoder = (None if model.config.kind == "value"
               else Decoder(model, Tokenizer(env.grammar, model.config.max_positions)))
    return model, record, env, example_config(record), decoder


def _policy_problems(env, examples: ExampleConfig, n: int, k: int, seed: int):
    """The held-out ``k``-mutation problems a policy checkpoint is measured on, drawn at the
    sizes it was trained on."""
    return mutation_problems(env, n, k, seed, examples.min_primitives, examples.max_primitives)


def checkpoint_metrics(folder, n: int = 256, seed: int = 0, device: str = "cpu") -> list[dict]:
    """The one-step measurements of a checkpoint, as table rows (``results/tables/one_step.csv``).

    policy: solve rates of one greedy edit on 1-, 2- and 3-mutation problems; value: Spearman on
    ``n`` held-out pairs, and that of the pixel difference on the same pairs; ar: exact and
    visual reproduction; repl: next-step accuracy.
    """
    from tdlib.tasks import make_task
    model, record, env, examples, decoder = _load_checkpoint(folder, device)
    config = model.config
    base = {"model": config.kind, "env": config.env, "checkpoint": str(folder),
            "step": record.get("step"), "n": n}
    if config.kind == "value":
        return [{**base, "metric": "spearman", "value": value_spearman(
                    model, env, n, config.image_size, seed, examples)},
                {**base, "metric": "pixel_spearman", "value": pixel_spearman(
                    env, n, config.image_size, seed, examples)}]
    if config.kind == "policy":
        return [{**base, "metric": f"solved_{k}_mutation", "value": one_step_solve_rate(
            decoder, env, _policy_problems(env, examples, n, k, seed), config.image_size, seed)}
            for k in (1, 2, 3)]
    if config.kind == "ar":
        result = ar_reproduction(decoder, env, n, config.image_size, seed,
                                 examples.min_primitives, examples.max_primitives)
        return [{**base, "metric": k, "value": v} for k, v in result.items()]
    task = make_task("repl", config.env, config, examples, seed)
    return [{**base, "metric": "repl_step_acc", "value": repl_accuracy(decoder, task, n, seed)}]


def checkpoint_edit_places(folder, n: int = 256, seed: int = 0, mutations=(1, 2, 3),
                           device: str = "cpu") -> pd.DataFrame:
    """For a policy checkpoint, the share of ``k``-mutation problems (those of
    :func:`checkpoint_metrics`) whose one greedy edit acts at each place of :data:`EDIT_PLACES`,
    solved or not: one row per (mutations, place, solved)."""
    model, _, env, examples, decoder = _load_checkpoint(folder, device)
    if model.config.kind != "policy":
        raise ValueError(f"{folder} holds a {model.config.kind} network, not a policy")
    rows = []
    for k in mutations:
        places = edit_places(decoder, env, _policy_problems(env, examples, n, k, seed),
                             model.config.image_size, seed)
        for place in EDIT_PLACES:
            for solved in (True, False):
                share = ((places["place"] == place) & (places["solved"] == solved)).mean()
                rows.append({"env": model.config.env, "mutations": k, "place": place,
                             "solved": solved, "share": float(share)})
    return pd.DataFrame(rows)
