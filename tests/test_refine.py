"""Shorter, closer programs: simplify, polish and grow, against brute force and known answers."""

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tdlib
from tdlib.refine import (UNCHANGED_ATOL, PixelError, fit_primitives, grow, leaf_choices, polish,
                          refine, removals, simplify)

CSG2D = tdlib.make_env("csg2d")
TINYSVG = tdlib.make_env("tinysvg")


def dead_parts(env, tree, size=None):
    """Brute force: every removal that leaves each pixel within UNCHANGED_ATOL."""
    size = size or env.default_size
    image = env.render(tree, size)
    return [str(c) for c in removals(tree)
            if np.abs(env.render(c, size) - image).max() <= UNCHANGED_ATOL]


def test_removals_are_every_node_replaced_by_a_child_of_its_own_rule():
    tree = CSG2D.parse("(+ (Circle 4 8 8) (- (Quad 8 8 4 4 G) (Circle 1 8 8)))")
    assert sorted(map(str, removals(tree))) == sorted([
        "(Circle 4 8 8)", "(- (Quad 8 8 4 4 G) (Circle 1 8 8))",
        "(+ (Circle 4 8 8) (Quad 8 8 4 4 G))", "(+ (Circle 4 8 8) (Circle 1 8 8))"])
    moved = TINYSVG.parse("(Move (Rectangle 3 3 red none 0) +2 -1)")
    assert [str(t) for t in removals(moved)] == ["(Rectangle 3 3 red none 0)"]


@pytest.mark.parametrize("program, expected", [
    # a circle inside a larger one adds nothing; a zero radius draws nothing
    ("(+ (Circle 6 8 8) (Circle 2 8 8))", "(Circle 6 8 8)"),
    ("(+ (Circle 0 3 3) (Quad 8 8 4 4 G))", "(Quad 8 8 4 4 G)"),
    # subtracting what is not there removes nothing
    ("(- (Circle 3 4 4) (Circle 2 C C))", "(Circle 3 4 4)"),
    # the hole's inner disc is drawn again: not dead
    ("(+ (- (Circle 5 8 8) (Circle 2 8 8)) (Circle 1 8 8))",
     "(+ (- (Circle 5 8 8) (Circle 2 8 8)) (Circle 1 8 8))"),
])
def test_simplify_drops_exactly_the_parts_that_draw_nothing(program, expected):
    simplified = simplify(CSG2D, program)
    assert str(simplified) == expected
    assert np.abs(CSG2D.render(simplified) - CSG2D.render(program)).max() <= UNCHANGED_ATOL


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), env_name=st.sampled_from(["csg2d", "tinysvg"]))
def test_a_simplified_program_draws_the_same_and_has_no_dead_part(seed, env_name):
    env = tdlib.make_env(env_name)
    tree = env.sample(random.Random(seed), 1, 8)
    simplified = simplify(env, tree, size=64)
    assert simplified.sigma <= tree.sigma
    assert dead_parts(env, simplified, 64) == []
    # each removal kept the render within the tolerance of the one before, so the drift from the
    # original is bounded by the number of removals made
    drift = np.abs(env.render(simplified, 64) - env.render(tree, 64)).max()
    assert drift <= UNCHANGED_ATOL * max(1, len(tree) - len(simplified))


def test_polish_mends_off_by_one_numbers_exactly():
    target = CSG2D.render("(- (Circle 6 8 8) (Quad 8 8 4 4 H))")
    near = "(- (Circle 5 9 8) (Quad 8 7 4 3 H))"  # four numbers one off
    assert str(polish(CSG2D, near, target)) == "(- (Circle 6 8 8) (Quad 8 8 4 4 H))"


def test_polish_never_raises_the_error_and_stops_at_a_local_minimum(rng):
    target = CSG2D.render(CSG2D.sample(rng, 2, 4))
    start = CSG2D.sample(rng, 2, 4)
    error = PixelError(CSG2D, target)
    polished = polish(CSG2D, start, target)
    assert error(polished) <= error(start)
    for path, alternatives in leaf_choices(polished):  # brute force: no single change helps
        for alt in alternatives:
            assert error(polished.replace(path, alt.leaf)) >= error(polished) - 1e-9


def test_polish_leaves_frozen_leaves_alone():
    target = CSG2D.render("(+ (Circle 3 4 4) (Circle 3 C C))")
    start = CSG2D.parse("(+ (Circle 2 4 4) (Circle 2 C C))")
    polished = polish(CSG2D, start, target, free=lambda path: path[:1] == (2,))
    assert str(polished) == "(+ (Circle 2 4 4) (Circle 3 C C))"


def test_a_tinysvg_program_one_unit_off_is_polished_to_the_exact_one():
    exact = "(Arrange h (Rectangle 5 3 blue black 1) (Ellipse 3 3 red none 0) 1)"
    target = TINYSVG.render(exact)
    near = "(Arrange h (Rectangle 4 3 blue black 1) (Ellipse 3 3 red none 0) 1)"
    assert TINYSVG.is_solved(TINYSVG.render(near), target)  # the goal check lets it pass
    assert str(refine(TINYSVG, near, target)) == exact


def test_refine_returns_no_dead_part_and_no_higher_error(rng):
    for _ in range(5):
        target = CSG2D.render(CSG2D.sample(rng, 2, 5))
        start = CSG2D.sample(rng, 3, 8)
        refined = refine(CSG2D, start, target, cost=0.004)
        error = PixelError(CSG2D, target)
        assert error(refined) <= error(start) + 0.004 * start.sigma
        assert dead_parts(CSG2D, refined) == []


def test_grow_builds_a_two_part_picture_from_one_fitted_primitive():
    exact = "(+ (Quad 5 8 2 8 G) (Quad 8 B 7 2 G))"  # an L: two bars
    target = CSG2D.render(exact, 64)
    error = PixelError(CSG2D, target)
    grown = [grow(CSG2D, fit_primitives(CSG2D, target, seed), target, rng=seed)
             for seed in range(4)]
    assert sum(error(g) < 0.01 and g.sigma == 2 for g in grown) >= 3, list(map(str, grown))
    assert all(dead_parts(CSG2D, g, 64) == [] for g in grown)
