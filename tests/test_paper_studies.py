"""Held-out readouts of what the networks get wrong (tdlib.paper): where a policy's one greedy
edit acts (edit_places) and how much of a value pair's distance its images show (value_studies)."""

import hashlib
import random
import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

import tdlib
from tdlib.checkpoint import load_model
from tdlib.decode import Decoder
from tdlib.examples import ExampleConfig, ExampleMaker
from tdlib.metrics import mutation_problems, one_step_solve_rate, spearman
from tdlib.mutation import Edit, Mutator
from tdlib.paper.training_curves import curve_groups, held_out_metric, plot_training_curves
from tdlib.paper.edit_places import EDIT_PLACES, checkpoint_edit_places, edit_place, edit_places
from tdlib.paper.value_studies import (beam_rankings, differing_shapes,
                                       identical_pairs_ceiling, invisible_pairs, round_rankings,
                                       shape_difference, visible_edits)
from tdlib.presets import shipped_folder
from tdlib.search import true_distances
from tdlib.seeds import held_out_rng
from tdlib.tokens import Tokenizer

ENV = tdlib.make_env("csg2d")


def _paths(tree):
    return [located.path for located in tree.nodes]


def _with_targets_node(start, target, path):
    """``start`` with its node at ``path`` replaced by the target's there (None when the target
    has no such place, or a node of another rule there)."""
    if path not in set(_paths(target)) or start.at(path).rule is not target.at(path).rule:
        return None
    return start.replace(path, target.at(path))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), mutations=st.integers(1, 3))
def test_only_an_edit_at_or_around_every_differing_node_can_reach_the_target(seed, mutations):
    """Brute force over every node of the start: replacing it by the target's node at the same
    place yields the target exactly when the place covers every differing subtree, and such a
    place is always classed "a differing node" or "around one"; an edit "inside one" or
    "elsewhere" never reaches the target, and "elsewhere" touches only what already matches."""
    r = random.Random(seed)
    target = ENV.sample(r, 1, 4)
    start = Mutator(ENV.grammar).chain(target, mutations, r)[0][-1]
    if start == target:
        return
    in_target = set(_paths(target))
    for path in _paths(start):
        place = edit_place(Edit(path, start.at(path), start.at(path)), start, target)
        assert place in EDIT_PLACES
        differs_above = any(start.at(path[:i]).alt is not target.at(path[:i]).alt
                            for i in range(len(path)) if path[:i] in in_target)
        assert (place == "inside one") == differs_above
        if path not in in_target:
            continue
        reaches = _with_targets_node(start, target, path) == target
        if reaches:
            assert place in ("a differing node", "around one")
        if place in ("inside one", "elsewhere"):
            assert not reaches
        if place == "elsewhere":
            assert start.at(path) == target.at(path)
        if place == "a differing node":
            assert start.at(path).alt is not target.at(path).alt
        if place == "around one":  # the same shape here, something different below
            assert start.at(path).alt is target.at(path).alt
            assert start.at(path) != target.at(path)


class ScriptedDecoder:
    """Answers each problem with the edit a function of (start, target) gives: an oracle or a
    policy that always edits in the wrong place."""

    def __init__(self, problems, choose):
        self.answers = {(s, t): choose(s, t) for t, s in problems}
        self.targets = {id(s): t for t, s in problems}

    def edits(self, starts, current_images, target_images):
        assert len(starts) == len(current_images) == len(target_images)
        return [(self.answers[(s, self.targets[id(s)])], 0.0) for s in starts]


