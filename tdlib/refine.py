"""Shorter programs that draw at least as well: :func:`simplify` and :func:`polish`, for any grammar.

*Removing* a subtree means replacing a node by one of its own children derived from the same
rule: ``(+ A B) -> A`` drops ``B``, ``(Move s dx dy) -> s`` drops a move, ``(Arrange h A B g) -> B``
drops ``A``.  That is the only removal a context-free grammar offers without knowing what the
language means, so it works for every language ``tdlib`` can load.

* :func:`simplify` drops every subtree whose removal leaves the render unchanged (or, given a
  target picture, does not raise the pixel error): a *dead* part.  Training targets and the
  solver's answers both need it: a primitive that draws nothing cannot be learned from an image.
* :func:`polish` is steepest descent on the terminals: of all single changes of one leaf (a
  number, an angle, an operator, a colour) to another alternative of its rule, it takes the one
  that lowers the pixel error most, until none does.  The neighbouring values of an ordered terminal are among the
  alternatives tried, so an off-by-one digit is always mended.
* :func:`refine` alternates the two until neither changes the program.
* :func:`grow` paints a picture layer by layer: it wraps the whole program in an expansion of
  its own rule that has a second slot of that rule (``(+ P new)``, ``(- P new)``,
  ``(Arrange h P new g)``), with a one-primitive ``new`` drawn from the grammar and placed by
  polishing only the new leaves, a beam of the closest programs at a time: structure that a
  search which only edits may not find.
"""

from __future__ import annotations

import random

import numpy as np

from tdlib.tree import Node, SyntaxTree

# Two renders of one shape drawn by different path operations can differ by rounding at the
# anti-aliased edge; a pixel that changes by less than this did not change.
UNCHANGED_ATOL = 2.5 / 255


def unchanged(image: np.ndarray, other: np.ndarray, atol: float = UNCHANGED_ATOL) -> bool:
    """Whether two renders are the same picture: no pixel differs by more than ``atol``."""
    return bool(np.abs(image - other).max() <= atol)


def removals(tree: SyntaxTree):
    """Every tree one removal away from ``tree``, largest removed part first within each
    node (preorder over the node whose children are dropped)."""
    for located in tree.nodes:
        node = located.node
        for child in node.children:
            if child.alt.rule is node.alt.rule:
                yield tree.replace(located.path, child)


class PixelError:
    """Mean absolute pixel difference to a fixed target at one size, renders cached."""

    def __init__(self, env, target: np.ndarray, size: int | None = None):
        self.env = env
        self.target = np.asarray(target, np.float32)
        self.size = self.target.shape[0] if size is None else size
        self._cache: dict[str, float] = {}

    def __call__(self, tree: SyntaxTree) -> float:
        text = str(tree)
        error = self._cache.get(text)
        if error is None:
            image = self.env.render(tree, self.size)
            error = self._cache[text] = float(np.abs(image - self.target).mean())
        return error


def simplify(env, program, target: np.ndarray | None = None, size: int | None = None,
             atol: float = UNCHANGED_ATOL, cost: float = 0.0) -> SyntaxTree:
    """``program`` with every dead subtree removed.

    Without ``target``, a removal is kept when no pixel of the render (at ``size``, default the
    language's) moves by more than ``atol``.  With ``target`` (an ``H x W x C`` picture), it is
    kept when the mean pixel error to the target plus ``cost`` a primitive does not grow.  Removals are tried until none
    is kept, so the result has no dead part under the same test."""
    tree = env.tree(program)
    if target is not None:
        error = PixelError(env, target, size)
        current = error(tree) + cost * tree.sigma
        accept = lambda candidate: (  # noqa: E731
            error(candidate) + cost * candidate.sigma <= current + 1e-9)
    else:
        size = env.default_size if size is None else size
        image = env.render(tree, size)
        accept = lambda candidate: unchanged(env.render(candidate, size), image, atol)  # noqa: E731
    changed = True
    while changed:
        changed = False
        for candidate in removals(tree):
            if accept(candidate):
                tree, changed = candidate, True
                if target is not None:
                    current = error(tree) + cost * tree.sigma
                break
    return tree


def leaf_choices(tree: SyntaxTree):
    """``(path, alternatives)`` of every leaf whose rule offers more than one terminal."""
    for located in tree.nodes:
        node = located.node
        if not node.children and len(node.alt.rule.alternatives) > 1:
            yield located.path, node.alt.rule.alternatives


def polish(env, program, target: np.ndarray, size: int | None = None,
           max_steps: int = 200, free=None) -> SyntaxTree:
    """Steepest descent on ``program``'s terminals against the picture ``target``: each step
    tries every other alternative of every leaf and takes the single change that lowers the
    pixel error most, until none lowers it (or ``max_steps``).  Steepest rather than leaf by
    leaf: taken in order, a misplaced hole would shrink to nothing before its position is
    tried.  ``free(path)``, when given, says which leaves may change (the others stay)."""
    tree = env.tree(program)
    error = PixelError(env, target, size)
    best = error(tree)
    for _ in range(max_steps):
        choice = None
        for path, alternatives in list(leaf_choices(tree)):
            if free is not None and not free(path):
                continue
            current = tree.at(path)
            for alt in alternatives:
                if alt is current.alt:
                    continue
                candidate = tree.replace(path, alt.leaf)
                value = error(candidate)
                if value < best - 1e-9:
                    best, choice = value, candidate
        if choice is None:
            choice = _pair_move(tree, error, best, free)
            if choice is None:
                break
            best = error(choice)
        tree = choice
    return tree


