"""The grammar engine: exact round trips, spans, sigma, constrained sampling, errors."""

import collections
import itertools
import random

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tdlib
from tdlib.grammar import Grammar, GrammarError, ProgramSyntaxError

LANGUAGES = ["csg2d", "csg2d-sketch", "tinysvg", "rainbow"]
APPENDIX_A = [  # paper, Appendix A: a program and its four mutations
    "(+ (+ (+ (Circle A D 4) (Quad F E 4 6 K)) (Quad 3 E C 2 M)) (Circle C 2 1))",
    "(+ (+ (Circle 0 8 A) (Quad 3 E C 2 M)) (Circle C 2 1))",
    "(+ (Quad 1 0 A 3 H) (Circle C 2 1))",
    "(+ (Quad 1 0 A 3 H) (Circle 4 2 1))",
    "(+ (Quad 1 0 A 3 H) (Circle 8 2 1))",
]


def brute_force_sigma(node) -> int:
    """Primitive count by walking the text-level tree independently of Node.sigma."""
    return int(node.alt.is_primitive) + sum(brute_force_sigma(c) for c in node.children)


@pytest.mark.parametrize("name", LANGUAGES)
def test_ten_thousand_samples_round_trip_and_respect_bounds(name):
    env = tdlib.make_env(name)
    rng = np.random.default_rng(7)
    seen = collections.Counter()
    for _ in range(10_000):
        tree = env.sample(rng, min_primitives=2, max_primitives=8)
        text = str(tree)
        again = env.parse(text)
        assert str(again) == text
        assert again == tree
        assert 2 <= tree.sigma <= 8
        assert brute_force_sigma(again.root) == tree.sigma
        seen[tree.sigma] += 1
    assert set(seen) == set(range(2, 9)), "every sigma in range is hit"
    # sizes are drawn uniformly: each of the 7 sizes within 20 % of 10_000 / 7
    assert all(abs(count - 10_000 / 7) < 0.2 * 10_000 / 7 for count in seen.values())


@pytest.mark.parametrize("lo,hi", [(1, 1), (3, 3), (1, 12), (5, 6)])
def test_exact_bounds_for_tinysvg_despite_move(lo, hi):
    env = tdlib.make_env("tinysvg")
    rng = np.random.default_rng(lo * 100 + hi)
    sigmas = {env.sample(rng, lo, hi).sigma for _ in range(600)}
    assert sigmas == set(range(lo, hi + 1))


def test_appendix_a_programs_parse_and_render_unchanged():
    env = tdlib.make_env("csg2d")
    for text in APPENDIX_A:
        tree = env.parse(text)
        assert str(tree) == text
        assert env.render(tree).sum() > 0


@pytest.mark.parametrize("name", LANGUAGES)
def test_spans_and_tokens_agree_with_text(name):
    env = tdlib.make_env(name)
    rng = np.random.default_rng(3)
    for _ in range(200):
        tree = env.sample(rng, 1, 8)
        text, tokens = tree.text, tree.tokens
        assert "".join(tokens) == text.replace(" ", "")
        for located in tree.nodes:
            assert text[located.start:located.end] == located.node.text
            sub = env.grammar.parse_node(located.node.text, located.rule)
            assert sub == located.node
            sub_tokens = tdlib.SyntaxTree(sub, env.grammar).tokens
            assert tokens[located.token_start:located.token_end] == sub_tokens
            assert tree.at(located.path) is located.node
        assert len(tree.nodes) == sum(1 for _ in tree.root.preorder())


def test_replace_shares_untouched_subtrees():
    env = tdlib.make_env("csg2d")
    tree = env.parse(APPENDIX_A[0])
    circle = env.grammar.parse_node("(Circle 0 8 A)", env.grammar.rules["s"])
    new = tree.replace((1, 1), circle)  # the inner (+ (Circle A D 4) (Quad F E 4 6 K))
    assert str(new) == "(+ (+ (Circle 0 8 A) (Quad 3 E C 2 M)) (Circle C 2 1))"
    assert new.root.children[2] is tree.root.children[2]
    assert str(tree) == APPENDIX_A[0], "the original is unchanged"
    with pytest.raises(ValueError, match="cannot replace"):
        tree.replace((1, 1), env.grammar.rules["number"].alternatives[0].leaf)


def test_sampling_is_reproducible_from_a_seed():
    env = tdlib.make_env("tinysvg")
    a = [str(env.sample(np.random.default_rng(5), 2, 8)) for _ in range(3)]
    b = [str(env.sample(np.random.default_rng(5), 2, 8)) for _ in range(3)]
    assert a == b
    g = np.random.default_rng(5)
    c = [str(env.sample(g, 2, 8)) for _ in range(20)]
    assert len(set(c)) > 15, "successive draws from one generator differ"
    assert str(env.sample(11, 2, 8)) == str(env.sample(11, 2, 8)), "int seeds work"


def test_leaf_rules_are_sampled_uniformly():
    grammar = tdlib.make_env("csg2d").grammar
    r = random.Random(0)
    counts = collections.Counter(str(grammar.sample(r, 0, 0, rule="number")) for _ in range(16_000))
    assert set(counts) == set("0123456789ABCDEF")
    expected = 1000
    chi2 = sum((c - expected) ** 2 / expected for c in counts.values())
    assert chi2 < 37.7  # 99.9th percentile of chi-square with 15 degrees of freedom