def test_edit_places_of_an_oracle_and_of_a_policy_that_edits_what_already_matches():
    problems = mutation_problems(ENV, 24, 1, seed=3)

    def oracle(start, target):  # the smallest place that covers every differing subtree
        return min((Edit(p, start.at(p), target.at(p)) for p in _paths(start)
                    if _with_targets_node(start, target, p) == target),
                   key=lambda e: -len(e.path))

    table = edit_places(ScriptedDecoder(problems, oracle), ENV, problems, 32)
    assert len(table) == 24 and table["solved"].all()
    for (target, start), place in zip(problems, table["place"]):
        path = oracle(start, target).path  # a new shape there, or the same shape changed below
        differs = start.at(path).alt is not target.at(path).alt
        assert place == ("a differing node" if differs else "around one")

    def elsewhere(start, target):
        """Rewrite, as it is, a subtree that both programs share at the same place under the
        same shapes (found by walking both trees, not by edit_place): nothing changes."""
        in_target = set(_paths(target))
        for p in _paths(start):
            if p in in_target and start.at(p) == target.at(p) and all(
                    start.at(p[:i]).alt is target.at(p[:i]).alt for i in range(len(p))):
                return Edit(p, start.at(p), start.at(p))
        return None

    kept = [(t, s) for t, s in problems if elsewhere(s, t) is not None]
    assert len(kept) >= 10
    table = edit_places(ScriptedDecoder(kept, elsewhere), ENV, kept, 32)
    assert (table["place"] == "elsewhere").all() and not table["solved"].any()


def test_a_checkpoints_edit_places_add_up_to_its_one_step_solve_rate():
    folder = shipped_folder("rainbow_policy_full")
    table = checkpoint_edit_places(folder, n=12, mutations=(1, 2))
    assert len(table) == 2 * len(EDIT_PLACES) * 2
    model, _ = load_model(folder)
    env = tdlib.make_env("rainbow")
    decoder = Decoder(model, Tokenizer(env.grammar, model.config.max_positions))
    for k, rows in table.groupby("mutations"):
        assert abs(rows["share"].sum() - 1) < 1e-9
        expected = one_step_solve_rate(decoder, env, mutation_problems(env, 12, k, 0),
                                       model.config.image_size, 0)
        assert abs(rows.loc[rows["solved"], "share"].sum() - expected) < 1e-9


class _Redrawn:
    """CSG2D with another renderer: one that draws every program differently, or all alike."""

    def __init__(self, draw):
        self._env, self._draw = tdlib.make_env("csg2d"), draw

    def __getattr__(self, name):
        return getattr(self._env, name)

    def render(self, program, size=None):
        return self._draw(program, size)

    def observe(self, program, rng, size=None):
        return self._draw(program, size)


def _distinct_picture(program, size):
    """An image drawn at random from the program's text: two programs never look alike (their
    pixels differ by far more than the anti-aliasing tolerance of ``refine.unchanged``)."""
    seed = int.from_bytes(hashlib.sha256(str(program).encode()).digest()[:8], "little")
    return np.random.default_rng(seed).random((size, size, 1), dtype=np.float32)


def test_visible_edits_counts_the_edits_that_change_a_pixel():
    every = visible_edits(_Redrawn(_distinct_picture), 48, 32)
    assert every["visible_edit_share"] == 1 and every["visible_count_spearman"] == pytest.approx(1)
    none = visible_edits(_Redrawn(lambda program, size: np.zeros((size, size, 1), np.float32)),
                         48, 32)
    assert none["visible_edit_share"] == 0 and np.isnan(none["visible_count_spearman"])
    csg2d = visible_edits(tdlib.make_env("csg2d"), 64, 32)
    assert 0 < csg2d["visible_edit_share"] < 1 and csg2d["visible_count_spearman"] < 1
    assert csg2d["same_path_length"] > 0.9


def test_visible_edits_walks_the_value_networks_held_out_pairs():
    """The same pairs as value_pairs (hence invisible_pairs and value_spearman); path mode only."""
    env = tdlib.make_env("csg2d")
    walked, compared = visible_edits(env, 96, 32), invisible_pairs(env, 96, 32)
    assert walked["mean_distance"] == compared["mean_distance"]
    with pytest.raises(ValueError, match="path-mode"):
        visible_edits(env, 4, 32, config=replace(ExampleConfig(image_size=32), mode="last_step"))


def test_shape_difference_counts_shapes_a_layout_moves():
    """Worked by hand: in a row, changing a colour changes one shape; widening the first shape
    changes it and moves the two laid out after it, whose own attributes stay the same; in a
    column, so does a taller first shape."""
    env = tdlib.make_env("tinysvg")
    row = "(Arrange h (Rectangle {} 2 red none 1) (Arrange h (Ellipse 2 2 blue none 1) " \
          "(Rectangle 2 3 green none 1) 1) 1)"
    start = row.format(2)
    assert shape_difference(env, start, start) == (0, 0)
    recoloured = start.replace("blue", "black")
    assert shape_difference(env, start, recoloured) == (1, 1)
    assert shape_difference(env, start, row.format(5)) == (3, 1)
    column = "(Arrange v (Rectangle 2 {} red none 1) (Ellipse 2 2 blue none 1) 1)"
    assert shape_difference(env, column.format(2), column.format(5)) == (2, 1)
    with pytest.raises(ValueError, match="drawing list"):
        shape_difference(tdlib.make_env("csg2d"), "(Circle 1 2 3)", "(Circle 1 2 3)")


