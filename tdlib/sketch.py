"""CSG2D-Sketch: hand-drawn-looking observations of CSG2D programs (paper, Appendix C).

A sketch is drawn in three steps, all seeded:

1. **Wobbly primitives.**  Every primitive's parameters get Gaussian noise (grid units; the public
   code's levels, DECISIONS.md §1): a quad's centre and size
   N(0, 0.5), its angle N(0, 1 deg), then each corner N(0, 0.1); a circle's centre N(0, 0.5) and
   its two radii N(0, 0.3) each, so it becomes a slightly skewed ellipse.  The noised primitives are
   combined with skia's path operations exactly like the clean render, which gives the outline of
   the whole program as lines and curves.
2. **Hand-drawn strokes.**  Every line of the outline gets noised points near 50 % and 75 % of
   its length; every curve is resampled every ``curve_spacing`` units with jitter.  Each contour
   is then drawn as one Catmull-Rom spline through its points.  Closed contours start at a random
   point; where the pen comes back it lands a little off, and round contours (circles) are
   over- or under-drawn by a fraction of their length: the pen lift of Appendix C.
3. **Ink.**  One random stroke width per sketch, U(0.05, 0.5) units but never under one pixel
   (thinner lines vanish at 64 px), black strokes on white.

The sketch is only what a model sees: success is judged on clean renders of the candidate and
of the ground-truth program, so :meth:`render` and :meth:`is_solved` are the clean renderer's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import skia

from tdlib.csg2d import CSG2DRenderer, MaskCanvas, check_size, GRID_UNITS, path_op
from tdlib.grammar import Grammar
from tdlib.sampling import as_random
from tdlib.tree import Node


@dataclass(frozen=True)
class SketchStyle:
    """Noise levels of a sketch, in grid units (16 across the canvas) and degrees."""

    centre: float = 0.5
    quad_size: float = 0.5
    quad_angle_deg: float = 1.0
    corner: float = 0.1
    circle_radius: float = 0.3
    line_midpoint: float = 0.1
    curve_spacing: float = 1.5
    curve_jitter: float = 0.12
    closing_gap: float = 0.2
    overdraw: tuple[float, float] = (-0.08, 0.15)  # fraction of a round contour's length
    stroke_width: tuple[float, float] = (0.05, 0.5)
    min_stroke_px: float = 1.0


class CSG2DSketcher(CSG2DRenderer):
    """The CSG2D renderer plus :meth:`observe`, a random hand-drawn sketch of the program."""

    def __init__(self, grammar: Grammar, style: SketchStyle = SketchStyle()):
        super().__init__(grammar)
        self.style = style
        self._stroke = skia.Paint(AntiAlias=True, Style=skia.Paint.kStroke_Style,
                                  StrokeCap=skia.Paint.kRound_Cap,
                                  StrokeJoin=skia.Paint.kRound_Join)

    # ------------------------------------------------------------------ public
    def observe(self, node: Node, rng, size: int = 128) -> np.ndarray:
        """A sketch of the program: float32 ink coverage ``size x size x 1``."""
        if rng is None:
            raise ValueError("a sketch is random: pass rng (an int seed, random.Random or "
                             "numpy Generator)")
        size = check_size(size)
        strokes, width = self.sketch_path(node, rng, size)
        canvas = self._canvases.get(size)
        if canvas is None:
            canvas = self._canvases[size] = MaskCanvas(size)
        canvas.pixels.fill(0)
        self._stroke.setStrokeWidth(width)
        canvas.canvas.drawPath(strokes, self._stroke)
        return (canvas.pixels * np.float32(1 / 255))[:, :, None]

    def sketch_path(self, node: Node, rng, size: int = 128) -> tuple[skia.Path, float]:
        """The sketch's strokes (an open skia path, pixels) and its stroke width in pixels."""
        r = as_random(rng)
        scale = size / GRID_UNITS
        outline = self.noisy_outline(node, r, size)
        strokes = skia.Path()
        for points, round_contour in stroke_knots(outline, self.style, scale, r):
            self._add_stroke(strokes, points, round_contour, scale, r)
        lo, hi = self.style.stroke_width
        width = max(self.style.min_stroke_px, r.uniform(lo, hi) * scale)
        return strokes, width

    def noisy_outline(self, node: Node, rng, size: int = 128) -> skia.Path:
        """The exact outline of the program with noised primitives (step 1), in pixels."""
        return self._noisy(node, as_random(rng), size / GRID_UNITS)

    # ----------------------------------------------------------------- step 1
    def _noisy(self, node: Node, r, scale: float) -> skia.Path:
        alt, value, st = node.alt, self._value, self.style
        path = skia.Path()
        if alt is self._circle:
            radius, x, y = [value[c.alt.index] for c in node.children]
            if radius > 0:
                cx, cy = x + r.gauss(0, st.centre), y + r.gauss(0, st.centre)
                rx = max(0.2, radius + r.gauss(0, st.circle_radius))
                ry = max(0.2, radius + r.gauss(0, st.circle_radius))
                path.addOval(skia.Rect.MakeLTRB((cx - rx) * scale, (cy - ry) * scale,
                                                (cx + rx) * scale, (cy + ry) * scale))
            return path
        if alt is self._quad:
            x, y, w, h, theta = [value[c.alt.index] for c in node.children]
            if w > 0 and h > 0:
                cx, cy = x + r.gauss(0, st.centre), y + r.gauss(0, st.centre)
                w = max(0.2, w + r.gauss(0, st.quad_size))
                h = max(0.2, h + r.gauss(0, st.quad_size))
                a = math.radians(theta + r.gauss(0, st.quad_angle_deg))
                c, s = math.cos(a), math.sin(a)
                corners = []
                for dx, dy in ((-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)):
                    px = cx + c * dx - s * dy + r.gauss(0, st.corner)
                    py = cy + s * dx + c * dy + r.gauss(0, st.corner)
                    corners.append(skia.Point(px * scale, py * scale))
                path.addPoly(corners, True)
            return path
        op, left, right = node.children
        mode = skia.kUnion_PathOp if op.alt is self._union else skia.kDifference_PathOp
        a, b = self._noisy(left, r, scale), self._noisy(right, r, scale)
        return path_op(a, b, mode)

    # ----------------------------------------------------------------- step 2
    def _add_stroke(self, strokes: skia.Path, points: np.ndarray, round_contour: bool,
                    scale: float, r) -> None:
        st = self.style
        n = len(points)
        start = r.randrange(n)
        loop = np.concatenate([points[start:], points[:start]])
        if round_contour:
            lo, hi = st.overdraw
            extra = int(round(r.uniform(lo, hi) * n))
            if extra > 0:
                loop = np.concatenate([loop, loop[1:extra + 1]])
            elif extra < 0:
                loop = loop[:max(2, n + extra)]
            else:
                loop = np.concatenate([loop, loop[:1]])
        else:
            loop = np.concatenate([loop, loop[:1]])
        end = loop[-1] + np.array([r.gauss(0, st.closing_gap), r.gauss(0, st.closing_gap)]) * scale
        loop = np.concatenate([loop[:-1], end[None]])
        _add_catmull_rom(strokes, loop)


