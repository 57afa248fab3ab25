"""Mutations, tree edit paths and training examples: property-based and brute-force checks."""

import collections
import itertools

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import tdlib
from tdlib.examples import ExampleConfig, ExampleMaker, ExampleStream
from tdlib.grammar import Grammar
from tdlib.mutation import Mutator
from tdlib.edit_paths import edit_path, edit_steps
from tdlib.seeds import worker_seed

LANGUAGES = ["csg2d", "tinysvg", "rainbow"]
ENVS = {name: tdlib.make_env(name) for name in LANGUAGES}
seeds = st.integers(0, 2**32 - 1)
PROPERTY = settings(max_examples=1000, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def differing_paths(a, b, path=()):
    """Top-most paths where two nodes differ, found by plain recursion on text."""
    if a.text == b.text:
        return []
    if a.alt is not b.alt or not a.children:
        return [path]
    return [p for i, (x, y) in enumerate(zip(a.children, b.children))
            for p in differing_paths(x, y, path + (i,))]


@PROPERTY
@given(name=st.sampled_from(LANGUAGES), seed=seeds,
       scheme=st.sampled_from(["count", "rule", "uniform"]))
def test_mutations_are_valid_different_and_small(name, seed, scheme):
    env = ENVS[name]
    tree = env.sample(seed, 1, 8)
    edit = env.random_edit(tree, seed + 1, scheme=scheme)
    mutated = edit.apply(tree)
    assert str(env.parse(str(mutated))) == str(mutated), "valid by construction"
    assert str(mutated) != str(tree), "never a no-op"
    assert edit.old.sigma <= 2 and edit.new.sigma <= 2, "small"
    assert edit.new.rule is edit.old.rule, "same production rule"
    assert tree.at(edit.path) is edit.old
    # everything outside the edited node is unchanged
    for p in differing_paths(tree.root, mutated.root):
        assert p[:len(edit.path)] == edit.path


@PROPERTY
@given(name=st.sampled_from(LANGUAGES), seed=seeds, noise=st.integers(0, 5),
       unrelated=st.booleans())
def test_paths_reach_the_target_in_small_steps(name, seed, noise, unrelated):
    env = ENVS[name]
    rng = np.random.default_rng(seed)
    target = env.sample(rng, 1, 8)
    start = env.sample(rng, 1, 8) if unrelated else \
        env.mutator().chain(target, noise, rng)[0][-1]
    steps = edit_steps(start, target, seed)
    path = [s.tree for s in steps] + [target]
    assert path[0] == start and path[-1] == target
    current = start
    for step in steps:
        assert step.tree == current
        assert step.edit.new.sigma <= 2, "each step inserts at most sigma_small primitives"
        current = step.edit.apply(current)
        assert str(env.parse(str(current))) == str(current)
    assert current == target
    assert len(steps) <= len(start.nodes) + len(target.nodes), "bounded length"
    again = edit_path(start, target, seed)
    assert [str(t) for t in again] == [str(t) for t in path], "reproducible from a seed"


@PROPERTY
@given(name=st.sampled_from(LANGUAGES), seed=seeds)
def test_path_from_a_program_to_itself_is_empty(name, seed):
    env = ENVS[name]
    tree = env.sample(seed, 1, 8)
    assert edit_steps(tree, env.parse(str(tree)), seed) == []
    assert env.edit_path(tree, tree, seed) == [tree]


# ---------------------------------------------------------------- brute force on small trees

TOY = """
start: s
s: pair | leaf
pair: "(" s " " s ")"
leaf: "x" digit
digit: "0" | "1"
"""


def small_programs(max_sigma):
    by_sigma = {1: {"x0", "x1"}}
    for n in range(2, max_sigma + 1):
        by_sigma[n] = {f"({a} {b})" for k in range(1, n) for a in by_sigma[k]
                       for b in by_sigma[n - k]}
    return by_sigma


def bfs_distances(grammar, source, space):
    """Shortest number of edits (replace any node by an expression of <= 2 primitives)."""
    replacements = {rule: [] for rule in grammar.rules}
    for n, texts in small_programs(2).items():
        replacements["s"].extend(texts)
    replacements["digit"] = ["0", "1"]
    dist = {source: 0}
    frontier = [source]
    while frontier:
        nxt = []
        for text in frontier:
            tree = grammar.parse(text)
            for located in tree.nodes:
                for rep in replacements[located.rule.name]:
                    new = text[:located.start] + rep + text[located.end:]
                    if new in space and new not in dist:
                        dist[new] = dist[text] + 1
                        nxt.append(new)
        frontier = nxt
    return dist


def test_paths_are_legal_and_near_shortest_on_all_small_toy_programs():
    grammar = Grammar(TOY, primitives=["leaf"], name="toy")
    by_sigma = small_programs(4)
    space = set().union(*by_sigma.values())
    sources = sorted(by_sigma[1] | by_sigma[2] | by_sigma[3])
    longer = 0
    for source in sources:
        dist = bfs_distances(grammar, source, space)
        for target in sources:
            steps = edit_steps(grammar.parse(source), grammar.parse(target), 0)
            assert len(steps) >= dist[target], "no path can beat the brute-force shortest"
            assert len(steps) <= 2 * dist[target] + 1
            longer += len(steps) > dist[target]
    assert longer < 0.5 * len(sources) ** 2


# ---------------------------------------------------------------- training examples

@pytest.mark.parametrize("name", LANGUAGES)
def test_last_step_inverts_the_last_mutation_exactly(name):
    maker = ExampleMaker(ENVS[name], ExampleConfig(mode="last_step", rho=0.0))
    rng = np.random.default_rng(0)
    for _ in range(200):
        ex = maker.example(rng, render=False)
        assert ex.current == ex.chain[-1]
        assert ex.edit.apply(ex.current) == ex.chain[-2]
        assert ex.distance == ex.noise_steps == len(ex.chain) - 1


@pytest.mark.parametrize("name", LANGUAGES)
def test_path_examples_lie_on_the_path_to_the_target(name):
    env = ENVS[name]
    maker = ExampleMaker(env, ExampleConfig(rho=0.2, image_size=32))
    rng = np.random.default_rng(1)
    unrelated = 0
    for _ in range(200):
        ex = maker.example(rng)
        assert ex.chain[0] == ex.target or ex.noise_steps == 0
        unrelated += ex.noise_steps == 0
        rest = edit_path(ex.edit.apply(ex.current), ex.target, 0)
        assert ex.distance >= 1
        assert rest[-1] == ex.target
        assert ex.current_image.shape == ex.target_image.shape == (32, 32, env.channels)
        np.testing.assert_array_equal(ex.current_image, env.render(ex.current, 32))
        tokens = ex.current.tokens
        located = ex.edit.locate(ex.current)
        assert ex.edit_position == located.token_start < len(tokens)
    assert 20 <= unrelated <= 70, "about rho = 20 % unrelated starts"


def test_no_noising_uses_only_unrelated_starts():
    maker = ExampleMaker(ENVS["csg2d"], ExampleConfig(rho=1.0))
    assert all(maker.example(s, render=False).noise_steps == 0 for s in range(50))


def test_the_same_seed_gives_the_same_stream_and_workers_differ():
    cfg = ExampleConfig(image_size=16)
    first = [str(e.current) for e in itertools.islice(iter(ExampleStream("csg2d", cfg, 3)), 20)]
    again = [str(e.current) for e in itertools.islice(iter(ExampleStream("csg2d", cfg, 3)), 20)]
    other = [str(e.current) for e in itertools.islice(iter(ExampleStream("csg2d", cfg, 4)), 20)]
    assert first == again and first != other
    assert len({worker_seed(3, w, r) for w in range(4) for r in range(4)}) == 16
    loader = torch.utils.data.DataLoader(ExampleStream("csg2d", cfg, 3), batch_size=4,
                                         num_workers=2, collate_fn=list)
    batches = list(itertools.islice(iter(loader), 4))
    texts = [[str(e.current) for e in b] for b in batches]
    assert texts[0] != texts[1], "the two workers draw distinct streams"
    assert texts[0] == first[:4], "worker 0 draws the same stream as the main process"


def test_bad_configs_are_rejected():
    for kwargs in [dict(mode="reverse"), dict(rho=1.5), dict(max_noise_steps=0),
                   dict(min_primitives=5, max_primitives=2)]:
        with pytest.raises(ValueError):
            ExampleConfig(**kwargs)
    with pytest.raises(ValueError, match="unknown mutation scheme"):
        Mutator(ENVS["csg2d"].grammar, scheme="nope")


@pytest.mark.parametrize("name", LANGUAGES)
@pytest.mark.parametrize("mode", ["path", "last_step"])
def test_visible_examples_change_the_image_and_simplified_targets_have_no_dead_part(name, mode):
    from tdlib.refine import UNCHANGED_ATOL, removals
    env = ENVS[name]
    size = 32
    maker = ExampleMaker(env, ExampleConfig(image_size=size, mode=mode, simplify_targets=True,
                                            visible_edits_only=True))
    rng = np.random.default_rng(2)
    for _ in range(60):
        ex = maker.example(rng, render=False)
        after = ex.edit.apply(ex.current)
        # brute force: the edit moves some pixel by more than rounding
        assert np.abs(env.render(after, size) - env.render(ex.current, size)).max() > UNCHANGED_ATOL
        target = env.render(ex.target, size)
        for smaller in removals(ex.target):
            assert np.abs(env.render(smaller, size) - target).max() > UNCHANGED_ATOL


@pytest.mark.parametrize("name", LANGUAGES)
def test_the_visible_value_target_counts_only_the_edits_that_change_the_render(name):
    from tdlib.refine import UNCHANGED_ATOL
    env, size = ENVS[name], 32
    plain = ExampleMaker(env, ExampleConfig(image_size=size, rho=0.3, max_noise_steps=3))
    visible = ExampleMaker(env, ExampleConfig(image_size=size, rho=0.3, max_noise_steps=3,
                                              value_target="visible"))
    one_step_cases = 0
    for seed in range(80):
        a, b = plain.example(seed, render=False), visible.example(seed, render=False)
        assert (a.current, a.target, a.edit) == (b.current, b.target, b.edit)  # the same stream
        assert 0 <= b.distance <= a.distance
        differs = np.abs(env.render(a.current, size) - env.render(a.target, size)).max()
        if a.distance == 1:  # one edit left: it is visible exactly when the renders differ
            one_step_cases += 1
            assert b.distance == int(differs > UNCHANGED_ATOL)
        if b.distance == 0:  # no visible edit left: the current program already draws the target
            assert differs <= a.distance * UNCHANGED_ATOL
    assert one_step_cases >= 5


def test_the_visible_value_target_needs_a_path():
    with pytest.raises(ValueError, match="value_target"):
        ExampleConfig(value_target="pixels")
    with pytest.raises(ValueError, match="mode='path'"):
        ExampleConfig(value_target="visible", mode="last_step")