def test_differing_shapes_walks_the_value_networks_held_out_pairs():
    env = tdlib.make_env("tinysvg")
    result = differing_shapes(env, 64, 32)
    assert result["mean_distance"] == invisible_pairs(env, 64, 32)["mean_distance"]
    # brute force over the same pairs: the share of one-edit pairs with several shapes changed
    maker, r = ExampleMaker(env, ExampleConfig(image_size=32)), held_out_rng(0, "value")
    pairs = [maker.example(r) for _ in range(64)]
    placed = [shape_difference(env, p.current, p.target)[0] for p in pairs]
    many = [moved > 1 for moved, p in zip(placed, pairs) if p.distance == 1]
    assert result["one_edit_many_shapes_share"] == pytest.approx(np.mean(many))
    ranks = [pd.Series(x).rank().to_numpy() for x in (placed, [p.distance for p in pairs])]
    reference = np.corrcoef(*ranks)[0, 1]  # Pearson on average ranks: Spearman with ties
    assert result["placed_shapes_spearman"] == pytest.approx(reference)


@given(st.lists(st.tuples(st.integers(1, 6), st.booleans()), min_size=3, max_size=12))
@settings(max_examples=60, deadline=None)
def test_the_identical_pairs_ceiling_is_the_best_constant_for_the_pairs_no_image_tells_apart(pairs):
    """Brute force over a grid of constants (distances are integers: a step of 1/4 lands on
    every value and in every gap) against the candidate search."""
    distances = np.array([d for d, _ in pairs], float)
    identical = np.array([i for _, i in pairs], bool)
    if len(set(distances)) < 2:
        return  # a constant has no rank correlation
    with warnings.catch_warnings():
        # every pair identical: every constant's correlation is NaN, and so is the ceiling
        warnings.simplefilter("ignore", RuntimeWarning)
        brute = np.nanmax([spearman(np.where(identical, c, distances), distances)
                           for c in np.arange(0, 7.25, 0.25)])
    got = identical_pairs_ceiling(distances, identical)
    assert got == pytest.approx(brute, nan_ok=True)
    if not identical.any():
        assert got == pytest.approx(1.0)


def test_some_csg2d_value_pairs_differ_by_edits_that_change_no_pixel():
    """CSG2D has edits no image shows (a shape under another, a subtraction of nothing): such
    pairs exist among the held-out value pairs, and they cap what an image-only network reaches."""
    stats = invisible_pairs(tdlib.make_env("csg2d"), 128, 32)
    assert stats["pairs"] == 128 and 0 < stats["identical_share"] < 1
    assert stats["identical_mean_distance"] >= 1  # a pair is never at distance 0
    assert stats["ceiling_spearman"] < 1


def _fake_run(folder, steps, metrics):
    folder.mkdir(parents=True)
    pd.DataFrame({"step": steps, "loss": [2.0 / (1 + s) for s in steps]}).to_csv(
        folder / "train_log.csv", index=False)
    pd.DataFrame({"step": steps, "examples_seen": steps, **metrics}).to_csv(
        folder / "eval_log.csv", index=False)
    return folder


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_a_rounds_rankings_keep_what_sorting_by_score_keeps(data):
    n = data.draw(st.integers(1, 40))
    beam = data.draw(st.integers(1, 12))
    ints = st.lists(st.integers(0, 6), min_size=n, max_size=n)  # small integers: many ties
    path, visible, value, pixel = (np.array(data.draw(ints), float) for _ in range(4))
    row = round_rankings(path, visible, {"value": value, "pixel": pixel}, beam)
    assert row["programs"] == n and row["all_path"] == pytest.approx(path.mean())
    for name, score in (("value", value), ("pixel", pixel), ("oracle", path)):
        kept = sorted(range(n), key=lambda i: (score[i], i))[:beam]  # a tie keeps the earlier
        assert row[f"{name}_kept_path"] == pytest.approx(np.mean(path[kept]))
        assert row[f"{name}_kept_visible"] == pytest.approx(np.mean(visible[kept]))
        assert row[f"{name}_kept_nearest"] == min(path[kept])
        assert row["oracle_kept_path"] <= row[f"{name}_kept_path"] + 1e-9


