"""ConstrainedSample: random programs with an exact number of primitives, from any rule.

Following Luke (2000) and the fuzzing book's grammar fuzzers, the sampler first draws the
program size ``n`` uniformly among the sizes the rule can reach in ``[min, max]``, then expands
top-down: an alternative uniformly among those that can derive exactly ``n`` primitives, then
each slot's share of ``n`` uniformly among the shares that leave the remaining slots feasible.

Feasibility is precomputed once per grammar as bit sets over sizes ``0..max_size``.  To make
termination certain even for sigma-preserving recursion (TinySVG's ``Move``), every (rule, n)
also knows its minimum derivation height; beyond ``depth_limit`` the sampler follows a
minimum-height derivation, whose height strictly decreases at every step.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import numpy as np

from tdlib.rules import Alternative, Rule
from tdlib.tree import Node

if TYPE_CHECKING:  # pragma: no cover  (annotations only: tdlib.grammar imports this module)
    from tdlib.grammar import Grammar

INF = 1 << 30


def as_random(rng) -> random.Random:
    """A fast ``random.Random`` drawn from a numpy Generator, an int seed or a Random.

    tdlib's inner loops use Python's Mersenne Twister (a draw costs ~30 ns against ~1 us for
    a numpy scalar draw); seeding it from the caller's Generator keeps everything reproducible.
    """
    if isinstance(rng, random.Random):
        return rng
    if isinstance(rng, (int, np.integer)):
        return random.Random(int(rng))
    if isinstance(rng, np.random.Generator):
        return random.Random(int(rng.integers(0, 2**63)))
    raise TypeError(f"rng must be a numpy Generator, an int seed or random.Random, "
                    f"not {type(rng).__name__}")


def _bits(mask: int) -> list[int]:
    out, i = [], 0
    while mask:
        if mask & 1:
            out.append(i)
        mask >>= 1
        i += 1
    return out


def _repeat_by_weight(alts: tuple, weights: dict[str, float], resolution: int = 20) -> tuple:
    """Alternatives repeated in proportion to their weights (weights rounded to 1/resolution)."""
    out = []
    for alt in alts:
        count = round(weights.get(alt.name, 1.0) * resolution)
        if count <= 0:
            raise ValueError(f"weight of {alt.name} must be positive")
        out.extend([alt] * count)
    return tuple(out)


class ConstrainedSampler:
    """Size tables and the top-down sampler for one grammar."""

    def __init__(self, grammar: "Grammar", max_size: int = 64, depth_limit: int = 24):
        self.grammar = grammar
        self.max_size = max_size
        self.depth_limit = depth_limit
        self.full = (1 << (max_size + 1)) - 1
        self._feasibility()
        self._heights()
        self._choice_tables()

    # -------------------------------------------------------------- tables
    def _conv(self, a: int, b: int) -> int:
        out = 0
        for i in _bits(a):
            out |= b << i
        return out & self.full

    def _slot_suffix(self, alt: Alternative, can: dict) -> list[int]:
        """suffix[i] = sizes reachable by slots i.. of alt (suffix[len] = {0})."""
        suffix = [1] * (len(alt.slots) + 1)
        for i in range(len(alt.slots) - 1, -1, -1):
            suffix[i] = self._conv(can[alt.slots[i].name], suffix[i + 1])
        return suffix

    def _feasibility(self) -> None:
        rules = self.grammar.rules.values()
        can = {r.name: 0 for r in rules}
        changed = True
        while changed:
            changed = False
            for rule in rules:
                mask = can[rule.name]
                for alt in rule.alternatives:
                    mask |= (self._slot_suffix(alt, can)[0] << alt.is_primitive) & self.full
                if mask != can[rule.name]:
                    can[rule.name], changed = mask, True
        for rule in rules:
            if not can[rule.name]:
                raise ValueError(f"{self.grammar.name}: rule {rule.name} derives no finite program")
        self.can = can
        self.suffix = {alt.index: self._slot_suffix(alt, can) for alt in self.grammar.alternatives}
        self.alt_can = {alt.index: (self.suffix[alt.index][0] << alt.is_primitive) & self.full
                        for alt in self.grammar.alternatives}

    def _heights(self) -> None:
        """Minimum derivation height of (rule, n) and of (alt, n), Bellman-Ford style."""
        g = self.grammar
        size = self.max_size + 1
        height = {r.name: [INF] * size for r in g.rules.values()}
        alt_height = {a.index: [INF] * size for a in g.alternatives}
        changed = True
        while changed:
            changed = False
            for alt in g.alternatives:
                # best[i][m]: min over splits of max child height, slots i.., total m
                best = [0] + [INF] * (size - 1)
                for slot in reversed(alt.slots):
                    h = height[slot.name]
                    new = [INF] * size
                    for m in range(size):
                        for v in range(m + 1):
                            cand = max(h[v], best[m - v])
                            if cand < new[m]:
                                new[m] = cand
                    best = new
                row = alt_height[alt.index]
                for m in range(size - alt.is_primitive):
                    if best[m] < INF and best[m] + 1 < row[m + alt.is_primitive]:
                        row[m + alt.is_primitive] = best[m] + 1
                        changed = True
            for rule in g.rules.values():
                row = height[rule.name]
                for alt in rule.alternatives:
                    for n, h in enumerate(alt_height[alt.index]):
                        if h < row[n]:
                            row[n] = h
                            changed = True
        self.height = height
        self.alt_height = alt_height

    def _choice_tables(self) -> None:
        size = self.max_size + 1
        weights = self.grammar.weights
        self.alts_for: dict[str, list[tuple]] = {}
        self.short_alts_for: dict[str, list[tuple]] = {}
        for rule in self.grammar.rules.values():
            rows, short_rows = [], []
            for n in range(size):
                alts = tuple(a for a in rule.alternatives if self.alt_can[a.index] >> n & 1)
                # Weighted choice by repetition keeps the inner loop a single index draw.
                if any(a.name in weights for a in alts):
                    alts = _repeat_by_weight(alts, weights)
                rows.append(alts)
                best = self.height[rule.name][n]
                short_rows.append(tuple(dict.fromkeys(
                    a for a in alts if self.alt_height[a.index][n] == best)))
            self.alts_for[rule.name] = rows
            self.short_alts_for[rule.name] = short_rows
        # splits[alt][i][remaining] = shares v for slot i that keep slots i+1.. feasible
        self.splits: dict[int, list[list[tuple[int, ...]]]] = {}
        for alt in self.grammar.alternatives:
            suffix = self.suffix[alt.index]
            per_slot = []
            for i, slot in enumerate(alt.slots):
                can = self.can[slot.name]
                per_slot.append([
                    tuple(v for v in range(rem + 1) if can >> v & 1 and suffix[i + 1] >> (rem - v) & 1)
                    for rem in range(size)
                ])
            self.splits[alt.index] = per_slot

    # -------------------------------------------------------------- queries
    def sizes(self, rule: Rule, lo: int = 0, hi: int | None = None) -> list[int]:
        """Sizes (primitive counts) in ``[lo, hi]`` that ``rule`` can derive exactly."""
        hi = self.max_size if hi is None else min(hi, self.max_size)
        return [n for n in _bits(self.can[rule.name]) if lo <= n <= hi]

    def sample(self, rng, rule: Rule, lo: int, hi: int) -> Node:
        """A node derived from ``rule`` with ``lo <= sigma <= hi`` (sizes drawn uniformly)."""
        if lo > hi:
            raise ValueError(f"min_primitives {lo} > max_primitives {hi}")
        sizes = self.sizes(rule, lo, hi)
        if not sizes:
            raise ValueError(
                f"{self.grammar.name}: {rule.name} cannot derive between {lo} and {hi} "
                f"primitives (it can derive {self.sizes(rule)[:12]}...)"
            )
        r = as_random(rng)
        n = sizes[int(r.random() * len(sizes))]
        return self.sample_exact(r, rule, n)

    def sample_exact(self, r: random.Random, rule: Rule, n: int, depth: int = 0) -> Node:
        """A node derived from ``rule`` with exactly ``n`` primitives (``n`` must be feasible)."""
        if depth < self.depth_limit:
            alts = self.alts_for[rule.name][n]
            alt = alts[int(r.random() * len(alts))]
        else:
            alts = self.short_alts_for[rule.name][n]
            alt = alts[int(r.random() * len(alts))]
            if alt.leaf is None:
                return self._shortest(r, alt, n, depth)
        return self.expand(r, alt, n, depth)

    def expand(self, r: random.Random, alt: Alternative, n: int, depth: int = 0) -> Node:
        """A node of alternative ``alt`` with exactly ``n`` primitives (``n`` must be feasible)."""
        if alt.leaf is not None:
            return alt.leaf
        remaining = n - alt.is_primitive
        children = []
        for i, choices in enumerate(self.splits[alt.index]):
            options = choices[remaining]
            v = options[int(r.random() * len(options))]
            children.append(self.sample_exact(r, alt.slots[i], v, depth + 1))
            remaining -= v
        return Node(alt, tuple(children))

    def _shortest(self, r: random.Random, alt: Alternative, n: int, depth: int) -> Node:
        """Expand alt with shares whose heights are all below alt's (minimum-height split)."""
        limit = self.alt_height[alt.index][n] - 1
        remaining = n - alt.is_primitive
        children = []
        for i, slot in enumerate(alt.slots):
            options = [v for v in self.splits[alt.index][i][remaining]
                       if self.height[slot.name][v] <= limit
                       and self._rest_fits(alt, i + 1, remaining - v, limit)]
            v = options[int(r.random() * len(options))]
            children.append(self.sample_exact(r, slot, v, max(depth + 1, self.depth_limit)))
            remaining -= v
        return Node(alt, tuple(children))

    def _rest_fits(self, alt: Alternative, i: int, total: int, limit: int) -> bool:
        slots = alt.slots[i:]
        if not slots:
            return total == 0
        first = slots[0]
        return any(self.height[first.name][v] <= limit and self._rest_fits(alt, i + 1, total - v, limit)
                   for v in self.splits[alt.index][i][total])
