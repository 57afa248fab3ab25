"""Small mutations: the forward ("noising") process of tree diffusion (paper §3.1, Appendix A).

A mutation replaces one *candidate* node, a node with at most ``sigma_small`` primitives, by a
fresh expression of the same production rule, also with at most ``sigma_small`` primitives and
never equal to what it replaces.  The result is valid by construction.

How the node is chosen is switchable:

``"rule"``
    Appendix A: a production rule uniformly among those of the candidates, then a candidate
    of that rule uniformly.
``"count"``
    The public code's choice (DECISIONS.md §2): a primitive count
    uniformly among the counts present among the candidates (0, 1, 2), then a candidate with that
    count uniformly.
``"uniform"``
    §3.1 as first stated: a candidate uniformly.  Biases programs to grow (many leaves).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tdlib.grammar import Grammar
from tdlib.rules import Rule
from tdlib.sampling import as_random
from tdlib.tree import Located, Node, SyntaxTree

SIGMA_SMALL = 2
SCHEMES = ("count", "rule", "uniform")


@dataclass(frozen=True, slots=True)
class Edit:
    """Replace the node at ``path`` (``old``) by ``new``.

    Paths are child indices from the root, so an edit stays valid while other, disjoint
    subtrees are edited; character and token spans are looked up in the tree being edited.
    """

    path: tuple[int, ...]
    old: Node
    new: Node

    def apply(self, tree: SyntaxTree) -> SyntaxTree:
        return tree.replace(self.path, self.new)

    def locate(self, tree: SyntaxTree) -> Located:
        """The edited node in ``tree`` with its character and token spans."""
        return tree.locate(self.path)

    def inverse(self) -> "Edit":
        return Edit(self.path, self.new, self.old)

    def describe(self, tree: SyntaxTree) -> str:
        """Appendix A style: a caret line under the edited span, then the replacement."""
        start, end = tree.char_span(self.path)
        width = max(end - start, 1)
        marker = "^" if width == 1 else "^" + "-" * (width - 2) + "^"
        return " " * start + marker + f" -> {self.new.text}"


def mutable_rules(grammar: Grammar, sigma_small: int = SIGMA_SMALL) -> frozenset[str]:
    """Rules that can derive at least two different expressions with <= sigma_small primitives."""
    sampler = grammar.sampler
    mutable: set[str] = set()
    changed = True
    while changed:
        changed = False
        for rule in grammar.rules.values():
            if rule.name in mutable:
                continue
            feasible = [a for a in rule.alternatives
                        if any(sampler.alt_can[a.index] >> n & 1 for n in range(sigma_small + 1))]
            if len(feasible) >= 2 or any(s.name in mutable for a in feasible for s in a.slots):
                mutable.add(rule.name)
                changed = True
    return frozenset(mutable)


class Mutator:
    """Draws random small mutations of programs of one grammar."""

    def __init__(self, grammar: Grammar, sigma_small: int = SIGMA_SMALL, scheme: str = "count"):
        if scheme not in SCHEMES:
            raise ValueError(f"unknown mutation scheme {scheme!r}; schemes: {', '.join(SCHEMES)}")
        if sigma_small < 0:
            raise ValueError(f"sigma_small must be >= 0, not {sigma_small}")
        self.grammar = grammar
        self.sigma_small = sigma_small
        self.scheme = scheme
        self.mutable = mutable_rules(grammar, sigma_small)
        self._nearest_size: dict[str, list[int]] = {}

    def candidates(self, root: Node) -> list[tuple[tuple[int, ...], Node]]:
        """(path, node) of every node that may be mutated, in preorder."""
        out = []
        small, mutable = self.sigma_small, self.mutable
        stack = [((), root)]
        while stack:
            path, node = stack.pop()
            if node.sigma <= small and node.alt.rule.name in mutable:
                out.append((path, node))
            children = node.children
            for i in range(len(children) - 1, -1, -1):
                stack.append((path + (i,), children[i]))
        return out

    def choose(self, candidates: list, r: random.Random) -> tuple[tuple[int, ...], Node]:
        if self.scheme == "uniform":
            return candidates[int(r.random() * len(candidates))]
        groups: dict = {}
        for item in candidates:
            key = item[1].sigma if self.scheme == "count" else item[1].alt.rule.name
            groups.setdefault(key, []).append(item)
        keys = list(groups)
        group = groups[keys[int(r.random() * len(keys))]]
        return group[int(r.random() * len(group))]

    def replacement(self, rule: Rule, old: Node, r: random.Random) -> Node:
        """A fresh expression of ``rule`` with <= sigma_small primitives, different from old.

        Its size is drawn uniformly from ``0..sigma_small`` and moved to the nearest size the
        rule can derive (an ``s`` node asked for 0 primitives gets 1), so single primitives are
        twice as likely as pairs.  This is how the public code sizes replacements, and it gives
        Appendix A's length effect (30.8 / 49.2 / 20.0 %); drawing uniformly among the feasible
        sizes instead gives about 26 / 49 / 25 %.
        """
        sampler = self.grammar.sampler
        sizes = sampler.sizes(rule, 0, self.sigma_small)
        nearest = self._nearest_size.get(rule.name)
        if nearest is None:
            nearest = self._nearest_size[rule.name] = [
                min(sizes, key=lambda k: (abs(k - n), k)) for n in range(self.sigma_small + 1)]
        while True:
            new = sampler.sample_exact(r, rule, nearest[int(r.random() * len(nearest))])
            if new != old:
                return new

    def random_edit(self, tree: SyntaxTree, rng) -> Edit:
        """One random small mutation of ``tree`` as an :class:`Edit` (not yet applied)."""
        r = as_random(rng)
        candidates = self.candidates(tree.root)
        if not candidates:
            raise ValueError(f"{tree} has no node with <= {self.sigma_small} primitives to mutate")
        path, old = self.choose(candidates, r)
        return Edit(path, old, self.replacement(old.alt.rule, old, r))

    def mutate(self, tree: SyntaxTree, rng) -> SyntaxTree:
        """``tree`` after one random small mutation."""
        return self.random_edit(tree, rng).apply(tree)

    def chain(self, tree: SyntaxTree, steps: int, rng) -> tuple[list[SyntaxTree], list[Edit]]:
        """The forward process: ``steps`` successive mutations; trees z_0..z_s and their edits."""
        r = as_random(rng)
        trees, edits = [tree], []
        for _ in range(steps):
            edit = self.random_edit(trees[-1], r)
            edits.append(edit)
            trees.append(edit.apply(trees[-1]))
        return trees, edits
