"""Tokens of programs and edits, and the grammar automaton that constrains decoding.

Vocabulary (paper §3.3; DECISIONS.md §3): ``<PAD>``, ``<EDIT>``,
``<EOS>``, the grammar's literal terminals (layout whitespace dropped), then ``<POS 0>`` ...
``<POS P-1>``.  An edit is ``<EDIT> <POS k> replacement... <EOS>`` where k is the index of the first
token of the replaced node in the current program.  Where several nodes start at the same token,
``<POS k>`` names the outermost one, and edits of an inner node are written as edits of that
outermost node.

:class:`GrammarConstraint` is a lazily built automaton over the grammar: a state is the set of
possible parser stacks (leftmost derivations), so it works for any grammar the engine accepts that
is not left-recursive.  For every state it knows which tokens may come next and, for each, how many
more tokens the shortest completion needs, so decoding can also respect a length budget.  States
are numbered and their rows kept in dense arrays, so a batch step is one gather, not a re-parse.
"""

from __future__ import annotations

import math

import numpy as np

from tdlib.grammar import Grammar, GrammarError
from tdlib.mutation import Edit
from tdlib.rules import Alternative, Rule
from tdlib.tree import Located, Node, SyntaxTree

PAD, EDIT, EOS = 0, 1, 2
SPECIALS = ("<PAD>", "<EDIT>", "<EOS>")


class Tokenizer:
    """Maps programs and edits of one grammar to token ids and back."""

    def __init__(self, grammar: Grammar, max_positions: int = 256):
        self.grammar = grammar
        self.max_positions = max_positions
        self.terminals = list(grammar.terminals)
        self.itos = list(SPECIALS) + self.terminals + [f"<POS {k}>" for k in range(max_positions)]
        self.stoi = {s: i for i, s in enumerate(self.itos)}
        self.pos_offset = len(SPECIALS) + len(self.terminals)
        self.vocab_size = len(self.itos)
        # Per alternative: the token ids of the literal segments around its slots.
        self.segment_ids = [[[self.stoi[t] for t in seg] for seg in alt.tokens_between]
                            for alt in grammar.alternatives]
        self._candidates: dict = {}  # (rule, next token) -> its alternatives that may match

    def __repr__(self) -> str:
        return (f"Tokenizer({self.grammar.name}: {len(self.terminals)} terminals, "
                f"{self.max_positions} positions, vocab {self.vocab_size})")

    # ------------------------------------------------------------ programs
    def node_ids(self, node: Node) -> list[int]:
        """Token ids of a node's text, layout dropped."""
        out: list[int] = []
        stack: list = [node]
        while stack:
            item = stack.pop()
            if isinstance(item, int):
                out.append(item)
                continue
            between = self.segment_ids[item.alt.index]
            pieces: list = list(between[0])
            for i, child in enumerate(item.children):
                pieces.append(child)
                pieces.extend(between[i + 1])
            stack.extend(reversed(pieces))
        return out

    def encode_program(self, program: SyntaxTree | Node) -> list[int]:
        node = program.root if isinstance(program, SyntaxTree) else program
        return self.node_ids(node)

    def decode_program(self, ids, rule: Rule | str | None = None) -> Node:
        """The node of ``rule`` (default: the start rule) spelled by ``ids``; ValueError if none."""
        rule = self.grammar.rule(rule)
        ids = [int(i) for i in ids]
        for node, end in self._match_alts(rule.alternatives, ids, 0):
            if end == len(ids):
                return node
        shown = " ".join(self.itos[i] if 0 <= i < self.vocab_size else f"#{i}" for i in ids)
        raise ValueError(f"tokens do not spell a {rule.name}: {shown}")

    def _match_alts(self, alts, ids, i):
        token = ids[i] if i < len(ids) else None
        key = (alts[0].rule, token)  # alts: all alternatives of one rule
        candidates = self._candidates.get(key)
        if candidates is None:  # an alternative opening with a literal must open with this token
            candidates = self._candidates[key] = [
                alt for alt in alts
                if not self.segment_ids[alt.index][0] or self.segment_ids[alt.index][0][0] == token]
        for alt in candidates:
            for children, end in self._match_alt(alt, ids, i):
                yield (alt.leaf if alt.leaf is not None else Node(alt, tuple(children))), end

    def _match_alt(self, alt: Alternative, ids, i):
        between = self.segment_ids[alt.index]
        yield from self._match_from(alt, between, 0, ids, i, [])

    def _match_from(self, alt, between, slot, ids, i, children):
        lits = between[slot]
        if ids[i:i + len(lits)] != lits:
            return
        i += len(lits)
        if slot == len(alt.slots):
            yield list(children), i
            return
        for child, end in self._match_alts(alt.slots[slot].alternatives, ids, i):
            children.append(child)
            yield from self._match_from(alt, between, slot + 1, ids, end, children)
            children.pop()

    # --------------------------------------------------------------- edits
    def pos_token(self, k: int) -> int:
        if not 0 <= k < self.max_positions:
            raise ValueError(f"position {k} is beyond the tokenizer's {self.max_positions} positions")
        return self.pos_offset + k

    def is_pos(self, token: int) -> bool:
        return token >= self.pos_offset

    def edit_target(self, tree: SyntaxTree, edit: Edit) -> tuple[int, Node]:
        """``(k, replacement)``: the edit re-expressed on the outermost node starting at token k."""
        where = edit.locate(tree)
        k = where.token_start
        outer = where
        for located in tree.nodes:
            if located.token_start == k and len(located.path) < len(outer.path) and \
                    located.path == where.path[:len(located.path)]:
                outer = located
        if outer is where:
            return k, edit.new
        inner = SyntaxTree(outer.node, self.grammar).replace(where.path[len(outer.path):], edit.new)
        return k, inner.root

    def encode_edit(self, tree: SyntaxTree, edit: Edit) -> list[int]:
        """``<EDIT> <POS k> replacement <EOS>``."""
        k, new = self.edit_target(tree, edit)
        return [EDIT, self.pos_token(k)] + self.node_ids(new) + [EOS]

    def node_starts(self, tree: SyntaxTree) -> dict[int, Located]:
        """Token index -> the outermost node starting there: what ``<POS k>`` may name."""
        starts: dict = {}
        for located in tree.nodes:  # preorder: outer nodes come first
            starts.setdefault(located.token_start, located)
        return starts

    def decode_edit(self, tree: SyntaxTree, ids) -> Edit:
        """The Edit spelled by ``[<EDIT>] <POS k> replacement [<EOS>]`` on ``tree``."""
        ids = [int(i) for i in ids]
        if ids and ids[0] == EDIT:
            ids = ids[1:]
        if ids and ids[-1] == EOS:
            ids = ids[:-1]
        if not ids or not self.is_pos(ids[0]):
            raise ValueError("an edit starts with a <POS k> token")
        k = ids[0] - self.pos_offset
        located = self.node_starts(tree).get(k)
        if located is None:
            raise ValueError(f"no node of the program starts at token {k}")
        new = self.decode_program(ids[1:], located.node.rule)
        return Edit(located.path, located.node, new)


