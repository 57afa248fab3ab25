"""REPL Flow (Ellis et al. 2019), the CSG2D baseline: programs as a left-to-right list of shapes.

A program is flattened into its shapes in reading order, each with the operator that joins it to
what comes before (the first has none), and rebuilt as a left fold:
``[(None, A), (+, B), (-, C)]`` is ``(- (+ A B) C)``.  For left-deep programs the fold is the
program itself; for others it is a different program, which is the baseline's own limitation:
it can only build left-deep programs.

The REPL policy sees the target and the render of the shapes so far, and emits the next step
``op shape`` (just ``shape`` first) under grammar-constrained decoding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from tdlib.grammar import Grammar
from tdlib.images import image_batch
from tdlib.rules import Alternative
from tdlib.tokens import GrammarConstraint, Tokenizer
from tdlib.tree import Node


@dataclass(frozen=True)
class Shape:
    """One step of the list: the joining operator (None for the first) and a primitive."""

    op: Node | None
    shape: Node


class REPLSteps:
    """Flatten, fold and tokenize REPL steps for CSG2D-like grammars (``(op s s)`` and primitives)."""

    def __init__(self, grammar: Grammar):
        self.grammar = grammar
        shape_rule = grammar.root_rule if "s" not in grammar.rules else grammar.rules["s"]
        binary = [a for a in shape_rule.alternatives
                  if len(a.slots) == 3 and a.slots[1] is shape_rule and a.slots[2] is shape_rule]
        if len(binary) != 1 or "op" not in grammar.rules:
            raise ValueError(f"REPL Flow needs a CSG2D-like grammar, not {grammar.name}")
        self.binop: Alternative = binary[0]
        self.op_rule = self.binop.slots[0]
        self.shape_rule = shape_rule
        self.primitives = tuple(a for a in shape_rule.alternatives if a.is_primitive)

    def flatten(self, node: Node) -> list[Shape]:
        """The shapes of ``node`` in reading order with their joining operators."""
        if node.alt is not self.binop:
            return [Shape(None, node)]
        op, left, right = node.children
        rest = self.flatten(right)
        return self.flatten(left) + [Shape(op, rest[0].shape)] + rest[1:]

    def fold(self, shapes: list[Shape]) -> Node:
        """The left fold of a shape list: the program the REPL builds."""
        if not shapes:
            raise ValueError("cannot fold an empty shape list")
        node = shapes[0].shape
        for step in shapes[1:]:
            node = Node(self.binop, (step.op, node, step.shape))
        return node

    def seen(self, env, prefix: list[Shape], size: int,
             tokenizer: Tokenizer) -> tuple[np.ndarray, list[int]]:
        """What the REPL policy sees of the shapes so far: their render (blank before the first
        shape), ``size x size x channels``, and their program's tokens (its context)."""
        if not prefix:
            return np.zeros((size, size, env.channels), np.float32), []
        fold = self.fold(prefix)
        return env.render(fold, size), tokenizer.node_ids(fold)

    def seen_batch(self, env, prefixes: list[list[Shape]], size: int,
                   tokenizer: Tokenizer) -> tuple[torch.Tensor, list[list[int]]]:
        """:meth:`seen` for several prefixes: ``B x C x size x size`` images and the contexts."""
        seen = [self.seen(env, prefix, size, tokenizer) for prefix in prefixes]
        return image_batch(image for image, _ in seen), [context for _, context in seen]

    def step_ids(self, tokenizer: Tokenizer, step: Shape, first: bool) -> list[int]:
        """Output tokens of a step: ``[op] shape``."""
        ids = tokenizer.node_ids(step.shape)
        return ids if first else tokenizer.node_ids(step.op) + ids

    def start_state(self, constraint: GrammarConstraint, first: bool) -> int:
        """Automaton state before a step's first token."""
        if first:
            return constraint.start(alternatives=self.primitives)
        return constraint.start_sequence([self.op_rule.alternatives, self.primitives])

    def decode_step(self, tokenizer: Tokenizer, ids: list[int], first: bool) -> Shape:
        """The step spelled by decoded tokens."""
        if first:
            return Shape(None, tokenizer.decode_program(ids, self.shape_rule))
        op = tokenizer.decode_program(ids[:1], self.op_rule)
        return Shape(op, tokenizer.decode_program(ids[1:], self.shape_rule))


def rollout(decoder, env, target, max_shapes: int = 8, temperature: float = 0.0,
            generator=None) -> list[list[Node]]:
    """REPL Flow from scratch for each target image: the programs after 1, 2, ... shapes.

    ``target`` is a ``B x C x H x W`` tensor of observations; returns, per target, the left-fold
    program after each step.  The caller picks a stopping point (for instance the prefix whose
    render best matches the target, which costs one renderer call per step).
    """
    steps = REPLSteps(env.grammar)
    size = target.shape[-1]
    b = len(target)
    shapes: list[list[Shape]] = [[] for _ in range(b)]
    programs: list[list[Node]] = [[] for _ in range(b)]
    for k in range(max_shapes):
        current, contexts = steps.seen_batch(env, shapes, size, decoder.tok)
        start = steps.start_state(decoder.constraint, first=k == 0)
        decoded = decoder.sequences(current, target, contexts, [start] * b, temperature, generator)
        for i, d in enumerate(decoded):
            shapes[i].append(steps.decode_step(decoder.tok, d.tokens, first=k == 0))
            programs[i].append(steps.fold(shapes[i]))
    return programs
