"""TinySVG and Rainbow: rectangles and ellipses laid out by Arrange and Move (paper, B.2).

Geometry (the paper leaves it open; decided here, DECISIONS.md §1):

* The canvas is ``UNITS_ACROSS`` units wide and high; one unit = size / UNITS_ACROSS px.
* ``(Rectangle w h fill stroke border)`` and ``(Ellipse ...)`` occupy a w x h box (units);
  a zero width or height draws nothing (as in SVG).  The border is a stroke of
  ``border * BORDER_UNIT`` units centred on the outline; ``none`` paints nothing.
* ``(Arrange h a b gap)`` puts b to the right of a with ``gap * GAP_UNIT`` units between their
  boxes, both centred vertically; ``v`` stacks b below a, centred horizontally.
* ``(Move s dx dy)`` draws s shifted by (dx, dy) units but leaves its layout box where it was,
  so that Arrange does not undo the move.
* The root's layout box is centred on the canvas; shapes draw in program order on white.

Images are float32 ``size x size x 3`` RGB in [0, 1].  Goal check: at least 99 % of pixels
within 1/256 of the target on every channel (paper, lines 212-213).
"""

from __future__ import annotations

import numpy as np
import skia

from tdlib.csg2d import check_size
from tdlib.grammar import Grammar
from tdlib.tree import Node, replace_at

UNITS_ACROSS = 40.0
BORDER_UNIT = 1 / 8
GAP_UNIT = 1 / 4
MOVE_UNIT = 1 / 2

COLORS = {  # SVG named colours, so that exported SVG draws the same
    "red": (255, 0, 0), "green": (0, 128, 0), "blue": (0, 0, 255),
    "yellow": (255, 255, 0), "purple": (128, 0, 128), "orange": (255, 165, 0),
    "black": (0, 0, 0), "white": (255, 255, 255),
}
_SKIA_COLORS = {name: skia.Color(*rgb) for name, rgb in COLORS.items()}