def _pair_move(tree: SyntaxTree, error, best: float, free):
    """The best change of two sibling leaves at once, each to a neighbouring alternative of its
    rule (index +-1): a shape that must grow and move together to fit, which no single change
    improves.  None when no such change lowers the error."""
    choice = None
    siblings: dict[tuple, list] = {}
    for path, alternatives in leaf_choices(tree):
        if free is None or free(path):
            siblings.setdefault(path[:-1], []).append((path, alternatives))
    for leaves in siblings.values():
        for a in range(len(leaves)):
            for b in range(a + 1, len(leaves)):
                (path_a, alts_a), (path_b, alts_b) = leaves[a], leaves[b]
                index_a = alts_a.index(tree.at(path_a).alt)
                index_b = alts_b.index(tree.at(path_b).alt)
                for step_a in (-1, 1):
                    for step_b in (-1, 1):
                        ia, ib = index_a + step_a, index_b + step_b
                        if not (0 <= ia < len(alts_a) and 0 <= ib < len(alts_b)):
                            continue
                        candidate = tree.replace(path_a, alts_a[ia].leaf).replace(
                            path_b, alts_b[ib].leaf)
                        value = error(candidate)
                        if value < best - 1e-9:
                            best, choice = value, candidate
    return choice


def refine(env, program, target: np.ndarray, size: int | None = None,
           cost: float = 0.0) -> SyntaxTree:
    """Polish against ``target``, simplify against it, and repeat until the program stops
    changing; a last render-only :func:`simplify` guarantees no dead part is left.  Polishing
    first keeps a misplaced part that a better number would put to use.  ``cost``: the pixel
    error a primitive must save to stay (see :func:`simplify`)."""
    tree = env.tree(program)
    for _ in range(10):
        before = str(tree)
        tree = simplify(env, polish(env, tree, target, size), target, size, cost=cost)
        if str(tree) == before:
            break
    return simplify(env, tree)



def wraps(tree: SyntaxTree, new: Node, rng: random.Random) -> Node | None:
    """``tree``'s root wrapped with ``new`` beside it: an alternative of the root's rule with two
    slots of that rule, the root in the first, ``new`` in the second, every other slot a random
    leaf (its polish chooses it).  None when the rule has no such alternative."""
    rule = tree.root.alt.rule
    options = [alt for alt in rule.alternatives
               if sum(slot is rule for slot in alt.slots) >= 2
               and all(slot is rule or slot.is_leaf_rule for slot in alt.slots)]
    if not options:
        return None
    alt = rng.choice(options)
    children, placed = [], 0
    for slot in alt.slots:
        if slot is rule and placed < 2:
            children.append(tree.root if placed == 0 else new)
            placed += 1
        elif slot is rule:
            return None
        else:
            children.append(rng.choice(slot.alternatives).leaf)
    return Node(alt, tuple(children))


def grow(env, starts, target: np.ndarray, rng=0, beam: int = 4, draws: int = 96,
         polished: int = 8, max_primitives: int = 8, cost: float = 0.002) -> SyntaxTree:
    """Paint ``target`` layer by layer from ``starts`` (programs), a beam of ``beam`` programs
    wide (see the module docstring).  For each program in the beam, ``draws`` random one-
    primitive layers are rendered as drawn and the ``polished`` closest are placed by
    :func:`polish` of their own leaves; the beam keeps the closest results.  Layers are added
    until ``max_primitives`` or until a layer lowers no error; the answer is the program of
    lowest pixel error plus ``cost`` a primitive among all that the beam held."""
    rng = rng if isinstance(rng, random.Random) else random.Random(rng)
    error = PixelError(env, target)
    penalised = lambda t: (error(t) + cost * t.sigma, t.sigma)  # noqa: E731
    frontier = sorted({str(t): t for t in map(env.tree, starts)}.values(), key=error)[:beam]
    answer = min(frontier, key=penalised)
    while frontier:
        pool: dict[str, SyntaxTree] = {}
        for tree in frontier:
            if tree.sigma >= max_primitives:
                continue
            drawn, before = [], error(tree)
            for _ in range(draws):
                wrapped = wraps(tree, env.sample(rng, 1, 1).root, rng)
                if wrapped is None:
                    break
                candidate = SyntaxTree(wrapped, tree.grammar)
                value = error(candidate)
                if abs(value - before) > 1e-7:  # a layer that draws nothing has nothing to place
                    drawn.append((value, len(drawn), candidate))
            drawn.sort(key=lambda d: d[:2])
            for _, _, candidate in drawn[:polished]:
                old = next(i for i, c in enumerate(candidate.root.children) if c is tree.root)
                placed = polish(env, candidate, target, max_steps=30,
                                free=lambda path, old=old: path[:1] != (old,))
                placed = simplify(env, placed, target)  # a layer may leave an earlier one dead
                pool[str(placed)] = placed
        if not pool:
            break
        ranked = sorted(pool.values(), key=error)[:beam]
        if error(ranked[0]) >= error(frontier[0]) - 1e-9:
            break
        frontier = ranked
        answer = min([answer] + ranked, key=penalised)
    return answer


def fit_primitives(env, target: np.ndarray, rng=0, count: int = 4, draws: int = 48,
                   polished: int = 8) -> list[SyntaxTree]:
    """``count`` distinct one-primitive programs for ``target``, closest first: ``draws``
    primitives drawn from the grammar, the ``polished`` closest of them polished.  Starts for
    :func:`grow` that owe nothing to a search."""
    rng = rng if isinstance(rng, random.Random) else random.Random(rng)
    error = PixelError(env, target)
    drawn = sorted((env.sample(rng, 1, 1) for _ in range(draws)), key=error)
    fitted = {str(t): t for t in (polish(env, t, target, max_steps=30) for t in drawn[:polished])}
    return sorted(fitted.values(), key=error)[:count]
