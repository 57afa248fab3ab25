"""The policy's own states (DAgger): collected by roll-outs, stored, and trained on."""

import dataclasses
import json
import random

import pytest
import torch

import tdlib
from tdlib import own_states
from tdlib.decode import Decoder
from tdlib.edit_paths import edit_steps
from tdlib.examples import ExampleConfig, ExampleMaker
from tdlib.model import EditModel
from tdlib.presets import preset
from tdlib.refine import unchanged
from tdlib.tokens import Tokenizer


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    torch.manual_seed(0)
    env = tdlib.make_env("csg2d")
    model_config, _, examples = preset("smoke", "policy", "csg2d")
    decoder = Decoder(EditModel(model_config).eval(),
                      Tokenizer(env.grammar, model_config.max_positions))
    maker = ExampleMaker(env, examples)
    pairs = own_states.collect(decoder, maker, starts=12, steps=3, seed=1, batch=5)
    path = tmp_path_factory.mktemp("states") / "states.jsonl"
    own_states.write(path, pairs, {"env": "csg2d"})
    return env, model_config.image_size, examples, pairs, path


def test_collected_states_are_valid_and_do_not_yet_draw_their_targets(collected):
    env, size, _, pairs, _ = collected
    assert 0 < len(pairs) <= 12 * 3
    for target, state in pairs:
        assert env.parse(str(state)) == state  # a valid program of the language
        assert state != target
        assert not unchanged(env.render(state, size), env.render(target, size))


def test_a_states_file_reads_back_and_refuses_what_it_is_not(collected, tmp_path):
    env, _, _, pairs, path = collected
    header, texts = own_states.load(path, "csg2d")
    assert header["pairs"] == len(pairs)
    assert texts == [(str(t), str(s)) for t, s in pairs]
    with pytest.raises(ValueError, match="holds csg2d programs, not tinysvg"):
        own_states.load(path, "tinysvg")
    broken = tmp_path / "broken.jsonl"
    broken.write_text(path.read_text().splitlines()[0] + "\n{\"target\": 1}\n")
    with pytest.raises(ValueError, match=f"{broken}:2: expected a record"):
        own_states.load(broken, "csg2d")
    (tmp_path / "list.jsonl").write_text("[]\n")
    with pytest.raises(ValueError, match="not an own-states file"):
        own_states.load(tmp_path / "list.jsonl", "csg2d")


def test_examples_start_from_the_states_and_follow_the_path_to_the_target(collected, tmp_path):
    """With every example from the states, each starts at a stored state of its target and asks
    for a step of Algorithm 1's path from there (one-mutation states: their paths draw no
    randomness, so the reference path is the example's own)."""
    env, _, examples, _, _ = collected
    r = random.Random(5)
    pairs = []
    for _ in range(15):
        target = env.sample(r, 2, 6)
        pairs.append((target, env.mutate(target, r)))
    path = tmp_path / "one_edit.jsonl"
    own_states.write(path, [(t, s) for t, s in pairs if t != s], {"env": "csg2d"})
    maker = ExampleMaker(env, dataclasses.replace(examples, own_states=str(path),
                                                  own_states_share=1.0))
    known = {(str(t), str(s)) for t, s in pairs}
    for _ in range(30):
        ex = maker.example(r, render=False)
        start = ex.chain[0]
        assert (str(ex.target), str(start)) in known and ex.noise_steps == 0
        steps = edit_steps(start, ex.target, 0)
        i = [step.tree for step in steps].index(ex.current)
        assert ex.edit == steps[i].edit and ex.distance == len(steps) - i


def test_no_share_leaves_the_stream_as_it_is(collected):
    env, _, examples, _, path = collected
    plain = ExampleMaker(env, examples)
    named = ExampleMaker(env, dataclasses.replace(examples, own_states=str(path)))
    a, b = random.Random(4), random.Random(4)
    for _ in range(10):
        x, y = plain.example(a, render=False), named.example(b, render=False)
        assert (x.current, x.target, x.edit) == (y.current, y.target, y.edit)


def test_a_share_without_a_file_is_refused():
    with pytest.raises(ValueError, match="needs an own_states file"):
        ExampleConfig(own_states_share=0.3)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        ExampleConfig(own_states="x.jsonl", own_states_share=1.5)


def test_roll_outs_can_start_where_a_search_starts_at_the_ar_models_greedy_program():
    torch.manual_seed(0)
    env = tdlib.make_env("csg2d")
    policy_config, _, examples = preset("smoke", "policy", "csg2d")
    ar_config = preset("smoke", "ar", "csg2d")[0]
    tokenizer = Tokenizer(env.grammar, policy_config.max_positions)
    policy = Decoder(EditModel(policy_config).eval(), tokenizer)
    ar = Decoder(EditModel(ar_config).eval(), tokenizer)
    maker = ExampleMaker(env, examples)
    pairs = own_states.collect(policy, maker, starts=10, steps=0, seed=3, batch=4, ar=ar,
                               ar_share=1.0)
    size = policy_config.image_size
    assert pairs and len(pairs) <= 10
    for target, state in pairs:  # no edit was made: each state is the AR program for its target
        written = ar.programs([env.observe(target, None, size)])[0][0]
        assert state.root == written
        assert not unchanged(env.render(state, size), env.render(target, size))
    assert own_states.collect(policy, maker, starts=10, steps=0, seed=3, batch=4) == []
    with pytest.raises(ValueError, match="needs an AR model"):
        own_states.collect(policy, maker, starts=4, steps=1, ar_share=0.5)
