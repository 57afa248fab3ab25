"""Syntax trees: immutable nodes shared between programs, and a tree that knows its spans.

A :class:`Node` is one expansion of a grammar rule (its :class:`~tdlib.grammar.Alternative`)
with the nodes of its nonterminal slots as children.  Nodes never change, so mutations copy
only the path from the root to the edited node and share everything else; leaves (one
literal, no slots) are interned per alternative.

A :class:`SyntaxTree` wraps a root node with the things that depend on the whole program:
its text, its tokens, and every node's position (character and token spans) in preorder.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:  # pragma: no cover  (annotations only: tdlib.rules and tdlib.grammar import this)
    from tdlib.grammar import Grammar
    from tdlib.rules import Alternative, Rule


class Node:
    """One expansion of a rule: an alternative plus the nodes filling its slots."""

    __slots__ = ("alt", "children", "sigma", "_text")

    def __init__(self, alt: "Alternative", children: tuple["Node", ...] = ()):
        self.alt = alt
        self.children = children
        sigma = alt.is_primitive
        for child in children:
            sigma += child.sigma
        self.sigma = sigma  # number of primitives below and including this node
        self._text = None

    def __reduce__(self):
        if self.alt.leaf is self:
            return (_leaf_of, (self.alt,))
        return (Node, (self.alt, self.children))

    @property
    def rule(self) -> "Rule":
        """The production rule (nonterminal) this node was derived from."""
        return self.alt.rule

    @property
    def text(self) -> str:
        text = self._text
        if text is None:
            if self.children:
                text = self.alt.fmt.format(*[c.text for c in self.children])
            else:
                text = self.alt.fmt
            self._text = text
        return text

    @property
    def is_leaf(self) -> bool:
        return not self.children

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Node({self.alt.rule.name}/{self.alt.name}: {self.text!r})"

    def __eq__(self, other) -> bool:
        if self is other:
            return True
        if not isinstance(other, Node):
            return NotImplemented
        return self.alt.rule is other.alt.rule and self.text == other.text

    def __hash__(self) -> int:
        return hash(self.text)

    def preorder(self) -> Iterator["Node"]:
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))


@dataclass(frozen=True, slots=True)
class Located:
    """A node at its place in one program: path from the root, spans, depth."""

    node: Node
    path: tuple[int, ...]
    start: int  # character span [start, end)
    end: int
    token_start: int  # token span [token_start, token_end)
    token_end: int

    @property
    def depth(self) -> int:
        return len(self.path)

    @property
    def rule(self) -> "Rule":
        return self.node.alt.rule

    @property
    def sigma(self) -> int:
        return self.node.sigma


class SyntaxTree:
    """A whole program: root node, grammar, text, tokens and located nodes."""

    __slots__ = ("root", "grammar", "__dict__")

    def __init__(self, root: Node, grammar: "Grammar"):
        self.root = root
        self.grammar = grammar

    def __reduce__(self):
        return (SyntaxTree, (self.root, self.grammar))

    @property
    def text(self) -> str:
        return self.root.text

    @property
    def sigma(self) -> int:
        """Number of primitives in the program."""
        return self.root.sigma

    def __str__(self) -> str:
        return self.root.text

    def __repr__(self) -> str:
        return f"SyntaxTree({self.root.text!r})"

    def __eq__(self, other) -> bool:
        if isinstance(other, SyntaxTree):
            return self.root == other.root
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.root.text)

    def __len__(self) -> int:
        return len(self.nodes)

    @cached_property
    def nodes(self) -> list[Located]:
        """Every node in preorder, with its character and token spans."""
        out: list[Located] = []

        def visit(node: Node, path: tuple[int, ...], pos: int, tok: int) -> tuple[int, int]:
            index = len(out)
            out.append(None)  # type: ignore[arg-type]  # placeholder keeps preorder
            alt = node.alt
            start, token_start = pos, tok
            seg_chars, seg_tokens = alt.seg_chars, alt.seg_tokens
            pos += seg_chars[0]
            tok += seg_tokens[0]
            for i, child in enumerate(node.children):
                pos, tok = visit(child, path + (i,), pos, tok)
                pos += seg_chars[i + 1]
                tok += seg_tokens[i + 1]
            out[index] = Located(node, path, start, pos, token_start, tok)
            return pos, tok

        visit(self.root, (), 0, 0)
        return out

    @cached_property
    def tokens(self) -> list[str]:
        """The program as grammar tokens (literal terminals without layout whitespace)."""
        out: list[str] = []

        def visit(node: Node) -> None:
            alt = node.alt
            out.extend(alt.tokens_between[0])
            for i, child in enumerate(node.children):
                visit(child)
                out.extend(alt.tokens_between[i + 1])

        visit(self.root)
        return out

    @cached_property
    def _by_path(self) -> dict[tuple[int, ...], Located]:
        return {located.path: located for located in self.nodes}

    def locate(self, path: tuple[int, ...]) -> Located:
        """The node at ``path`` with its spans."""
        try:
            return self._by_path[tuple(path)]
        except KeyError:
            raise KeyError(f"no node at path {path} in {self.text!r}") from None

    def char_span(self, path: tuple[int, ...]) -> tuple[int, int]:
        """The character span ``[start, end)`` of the node at ``path``, found by walking down to
        it (the lengths of the cached texts on the way) without indexing every node."""
        node, start = self.root, 0
        for i in path:
            alt = node.alt
            start += alt.seg_chars[0] + sum(len(c.text) + alt.seg_chars[j + 1]
                                            for j, c in enumerate(node.children[:i]))
            node = node.children[i]
        return start, start + len(node.text)

    def at(self, path: tuple[int, ...]) -> Node:
        """The node reached by following child indices ``path`` from the root."""
        node = self.root
        for i in path:
            node = node.children[i]
        return node

    def replace(self, path: tuple[int, ...], replacement: Node) -> "SyntaxTree":
        """A new tree with the node at ``path`` replaced; untouched subtrees are shared."""
        target = self.at(path)
        if replacement.alt.rule is not target.alt.rule:
            raise ValueError(
                f"cannot replace a {target.alt.rule.name} node with a "
                f"{replacement.alt.rule.name} node"
            )
        return SyntaxTree(_replace(self.root, path, 0, replacement), self.grammar)


def node_depth(node: Node) -> int:
    """Levels below ``node`` on its longest branch (0 for a leaf), counted level by level
    without recursion (every parse checks it)."""
    level, depth = [node], -1
    while level:
        depth += 1
        level = [child for parent in level for child in parent.children]
    return depth


def _leaf_of(alt: "Alternative") -> Node:
    return alt.leaf


def replace_at(root: Node, path: tuple[int, ...], replacement: Node) -> Node:
    """``root`` with the node at ``path`` replaced (no rule check; see SyntaxTree.replace)."""
    return _replace(root, path, 0, replacement)


def _replace(node: Node, path: tuple[int, ...], depth: int, replacement: Node) -> Node:
    if depth == len(path):
        return replacement
    i = path[depth]
    children = list(node.children)
    children[i] = _replace(children[i], path, depth + 1, replacement)
    return Node(node.alt, tuple(children))