def stroke_knots(path: skia.Path, style: SketchStyle, scale: float, r):
    """Yield ``(points, round_contour)`` per contour of ``path``: noised spline knots (pixels).

    ``round_contour`` is true for contours made of curves only (circles), which get a pen lift.
    """
    it = skia.Path.Iter(path, True)
    points: list[tuple[float, float]] = []
    curves = lines = 0

    def noisy(x, y, sigma):
        return (x + r.gauss(0, sigma) * scale, y + r.gauss(0, sigma) * scale)

    while True:
        verb, pts = it.next()
        if verb in (skia.Path.kMove_Verb, skia.Path.kDone_Verb):
            if len(points) >= 2:
                yield np.array(points), lines == 0
            points, curves, lines = [], 0, 0
            if verb == skia.Path.kDone_Verb:
                return
            continue
        if verb == skia.Path.kClose_Verb:
            continue
        p0 = pts[0]
        if verb == skia.Path.kLine_Verb:
            p1 = pts[1]
            dx, dy = p1.fX - p0.fX, p1.fY - p0.fY
            if dx * dx + dy * dy < 1e-6:
                continue
            lines += 1
            points.append(noisy(p0.fX, p0.fY, style.corner))
            for t in (0.5, 0.75):
                points.append(noisy(p0.fX + t * dx, p0.fY + t * dy, style.line_midpoint))
            continue
        curves += 1
        segment = skia.Path()
        segment.moveTo(p0)
        if verb == skia.Path.kQuad_Verb:
            segment.quadTo(pts[1], pts[2])
        elif verb == skia.Path.kConic_Verb:
            segment.conicTo(pts[1], pts[2], it.conicWeight())
        else:
            segment.cubicTo(pts[1], pts[2], pts[3])
        measure = skia.PathMeasure(segment, False)
        length = measure.getLength()
        if length <= 1e-6:
            continue
        pieces = max(2, int(round(length / (style.curve_spacing * scale))))
        for k in range(pieces):
            pos, _ = measure.getPosTan(length * k / pieces)
            points.append(noisy(pos.fX, pos.fY, style.curve_jitter))


def _add_catmull_rom(path: skia.Path, knots: np.ndarray) -> None:
    """Append the uniform Catmull-Rom spline through ``knots`` as cubic Béziers."""
    padded = np.concatenate([knots[:1], knots, knots[-1:]])
    before, a, b, after = padded[:-3], padded[1:-2], padded[2:-1], padded[3:]
    c1 = a + (b - before) / 6
    c2 = b - (after - a) / 6
    path.moveTo(*knots[0])
    for (x1, y1), (x2, y2), (x3, y3) in zip(c1.tolist(), c2.tolist(), b.tolist()):
        path.cubicTo(x1, y1, x2, y2, x3, y3)
