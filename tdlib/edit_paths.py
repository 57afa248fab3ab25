"""Tree edit paths: the targets that invert the noise (paper §3.2.2, Appendix E, Algorithm 1).

:func:`tree_diff` is Algorithm 1: walk both trees top-down; where the nodes have the same
expansion, recurse into the children; where they differ and both are small (<= sigma_small
primitives), replace A's node by B's; where either is large, replace A's node by a fresh small
expression that is as close to B's node as its size allows.  Repeating it gives the full path.

Two points the paper leaves open, decided here (DECISIONS.md §2):

* The fresh small expression takes B's alternative whenever that alternative fits in
  sigma_small primitives (a binop stays a binop), and the "tightening" diffs against B are
  applied only while the expression stays small.  So each round fixes the top mismatches and
  the next round works one level deeper: the number of rounds is bounded by the depth of B.
* A round's edits touch disjoint subtrees and are applied one at a time, largest first; each
  applied edit is one step of the path.

Every step replaces one node by an expression with at most sigma_small primitives, so the
policy can take it; the path ends exactly at B; the path from A to A is empty.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from tdlib.mutation import SIGMA_SMALL, Edit
from tdlib.sampling import as_random
from tdlib.tree import Node, SyntaxTree, node_depth

MAX_ROUNDS = 64


def _small_like(target: Node, sigma_small: int, r: random.Random, grammar) -> Node:
    """A fresh expression of target's rule with <= sigma_small primitives, close to target."""
    if target.sigma <= sigma_small:
        return target
    sampler = grammar.sampler
    alt = target.alt
    sizes = [n for n in range(sigma_small + 1) if sampler.alt_can[alt.index] >> n & 1]
    if sizes:
        new = sampler.expand(r, alt, sizes[int(r.random() * len(sizes))])
    else:  # target's expansion cannot be small: any small expression of the rule
        rule = alt.rule
        options = sampler.sizes(rule, 0, sigma_small)
        new = sampler.sample_exact(r, rule, options[int(r.random() * len(options))])
    tree = SyntaxTree(new, grammar)
    for edit in tree_diff(new, target, sigma_small, r, grammar):
        candidate = edit.apply(tree)
        if candidate.sigma <= sigma_small:
            tree = candidate
    return tree.root


def tree_diff(a: Node, b: Node, sigma_small: int, r: random.Random, grammar,
              path: tuple[int, ...] = ()) -> list[Edit]:
    """Algorithm 1 (TreeDiff): edits on disjoint subtrees of ``a`` that move it towards ``b``."""
    if a.alt is b.alt:
        if a is b or not a.children:
            return []
        edits: list[Edit] = []
        for i, (ca, cb) in enumerate(zip(a.children, b.children)):
            if ca is not cb:
                edits.extend(tree_diff(ca, cb, sigma_small, r, grammar, path + (i,)))
        return edits
    if a.sigma <= sigma_small and b.sigma <= sigma_small:
        return [Edit(path, a, b)]
    return [Edit(path, a, _small_like(b, sigma_small, r, grammar))]


@dataclass(frozen=True, slots=True)
class Step:
    """A program on an edit path and the edit that leaves it."""

    tree: SyntaxTree
    edit: Edit


def iter_edit_steps(a: SyntaxTree, b: SyntaxTree, rng, sigma_small: int = SIGMA_SMALL
                    ) -> Iterator[Step]:
    """The steps of the path from ``a`` to ``b``, one at a time: a caller that writes each
    step and lets it go holds one program at a time, not the whole path (whose programs,
    each with its own text and node index, grow with the square of the program's size)."""
    if a.grammar is not b.grammar:
        raise ValueError("both programs must come from the same grammar")
    r = as_random(rng)
    current = a
    rounds = MAX_ROUNDS + node_depth(b.root)  # each round fixes at least one level of b
    for _ in range(rounds):
        edits = tree_diff(current.root, b.root, sigma_small, r, a.grammar)
        if not edits:
            return
        edits.sort(key=lambda e: (-e.old.sigma, -len(e.old.text)))
        for edit in edits:
            yield Step(current, edit)
            current = edit.apply(current)
    raise RuntimeError(f"no path from {a} to {b} within {rounds} rounds")


def edit_steps(a: SyntaxTree, b: SyntaxTree, rng, sigma_small: int = SIGMA_SMALL) -> list[Step]:
    """The path from ``a`` to ``b`` as steps: each program (``b`` excluded) and its next edit."""
    return list(iter_edit_steps(a, b, rng, sigma_small))


def edit_path(a: SyntaxTree, b: SyntaxTree, rng, sigma_small: int = SIGMA_SMALL) -> list[SyntaxTree]:
    """Programs from ``a`` to ``b`` inclusive; ``len(path) - 1`` is the edit distance."""
    steps = edit_steps(a, b, rng, sigma_small)
    return [s.tree for s in steps] + [b if not steps else steps[-1].edit.apply(steps[-1].tree)]


def first_edit(a: SyntaxTree, b: SyntaxTree, rng, sigma_small: int = SIGMA_SMALL) -> Edit | None:
    """The first edit of the path from ``a`` to ``b`` (None when they are equal)."""
    r = as_random(rng)
    edits = tree_diff(a.root, b.root, sigma_small, r, a.grammar)
    if not edits:
        return None
    return min(edits, key=lambda e: (-e.old.sigma, -len(e.old.text)))
