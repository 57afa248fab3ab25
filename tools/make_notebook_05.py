"""Writes notebooks/05_training.ipynb (source, no outputs)."""
import nbformat as nbf

md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
cells = [
md(r"""# 05 · Training the networks

The tree-diffusion policy q(z_{t-1} | z_t, x_t; x₀) is a plain next-token model (§3.3, Figure 3): an
NF-ResNet reads three planes, `[current, target, |current − target|]`, into 4 prefix tokens; a decoder-only
transformer then reads the current program and writes one edit, `<EDIT> <POS k> replacement <EOS>`.
Training is supervised: every example is a noised program, a step of the edit path back to the target
(notebook 03), and the edit to predict.

This notebook shows
1. how one example and one batch are built, and the loss,
2. training: with `preset="smoke"` a tiny policy trains here in seconds; with `"cpu"` the shipped
   checkpoints in `results/checkpoints/` are loaded (set `retrain=True` to train them again, about an
   hour each on 2 cores),
3. the training curves of the shipped models (`figures/training_curves.png`),
4. decoded edits with before / after images, and the one-step table `results/tables/one_step.csv`."""),
code(r"""# Parameters (papermill injects new values below this cell).
preset = "cpu"    # "smoke" (seconds, for tests), "cpu" (the shipped checkpoints), "paper"
seed = 0
retrain = False   # cpu: train the shipped checkpoints again instead of loading them""",
     metadata={"tags": ["parameters"]}),
code(r"""import random
from pathlib import Path

import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
import torch

import tdlib
from tdlib import checkpoint
from tdlib.decode import Decoder
from tdlib.evaluate import checkpoint_metrics, image_reliance, images, mutation_problems
from tdlib.model import build_model, count_parameters
from tdlib.presets import SHIPPED_MODELS, preset as make_preset, shipped_command, shipped_folder
from tdlib.tasks import make_task
from tdlib.train import Trainer, main as train_main
from tdlib.plotting import savefig, save_table, image_grid, results_dir, wrap

torch.manual_seed(seed)
n_eval = {"smoke": 16, "cpu": 256, "paper": 256}[preset]
csg = tdlib.make_env("csg2d")"""),
md(r"""## 1. One example, one batch, the loss

`make_task("policy", "csg2d", ...)` turns example *i* of a run into tensors. Example *i* depends only on
the run's seed and *i*, so a resumed run sees exactly the batches an uninterrupted one would."""),
code(r"""model_config, train_config, example_config = make_preset("smoke" if preset == "smoke" else "cpu",
                                                          "policy", "csg2d")
task = make_task("policy", "csg2d", model_config, example_config, seed)
item = task.example(3)
words = [task.tokenizer.itos[t] for t in item["tokens"]]
context, edit = words[:item["loss_from"]], words[item["loss_from"]:]
print("context (the current program):", " ".join(context))
print("output (what the loss scores):", " ".join(edit))
planes = [item["current"], item["target"], np.abs(item["current"] - item["target"])]
fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.8))
for ax, plane, title in zip(axes, planes, ["current", "target", "|current − target|"]):
    ax.imshow(1 - plane.transpose(1, 2, 0)[..., 0], cmap="gray", vmin=0, vmax=1)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([]); ax.set_yticks([])
fig.suptitle(f"the three image planes at {model_config.image_size} px", fontsize=9)
savefig(fig, "training_example_planes");"""),
code(r"""batch = task.collate([task.example(i) for i in range(8)])
model = build_model(model_config)
loss, metrics = task.loss(model, batch)
print({k: tuple(v.shape) for k, v in batch.items()})
print(f"untrained: loss {loss.item():.3f} (uniform guess: ln V = {np.log(model_config.vocab_size):.3f}), "
      f"metrics {metrics}")
print(f"{count_parameters(model):,} parameters ({count_parameters(model.encoder):,} in the image encoder)")"""),
md(r"""The loss is cross-entropy on the edit tokens only (`<POS k>`, the replacement, `<EOS>`); the context
positions carry none. `first_acc` is the share of examples whose position is right, `exact` the share
whose whole edit is right.

## 2. Training

One command trains any of the networks: `tdlib train --env csg2d --model policy --preset cpu --out DIR`
(`--resume` continues a run exactly; `torchrun --nproc_per_node N -m tdlib.train ...` uses several
processes). Each checkpoint records the exact command, its configs and the git commit."""),
code(r"""if preset == "smoke":
    folder = results_dir() / "runs" / "smoke_policy"
    if (folder / checkpoint.RECORD_FILE).exists():
        import shutil
        shutil.rmtree(folder)
    smoke_model, smoke_train, smoke_examples = make_preset("smoke", "policy", "csg2d")
    trainer = Trainer(make_task("policy", "csg2d", smoke_model, smoke_examples, seed), smoke_train,
                      folder, progress=False)
    trainer.fit()
    runs = {"smoke_policy": folder}
else:
    if retrain:
        for name in SHIPPED_MODELS:
            train_main(shipped_command(name) + ["--no-progress"])
    runs = {name: shipped_folder(name) for name in SHIPPED_MODELS
            if (shipped_folder(name) / checkpoint.RECORD_FILE).exists()}
    missing = [name for name in SHIPPED_MODELS if name not in runs]
    if missing:
        print("not trained yet (no checkpoint shipped):", ", ".join(missing))
records = {name: checkpoint.read_record(folder) for name, folder in runs.items()}
pd.DataFrame([{"model": name, "step": r["step"], "examples seen": r["examples_seen"],
               "parameters": r["parameters"], "command": r["command"]}
              for name, r in records.items()])"""),
md(r"""## 3. Training curves

From each checkpoint's `train_log.csv` (loss, accuracies, examples/s) and `eval_log.csv` (held-out
metrics measured during training)."""),
code(r"""fig, axes = plt.subplots(len(runs), 3, figsize=(13, 2.8 * len(runs)), squeeze=False)
for (name, folder), (ax_loss, ax_acc, ax_eval) in zip(runs.items(), axes):
    log = pd.read_csv(folder / "train_log.csv")
    ax_loss.plot(log["step"], log["loss"], lw=1)
    ax_loss.set_yscale("log")
    ax_loss.set_title(f"{name}: training loss", fontsize=9)
    for column in ("token_acc", "first_acc", "exact", "mae"):
        if column in log:
            ax_acc.plot(log["step"], log[column], lw=1, label=column)
    ax_acc.legend(fontsize=7)
    ax_acc.set_title(f"{name}: training batches", fontsize=9)
    evals = pd.read_csv(folder / "eval_log.csv") if (folder / "eval_log.csv").exists() else None
    if evals is not None and len(evals):
        for column in evals.columns[1:]:
            ax_eval.plot(evals["step"], evals[column], "o-", ms=3, label=column)
        ax_eval.legend(fontsize=7)
    ax_eval.set_title(f"{name}: held-out metrics", fontsize=9)
    for ax in (ax_loss, ax_acc, ax_eval):
        ax.set_xlabel("step")
fig.tight_layout()
savefig(fig, "training_curves");"""),
md(r"""## 4. Decoded edits

Held-out problems: a target, and a start one small mutation away. The policy sees the current render and
the target, and writes one edit under grammar-constrained decoding (greedy). Solved when the clean render
of the result matches the target (IoU ≥ 0.99)."""),
code(r"""policy_name = "smoke_policy" if preset == "smoke" else "csg2d_policy"
if policy_name in runs:
    policy, record = checkpoint.load_model(runs[policy_name])
    decoder = Decoder(policy, task.tokenizer)
    size = policy.config.image_size
    problems = mutation_problems(csg, 6, 1, seed=seed + 100)
    starts, targets = [s for _, s in problems], [t for t, _ in problems]
    results = decoder.edits(starts, images(csg, starts, size), images(csg, targets, size))
    shown, titles = [], []
    for start, target, (edit, decoded) in zip(starts, targets, results):
        after = edit.apply(start)
        ok = csg.is_solved(csg.render(after), csg.render(target))
        shown += [csg.display(csg.render(start)), csg.display(csg.render(target)), csg.display(csg.render(after))]
        titles += ["before: " + start.text, "target: " + target.text,
                   ("solved: " if ok else "not solved: ") + edit.old.text + " → " + edit.new.text]
    fig = image_grid(shown, titles, columns=3, cell=2.6, title_size=6)
    savefig(fig, "decoded_edits")
else:
    print("no policy checkpoint to decode with")"""),
md(r"""### Does the policy read its images?

A policy can lower its loss a long way by learning only the prior over edits (which nodes tend to
change, which numbers are common). `image_reliance` scores held-out training examples three times: with
the images as given, with every target swapped for another example's, and with blank images. The gap
between the rows is what the policy takes from the pictures."""),
code(r"""if policy_name in runs:
    policy_task = make_task("policy", "csg2d", policy.config, checkpoint.example_config(record), seed)
    reliance = image_reliance(policy_task, policy, n=n_eval, seed=seed)
    save_table(reliance.round(3), "image_reliance", index=False)
    display(reliance.round(3))"""),
md(r"""### One step at a time, on held-out problems

For every shipped checkpoint: the policy's share of 1-, 2- and 3-mutation problems solved by one greedy
edit; the value network's Spearman correlation with the true path distance; the autoregressive baseline's
exact (and visual) reproduction of in-distribution targets; REPL Flow's next-step accuracy."""),
code(r"""rows = []
for name, folder in runs.items():
    for row in checkpoint_metrics(folder, n=n_eval, seed=seed):
        rows.append({"name": name, **{k: v for k, v in row.items() if k != "checkpoint"}})
one_step = pd.DataFrame(rows)
one_step["value"] = one_step["value"].round(3)
save_table(one_step, "one_step", index=False)
one_step"""),
md(r"""## 5. Recipes at equal CPU time

How much a policy learns per CPU-hour is the question on two cores (the paper trained for 3 days on
an A6000). `tools/policy_ab.py` trains a recipe for a fixed number of minutes on the shared
learning-rate schedule, from the same commit, and evaluates one greedy edit on the same 256 held-out
1- and 2-mutation problems along the way; every run is a row of `results/tables/recipe_runs.csv`
and its evaluations are `results/tables/recipe_curves.csv`. Held-out losses under the grammar mask
(`loss_masked`) are a softmax over the allowed tokens only, so they are lower by construction and
not comparable with unmasked ones; the solve rates are."""),
code(r"""from tdlib.plotting import project_root
tables = project_root() / "results" / "tables"  # the committed runs (read, never rewritten here)
if (tables / "recipe_runs.csv").exists():
    display(pd.read_csv(tables / "recipe_runs.csv"))
if (tables / "recipe_curves.csv").exists():
    curves = pd.read_csv(tables / "recipe_curves.csv")
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for recipe, curve in curves.groupby("recipe", sort=False):
        axes[0].plot(curve["train_minutes"], 100 * curve["solve_1"], "o-", ms=3, label=wrap(recipe, 48))
        axes[1].plot(curve["examples_seen"] / 1e6, 100 * curve["solve_1"], "o-", ms=3)
    axes[0].set_xlabel("training minutes (2-core CPU)")
    axes[1].set_xlabel("examples seen (millions)")
    for ax in axes:
        ax.set_ylabel("1-mutation problems solved by one edit (%)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    savefig(fig, "recipe_curves")
else:
    print("no recipe runs recorded yet")"""),
]
nb = nbf.v4.new_notebook(cells=cells, metadata={
    "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
    "language_info": {"name": "python"}})
nbf.write(nb, "notebooks/05_training.ipynb")