class TinySVGRenderer:
    """Lays out and draws TinySVG (or Rainbow) trees with skia."""

    channels = 3
    pixel_tolerance = 1 / 256
    pixel_fraction = 0.99

    def __init__(self, grammar: Grammar):
        s = grammar.rules["s"]
        by_name = {a.name: a for a in s.alternatives}
        self._rect, self._ellipse = by_name["rect"], by_name["ellipse"]
        self._arrange = by_name["arrange"]
        self._move = by_name.get("move")  # Rainbow has no Move
        n = len(grammar.alternatives)
        self._number = [0] * n
        for alt in grammar.rules["number"].alternatives:
            self._number[alt.index] = int(alt.literal)
        self._color = [None] * n
        for alt in grammar.rules["color"].alternatives:
            self._color[alt.index] = None if alt.literal == "none" else alt.literal
        self._horizontal = next(a for a in grammar.rules["direction"].alternatives
                                if a.literal == "h")
        self._negative = None
        if "sign" in grammar.rules:
            self._negative = next(a for a in grammar.rules["sign"].alternatives if a.literal == "-")
        self._surfaces: dict[int, tuple] = {}

    # ---------------------------------------------------------------- layout
    def box(self, node: Node, boxes: dict | None = None) -> tuple[float, float]:
        """Layout box (width, height) in units.  ``boxes`` (node id to box) remembers the boxes
        of one layout's nodes, which Arrange would otherwise measure again at every level."""
        if boxes is not None:
            known = boxes.get(id(node))
            if known is not None:
                return known
        alt = node.alt
        if alt is self._rect or alt is self._ellipse:
            c = node.children
            found = float(self._number[c[0].alt.index]), float(self._number[c[1].alt.index])
        elif alt is self._arrange:
            direction, a, b, gap = node.children
            (wa, ha), (wb, hb) = self.box(a, boxes), self.box(b, boxes)
            g = self._number[gap.alt.index] * GAP_UNIT
            if direction.alt is self._horizontal:
                found = wa + g + wb, max(ha, hb)
            else:
                found = max(wa, wb), ha + g + hb
        else:
            found = self.box(node.children[0], boxes)
        if boxes is not None:
            boxes[id(node)] = found
        return found

    def shapes(self, node: Node, cx: float = 0.0, cy: float = 0.0) -> list[tuple]:
        """Drawing list ``(kind, cx, cy, w, h, fill, stroke, border_units)`` in units,
        relative to the centre of the root's layout box, in painting order."""
        out: list[tuple] = []
        self._place(node, cx, cy, out, boxes={})
        return out

    def _place(self, node: Node, cx: float, cy: float, out: list, path: tuple[int, ...] = (),
               owners: list | None = None, boxes: dict | None = None) -> tuple[float, float]:
        """Append ``node``'s shapes to ``out`` (and, given ``owners``, each shape's node path;
        ``boxes`` as for :meth:`box`)."""
        alt = node.alt
        if alt is self._rect or alt is self._ellipse:
            w_, h_, fill, stroke, border = node.children
            w, h = float(self._number[w_.alt.index]), float(self._number[h_.alt.index])
            out.append(("rect" if alt is self._rect else "ellipse", cx, cy, w, h,
                        self._color[fill.alt.index], self._color[stroke.alt.index],
                        self._number[border.alt.index] * BORDER_UNIT))
            if owners is not None:
                owners.append(path)
            return w, h
        if alt is self._arrange:
            direction, a, b, gap = node.children
            (wa, ha), (wb, hb) = self.box(a, boxes), self.box(b, boxes)
            g = self._number[gap.alt.index] * GAP_UNIT
            if direction.alt is self._horizontal:
                total = wa + g + wb
                self._place(a, cx - total / 2 + wa / 2, cy, out, path + (1,), owners, boxes)
                self._place(b, cx + total / 2 - wb / 2, cy, out, path + (2,), owners, boxes)
                return total, max(ha, hb)
            total = ha + g + hb
            self._place(a, cx, cy - total / 2 + ha / 2, out, path + (1,), owners, boxes)
            self._place(b, cx, cy + total / 2 - hb / 2, out, path + (2,), owners, boxes)
            return max(wa, wb), total
        inner, sx, dx, sy, dy = node.children
        neg = self._negative
        mx = -self._number[dx.alt.index] if sx.alt is neg else self._number[dx.alt.index]
        my = -self._number[dy.alt.index] if sy.alt is neg else self._number[dy.alt.index]
        return self._place(inner, cx + mx * MOVE_UNIT, cy + my * MOVE_UNIT, out, path + (0,),
                           owners, boxes)

    def extent(self, node: Node) -> tuple[float, float, float, float]:
        """Bounds (left, top, right, bottom) of everything drawn, in units from the centre."""
        shapes = [s for s in self.shapes(node) if s[3] > 0 and s[4] > 0]
        if not shapes:
            return 0.0, 0.0, 0.0, 0.0
        half = [(s[3] / 2 + s[7] / 2, s[4] / 2 + s[7] / 2) for s in shapes]
        return (min(s[1] - hw for s, (hw, _) in zip(shapes, half)),
                min(s[2] - hh for s, (_, hh) in zip(shapes, half)),
                max(s[1] + hw for s, (hw, _) in zip(shapes, half)),
                max(s[2] + hh for s, (_, hh) in zip(shapes, half)))

    # ---------------------------------------------------------------- drawing
    def _surface(self, size: int):
        entry = self._surfaces.get(size)
        if entry is None:
            pixels = np.zeros((check_size(size), size, 4), np.uint8)
            info = skia.ImageInfo.Make(size, size, skia.kRGBA_8888_ColorType,
                                       skia.kPremul_AlphaType)
            surface = skia.Surface.MakeRasterDirect(info, pixels)
            entry = self._surfaces[size] = (pixels, surface, surface.getCanvas())
        return entry

    def render(self, node: Node, size: int = 128) -> np.ndarray:
        return self._paint(self.shapes(node), size)

    def _paint(self, shapes: list[tuple], size: int) -> np.ndarray:
        """A drawing list (:meth:`shapes`) painted on white: ``size x size x 3`` in [0, 1]."""
        pixels, _, canvas = self._surface(size)
        canvas.clear(skia.ColorWHITE)
        scale = size / UNITS_ACROSS
        origin = size / 2
        fill_paint = skia.Paint(AntiAlias=True, Style=skia.Paint.kFill_Style)
        stroke_paint = skia.Paint(AntiAlias=True, Style=skia.Paint.kStroke_Style)
        for kind, cx, cy, w, h, fill, stroke, border in shapes:
            if w <= 0 or h <= 0:
                continue
            rect = skia.Rect.MakeXYWH(origin + (cx - w / 2) * scale, origin + (cy - h / 2) * scale,
                                      w * scale, h * scale)
            draw = canvas.drawRect if kind == "rect" else canvas.drawOval
            if fill is not None:
                fill_paint.setColor(_SKIA_COLORS[fill])
                draw(rect, fill_paint)
            if stroke is not None and border > 0:
                stroke_paint.setColor(_SKIA_COLORS[stroke])
                stroke_paint.setStrokeWidth(border * scale)
                draw(rect, stroke_paint)
        return pixels[:, :, :3] * np.float32(1 / 255)

    # ---------------------------------------------------------------- footprints
    def footprints(self, node: Node, size: int = 128) -> list[tuple[tuple[int, ...], np.ndarray,
                                                                    np.ndarray]]:
        """Every node of ``s`` (shapes, Arrange, Move) as ``(path, drawn, visible)``, in preorder.

        ``drawn``: the coverage of the part's shapes where the layout puts them (fill and border).
        ``visible``: how much each pixel changes (on its most changed channel) when the part is
        removed from the program: a child of Arrange by putting the other child in the Arrange's
        place, the content of a Move with the Move.  It follows the layout: the other child is
        laid out anew, so a shape's size decides the pixels of the shapes placed beside it."""
        # One box memo for the program and every removal of a part: they share all the nodes
        # off the removed part's path (kept alive in ``removed`` so that no id is reused).
        boxes: dict[int, tuple[float, float]] = {}
        shapes: list[tuple] = []
        owners: list[tuple[int, ...]] = []
        self._place(node, 0.0, 0.0, shapes, (), owners, boxes)
        whole = self._paint(shapes, size)
        drawn = {owner: 1.0 - self._paint([_in_black(shape)], size)[:, :, 0]
                 for shape, owner in zip(shapes, owners)}
        order: list[tuple[tuple[int, ...], Node]] = []

        def visit(part: Node, path: tuple[int, ...]):
            order.append((path, part))
            for i, child in enumerate(part.children):
                if child.alt.rule is part.alt.rule:
                    visit(child, path + (i,))

        visit(node, ())
        for path, part in reversed(order):  # children before their parents: a union of inks
            if path not in drawn:
                inside = [drawn[path + (i,)] for i, c in enumerate(part.children)
                          if c.alt.rule is part.alt.rule]
                drawn[path] = inside[0].copy() if len(inside) == 1 else np.maximum(*inside)
        removed, parts = [], []
        for path, _ in order:
            without = self._without(node, path)
            if without is None:
                rest = np.ones_like(whole)
            else:
                removed.append(without)
                layout: list[tuple] = []
                self._place(without, 0.0, 0.0, layout, boxes=boxes)
                rest = self._paint(layout, size)
            change = np.abs(whole - rest)
            # the channels' maximum, elementwise: numpy reduces a last axis of 3 slowly
            parts.append((path, drawn[path],
                          np.maximum(np.maximum(change[..., 0], change[..., 1]), change[..., 2])))
        return parts

    def _without(self, root: Node, path: tuple[int, ...]) -> Node | None:
        """``root`` with the part at ``path`` removed (``None``: nothing left)."""
        while path:
            parent = root
            for i in path[:-1]:
                parent = parent.children[i]
            if parent.alt is self._arrange:
                assert path[-1] in (1, 2), path  # an Arrange's parts are its children 1 and 2
                other = parent.children[3 - path[-1]]
                return replace_at(root, path[:-1], other)
            path = path[:-1]  # a Move's content goes with the Move
        return None

    def is_solved(self, image: np.ndarray, target: np.ndarray) -> bool:
        """At least 99 % of pixels within 1/256 of the target on every channel."""
        diff = np.abs(np.asarray(image, np.float32) - np.asarray(target, np.float32))
        close = diff.max(axis=-1) <= self.pixel_tolerance
        return close.mean() >= self.pixel_fraction

    def to_svg(self, node: Node, size: int = 128) -> str:
        size = check_size(size)
        scale = size / UNITS_ACROSS
        origin = size / 2
        f = "{:.3f}".format
        lines = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
            f'viewBox="0 0 {size} {size}">',
            f'<rect width="{size}" height="{size}" fill="white"/>',
        ]
        for kind, cx, cy, w, h, fill, stroke, border in self.shapes(node):
            if w <= 0 or h <= 0:
                continue
            paint = (f'fill="{fill or "none"}" stroke="{stroke or "none"}" '
                     f'stroke-width="{f(border * scale)}"')
            if kind == "rect":
                lines.append(f'<rect x="{f(origin + (cx - w / 2) * scale)}" '
                             f'y="{f(origin + (cy - h / 2) * scale)}" width="{f(w * scale)}" '
                             f'height="{f(h * scale)}" {paint}/>')
            else:
                lines.append(f'<ellipse cx="{f(origin + cx * scale)}" cy="{f(origin + cy * scale)}" '
                             f'rx="{f(w * scale / 2)}" ry="{f(h * scale / 2)}" {paint}/>')
        lines.append("</svg>")
        return "\n".join(lines) + "\n"


def _in_black(shape: tuple) -> tuple:
    """A drawing-list entry with its fill and border (where it has them) in black."""
    kind, cx, cy, w, h, fill, stroke, border = shape
    return (kind, cx, cy, w, h, None if fill is None else "black",
            None if stroke is None else "black", border)
