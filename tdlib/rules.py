"""The compiled pieces of a grammar: rules (nonterminals that fill slots) and their alternatives.

An :class:`Alternative` is one expansion of a :class:`Rule`: literal pieces and slots in order,
its literal text between slots and the grammar tokens of those literals, and (for an expansion
without slots) the one leaf :class:`~tdlib.tree.Node` all its uses share.
:class:`~tdlib.grammar.Grammar` builds them from a Lark grammar.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from tdlib.tree import Node

if TYPE_CHECKING:  # pragma: no cover  (annotations only: tdlib.grammar imports this module)
    from tdlib.grammar import Grammar


class Rule:
    """A nonterminal that fills slots of expansions; its alternatives are what may fill them."""

    def __init__(self, name: str, grammar: "Grammar"):
        self.name = name
        self.grammar = grammar
        self.alternatives: list[Alternative] = []

    def __reduce__(self):
        return (_rule_of, (self.grammar, self.name))

    @property
    def is_leaf_rule(self) -> bool:
        """True when every alternative is a single literal (numbers, operators, colours)."""
        return all(not alt.slots for alt in self.alternatives)

    def __repr__(self) -> str:
        return f"Rule({self.name!r}, {len(self.alternatives)} alternatives)"


class Alternative:
    """One expansion of a rule: literal pieces and slots, in order."""

    def __init__(self, rule: Rule, index: int, name: str, pieces: Sequence[str | Rule],
                 is_primitive: bool):
        self.rule = rule
        self.index = index  # unique within the grammar
        self.name = name
        self.pieces = tuple(pieces)
        self.slots: tuple[Rule, ...] = tuple(p for p in pieces if isinstance(p, Rule))
        self.is_primitive = int(is_primitive)
        # Literal text between slots: len(slots) + 1 segments.
        segments: list[list[str]] = [[]]
        for piece in pieces:
            if isinstance(piece, Rule):
                segments.append([])
            else:
                segments[-1].append(piece)
        seg_text = ["".join(seg) for seg in segments]
        self.seg_chars = tuple(len(s) for s in seg_text)
        self.tokens_between = tuple(
            tuple(tok for tok in (p.strip() for p in seg) if tok) for seg in segments
        )
        self.seg_tokens = tuple(len(t) for t in self.tokens_between)
        if self.slots:
            escaped = [s.replace("{", "{{").replace("}", "}}") for s in seg_text]
            self.fmt = "{}".join(escaped)
        else:
            self.fmt = seg_text[0]
        self.literal = seg_text[0] if not self.slots else None
        self.leaf = Node(self) if not self.slots else None

    def __reduce__(self):
        return (_alternative_of, (self.rule.grammar, self.index))

    @property
    def tokens(self) -> tuple[str, ...]:
        """Every literal token of this alternative, slots left out."""
        return tuple(tok for seg in self.tokens_between for tok in seg)

    def __repr__(self) -> str:
        return f"Alternative({self.rule.name}/{self.name})"


def _rule_of(grammar: "Grammar", name: str) -> Rule:
    return grammar.rules[name]


def _alternative_of(grammar: "Grammar", index: int) -> Alternative:
    return grammar.alternatives[index]
