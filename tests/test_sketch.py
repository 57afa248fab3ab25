"""CSG2D-Sketch observations (Appendix C): seeded, varied, and close to the true outline."""

import random

import numpy as np
import pytest
import skia

import tdlib
from tdlib.csg2d import MaskCanvas

SKETCH = tdlib.make_env("csg2d-sketch")
CLEAN = tdlib.make_env("csg2d")


def outline_mask(program, size=128):
    """Pixels on the exact outline of the clean program (1-px stroke, no anti-aliasing)."""
    canvas = MaskCanvas(size)
    canvas.canvas.drawPath(CLEAN.renderer.path(CLEAN.tree(program).root, size),
                           skia.Paint(AntiAlias=False, Style=skia.Paint.kStroke_Style,
                                      StrokeWidth=1))
    return canvas.pixels > 0


def within(mask, radius):
    """Pixels within ``radius`` (Euclidean) of a set pixel: brute-force disc dilation."""
    out = mask.copy()
    padded = np.pad(mask, radius)
    h, w = mask.shape
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dx * dx + dy * dy <= radius * radius:
                out |= padded[radius + dy:radius + dy + h, radius + dx:radius + dx + w]
    return out


def test_same_seed_same_sketch_and_different_seeds_differ():
    r = random.Random(5)
    for _ in range(20):
        program = SKETCH.sample(r, 2, 8)
        a, b = SKETCH.observe(program, 7), SKETCH.observe(program, 7)
        assert a.shape == (128, 128, 1) and a.dtype == np.float32
        np.testing.assert_array_equal(a, b)
        if (a > 0.5).any():
            others = [SKETCH.observe(program, seed) for seed in (8, 9, 10)]
            assert all(np.abs(a - o).mean() > 1e-3 for o in others)


def test_sketch_ink_lies_near_the_true_outline_and_covers_it():
    """Within one grid unit (8 px): >= 85 % of sketch ink near the outline and vice versa."""
    r = random.Random(11)
    precision, recall, wrong_program = [], [], []
    while len(precision) < 40:
        program = SKETCH.sample(r, 2, 8)
        outline = outline_mask(program)
        ink = SKETCH.observe(program, r)[..., 0] > 0.5
        if outline.sum() < 40 or ink.sum() == 0:
            continue
        precision.append((within(outline, 8) & ink).sum() / ink.sum())
        recall.append((within(ink, 8) & outline).sum() / outline.sum())
        other = SKETCH.sample(r, 2, 8)
        other_ink = SKETCH.observe(other, r)[..., 0] > 0.5
        if other_ink.sum():
            wrong_program.append((within(outline, 8) & other_ink).sum() / other_ink.sum())
    assert np.mean(precision) >= 0.85
    assert np.mean(recall) >= 0.85
    assert np.mean(wrong_program) < 0.6  # the measure can tell programs apart


def test_sketch_is_strokes_not_a_fill():
    program = "(Quad 8 8 A A G)"
    ink = SKETCH.observe(program, 0)[..., 0]
    filled = CLEAN.render(program)[..., 0]
    assert ink.sum() < 0.35 * filled.sum()
    assert ink[60:68, 60:68].max() < 0.5  # the middle of the square stays white


def test_success_is_judged_on_clean_renders():
    program = "(- (Circle 6 8 8) (Quad 8 8 4 4 H))"
    np.testing.assert_array_equal(SKETCH.render(program), CLEAN.render(program))
    assert SKETCH.is_solved(SKETCH.render(program), SKETCH.render(program))
    assert not SKETCH.is_solved(SKETCH.observe(program, 0), SKETCH.render(program))


def test_sketch_needs_a_seed_and_other_languages_observe_clean():
    with pytest.raises(ValueError, match="rng"):
        SKETCH.observe("(Circle 4 8 8)")
    np.testing.assert_array_equal(CLEAN.observe("(Circle 4 8 8)", 3), CLEAN.render("(Circle 4 8 8)"))


def test_sketches_at_other_sizes_and_degenerate_programs():
    assert SKETCH.observe("(Circle 4 8 8)", 1, size=64).shape == (64, 64, 1)
    assert SKETCH.observe("(Circle 0 8 8)", 1).max() == 0  # nothing to draw
    assert SKETCH.observe("(- (Circle 4 8 8) (Circle 4 8 8))", 1).sum() < 0.05 * 128 * 128
