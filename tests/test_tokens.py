"""Tokens of programs and edits, and the grammar automaton behind constrained decoding."""

import itertools
import random

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tdlib
from tdlib.grammar import Grammar, GrammarError
from tdlib.tokens import EDIT, EOS, GrammarConstraint, Tokenizer

ENVS = {name: tdlib.make_env(name) for name in ("csg2d", "tinysvg")}
TOKENIZERS = {name: Tokenizer(env.grammar, 192) for name, env in ENVS.items()}
CONSTRAINTS = {name: GrammarConstraint(tok) for name, tok in TOKENIZERS.items()}


def walk(constraint, ids, state=None):
    """Run ids through the automaton; None if a token is refused, else the final state."""
    state = constraint.start() if state is None else state
    for token in ids:
        if not np.isfinite(constraint.next_min[state, token]):
            return None
        state = constraint.step(state, token)
    return state


@pytest.mark.parametrize("name", ENVS)
@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_programs_and_edits_round_trip(name, seed):
    env, tok = ENVS[name], TOKENIZERS[name]
    r = random.Random(seed)
    tree = env.sample(r, 1, 8)
    ids = tok.encode_program(tree)
    assert [tok.itos[i] for i in ids] == tree.tokens
    assert tok.decode_program(ids) == tree.root
    edit = env.random_edit(tree, r)
    encoded = tok.encode_edit(tree, edit)
    assert encoded[0] == EDIT and encoded[-1] == EOS and tok.is_pos(encoded[1])
    assert tok.decode_edit(tree, encoded).apply(tree) == edit.apply(tree)


@pytest.mark.parametrize("name", ENVS)
def test_automaton_accepts_programs_and_knows_their_shortest_completion(name):
    env, tok, con = ENVS[name], TOKENIZERS[name], CONSTRAINTS[name]
    r = random.Random(1)
    for _ in range(200):
        ids = tok.encode_program(env.sample(r, 1, 8))
        state = con.start()
        for i, token in enumerate(ids):
            # The rest of this very program is a completion, so the shortest one is no longer.
            assert con.next_min[state, token] <= len(ids) - i
            state = con.step(state, token)
        assert con.next_min[state, EOS] == 0


def toy_programs(max_tokens):
    """Every token sequence of s := x | y | ( f s s ) with at most max_tokens tokens, by hand."""
    if max_tokens < 1:
        return set()
    out = {("x",), ("y",)}
    for a in toy_programs(max_tokens - 4):
        for b in toy_programs(max_tokens - 3 - len(a)):
            out.add(("(", "f") + a + b + (")",))
    return out


def test_automaton_matches_brute_force_enumeration_of_a_toy_grammar():
    """Every token string up to 7 long: accepted iff a program; allowed iff a program prefix."""
    toy = Grammar('start: s\ns: "(" "f" " " s " " s ")" | "x" | "y"\n', primitives=["x", "y"],
                  name="toy-tokens")
    tok = Tokenizer(toy, 4)
    con = GrammarConstraint(tok)
    programs = toy_programs(17)  # long enough to complete every prefix of length 7
    prefixes = {p[:i] for p in programs for i in range(len(p) + 1)}
    alphabet = toy.terminals
    for length in range(1, 8):
        for words in itertools.product(alphabet, repeat=length):
            state = walk(con, [tok.stoi[w] for w in words])
            assert (state is not None) == (words in prefixes), words
            accepts = state is not None and con.next_min[state, EOS] == 0
            assert accepts == (words in programs), words
    for program in sorted(programs, key=len)[:50]:
        assert tok.decode_program([tok.stoi[w] for w in program]).text.count("f") == \
            program.count("f")


def test_alternatives_that_open_with_a_slot_decode_too():
    """Decoding tries only alternatives that can open with the next token; one that opens with
    a slot (here ``n " + " s``) must stay a candidate for every token."""
    toy = Grammar('start: s\ns: n " + " s | n | "(" s ")"\nn: "1" | "2"\n', primitives=["1", "2"],
                  name="toy-slot-first")
    tok = Tokenizer(toy, 4)
    for text in ["1", "2 + 1", "(1 + (2))", "((1))", "1 + 2 + (1 + 2)"]:
        tree = toy.parse(text)
        assert tok.decode_program(tok.encode_program(tree)).text == text
    with pytest.raises(ValueError, match="do not spell"):
        tok.decode_program([tok.stoi["1"], tok.stoi["+"]])


def test_budget_mask_forces_a_complete_program():
    tok, con = TOKENIZERS["csg2d"], CONSTRAINTS["csg2d"]
    shortest = con.min_length()  # (Circle r x y) is 6 tokens
    assert shortest == 6
    state = con.start()
    assert con.shortest(state) == shortest + 1  # the <EOS> too
    allowed = con.allowed(np.array([state]), np.array([shortest + 1]))[0]
    # With room for one primitive only, "(" is the only first token, then no binary operator.
    assert [tok.itos[i] for i in np.flatnonzero(allowed)] == ["("]
    state = con.step(state, tok.stoi["("])
    allowed = con.allowed(np.array([state]), np.array([shortest]))[0]
    assert set(tok.itos[i] for i in np.flatnonzero(allowed)) == {"Circle"}


def test_left_recursive_grammar_is_refused_clearly():
    lr = Grammar('start: s\ns: s "+" "x" | "x"\n', primitives=["x"], name="left-rec")
    with pytest.raises(GrammarError, match="left-recursive"):
        GrammarConstraint(Tokenizer(lr, 4)).start()


def test_errors_name_the_problem():
    tok = TOKENIZERS["csg2d"]
    tree = ENVS["csg2d"].parse("(Circle 1 2 3)")
    with pytest.raises(ValueError, match="do not spell"):
        tok.decode_program([tok.stoi["("], tok.stoi["Circle"]])
    with pytest.raises(ValueError, match="no node"):
        tok.decode_edit(tree, [EDIT, tok.pos_token(1), tok.stoi["4"], EOS])
    with pytest.raises(ValueError, match="positions"):
        tok.pos_token(10_000)
