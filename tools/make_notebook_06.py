"""Writes notebooks/06_baselines.ipynb (source, no outputs)."""
import nbformat as nbf

md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
cells = [
md(r"""# 06 · The baselines: autoregressive (CSGNet) and REPL Flow

The paper compares tree diffusion with two ways of writing a program from an image (§4.2):

* **Autoregressive** (the paper's CSGNet re-implementation): the same network as the policy, but the
  current image is blank and there is no context; it writes the whole program token by token, under the
  same grammar-constrained decoding, so every output parses.
* **REPL Flow** (Ellis et al. 2019), CSG2D only: a program is a left-to-right list of shapes, each joined
  to what comes before by its operator. The network sees the target and the render of the shapes so far
  (and their text), and writes the next shape with its operator.

With `preset="smoke"` both are trained here for a few seconds (the samples are noise, the mechanics are
the point); with `"cpu"` the shipped checkpoints are loaded."""),
code(r"""# Parameters (papermill injects new values below this cell).
preset = "cpu"   # "smoke" (seconds, for tests), "cpu" (the shipped checkpoints), "paper"
seed = 0""", metadata={"tags": ["parameters"]}),
code(r"""import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
import torch

import tdlib
from tdlib import checkpoint
from tdlib.decode import Decoder
from tdlib.evaluate import images, held_out_rng
from tdlib.presets import preset as make_preset, shipped_folder
from tdlib.repl import REPLSteps, rollout
from tdlib.tasks import make_task
from tdlib.tokens import Tokenizer
from tdlib.train import Trainer
from tdlib.plotting import savefig, save_table, image_grid, results_dir

torch.manual_seed(seed)
csg = tdlib.make_env("csg2d")
n_targets = {"smoke": 8, "cpu": 256, "paper": 256}[preset]

def baseline(kind):
    # The shipped checkpoint (cpu), or a few seconds of smoke training.
    if preset != "smoke":
        folder = shipped_folder(f"csg2d_{kind}")
        if (folder / checkpoint.RECORD_FILE).exists():
            return checkpoint.load_model(folder)[0]
        print(f"no shipped csg2d_{kind} checkpoint: training a smoke-size one instead")
    model_config, train_config, example_config = make_preset("smoke", kind, "csg2d")
    task = make_task(kind, "csg2d", model_config, example_config, seed)
    folder = results_dir() / "runs" / f"smoke_{kind}"
    import shutil
    shutil.rmtree(folder, ignore_errors=True)
    trainer = Trainer(task, train_config, folder, progress=False)
    trainer.fit()
    return trainer.model.eval()"""),
md(r"""## What each baseline sees

REPL Flow flattens a program into its shapes in reading order. The left fold of that list is the program
itself only when the program is left-deep; for `(- A (+ B C))` the fold is `(+ (- A B) C)`, a different
shape: REPL Flow can only build left-deep programs."""),
code(r"""steps = REPLSteps(csg.grammar)
example = csg.parse("(- (Quad 8 8 C C G) (+ (Circle 3 5 5) (Circle 3 B B)))")
shapes = steps.flatten(example.root)
for s in shapes:
    print(("    " if s.op is None else f"  {s.op.text} ") + s.shape.text)
fold = steps.fold(shapes)
print("fold:", fold.text)
panels = [csg.display(csg.render(example)), csg.display(csg.render(fold))]
panels += [csg.display(csg.render(steps.fold(shapes[:k]))) for k in range(1, len(shapes) + 1)]
titles = ["program", "its left fold"] + [f"REPL state after {k} shape(s)" for k in range(1, len(shapes) + 1)]
fig = image_grid(panels, titles, columns=len(panels), cell=2.2, title_size=7)
savefig(fig, "repl_flattening");"""),
md(r"""## Autoregressive samples beside their targets

Greedy decoding and three samples at temperature 0.5 for held-out in-distribution targets."""),
code(r"""ar = baseline("ar")
tok = Tokenizer(csg.grammar, ar.config.max_positions)
ar_decoder = Decoder(ar, tok)
size = ar.config.image_size
r = held_out_rng(seed, "notebook06")
targets = [csg.sample(r, 2, 8) for _ in range(4)]
target_images = images(csg, targets, size)
generator = torch.Generator().manual_seed(seed)
greedy = ar_decoder.programs(target_images)
samples = [ar_decoder.programs(target_images, temperature=0.5, generator=generator) for _ in range(3)]
panels, titles = [], []
for i, target in enumerate(targets):
    panels.append(csg.display(csg.render(target)))
    titles.append("target: " + target.text)
    for label, decoded in [("greedy", greedy)] + [(f"T=0.5 #{j + 1}", s) for j, s in enumerate(samples)]:
        node = decoded[i][0]
        ok = csg.is_solved(csg.render(node), csg.render(target))
        panels.append(csg.display(csg.render(node)))
        titles.append(f"{label}{' ✓' if ok else ''}: {node.text}")
fig = image_grid(panels, titles, columns=5, cell=2.3, title_size=5.5)
savefig(fig, "baseline_ar_samples");"""),
md(r"""## REPL Flow roll-outs

From a blank canvas, the REPL policy adds one shape at a time (greedy). Each step is one renderer call,
so we keep the prefix whose render matches the target best."""),
code(r"""repl = baseline("repl")
repl_decoder = Decoder(repl, Tokenizer(csg.grammar, repl.config.max_positions))
size = repl.config.image_size
trajectories = rollout(repl_decoder, csg, images(csg, targets, size), max_shapes=6)
panels, titles = [], []
for target, programs in zip(targets, trajectories):
    panels.append(csg.display(csg.render(target)))
    titles.append("target: " + target.text)
    for k, program in enumerate(programs[:4]):
        panels.append(csg.display(csg.render(program)))
        titles.append(f"after {k + 1}: {program.text}")
fig = image_grid(panels, titles, columns=5, cell=2.3, title_size=5.5)
savefig(fig, "baseline_repl_rollouts");"""),
md(r"""## How often does one pass solve an in-distribution target?

The autoregressive baseline's greedy program, and REPL Flow's best greedy prefix (up to 8 shapes), on
held-out CSG2D targets (2-8 primitives). Search (a later notebook) spends a budget of renderer calls on top of
these single passes."""),
code(r"""def iou(a, b):
    a, b = a > 0.5, b > 0.5
    union = (a | b).sum()
    return 1.0 if union == 0 else (a & b).sum() / union

r = held_out_rng(seed, "notebook06-eval")
eval_targets = [csg.sample(r, 2, 8) for _ in range(n_targets)]
rows = []
for start in range(0, n_targets, 64):
    chunk = eval_targets[start:start + 64]
    ar_out = ar_decoder.programs(images(csg, chunk, ar.config.image_size))
    repl_out = rollout(repl_decoder, csg, images(csg, chunk, repl.config.image_size), max_shapes=8)
    for target, (ar_node, _), programs in zip(chunk, ar_out, repl_out):
        clean = csg.render(target)
        best = max(programs, key=lambda p: iou(csg.render(p), clean))
        rows.append({"ar_solved": csg.is_solved(csg.render(ar_node), clean),
                     "ar_exact": ar_node == target.root,
                     "repl_solved": csg.is_solved(csg.render(best), clean),
                     "repl_best_iou": iou(csg.render(best), clean),
                     "target_left_deep": steps.fold(steps.flatten(target.root)) == target.root})
single_pass = pd.DataFrame(rows)
summary = single_pass.mean().round(3).rename("share").to_frame()
summary.loc["targets"] = len(single_pass)
save_table(summary, "baselines_single_pass")
summary"""),
]
nb = nbf.v4.new_notebook(cells=cells, metadata={
    "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
    "language_info": {"name": "python"}})
nbf.write(nb, "notebooks/06_baselines.ipynb")
