"""SVG export draws like the renderer: rasterised independently by cairosvg and compared."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import tdlib

cairosvg = pytest.importorskip("cairosvg")
Image = pytest.importorskip("PIL.Image")

LANGUAGES = ["csg2d", "tinysvg", "rainbow"]
N_PROGRAMS = 30


def rasterise(svg: str, size: int) -> np.ndarray:
    """An SVG text drawn by cairo at ``size`` x ``size`` as float RGB in [0, 1] on white."""
    png = cairosvg.svg2png(bytestring=svg.encode(), output_width=size, output_height=size)
    image = Image.open(io.BytesIO(png)).convert("RGBA")
    rgba = np.asarray(image, np.float64) / 255
    alpha = rgba[..., 3:]
    return rgba[..., :3] * alpha + (1.0 - alpha)  # composite on white (the SVG paints it too)


def ink_mask(rgb: np.ndarray) -> np.ndarray:
    """A pixel is ink when any channel is below 0.5."""
    return (np.asarray(rgb) < 0.5).any(axis=-1)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def programs(name: str):
    env = tdlib.make_env(name)
    rng = np.random.default_rng(31)
    return env, [env.sample(rng, 1, 8) for _ in range(N_PROGRAMS)]


@pytest.mark.parametrize("name", LANGUAGES)
def test_svg_export_matches_render(name):
    env, trees = programs(name)
    blank = 0
    fine_ious = []
    for tree in trees:
        svg = env.to_svg(tree)
        drawn = rasterise(svg, 128)
        ours = env.display(env.render(tree))
        assert drawn.shape == ours.shape == (128, 128, 3)
        # Colours agree pixel for pixel up to anti-aliasing: small mean difference, and almost
        # no pixel off by more than a quarter (measured: at most 0.1 % of them).
        diff = np.abs(drawn - ours)
        assert diff.mean() < 0.03, (str(tree), diff.mean())
        assert (diff.max(axis=-1) > 0.25).mean() <= 0.005, str(tree)
        if not ink_mask(ours).any():
            blank += 1
            assert not ink_mask(drawn).any(), str(tree)
        # Shapes agree: IoU of the ink masks.  At 128 px a small shape is mostly edge pixels,
        # where cairo's and skia's anti-aliasing fall on either side of 0.5 (IoU down to about
        # 0.94 for shapes of a few hundred pixels), so the masks are compared on a 512 px
        # raster of the same SVG against our 512 px render: same geometry, a quarter of the
        # relative edge weight.
        fine = iou(ink_mask(rasterise(svg, 512)), ink_mask(env.display(env.render(tree, 512))))
        fine_ious.append(fine)
        assert fine >= 0.95, (str(tree), fine)
    assert blank < N_PROGRAMS, "some programs draw something"
    fine_ious = np.array(fine_ious)
    if name == "csg2d":
        assert fine_ious.min() >= 0.98, fine_ious.min()
    else:
        # skia and cairo stroke degenerate outlines differently (a stroke wider than a flat
        # ellipse's curvature radius, e.g. "(Ellipse 8 1 yellow yellow 7)": IoU 0.977), so
        # TinySVG may have a rare program below 0.98.
        assert np.mean(fine_ious >= 0.98) >= 0.9, np.sort(fine_ious)[:5]


def test_csg2d_svg_export_ink_iou_at_128():
    """The literal check at 128 px for CSG2D shapes of 1000 px or more.

    (Not for TinySVG: its thinnest border is 0.4 px at 128 px, a line whose coverage sits
    below 0.5 everywhere, so its ink mask is a coin flip between two anti-aliasers.)
    """
    env, trees = programs("csg2d")
    checked = 0
    for tree in trees:
        drawn = ink_mask(rasterise(env.to_svg(tree), 128))
        ours = ink_mask(env.display(env.render(tree)))
        union = np.count_nonzero(drawn | ours)
        if union == 0:
            assert iou(drawn, ours) == 1.0
        if union >= 1000:
            assert iou(drawn, ours) >= 0.98, str(tree)
            checked += 1
    assert checked >= 10


@pytest.mark.parametrize("name,text", [
    ("csg2d", "(- (Circle 6 8 8) (Circle 3 8 8))"),  # a hole: fill rule matters
    ("csg2d", "(- (Circle 5 6 8) (+ (Circle 2 6 8) (Quad B 8 6 4 G)))"),  # hierarchical
    ("csg2d", "(+ (- (Quad 8 8 C 4 H) (Circle 2 8 8)) (Quad 3 C 4 2 J))"),  # rotations
    ("csg2d", "(- (Quad 8 8 4 4 G) (Quad 8 8 6 6 G))"),  # empty
    ("tinysvg", "(Arrange v (Move (Ellipse 6 4 blue red 4) -3 +2) "
                "(Rectangle 8 3 yellow black 6) 5)"),
    ("tinysvg", "(Arrange h (Rectangle 5 5 none purple 9) (Ellipse 5 7 orange green 2) 0)"),
    ("rainbow", "(Arrange h (Ellipse 9 9 green none 0) (Rectangle 9 9 purple orange 8) 9)"),
])
@pytest.mark.parametrize("size", [128, 256])
def test_hand_written_programs(name, text, size):
    env = tdlib.make_env(name)
    svg = env.to_svg(text, size=size)
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    assert (root.get("width"), root.get("height")) == (str(size), str(size))
    drawn = rasterise(svg, size)
    ours = env.display(env.render(text, size=size))
    assert np.abs(drawn - ours).mean() < 0.03
    assert iou(ink_mask(drawn), ink_mask(ours)) >= 0.98


@pytest.mark.parametrize("name", LANGUAGES)
def test_svg_accepts_text_tree_and_node(name):
    env = tdlib.make_env(name)
    tree = env.sample(11, 2, 5)
    assert env.to_svg(str(tree)) == env.to_svg(tree) == env.to_svg(tree.root)


@pytest.mark.parametrize("name", LANGUAGES)
@pytest.mark.parametrize("size", [0, -5])
def test_svg_bad_size_raises_value_error(name, size):
    env = tdlib.make_env(name)
    with pytest.raises(ValueError, match="size"):
        env.to_svg(env.sample(0, 1, 3), size=size)
