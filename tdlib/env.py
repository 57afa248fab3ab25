"""Languages as environments: a grammar, its primitives and a renderer, behind one API.

>>> env = make_env("csg2d")
>>> tree = env.parse("(- (Circle 4 8 8) (Circle 2 8 8))")
>>> env.render(tree).shape
(128, 128, 1)

A new language is a ``.lark`` grammar, the names of its primitive alternatives and a renderer
(an object with ``channels``, ``render(node, size)``, ``is_solved(image, target)`` and
optionally ``to_svg(node, size)`` and ``footprints(node, size)``); see :func:`register_env`.
"""

from __future__ import annotations

from typing import Callable, Union

import numpy as np

from tdlib.csg2d import CSG2DRenderer
from tdlib.edit_paths import edit_path
from tdlib.grammar import Grammar, load_grammar
from tdlib.mutation import Mutator
from tdlib.sketch import CSG2DSketcher
from tdlib.tinysvg import TinySVGRenderer
from tdlib.tree import Node, SyntaxTree

Program = Union[SyntaxTree, Node, str]


class Env:
    """A language: parse, sample, render, check goals and export programs.

    Parameters
    ----------
    name:
        The language's name (``make_env`` key).
    grammar:
        The compiled :class:`~tdlib.grammar.Grammar`.
    renderer:
        Renders nodes; see the module docstring for what it must provide.
    default_size:
        Size in pixels of goal checks and of ``render`` when no size is given.
    """

    def __init__(self, name: str, grammar: Grammar, renderer, default_size: int = 128):
        self.name = name
        self.grammar = grammar
        self.renderer = renderer
        self.default_size = default_size

    def __repr__(self) -> str:
        return f"Env({self.name!r})"

    @property
    def channels(self) -> int:
        return self.renderer.channels

    @property
    def primitives(self) -> list[str]:
        return sorted(self.grammar.primitive_names)

    # ------------------------------------------------------------- programs
    def parse(self, text: str) -> SyntaxTree:
        """Program text to syntax tree; :class:`~tdlib.grammar.ProgramSyntaxError` if malformed."""
        return self.grammar.parse(text)

    def tree(self, program: Program) -> SyntaxTree:
        """Accept a tree, a root node or program text; return a tree."""
        if isinstance(program, SyntaxTree):
            return program
        if isinstance(program, Node):
            return SyntaxTree(program, self.grammar)
        return self.parse(program)

    def _node(self, program: Program) -> Node:
        if isinstance(program, SyntaxTree):
            return program.root
        if isinstance(program, Node):
            return program
        return self.parse(program).root

    def sample(self, rng, min_primitives: int = 1, max_primitives: int = 8) -> SyntaxTree:
        """ConstrainedSample: a random program with ``min <= sigma <= max`` primitives.

        ``rng`` is a ``numpy.random.Generator`` or an int seed; the size is drawn uniformly
        among the feasible sizes, then the tree top-down (see :mod:`tdlib.sampling`).
        """
        return self.grammar.sample(rng, min_primitives, max_primitives)

    # ------------------------------------------------------------- noise and paths
    def mutator(self, scheme: str = "count", sigma_small: int = 2):
        """A :class:`~tdlib.mutation.Mutator` for this language (cached per settings)."""
        key = (scheme, sigma_small)
        cache = self.__dict__.setdefault("_mutators", {})
        if key not in cache:
            cache[key] = Mutator(self.grammar, sigma_small, scheme)
        return cache[key]

    def random_edit(self, program: Program, rng, scheme: str = "count"):
        """One random small mutation as an :class:`~tdlib.mutation.Edit` (path, old, new)."""
        return self.mutator(scheme).random_edit(self.tree(program), rng)

    def mutate(self, program: Program, rng, scheme: str = "count") -> SyntaxTree:
        """The program after one random small mutation (never a no-op, always valid)."""
        return self.mutator(scheme).mutate(self.tree(program), rng)

    def edit_path(self, a: Program, b: Program, rng, sigma_small: int = 2) -> list[SyntaxTree]:
        """Programs from ``a`` to ``b`` inclusive, each one small edit from the last."""
        return edit_path(self.tree(a), self.tree(b), rng, sigma_small)

    # ------------------------------------------------------------- images
    def render(self, program: Program, size: int | None = None) -> np.ndarray:
        """Float32 image ``size x size x channels`` in [0, 1]."""
        return self.renderer.render(self._node(program), self.default_size if size is None else size)

    def observe(self, program: Program, rng=None, size: int | None = None) -> np.ndarray:
        """What a model sees of a target: the clean render unless the language says otherwise."""
        observe = getattr(self.renderer, "observe", None)
        if observe is None:
            return self.render(program, size)
        return observe(self._node(program), rng, self.default_size if size is None else size)

    @property
    def has_footprints(self) -> bool:
        """Whether the renderer tells which pixels each part of a program draws
        (:meth:`footprints`), which a policy may read (``ModelConfig.footprints``)."""
        return callable(getattr(self.renderer, "footprints", None))

    def footprints(self, program: Program, size: int | None = None):
        """The parts of a program and the pixels each draws: a list of ``(path, drawn,
        visible)`` in preorder, ``drawn`` and ``visible`` float32 ``size x size`` planes in [0, 1]:
        the part's own shapes and the pixels whose value it decides (:mod:`tdlib.footprints`)."""
        if not self.has_footprints:
            raise NotImplementedError(f"the {self.name} renderer gives no footprints")
        return self.renderer.footprints(self._node(program),
                                        self.default_size if size is None else size)

    def display(self, image: np.ndarray) -> np.ndarray:
        """An ``H x W x 3`` RGB view of an image: one-channel ink becomes black on white."""
        image = np.asarray(image, np.float32)
        if image.shape[-1] == 1:
            return np.repeat(1.0 - image, 3, axis=-1)
        return image

    def is_solved(self, image: np.ndarray, target_image: np.ndarray) -> bool:
        """The paper's goal check between a candidate's render and the target's."""
        image, target_image = np.asarray(image), np.asarray(target_image)
        if image.shape != target_image.shape:
            raise ValueError(f"image shape {image.shape} differs from target shape "
                             f"{target_image.shape}")
        if image.ndim != 3 or image.shape[-1] != self.channels:
            raise ValueError(f"{self.name} images are H x W x {self.channels}, got {image.shape}")
        return bool(self.renderer.is_solved(image, target_image))

    def to_svg(self, program: Program, size: int | None = None) -> str:
        """SVG text that a browser draws like :meth:`render`."""
        to_svg = getattr(self.renderer, "to_svg", None)
        if to_svg is None:
            raise NotImplementedError(f"{self.name} has no SVG export")
        return to_svg(self._node(program), self.default_size if size is None else size)


