"""CSG2D: circles and rotated rectangles combined by union and difference (paper, B.1).

Canvas conventions (DECISIONS.md §1): a 16 x 16 grid of units, origin
top-left, one unit = size / 16 px (8 px at 128 px).  ``(Circle r x y)`` is centred at (x, y) with
radius r; ``(Quad x y w h theta)`` is a w x h rectangle centred at (x, y), rotated clockwise on
screen by theta (G..N = 0, 45, ..., 315 degrees) about its centre.

Semantics are true hierarchical CSG: every subtree is one shape, so ``(- A (+ B C))`` removes
the union of B and C from A.  Shapes are combined exactly with skia's path operations and the
result is filled once with anti-aliasing, so edges are exact to the pixel's coverage.

Images are ink coverage: float32 ``size x size x 1``, 1 inside the shape, 0 outside.
"""

from __future__ import annotations

import numpy as np
import skia

from tdlib.grammar import Grammar
from tdlib.tree import Node

GRID_UNITS = 16
ANGLE_LETTERS = "GHIJKLMN"


def path_to_svg_d(path: skia.Path) -> str:
    """SVG path data for a skia path; conics become quadratic Béziers (8 per conic)."""
    parts = []
    it = skia.Path.Iter(path, False)
    fmt = "{:.3f}".format
    while True:
        verb, pts = it.next()
        if verb == skia.Path.kDone_Verb:
            break
        if verb == skia.Path.kMove_Verb:
            parts.append(f"M{fmt(pts[0].fX)} {fmt(pts[0].fY)}")
        elif verb == skia.Path.kLine_Verb:
            parts.append(f"L{fmt(pts[1].fX)} {fmt(pts[1].fY)}")
        elif verb == skia.Path.kQuad_Verb:
            parts.append(f"Q{fmt(pts[1].fX)} {fmt(pts[1].fY)} {fmt(pts[2].fX)} {fmt(pts[2].fY)}")
        elif verb == skia.Path.kConic_Verb:
            quads = skia.Path.ConvertConicToQuads(pts[0], pts[1], pts[2], it.conicWeight(), 3)
            for k in range(1, len(quads), 2):
                c, e = quads[k], quads[k + 1]
                parts.append(f"Q{fmt(c.fX)} {fmt(c.fY)} {fmt(e.fX)} {fmt(e.fY)}")
        elif verb == skia.Path.kCubic_Verb:
            parts.append("C" + " ".join(f"{fmt(p.fX)} {fmt(p.fY)}" for p in pts[1:4]))
        elif verb == skia.Path.kClose_Verb:
            parts.append("Z")
    return "".join(parts)


_BOUNDS_SLACK = 0.01  # px; tight bounds of an exact result differ from the operands' by rounding


def _covers(outer: skia.Rect, inner: skia.Rect) -> bool:
    t = _BOUNDS_SLACK
    return (outer.fLeft <= inner.fLeft + t and outer.fTop <= inner.fTop + t
            and outer.fRight >= inner.fRight - t and outer.fBottom >= inner.fBottom - t)


def _plausible(left: skia.Path, right: skia.Path, mode, result: skia.Path) -> bool:
    """Whether an ``skia.Op`` result passes what bounds can tell: a union's box is the operands'
    boxes joined, and a difference is empty only where the right box covers the left one."""
    if left.isEmpty() or right.isEmpty():
        return True
    if mode == skia.kUnion_PathOp:
        # control-point bounds first (cheap); they can overshoot a curve, so a miss is rechecked
        # with tight ones
        for bounds in (skia.Path.getBounds, skia.Path.computeTightBounds):
            joined = bounds(left)  # a fresh Rect
            joined.join(bounds(right))
            if _covers(bounds(result), joined):
                return True
        return False
    return not result.isEmpty() or _covers(right.computeTightBounds(),
                                           left.computeTightBounds())


def path_op(left: skia.Path, right: skia.Path, mode) -> skia.Path:
    """``skia.Op``, which gives up ("Failed to apply op") on some near-coincident edges, and on
    some overlapping circles silently returns one operand: then the operands are simplified first
    (exact), and failing that the right one is moved by 1e-4 px (no pixel changes)."""
    try:
        result = skia.Op(left, right, mode)
        if _plausible(left, right, mode, result):
            return result
    except RuntimeError:
        pass
    try:
        result = skia.Op(skia.Simplify(left), skia.Simplify(right), mode)
        if _plausible(left, right, mode, result):
            return result
    except RuntimeError:
        pass
    moved = skia.Path(right)
    moved.offset(1e-4, 1e-4)
    return skia.Op(left, moved, mode)


class MaskCanvas:
    """A reusable skia A8 surface drawing straight into a numpy array, one per size."""

    def __init__(self, size: int):
        self.pixels = np.zeros((size, size), np.uint8)
        info = skia.ImageInfo.Make(size, size, skia.kAlpha_8_ColorType, skia.kPremul_AlphaType)
        self.surface = skia.Surface.MakeRasterDirect(info, self.pixels)
        self.canvas = self.surface.getCanvas()
        self.paint = skia.Paint(AntiAlias=True)

    def fill(self, path: skia.Path) -> np.ndarray:
        self.pixels.fill(0)
        self.canvas.drawPath(path, self.paint)
        return (self.pixels * np.float32(1 / 255))[:, :, None]


