"""Pictures that no tdlib renderer drew: a suite for the picture-to-program solver.

Each :class:`Picture` is drawn with Pillow (anti-aliased by drawing at four times the size and
shrinking with a Lanczos filter), at its own size and aspect ratio, in grey or colour, and
saved as PNG (one as JPEG, one as RGBA with a transparent background).  Two are wobbly
hand-drawn strokes.  Each comes with a short CSG2D program written by hand that draws it about
as a person would describe it; the solver is judged against that reference's pixel error and
primitive count.

Shapes are given in the units of a CSG2D canvas (16 across the picture's padded square, as the
solver sees it), so a reference program can be read off the drawing, but the drawing itself is
not on the program grid: radii such as 5.3 and centres such as 7.6 are the point.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from tdlib.env import make_env
from tdlib.image_input import image_to_observation
from tdlib.solver import solve

SUPERSAMPLE = 4
UNITS = 16  # CSG2D's grid: the padded square is 16 units across


@dataclass(frozen=True)
class Picture:
    """A drawing: shapes in CSG2D units, painted in order on a ``width x height`` page."""

    name: str
    width: int
    height: int
    shapes: tuple  # ("circle", x, y, r, ink) / ("rect", x, y, w, h, degrees, ink) /
    # ("polygon", ((x, y), ...), ink) / ("stroke", ((x, y), ...), width, wobble, seed)
    reference: str  # a short CSG2D program, written by hand, that draws about the same
    paper: tuple = (255, 255, 255)
    ink: tuple = (0, 0, 0)
    mode: str = "RGB"  # "L" grey, "RGB" colour, "RGBA" transparent paper
    file_format: str = "PNG"

    @property
    def file_name(self) -> str:
        return f"{self.name}.{'jpg' if self.file_format == 'JPEG' else 'png'}"

    def draw(self) -> Image.Image:
        side = max(self.width, self.height)
        scale = side * SUPERSAMPLE / UNITS
        big = Image.new("RGBA", (side * SUPERSAMPLE, side * SUPERSAMPLE),
                        (*self.paper, 0 if self.mode == "RGBA" else 255))
        pen = ImageDraw.Draw(big)
        for shape in self.shapes:
            _paint(pen, shape, scale, self.ink, self.paper, self.mode == "RGBA")
        left = (side - self.width) // 2 * SUPERSAMPLE
        top = (side - self.height) // 2 * SUPERSAMPLE
        big = big.crop((left, top, left + self.width * SUPERSAMPLE,
                        top + self.height * SUPERSAMPLE))
        image = big.resize((self.width, self.height), Image.Resampling.LANCZOS)
        if self.mode == "RGBA":
            return image
        return image.convert("RGB").convert(self.mode)

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / self.file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        image = self.draw()
        if self.file_format == "JPEG":
            image.save(path, "JPEG", quality=75)
        else:
            image.save(path, "PNG")
        return path


def _paint(pen: ImageDraw.ImageDraw, shape: tuple, scale: float, ink, paper,
           transparent: bool) -> None:
    kind = shape[0]
    colour = lambda is_ink: (*ink, 255) if is_ink else (*paper, 0 if transparent else 255)  # noqa: E731
    if kind == "circle":
        _, x, y, r, is_ink = shape
        pen.ellipse([(x - r) * scale, (y - r) * scale, (x + r) * scale, (y + r) * scale],
                    fill=colour(is_ink))
    elif kind == "rect":
        _, x, y, w, h, degrees, is_ink = shape
        turn = math.radians(degrees)
        corners = [(-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)]
        points = [((x + cx * math.cos(turn) - cy * math.sin(turn)) * scale,
                   (y + cx * math.sin(turn) + cy * math.cos(turn)) * scale) for cx, cy in corners]
        pen.polygon(points, fill=colour(is_ink))
    elif kind == "polygon":
        _, points, is_ink = shape
        pen.polygon([(px * scale, py * scale) for px, py in points], fill=colour(is_ink))
    elif kind == "stroke":
        _, points, width, wobble, seed = shape
        rng = random.Random(seed)
        line = [((px + rng.gauss(0, wobble)) * scale, (py + rng.gauss(0, wobble)) * scale)
                for px, py in points]
        pen.line(line, fill=colour(True), width=max(1, round(width * scale)), joint="curve")
        radius = width * scale / 2  # round caps, as a pen leaves
        for px, py in (line[0], line[-1]):
            pen.ellipse([px - radius, py - radius, px + radius, py + radius], fill=colour(True))
    else:
        raise ValueError(f"unknown shape kind {kind!r}")


def _circle_points(x, y, r, n=48, start=0.0, turns=1.0):
    return tuple((x + r * math.cos(start + 2 * math.pi * turns * i / n),
                  y + r * math.sin(start + 2 * math.pi * turns * i / n)) for i in range(n + 1))


SUITE: tuple[Picture, ...] = (
    Picture("ring", 256, 256, (("circle", 8, 8, 5.3, True), ("circle", 8, 8, 2.4, False)),
            "(- (Circle 5 8 8) (Circle 2 8 8))"),
    Picture("plus", 100, 100, (("rect", 8, 8, 10.4, 3.2, 0, True), ("rect", 8, 8, 3.2, 10.4, 0, True)),
            "(+ (Quad 8 8 A 3 G) (Quad 8 8 3 A G))", mode="RGBA"),
    Picture("house", 200, 240, (("rect", 8, 10.8, 8.2, 6.4, 0, True),
                                ("polygon", ((3.2, 8.0), (12.8, 8.0), (8.0, 3.2)), True),
                                ("rect", 8, 12.6, 2.2, 3.0, 0, False)),
            "(- (+ (Quad 8 B 8 6 G) (Quad 8 8 7 7 H)) (Quad 8 D 2 3 G))"),
    Picture("smiley", 160, 160, (("circle", 8, 8, 6.2, True), ("circle", 6, 6.2, 1.1, False),
                                 ("circle", 10, 6.2, 1.1, False),
                                 ("rect", 8, 10.6, 5.0, 1.3, 0, False)),
            "(- (Circle 6 8 8) (+ (+ (Circle 1 6 6) (Circle 1 A 6)) (Quad 8 B 5 1 G)))"),
    Picture("key", 300, 200, (("circle", 4.4, 8, 3.1, True), ("circle", 4.4, 8, 1.3, False),
                              ("rect", 10.2, 8, 7.6, 1.6, 0, True),
                              ("rect", 12.6, 9.4, 1.2, 2.6, 0, True)),
            "(+ (- (Circle 3 4 8) (Circle 1 4 8)) (+ (Quad A 8 8 2 G) (Quad D 9 1 3 G)))"),
    Picture("target", 512, 512, (("circle", 8, 8, 7.1, True), ("circle", 8, 8, 5.2, False),
                                 ("circle", 8, 8, 3.4, True), ("circle", 8, 8, 1.7, False)),
            "(- (Circle 7 8 8) (- (Circle 5 8 8) (- (Circle 3 8 8) (Circle 2 8 8))))"),
    Picture("moon", 128, 128, (("circle", 8, 8, 5.2, True), ("circle", 10.1, 6.8, 4.3, False)),
            "(- (Circle 5 8 8) (Circle 4 A 7))", paper=(215, 215, 215), ink=(70, 70, 70),
            mode="L"),
    Picture("kite_and_ball", 180, 180, (("rect", 5.2, 8, 5.8, 5.8, 45, True),
                                        ("circle", 11.3, 8.2, 2.9, True)),
            "(+ (Quad 5 8 6 6 H) (Circle 3 B 8))", ink=(200, 30, 40)),
    Picture("ell", 128, 96, (("rect", 5.2, 8, 2.1, 7.8, 0, True),
                             ("rect", 7.9, 11, 7.4, 1.9, 0, True)),
            "(+ (Quad 5 8 2 8 G) (Quad 8 B 7 2 G))", paper=(250, 235, 120), ink=(20, 110, 40)),
    Picture("window", 220, 220, (("rect", 8, 8, 11.8, 11.8, 0, True),
                                 ("rect", 5.9, 5.9, 3.4, 3.4, 0, False),
                                 ("rect", 10.1, 5.9, 3.4, 3.4, 0, False),
                                 ("rect", 5.9, 10.1, 3.4, 3.4, 0, False),
                                 ("rect", 10.1, 10.1, 3.4, 3.4, 0, False)),
            "(- (Quad 8 8 C C G) (+ (+ (Quad 6 6 3 3 G) (Quad A 6 3 3 G)) "
            "(+ (Quad 6 A 3 3 G) (Quad A A 3 3 G))))", file_format="JPEG"),
    Picture("sketched_circle", 256, 256,
            (("stroke", _circle_points(8, 8, 5.5, start=0.3, turns=1.05), 0.9, 0.12, 7),),
            "(- (Circle 6 8 8) (Circle 5 8 8))", ink=(40, 40, 60)),
    Picture("sketched_box", 240, 200,
            (("stroke", ((3.1, 4.3), (12.9, 4.0), (13.1, 11.8), (2.9, 12.1), (3.2, 4.1)),
              0.8, 0.15, 3),),
            "(- (Quad 8 8 A 8 G) (Quad 8 8 9 7 G))", ink=(30, 30, 120)),
)


def write_suite(folder: str | Path) -> list[Path]:
    """Draw every picture of :data:`SUITE` into ``folder``; returns the files."""
    return [picture.save(folder) for picture in SUITE]


def solve_suite(folder: str | Path, seed: int = 0, progress: bool = True) -> list[dict]:
    """Draw the suite into ``folder`` (unless its files are there) and solve each picture with
    ``tdlib solve``'s defaults; one row per picture: the solver's program, pixel error and
    primitives beside the reference's, the search's own program before refinement, the time
    and why the search stopped."""
    env = make_env("csg2d")
    rows = []
    for picture in SUITE:
        path = Path(folder) / picture.file_name
        if not path.exists():
            picture.save(folder)
        target = image_to_observation(env, path)
        result = solve(env, path, seed=seed, progress=progress)
        reference = env.parse(picture.reference)
        searched = env.parse(result.searched)
        rows.append({
            "picture": picture.name, "file": picture.file_name,
            "width": picture.width, "height": picture.height, "mode": picture.mode,
            "reference": picture.reference, "reference_primitives": reference.sigma,
            "reference_error": float(np.abs(env.render(reference) - target).mean()),
            "program": result.program, "primitives": result.primitives,
            "error": result.score, "search_program": result.searched,
            "search_primitives": searched.sigma,
            "search_error": float(np.abs(env.render(searched) - target).mean()),
            "expansions": result.expansions, "stopped": result.stopped,
            "seconds": round(result.seconds, 1),
        })
    return rows


def meets_bar(row: dict, extra_primitives: int = 2) -> bool:
    """The solver's answer is no worse than the hand-written reference: pixel error at most the
    reference's and at most ``extra_primitives`` more primitives."""
    return (row["error"] <= row["reference_error"] + 1e-9
            and row["primitives"] <= row["reference_primitives"] + extra_primitives)