# ------------------------------------------------------------------ registry
_FACTORIES: dict[str, Callable[[], Env]] = {}
_DESCRIPTIONS: dict[str, str] = {}


def register_env(name: str, factory: Callable[[], Env], description: str = "") -> None:
    """Make ``make_env(name)`` build ``factory()``: how users add a language of their own."""
    _FACTORIES[name] = factory
    _DESCRIPTIONS[name] = description


def list_envs() -> dict[str, str]:
    """Known languages and one-line descriptions."""
    return dict(_DESCRIPTIONS)


def make_env(name: str) -> Env:
    """Build a language by name: ``csg2d``, ``csg2d-sketch``, ``tinysvg`` or ``rainbow``."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ValueError(f"unknown language {name!r}; known: {', '.join(_FACTORIES)}") from None
    return factory()


def _csg2d(name: str) -> Env:
    grammar = load_grammar("csg2d", ("circle", "quad"))
    renderer = CSG2DSketcher(grammar) if name == "csg2d-sketch" else CSG2DRenderer(grammar)
    return Env(name, grammar, renderer)


def _tinysvg(grammar_name: str) -> Env:
    weights = (("move", 0.25),) if grammar_name == "tinysvg" else ()
    grammar = load_grammar(grammar_name, ("rect", "ellipse"), weights)
    return Env(grammar_name, grammar, TinySVGRenderer(grammar))


register_env("csg2d", lambda: _csg2d("csg2d"),
             "constructive solid geometry: circles and rotated quads, union and difference")
register_env("csg2d-sketch", lambda: _csg2d("csg2d-sketch"),
             "CSG2D observed as hand-drawn sketches; solved when the clean renders match")
register_env("tinysvg", lambda: _tinysvg("tinysvg"),
             "rectangles and ellipses with colours and borders, Arrange and Move layout")
register_env("rainbow", lambda: _tinysvg("rainbow"),
             "TinySVG without Move, for cheap ablations")
