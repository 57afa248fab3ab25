"""What an image-only value network can see of a path distance (notebook 10's value studies).

All of them walk the value networks' held-out pairs (:func:`tdlib.metrics.value_pairs`):

* :func:`invisible_pairs`: the share of pairs whose two images are identical, and the best
  Spearman correlation any predictor reading only the images can reach on them
  (:func:`identical_pairs_ceiling`);
* :func:`visible_edits`: how many of the edits left change a pixel;
* :func:`differing_shapes` (TinySVG): how well counting the shapes that differ predicts the
  distance, when a layout moves every shape after an edited one (:func:`shape_difference`).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

import numpy as np

from tdlib.edit_paths import edit_path
from tdlib.examples import ExampleConfig
from tdlib.metrics import spearman, value_examples, value_pairs


def invisible_pairs(env, n: int, size: int, seed: int = 0,
                    config: ExampleConfig | None = None) -> dict:
    """How much of the path distance an image-only value network can see, on the pairs of
    :func:`~tdlib.metrics.value_pairs`: the share of pairs whose two images are identical
    (edits that change no pixel at ``size``: a shape under another, a subtraction of nothing),
    their mean distance beside the mean of all pairs, and the Spearman correlation of a
    predictor that knows the true distance of every pair it can tell apart and gives the
    identical ones one constant (the best one): a ceiling no network reading only the two
    images can pass."""
    identical, true = [], []
    for cur, tgt, distances in value_pairs(env, n, size, seed, _path_distance(config, size)):
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
    """How many of the edits left on each held-out value pair (those of
    :func:`~tdlib.metrics.value_pairs`) change a pixel at ``size``: the rest of the pair's path
    is walked again (Algorithm 1 from the pair's current program) and consecutive renders
    compared.  Returns the share of all edits left
    that are visible and the Spearman correlation with the true distance of a predictor that knows
    exactly how many visible edits are left, a reference for what an image-only value network can
    reach (not a strict bound: what a picture shows can hint at edits it does not show)."""
    config = _path_distance(config, size)
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
    """On the held-out value pairs (those of :func:`~tdlib.metrics.value_pairs`), how well the
    number of shapes that differ predicts the path distance, for a language whose layout places
    shapes (TinySVG's ``Arrange``): the Spearman correlation with the distance of the number of the
    target's placed shapes missing from the current drawing and of the same count without centres,
    and the share of one-edit pairs in which more than one placed shape differs (one edit of a size
    moves every shape laid out after it).  A perfect shape counter does no better than these."""
    distances, placed, unplaced = [], [], []
    for example in value_examples(env, n, seed, _path_distance(config, size)):
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


def _path_distance(config: ExampleConfig | None, size: int) -> ExampleConfig:
    """The studies' pairs, whatever a value network was trained on: distances along the whole path
    (these studies count the visible edits themselves)."""
    return replace(config or ExampleConfig(image_size=size), value_target="path")