def check_size(size) -> int:
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 8:
        raise ValueError(f"size must be an int >= 8 pixels, not {size!r}")
    return int(size)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks (two empty masks: 1)."""
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


class CSG2DRenderer:
    """Renders CSG2D syntax trees with skia path operations; the paper's IoU goal check."""

    channels = 1
    iou_threshold = 0.99  # paper, lines 211-213

    def __init__(self, grammar: Grammar):
        s = grammar.rules["s"]
        self._circle = next(a for a in s.alternatives if a.name == "circle")
        self._quad = next(a for a in s.alternatives if a.name == "quad")
        ops = {a.literal: a for a in grammar.rules["op"].alternatives}
        self._union = ops["+"]
        self._value = [0.0] * len(grammar.alternatives)
        for alt in grammar.rules["number"].alternatives:
            self._value[alt.index] = float(int(alt.literal, 16))
        for alt in grammar.rules["angle"].alternatives:
            self._value[alt.index] = 45.0 * ANGLE_LETTERS.index(alt.literal)
        self._canvases: dict[int, MaskCanvas] = {}

    def path(self, node: Node, size: int = 128) -> skia.Path:
        """The exact outline of a program as one skia path, in pixels."""
        return self._path(node, size / GRID_UNITS)

    def _path(self, node: Node, scale: float) -> skia.Path:
        alt, value = node.alt, self._value
        if alt is self._circle:
            r, x, y = [value[c.alt.index] for c in node.children]
            path = skia.Path()
            if r > 0:
                path.addCircle(x * scale, y * scale, r * scale)
            return path
        if alt is self._quad:
            x, y, w, h, theta = [value[c.alt.index] for c in node.children]
            path = skia.Path()
            if w > 0 and h > 0:
                cx, cy = x * scale, y * scale
                path.addRect(skia.Rect.MakeXYWH(cx - w * scale / 2, cy - h * scale / 2,
                                                w * scale, h * scale))
                if theta:
                    path.transform(skia.Matrix.RotateDeg(theta, skia.Point(cx, cy)))
            return path
        op, left, right = node.children
        mode = skia.kUnion_PathOp if op.alt is self._union else skia.kDifference_PathOp
        return path_op(self._path(left, scale), self._path(right, scale), mode)

    def render(self, node: Node, size: int = 128) -> np.ndarray:
        canvas = self._canvases.get(size)
        if canvas is None:
            size = check_size(size)
            canvas = self._canvases[size] = MaskCanvas(size)
        return canvas.fill(self._path(node, size / GRID_UNITS))

    def footprints(self, node: Node, size: int = 128) -> list[tuple[tuple[int, ...], np.ndarray,
                                                                    np.ndarray]]:
        """Every shape node's ``(path, drawn, visible)``, in preorder: ``drawn`` the coverage of
        its own shape (``size x size``, float32), ``visible`` the pixels whose value it decides in
        the whole program (its shape, less what a union partner already covers or a difference
        removes, and within what the node above keeps).  Coverages multiply as independent
        events, which is exact away from anti-aliased edges."""
        canvas = self._canvases.get(size)
        if canvas is None:
            size = check_size(size)
            canvas = self._canvases[size] = MaskCanvas(size)
        scale = size / GRID_UNITS
        drawn: dict[tuple[int, ...], np.ndarray] = {}
        order: list[tuple[tuple[int, ...], Node]] = []

        def shape(n: Node, path: tuple[int, ...]) -> skia.Path:
            order.append((path, n))
            if n.alt is self._circle or n.alt is self._quad:
                outline = self._path(n, scale)
            else:
                op, left, right = n.children
                mode = skia.kUnion_PathOp if op.alt is self._union else skia.kDifference_PathOp
                outline = path_op(shape(left, path + (1,)), shape(right, path + (2,)), mode)
            drawn[path] = canvas.fill(outline)[:, :, 0]
            return outline

        shape(node, ())
        visible = {(): np.ones((size, size), np.float32)}
        for path, n in order:  # preorder: a node's context is known before its children's
            if n.alt is self._circle or n.alt is self._quad:
                continue
            keep, left, right = visible[path], drawn[path + (1,)], drawn[path + (2,)]
            visible[path + (1,)] = keep * (1 - right)
            visible[path + (2,)] = keep * ((1 - left) if n.children[0].alt is self._union
                                           else left)
        return [(path, drawn[path], drawn[path] * visible[path]) for path, _ in order]

    def is_solved(self, image: np.ndarray, target: np.ndarray) -> bool:
        """IoU >= 0.99 of the two masks binarised at 0.5 (two empty masks count as equal)."""
        return mask_iou(np.asarray(image) > 0.5, np.asarray(target) > 0.5) >= self.iou_threshold

    def to_svg(self, node: Node, size: int = 128) -> str:
        size = check_size(size)
        path = self.path(node, size)
        rule = "evenodd" if path.getFillType() in (
            skia.PathFillType.kEvenOdd, skia.PathFillType.kInverseEvenOdd) else "nonzero"
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
            f'viewBox="0 0 {size} {size}">\n'
            f'<rect width="{size}" height="{size}" fill="white"/>\n'
            f'<path d="{path_to_svg_d(path)}" fill="black" fill-rule="{rule}"/>\n'
            "</svg>\n"
        )