def test_impossible_bounds_are_a_clear_error():
    env = tdlib.make_env("csg2d")
    with pytest.raises(ValueError, match="min_primitives 5 > max_primitives 2"):
        env.sample(0, 5, 2)
    with pytest.raises(ValueError, match="cannot derive"):
        env.grammar.sample(0, 1, 3, rule="number")


# ---------------------------------------------------------------- generic engine

TOY = """
start: s
s: pair | leaf | wrap
pair: "(" s " " s ")"
leaf: "x" digit
wrap: "<" s ">"
digit: "0" | "1"
"""


def enumerate_programs(max_depth: int) -> set[str]:
    """All programs of the toy grammar up to a nesting depth, by brute force on text."""
    level = {f"x{d}" for d in "01"}
    for _ in range(max_depth):
        level = level | {f"({a} {b})" for a, b in itertools.product(level, repeat=2)} \
            | {f"<{a}>" for a in level}
    return level


def test_toy_grammar_sampler_matches_brute_force_enumeration():
    grammar = Grammar(TOY, primitives=["leaf"], name="toy")
    everything = enumerate_programs(2)
    by_sigma = collections.defaultdict(set)
    for text in everything:
        by_sigma[text.count("x")].add(text)
    # sizes the sampler believes feasible equal those brute force finds (up to 4)
    assert grammar.sampler.sizes(grammar.root_rule, 0, 4) == sorted(n for n in by_sigma if n <= 4)
    r = random.Random(1)
    # every sample is a program of the language with the right size ...
    samples = [grammar.sample(r, 1, 2) for _ in range(4000)]
    for tree in samples:
        assert tree.text.count("x") == tree.sigma and 1 <= tree.sigma <= 2
        assert str(grammar.parse(tree.text)) == tree.text
    # ... and every small program (no wrapping) is eventually produced
    plain = {t.text for t in samples if "<" not in t.text}
    assert plain == {t for t in by_sigma[1] | by_sigma[2] if "<" not in t}


def test_sigma_preserving_recursion_always_terminates():
    grammar = Grammar(TOY, primitives=["leaf"], name="toy", weights={"wrap": 40.0})
    r = random.Random(2)
    limit = grammar.sampler.depth_limit
    for _ in range(300):
        tree = grammar.sample(r, 1, 3)
        depth = max(n.depth for n in tree.nodes)
        assert depth <= limit + 8
        assert 1 <= tree.sigma <= 3


def test_a_new_language_needs_only_grammar_primitives_and_renderer():
    from tdlib.env import Env

    class CountRenderer:
        channels = 1

        def render(self, node, size):
            image = np.zeros((size, size, 1), np.float32)
            image[0, :node.sigma] = 1.0
            return image

        def is_solved(self, image, target):
            return bool(np.array_equal(image, target))

    grammar = Grammar(TOY, primitives=["leaf"], name="toy")
    tdlib.register_env("toy-test", lambda: Env("toy-test", grammar, CountRenderer(), 16))
    env = tdlib.make_env("toy-test")
    tree = env.sample(0, 3, 3)
    assert env.render(tree).sum() == 3
    assert env.is_solved(env.render(tree), env.render(str(tree)))
    with pytest.raises(ProgramSyntaxError, match="column 1"):
        env.parse("y")


def test_grammar_errors_are_clear():
    with pytest.raises(GrammarError, match="regular expression"):
        Grammar('start: s\ns: "(" NUM ")"\nNUM: /[0-9]+/\n', primitives=[])
    with pytest.raises(GrammarError, match="name no alternative"):
        Grammar(TOY, primitives=["circle"])
    with pytest.raises(ValueError, match="unknown language 'nope'; known: csg2d"):
        tdlib.make_env("nope")


# ---------------------------------------------------------------- malformed input

CSG = tdlib.make_env("csg2d")
SVG = tdlib.make_env("tinysvg")
ALPHABET = "()+- CircleQuadGHIJKLMN0123456789ABCDEF\t\nx"


def _check_parse(env, text):
    try:
        tree = env.parse(text)
    except ProgramSyntaxError as err:
        assert 1 <= err.column <= len(text) + 1
        assert str(err).startswith(f"column {err.column}: expected ")
        assert "\n" not in str(err)
    else:
        assert str(tree) == text


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=40))
def test_fuzzed_strings_raise_only_our_syntax_error(text):
    _check_parse(CSG, text)
    _check_parse(SVG, text)


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 10_000), st.sampled_from(["del", "ins", "sub"]),
       st.sampled_from(list(ALPHABET)))
def test_near_miss_programs_raise_only_our_syntax_error(seed, where, how, char):
    for env in (CSG, SVG):
        text = str(env.sample(seed, 1, 5))
        i = where % (len(text) + 1)
        if how == "del" and i < len(text):
            text = text[:i] + text[i + 1:]
        elif how == "ins":
            text = text[:i] + char + text[i:]
        else:
            text = text[:i] + char + text[i + 1:]
        _check_parse(env, text)


@pytest.mark.parametrize("text,column,expected,found", [
    ("(Circle G 8 8)", 9, "number (0 1 2 3 4 5 6 7 8 9 A B C D E F)", "G"),
    ("(Quad 1 2 3 4 5)", 15, "angle (G H I J K L M N)", "5"),
    ("(+ (Circle 1 2 3)", 18, "' '", None),
    ("(Circle 1 2 3))", 15, "end of input", ")"),
    ("", 1, "'('", None),
])
def test_error_names_column_and_expectation(text, column, expected, found):
    with pytest.raises(ProgramSyntaxError) as info:
        CSG.parse(text)
    err = info.value
    assert err.column == column and err.found == found
    assert expected in err.expected