def test_beam_rankings_walk_every_round_of_the_search():
    from pathlib import Path

    from tdlib.methods import Models
    from tdlib.testsets import load
    _, problems = load(Path(shipped_folder("csg2d_policy")).parents[1] / "testsets"
                       / "csg2d_hard.jsonl")
    rounds = beam_rankings(ENV, problems[:2], Models(ENV, {}), budget=120, beam=4)
    assert set(rounds["index"]) == {0, 1} and (rounds["programs"] > 4).any()
    for index, rows in rounds.groupby("index"):
        assert list(rows["round"]) == list(range(len(rows)))
        # the start and every round's new programs are each checked once, within the budget
        assert rows["programs"].sum() < 120
    assert (rounds["oracle_spearman"].dropna() > 0.99).all()


def test_distances_count_path_edits_and_those_that_change_the_render():
    target = ENV.tree("(- (Circle 6 8 8) (Quad 8 8 4 4 H))")
    hidden = ENV.tree("(+ (- (Circle 6 8 8) (Quad 8 8 4 4 H)) (Circle 0 3 3))")  # draws nothing
    moved = ENV.tree("(- (Circle 6 8 8) (Quad 8 8 4 4 J))")  # the square turned 90 degrees: alike
    shifted = ENV.tree("(- (Circle 6 9 8) (Quad 8 8 4 4 H))")
    path, visible = true_distances(ENV, [target, hidden, moved, shifted], target, 64,
                                   random.Random(0))
    assert path[0] == visible[0] == 0
    # the same picture at both ends: the path may show changes and undo them, but not just one
    assert path[1] >= 1 and visible[1] <= path[1] and visible[1] != 1
    assert path[2] == 1 and visible[2] == 0
    assert path[3] == 1 and visible[3] == 1


def test_training_curves_group_the_networks_and_draw_each_from_where_its_weights_started(tmp_path):
    records = {
        "p_first": {"kind": "policy", "env": "csg2d"},
        "p_further": {"kind": "policy", "env": "csg2d",
                      "initialised_from": {"kind": "policy", "env": "csg2d", "step": 100}},
        "arm_a": {"kind": "policy", "env": "rainbow"},
        "ar": {"kind": "ar", "env": "csg2d"},
        "value": {"kind": "value", "env": "csg2d"},
    }
    runs = {
        "p_first": _fake_run(tmp_path / "a", [10, 100], {"solve_1": [0.1, 0.2], "solve_2": [0, 0]}),
        "p_further": _fake_run(tmp_path / "b", [10, 20], {"solve_1": [0.3, 0.4], "solve_2": [0, 0]}),
        "arm_a": _fake_run(tmp_path / "c", [5], {"solve_1": [0.5], "solve_2": [0]}),
        "ar": _fake_run(tmp_path / "d", [5, 6], {"ar_exact": [0.0, 0.0], "ar_visual": [0.25, 0.5]}),
        "value": _fake_run(tmp_path / "e", [5], {"spearman": [0.3]}),
    }
    groups = curve_groups(records)
    assert list(groups) == [("policy", "image"), ("policy", "rainbow"), ("value", ""), ("ar", "")]
    assert sorted(n for names in groups.values() for n in names) == sorted(records)
    fig = plot_training_curves(runs, records)
    rows = fig.axes
    assert len(rows) == 2 * len(groups)
    further = [line for line in rows[1].get_lines() if line.get_label() == "p_further"][0]
    assert list(further.get_xdata()) == [110, 120] and list(further.get_ydata()) == [0.3, 0.4]
    ar_line = rows[7].get_lines()[0]
    assert list(ar_line.get_ydata()) == [0.25, 0.5]  # the visual metric, not the all-zero exact one
    assert held_out_metric(pd.DataFrame(columns=["step", "train_minutes", "other"]), "ar") == "other"
