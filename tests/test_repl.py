"""REPL Flow: flattening into shapes, left folds, decoded steps, roll-outs."""

import random

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import tdlib
from tdlib.decode import Decoder
from tdlib.images import program_images
from tdlib.metrics import spearman
from tdlib.model import EditModel
from tdlib.presets import preset
from tdlib.repl import REPLSteps, rollout
from tdlib.tokens import GrammarConstraint, Tokenizer

CSG = tdlib.make_env("csg2d")
STEPS = REPLSteps(CSG.grammar)


def shapes_in_order(node):
    """Primitives of a program in reading order (independent of REPLSteps)."""
    return [n.text for n in node.preorder() if n.alt.is_primitive]


def left_deep(node):
    return node.alt is not STEPS.binop or (node.children[2].alt is not STEPS.binop and
                                           left_deep(node.children[1]))


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_flatten_keeps_shapes_in_order_and_fold_inverts_it_on_left_deep_programs(seed):
    tree = CSG.sample(random.Random(seed), 1, 8)
    shapes = STEPS.flatten(tree.root)
    assert [s.shape.text for s in shapes] == shapes_in_order(tree.root)
    assert shapes[0].op is None and all(s.op is not None for s in shapes[1:])
    fold = STEPS.fold(shapes)
    assert (fold == tree.root) == left_deep(tree.root)
    assert STEPS.flatten(fold) == shapes


def test_fold_of_a_right_nested_program_is_a_different_program():
    tree = CSG.parse("(- (Quad 8 8 C C G) (+ (Circle 3 5 5) (Circle 3 B B)))")
    fold = STEPS.fold(STEPS.flatten(tree.root))
    assert fold.text == "(+ (- (Quad 8 8 C C G) (Circle 3 5 5)) (Circle 3 B B))"
    assert not CSG.is_solved(CSG.render(fold), CSG.render(tree))


def test_step_tokens_round_trip_through_the_automaton():
    tok = Tokenizer(CSG.grammar, 64)
    con = GrammarConstraint(tok)
    r = random.Random(0)
    for _ in range(100):
        shapes = STEPS.flatten(CSG.sample(r, 2, 8).root)
        for k, step in enumerate(shapes):
            ids = STEPS.step_ids(tok, step, first=k == 0)
            state = STEPS.start_state(con, first=k == 0)
            for token in ids:
                assert np.isfinite(con.next_min[state, token])
                state = con.step(state, token)
            assert con.next_min[state, 2] == 0  # <EOS> allowed: the step is complete
            assert STEPS.decode_step(tok, ids, first=k == 0) == step


def test_rollout_of_an_untrained_model_builds_valid_left_deep_programs():
    torch.manual_seed(0)
    config, _, _ = preset("smoke", "repl", "csg2d")
    decoder = Decoder(EditModel(config).eval(), Tokenizer(CSG.grammar, config.max_positions))
    targets = [CSG.sample(s, 2, 6) for s in range(6)]
    programs = rollout(decoder, CSG, program_images(CSG, targets, config.image_size), max_shapes=4,
                       temperature=1.0, generator=torch.Generator().manual_seed(1))
    for trajectory in programs:
        assert len(trajectory) == 4
        for k, program in enumerate(trajectory, start=1):
            assert CSG.parse(program.text).root == program
            assert program.sigma == k and left_deep(program)


def test_repl_refuses_other_languages():
    with pytest.raises(ValueError, match="CSG2D-like"):
        REPLSteps(tdlib.make_env("tinysvg").grammar)


def test_spearman_matches_brute_force_ranks():
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = rng.normal(size=30), rng.normal(size=30)
        ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
        expected = np.corrcoef(ra, rb)[0, 1]
        assert spearman(a, b) == pytest.approx(expected)
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
