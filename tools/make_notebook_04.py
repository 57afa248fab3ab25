"""Writes notebooks/04_observations_and_test_sets.ipynb (source, no outputs)."""
import nbformat as nbf

md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
cells = [
md(r"""# 04 · Observations and test sets

Two things every later experiment stands on:

1. **CSG2D-Sketch** (§4.1, Appendix C, Figure 10). The model never sees the target program, only an
   *observation* of it. For CSG2D-Sketch that observation is a random hand-drawn-looking sketch of the
   outline; success is still judged on the clean renders of the candidate and of the ground truth.
2. **Fixed test sets** (§4.2, Appendix D, Figure 11). Every method is evaluated on the same 256 problems
   per language, stored as files under `results/testsets/`. The *hard* CSG2D set keeps only targets whose
   images are at or above the 95th percentile of LZ4 incompressibility of the training distribution,
   because many programs with 8 primitives look simple (a big difference wipes out the rest)."""),
code(r"""# Parameters (papermill injects new values below this cell).
preset = "cpu"   # "smoke" (seconds, for tests), "cpu" (the shipped results), "paper"
seed = 0""", metadata={"tags": ["parameters"]}),
code(r"""import random

import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
import skia

import tdlib
from tdlib import testsets
from tdlib.complexity import lz4_score, training_scores
from tdlib.csg2d import MaskCanvas, GRID_UNITS
from tdlib.sketch import stroke_knots
from tdlib.plotting import savefig, save_table, image_grid, results_dir, project_root

n_fidelity = {"smoke": 20, "cpu": 500, "paper": 500}[preset]
n_calibration = {"smoke": 400, "cpu": 10_000, "paper": 10_000}[preset]
n_overlap = {"smoke": 2_000, "cpu": 100_000, "paper": 100_000}[preset]
sketch_env = tdlib.make_env("csg2d-sketch")
csg = tdlib.make_env("csg2d")
sketcher = sketch_env.renderer
print(sketcher.style)"""),
md(r"""## 1. The sketch model, step by step

`CSG2DSketcher.observe(node, rng, size)` draws a sketch in three steps (noise levels in grid units, the
canvas being 16 units across; see `SketchStyle`):

1. **Wobbly primitives**: every primitive's parameters are noised (quad centre and size N(0, 0.5), angle
   N(0, 1°), each corner N(0, 0.1); circle centre N(0, 0.5), its two radii N(0, 0.3) each, so circles become
   slightly skewed ellipses), then combined with skia's path operations exactly like the clean render.
2. **Hand-drawn strokes**: each straight piece of that outline gets noised points near 50 % and 75 % of its
   length; each curved piece is resampled at regular intervals with jitter. A Catmull-Rom spline through
   these knots is the pen's path. Closed contours start at a random knot and close a little off target;
   round contours are over- or under-drawn (the pen lift).
3. **Ink**: one random stroke width per sketch, black on white."""),
code(r"""program = csg.parse("(- (+ (Quad 6 8 8 6 H) (Circle 4 B 6)) (Circle 2 6 8))")
size = 128
scale = size / GRID_UNITS
rng = random.Random(seed)

outline = sketcher.noisy_outline(program.root, random.Random(seed), size)
canvas = MaskCanvas(size)
noisy_fill = canvas.fill(outline)
knots = list(stroke_knots(outline, sketcher.style, scale, random.Random(seed + 1)))
sketch = sketch_env.observe(program, seed)

fig, axes = plt.subplots(1, 4, figsize=(12, 3.4))
panels = [(csg.display(csg.render(program)), "clean render (what success is judged on)"),
          (csg.display(noisy_fill), "1. noised primitives, exact CSG"),
          (csg.display(noisy_fill) * 0.25 + 0.75, "2. spline knots of each contour"),
          (csg.display(sketch), "3. the sketch (what the model sees)")]
for ax, (image, title) in zip(axes, panels):
    ax.imshow(image, interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.set_xticks([]); ax.set_yticks([])
for points, round_contour in knots:
    axes[2].plot(points[:, 0], points[:, 1], "o-", ms=2.5, lw=0.6,
                 color="tab:red" if round_contour else "tab:blue")
fig.suptitle(program.text, family="monospace", fontsize=9)
savefig(fig, "sketch_steps");"""),
md(r"""## Figure 10: one program, six sketches

Same program, six seeds. The seed is all that changes, so a test set can store it next to the program and
every method sees the same sketch."""),
code(r"""fig10_program = csg.parse("(+ (- (Quad 8 8 C 8 G) (Circle 3 8 8)) (+ (Circle 2 4 3) (Quad C 3 4 2 H)))")
images = [csg.display(csg.render(fig10_program))] + [
    sketch_env.display(sketch_env.observe(fig10_program, seed + k)) for k in range(6)]
titles = ["clean render"] + [f"sketch, seed {seed + k}" for k in range(6)]
fig = image_grid(images, titles, columns=7, cell=2.0, title_size=8)
fig.suptitle("Figure 10 · " + fig10_program.text, family="monospace", fontsize=8, y=1.02)
savefig(fig, "fig10_sketches");"""),
md(r"""### How close is the ink to the true outline?

For random training-like programs: the share of sketch ink within one grid unit (8 px) of the exact clean
outline (*precision*), and the share of the outline with sketch ink within one unit (*recall*). Recall is
below 1 where the pen lifts early or a tiny hole is drawn as a blob."""),
code(r"""def outline_mask(tree):
    canvas = MaskCanvas(size)
    canvas.canvas.drawPath(csg.renderer.path(tree.root, size),
                           skia.Paint(AntiAlias=False, Style=skia.Paint.kStroke_Style, StrokeWidth=1))
    return canvas.pixels > 0

def within(mask, radius):
    out, padded, (h, w) = mask.copy(), np.pad(mask, radius), mask.shape
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dx * dx + dy * dy <= radius * radius:
                out |= padded[radius + dy:radius + dy + h, radius + dx:radius + dx + w]
    return out

rng = random.Random(seed)
rows = []
while len(rows) < n_fidelity:
    tree = sketch_env.sample(rng, 2, 8)
    outline_px, ink = outline_mask(tree), sketch_env.observe(tree, rng)[..., 0] > 0.5
    if outline_px.sum() < 40 or not ink.any():
        continue
    for radius in (2, 4, 8):
        rows.append({"radius_px": radius,
                     "precision": (within(outline_px, radius) & ink).sum() / ink.sum(),
                     "recall": (within(ink, radius) & outline_px).sum() / outline_px.sum()})
fidelity = pd.DataFrame(rows).groupby("radius_px").mean().round(3)
save_table(fidelity, "sketch_fidelity")
fidelity"""),
md(r"""## 2. Visual complexity: the LZ4 score and Figure 11

`lz4_score(image)` is the LZ4-compressed size of the image binarised at 0.5 over its raw size: blank and
simple images compress well, busy ones do not. The hard test set keeps targets at or above the 95th
percentile of the training distribution's scores."""),
code(r"""train_scores = training_scores(csg, n_calibration, seed)
hard_header, hard_problems = testsets.load(project_root() / "results" / "testsets" / "csg2d_hard.jsonl")
hard_scores = np.array([p["lz4_score"] for p in hard_problems])
threshold = hard_header["lz4_threshold"]
print(f"training scores: n = {len(train_scores)}, 95th percentile here {np.percentile(train_scores, 95):.4f}; "
      f"threshold stored with the hard set {threshold:.4f}")

fig, ax = plt.subplots(figsize=(7, 3.6))
bins = np.linspace(min(train_scores.min(), hard_scores.min()), max(train_scores.max(), hard_scores.max()), 50)
ax.hist(train_scores, bins=bins, density=True, alpha=0.6, label=f"training distribution (n = {len(train_scores):,})")
ax.hist(hard_scores, bins=bins, density=True, alpha=0.6, label=f"hard test set (n = {len(hard_scores)})")
ax.axvline(threshold, color="k", ls="--", lw=1, label="95th percentile")
ax.set_xlabel("LZ4 incompressibility (compressed / raw size)")
ax.set_ylabel("density")
ax.set_title("Figure 11 · visual complexity of CSG2D targets")
ax.legend(fontsize=8)
savefig(fig, "fig11_complexity");"""),
code(r"""# What the score sees: training programs at increasing complexity.
rng = random.Random(seed + 2)
pool = [csg.sample(rng, 2, 8) for _ in range(200)]
scored = sorted(pool, key=lambda t: lz4_score(csg.render(t)))
picks = [scored[int(q * (len(scored) - 1))] for q in (0.0, 0.25, 0.5, 0.75, 0.95, 1.0)]
fig = image_grid([csg.display(csg.render(t)) for t in picks],
                 [f"score {lz4_score(csg.render(t)):.3f}, σ={t.sigma}" for t in picks], columns=6, title_size=8)
savefig(fig, "complexity_examples");"""),
md(r"""## 3. The shipped test sets

Each file starts with a header recording the generator's parameters and the command that regenerates it
byte for byte; each further line is a problem: program text, σ and its seed (for CSG2D-Sketch that seed also
draws the sketch)."""),
code(r"""folder = project_root() / "results" / "testsets"
summary = []
for name, spec in testsets.SHIPPED.items():
    header, problems = testsets.load(folder / name)
    sigmas = np.array([p["sigma"] for p in problems])
    summary.append({"file": name, "env": spec.env, "problems": len(problems), "hard": spec.hard,
                    "mean σ": sigmas.mean().round(2), "min σ": sigmas.min(), "max σ": sigmas.max(),
                    "candidates drawn": header["candidates_drawn"], "regenerate": header["regenerate"]})
summary = pd.DataFrame(summary)
summary"""),
code(r"""# Regeneration is byte-identical (the in-distribution CSG2D set; the others work the same way).
path = folder / "csg2d.jsonl"
header, problems = testsets.generate(testsets.SHIPPED["csg2d.jsonl"])
tmp = results_dir() / "csg2d_regenerated.jsonl"
testsets.write(tmp, header, problems)
same = tmp.read_bytes() == path.read_bytes()
tmp.unlink()
print("regenerated csg2d.jsonl is byte-identical:", same)
assert same"""),
code(r"""# Test programs are never training targets: a large sample of the training stream shares none.
for name in ("csg2d.jsonl", "csg2d_hard.jsonl", "tinysvg.jsonl"):
    spec = testsets.SHIPPED[name]
    _, problems = testsets.load(folder / name)
    overlap = testsets.training_overlap(problems, spec.env, n_overlap, seed)
    print(f"{name:18} shared with {n_overlap:,} training targets: {len(overlap)}")"""),
code(r"""# A look at each set: the first eight targets (sketch targets as the model sees them).
for name, spec in testsets.SHIPPED.items():
    env = tdlib.make_env(spec.env)
    _, problems = testsets.load(folder / name)
    shown = problems[:8]
    images = [env.display(env.observe(p["program"], p["seed"])) for p in shown]
    fig = image_grid(images, [p["program"] for p in shown], columns=8, cell=1.7, title_size=4.5)
    fig.suptitle(f"{name}: {spec.env}{' (hard)' if spec.hard else ''}", y=1.02)
    savefig(fig, "testset_" + name.replace(".jsonl", ""))
    plt.show()"""),
]
nb = nbf.v4.new_notebook(cells=cells, metadata={
    "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
    "language_info": {"name": "python"}})
nbf.write(nb, "notebooks/04_observations_and_test_sets.ipynb")