class GrammarConstraint:
    """The grammar as a lazily numbered automaton over token ids (see the module docstring)."""

    MAX_STACK = 4096

    def __init__(self, tokenizer: Tokenizer):
        self.tok = tokenizer
        grammar = tokenizer.grammar
        self._symbols = {alt: self._alt_symbols(alt) for alt in grammar.alternatives}
        self._min_len = self._min_lengths(grammar)
        self._state_of: dict[frozenset, int] = {}
        self._stacks: list[frozenset] = []
        capacity = 64
        vocab = tokenizer.vocab_size
        # next_min[s, t]: tokens still needed after taking t in s, <EOS> included (inf: t not
        # allowed); so t fits a budget of n tokens (t and <EOS> included) iff next_min <= n - 1.
        self.next_min = np.full((capacity, vocab), np.inf, np.float32)
        self.transitions = np.full((capacity, vocab), -1, np.int32)
        self._start_cache: dict = {}
        self._shortest: dict[int, float] = {}

    # ------------------------------------------------------------ building
    @staticmethod
    def _nonterminal(alts) -> tuple:
        return ("N",) + tuple(alts)

    def _alt_symbols(self, alt: Alternative) -> tuple:
        between = self.tok.segment_ids[alt.index]
        out: list = list(between[0])
        for i, slot in enumerate(alt.slots):
            out.append(self._nonterminal(slot.alternatives))
            out.extend(between[i + 1])
        return tuple(out)

    def _min_lengths(self, grammar: Grammar) -> dict:
        best = {alt: math.inf for alt in grammar.alternatives}
        changed = True
        while changed:
            changed = False
            for alt in grammar.alternatives:
                total = len(alt.tokens) + sum(min(best[a] for a in slot.alternatives)
                                              for slot in alt.slots)
                if total < best[alt]:
                    best[alt], changed = total, True
        return best

    def _symbol_min(self, symbol) -> float:
        if isinstance(symbol, int):
            return 1
        return min(self._min_len[a] for a in symbol[1:])

    def _close(self, stacks) -> frozenset:
        done, work = set(), list(stacks)
        while work:
            stack = work.pop()
            if not stack or isinstance(stack[-1], int):
                done.add(stack)
                continue
            if len(stack) > self.MAX_STACK:
                raise GrammarError(f"{self.tok.grammar.name}: a parser stack grew past "
                                   f"{self.MAX_STACK} symbols; the grammar is probably "
                                   "left-recursive, and constrained decoding needs expansions "
                                   "that start with a token")
            rest = stack[:-1]
            for alt in stack[-1][1:]:
                work.append(rest + tuple(reversed(self._symbols[alt])))
        return frozenset(done)

    def _completion(self, stacks: frozenset) -> float:
        return min((sum(self._symbol_min(s) for s in st) for st in stacks), default=math.inf)

    def _register(self, stacks: frozenset) -> int:
        state = self._state_of.get(stacks)
        if state is not None:
            return state
        state = len(self._stacks)
        if state >= len(self.next_min):
            grow = len(self.next_min)
            self.next_min = np.concatenate(
                [self.next_min, np.full((grow, self.tok.vocab_size), np.inf, np.float32)])
            self.transitions = np.concatenate(
                [self.transitions, np.full((grow, self.tok.vocab_size), -1, np.int32)])
        self._state_of[stacks] = state
        self._stacks.append(stacks)
        tops = {st[-1] for st in stacks if st}
        for token in tops:
            after = self._close(st[:-1] for st in stacks if st and st[-1] == token)
            self.next_min[state, token] = self._completion(after) + 1  # + 1: the <EOS>
        if () in stacks:
            self.next_min[state, EOS] = 0
        return state

    # ------------------------------------------------------------- queries
    def start(self, rule: Rule | str | None = None, alternatives=None) -> int:
        """The state before the first token of a ``rule`` (or of a choice among ``alternatives``)."""
        if alternatives is None:
            if isinstance(rule, Rule):
                state = self._start_cache.get(rule)
                if state is None:
                    state = self._start_cache[rule] = self.start(alternatives=rule.alternatives)
                return state
            alternatives = self.tok.grammar.rule(rule).alternatives
        key = tuple(alternatives)
        state = self._start_cache.get(key)
        if state is None:
            state = self._start_cache[key] = self._register(self._close([(self._nonterminal(key),)]))
        return state

    def start_sequence(self, symbols) -> int:
        """The state before a sequence of choices, each a tuple of alternatives (REPL steps)."""
        key = ("seq",) + tuple(tuple(s) for s in symbols)
        state = self._start_cache.get(key)
        if state is None:
            stack = tuple(self._nonterminal(s) for s in reversed(key[1:]))
            state = self._start_cache[key] = self._register(self._close([stack]))
        return state

    def step(self, state: int, token: int) -> int:
        """The state after ``token``; ValueError if the grammar does not allow it."""
        nxt = self.transitions[state, token]
        if nxt >= 0:
            return int(nxt)
        if not math.isfinite(self.next_min[state, token]):
            raise ValueError(f"token {self.tok.itos[token]!r} is not allowed here")
        if token == EOS:
            nxt = self._register(frozenset())  # finished: nothing more is allowed
        else:
            stacks = self._stacks[state]
            nxt = self._register(self._close(st[:-1] for st in stacks if st and st[-1] == token))
        self.transitions[state, token] = nxt
        return nxt

    def allowed(self, states: np.ndarray, budget: np.ndarray) -> np.ndarray:
        """Boolean ``B x V`` mask: tokens allowed in each state with ``budget`` tokens left
        (the next token and ``<EOS>`` included)."""
        return self.next_min[states] <= (np.asarray(budget)[:, None] - 1)

    def shortest(self, state: int) -> float:
        """Fewest tokens that finish from ``state``, its ``<EOS>`` included (a state's row of
        ``next_min`` is fixed when it is registered, so this is cached)."""
        value = self._shortest.get(state)
        if value is None:
            value = self._shortest[state] = float(self.next_min[state].min()) + 1
        return value

    def min_length(self, rule: Rule | str | None = None) -> int:
        """Tokens in the shortest program of ``rule``."""
        return int(min(self._min_len[a] for a in self.tok.grammar.rule(rule).alternatives))

    @property
    def n_states(self) -> int:
        return len(self._stacks)
