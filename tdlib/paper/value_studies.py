"""What an image-only value network can see of a path distance (notebook 10's value studies).

All of them walk the value networks' held-out pairs (:func:`tdlib.metrics.value_pairs`):

* :func:`invisible_pairs`: the share of pairs whose two images are identical, and the best
  Spearman correlation any predictor reading only the images can reach on them
  (:func:`identical_pairs_ceiling`);
* :func:`visible_edits`: how many of the edits left change a pixel;
* :func:`differing_shapes` (TinySVG): how well counting the shapes that differ predicts the
  distance, when a layout moves every shape after an edited one (:func:`shape_difference`).

and one walks the programs a search actually makes: :func:`beam_rankings` asks, round by round
of value-ranked TD search, which programs the value network keeps against those pixel
difference would keep, measured by their true distance to the target.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

import numpy as np
import pandas as pd
from tqdm import tqdm

from tdlib.examples import ExampleConfig
from tdlib.metrics import spearman, value_examples, value_pairs
from tdlib.refine import simplify
from tdlib.search import true_distances


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
    compared (:func:`tdlib.search.true_distances`).  Returns the share of all edits left
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
        (length,), (shown,) = true_distances(env, [example.current], example.target, size,
                                             random.Random(0), sigma_small=config.sigma_small)
        distances.append(example.distance)
        same_length.append(length == example.distance)
        visible.append(shown)
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


class _RecordedScore:
    """The search's score (``ranked``), which also records each round's new programs with the
    other score's (``other``) opinion of them."""

    def __init__(self, ranked, other):
        self.ranked, self.other, self.rounds = ranked, other, []

    def __call__(self, trees, parents, logprobs):
        values = self.ranked(trees, parents, logprobs)
        self.rounds.append((list(trees), np.asarray(values, float),
                            np.asarray(self.other(trees, parents, logprobs), float)))
        return values


def beam_rankings(env, problems, models, budget: int, seed: int = 0, beam: int = 64,
                  k: int = 3, progress: bool = False) -> pd.DataFrame:
    """Value against pixel ranking on the programs a search actually makes.

    Value-ranked TD search runs on each problem (a line of a test set) for ``budget``
    expansions.  At every round its new programs are scored twice, by the value network (which
    chooses the beam) and by the pixel difference to the target, and each program's true
    distance to the target is measured (:func:`tdlib.search.true_distances`, to the target with
    its dead parts removed, as :class:`tdlib.search.DistanceScore` measures it): the length of
    Algorithm 1's path to it, and the edits of that path that change the render at the models'
    size.  One row per round (:func:`round_rankings`), with what each ranking would keep."""
    from tdlib.methods import SearchConfig, observation, problem_seed, run_search
    from tdlib.search import Expansions, PixelScore, ValueScore

    config = SearchConfig("td-search", budget, seed, "value", beam=beam, k=k)
    size = models.model("value").config.image_size
    rows = []
    for problem in tqdm(problems, disable=not progress, desc="beam rankings", unit="problem"):
        target = env.tree(problem["program"])
        observe = lambda px, p=problem: observation(env, p, px)  # noqa: E731
        recorded = _RecordedScore(ValueScore(models.model("value"), env, observe(size)),
                                  PixelScore(env, observe(size)))
        run_search(env, Expansions(env, target, budget), observe, models, config,
                   problem_seed(config, int(problem["index"])), score=recorded)
        live = simplify(env, target, size=size)
        rng = random.Random(problem_seed(config, int(problem["index"])))
        for round_index, (trees, value, pixel) in enumerate(recorded.rounds):
            path, visible = true_distances(env, trees, live, size, rng)
            rows.append({"index": int(problem["index"]), "round": round_index,
                         **round_rankings(path, visible, {"value": value, "pixel": pixel}, beam)})
    return pd.DataFrame(rows)


def round_rankings(path, visible, scores: dict, beam: int) -> dict:
    """One round of :func:`beam_rankings`: for each ranking in ``scores`` (name -> score of each
    new program, lower first) and for ``oracle`` (the path distance itself), the mean path and
    visible distance of the ``beam`` programs it keeps, the least path distance among them
    (``<name>_kept_path``, ``_kept_visible``, ``_kept_nearest``) and its Spearman correlation
    with both distances (``<name>_spearman``, ``_spearman_visible``); beside them the number of
    programs and the mean distances of all of them (``all_path``, ``all_visible``: what a random
    choice keeps, on average)."""
    path, visible = np.asarray(path, float), np.asarray(visible, float)
    row = {"programs": len(path), "all_path": path.mean(), "all_visible": visible.mean()}
    for name, score in {**scores, "oracle": path}.items():
        kept = np.argsort(score, kind="stable")[:beam]  # as the beam keeps them, ties in order
        row.update({f"{name}_kept_path": path[kept].mean(),
                    f"{name}_kept_visible": visible[kept].mean(),
                    f"{name}_kept_nearest": path[kept].min(),
                    f"{name}_spearman": spearman(score, path),
                    f"{name}_spearman_visible": spearman(score, visible)})
    return row


def summarise_beam_rankings(rounds: pd.DataFrame, beam: int = 64) -> pd.DataFrame:
    """One row per ranking (value, pixel, oracle, and every new program for reference) over
    the rounds of :func:`beam_rankings` that made more programs than the beam keeps (in the
    others every ranking keeps them all): the mean true distance of what it keeps, the mean
    least distance among them, and its mean Spearman correlation with the path and visible
    distances within a round."""
    chosen = rounds[rounds["programs"] > beam]
    rows = [{"ranking": name, "rounds": len(chosen),
             "kept_path": chosen[f"{name}_kept_path"].mean(),
             "kept_visible": chosen[f"{name}_kept_visible"].mean(),
             "kept_nearest": chosen[f"{name}_kept_nearest"].mean(),
             "spearman_path": chosen[f"{name}_spearman"].mean(),
             "spearman_visible": chosen[f"{name}_spearman_visible"].mean()}
            for name in ("value", "pixel", "oracle")]
    rows.append({"ranking": "all new programs", "rounds": len(chosen),
                 "kept_path": chosen["all_path"].mean(),
                 "kept_visible": chosen["all_visible"].mean()})
    return pd.DataFrame(rows)
