"""Recipe runs of cpu-preset policy (or value) variants at a fixed CPU budget, recorded.

    python tools/policy_ab.py runs/base --name base --steps 400000 --minutes 30
    python tools/policy_ab.py runs/wide --name "d 96" --steps 400000 --minutes 30 d_model=96
    python tools/policy_ab.py runs/wide --name "d 96" --steps 400000 --minutes 60 --resume \
        d_model=96

The cpu preset's policy is the recipe this tool chose (nf_micro, d 64, 16 image tokens, prefix-LM
attention, content pointer, grammar-masked loss).  The overrides a row of the tables records are
against the cpu preset the run was made with, which its checkpoint's model.json holds whole.

Each ``key=value`` overrides a field of the cpu preset's ModelConfig (Python literals);
``examples.key=value`` one of its ExampleConfig, ``train.key=value`` one of its TrainConfig.
``--steps`` sets the length of the learning-rate schedule: runs compared at equal minutes share
it, so that the comparison is of what each learns in the same time on the same schedule.  The
run evaluates every ``--eval-every`` steps and when its time is up (one greedy edit on 256
held-out 1- and 2-mutation problems), then measures :func:`tdlib.metrics.image_reliance` on
512 held-out examples and appends a row to ``results/tables/recipe_runs.csv`` (recipe,
minutes, examples seen, held-out loss, one-edit solve rates, image-reliance gap), and its
evaluations along the way to ``results/tables/recipe_curves.csv`` (the learning curves).

With ``--kind value`` the run trains a value network and records, in
``results/tables/value_recipe_runs.csv``, its Spearman correlation with the true path distance on
1,024 held-out pairs beside that of the pixel difference on the same pairs:

    python tools/policy_ab.py runs/value_spatial --kind value --name spatial --steps 20000 \
        --minutes 30 prefix_tokens=16 encoder_stride=16 value_layers=2
"""

import argparse
import csv
import shlex
from dataclasses import replace
from pathlib import Path

import pandas as pd

from tdlib.checkpoint import read_record, trained_before
from tdlib.evaluation import checkpoint_name
from tdlib.metrics import image_reliance, pixel_spearmans, value_spearmans
from tdlib.presets import apply_overrides, preset
from tdlib.tasks import make_task
from tdlib.trainer import Trainer

TABLES = Path(__file__).resolve().parents[1] / "results" / "tables"
RUNS_TABLE = TABLES / "recipe_runs.csv"
VALUE_RUNS_TABLE = TABLES / "value_recipe_runs.csv"
CURVES_TABLE = TABLES / "recipe_curves.csv"


def record_run(row: dict, table: Path = RUNS_TABLE) -> None:
    """Append ``row`` under the table's existing header (its columns must be the row's keys)."""
    new = not table.exists() or table.stat().st_size == 0
    fieldnames = list(row)
    if not new:
        with open(table, newline="") as f:
            header = next(csv.reader(f))
        if sorted(header) != sorted(row):
            print(row)  # the run's result, not lost with the refusal
            raise ValueError(f"{table} has columns {header}, the row {sorted(row)}")
        fieldnames = header
    with open(table, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fieldnames)
        if new:
            writer.writeheader()
        writer.writerow(row)


def record_curve(recipe: str, eval_log: Path, table: Path = CURVES_TABLE) -> None:
    """Replace the recipe's rows of the learning-curve table by its run's evaluations, counted
    from scratch: a run started from another policy's weights adds that policy's steps,
    examples and minutes (``checkpoint.trained_before``)."""
    curve = pd.read_csv(eval_log)
    before = trained_before(read_record(Path(eval_log).parent))
    curve["step"] += before["step"]
    curve["examples_seen"] += before["examples_seen"]
    curve["train_minutes"] = (curve["train_minutes"] + before["train_seconds"] / 60).round(2)
    curve.insert(0, "recipe", recipe)
    if table.exists():
        old = pd.read_csv(table)
        curve = pd.concat([old[old["recipe"] != recipe], curve], ignore_index=True)
    curve.to_csv(table, index=False)


def record_value_run(name, folder, trainer, task, overrides, pairs: int = 1024) -> None:
    trainer.model.eval()
    size, config = task.model_config.image_size, task.example_config
    row = {"recipe": name, "env": task.env_name, "folder": folder,
           "minutes": round(trainer.seconds / 60, 1), "step": trainer.step,
           "examples_seen": trainer.step * trainer.config.batch_size,
           "pairs": pairs,
           **{metric: round(value, 4) for metric, value in
              value_spearmans(trainer.model, task.env, pairs, size, 0, config).items()},
           **{metric: round(value, 4) for metric, value in
              pixel_spearmans(task.env, pairs, size, 0, config).items()},
           "overrides": overrides}
    print(row)
    record_run(row, VALUE_RUNS_TABLE)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", help="checkpoint folder (new, or with --resume an existing one)")
    parser.add_argument("overrides", nargs="*",
                        help="ModelConfig field=value, examples.field=value or train.field=value")
    parser.add_argument("--name", required=True, help="the recipe's name in recipe_runs.csv")
    parser.add_argument("--steps", type=int, required=True, help="length of the lr schedule")
    parser.add_argument("--minutes", type=float, help="train this long in this call")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--env", default="csg2d")
    parser.add_argument("--kind", default="policy", choices=("policy", "value"))
    parser.add_argument("--eval-every", type=int, default=4000)
    args = parser.parse_intermixed_args()
    if Path(args.out).exists() and not args.resume:
        parser.error(f"{args.out} exists; choose a new folder or pass --resume")
    model, train, examples = preset("cpu", args.kind, args.env)
    # the tool's schedule first, so that a train.* override (a warm restart, an lr) wins over it
    train = replace(train, steps=args.steps, eval_every=args.eval_every, eval_problems=256,
                    checkpoint_every=1000)
    model, train, examples = apply_overrides(model, train, examples, args.overrides)
    task = make_task(args.kind, args.env, model, examples, train.seed)
    folder = checkpoint_name(args.out)  # relative to the project, as the tables record folders
    trainer = Trainer(task, train, args.out, resume=args.resume, progress=True,
                      command="python tools/policy_ab.py " + " ".join(shlex.quote(a) for a in (
                          [folder, "--name", args.name, "--steps", str(args.steps)]
                          + args.overrides)))
    trainer.fit(max_seconds=None if args.minutes is None else 60 * args.minutes)
    print((trainer.out / "eval_log.csv").read_text())
    if args.kind == "value":
        record_value_run(args.name, folder, trainer, task, " ".join(args.overrides))
        return
    reliance = image_reliance(task, trainer.model, 512).set_index("images")
    print(reliance.round(3).to_string())
    last = pd.read_csv(trainer.out / "eval_log.csv").iloc[-1]
    record_curve(args.name, trainer.out / "eval_log.csv")
    record_run({"recipe": args.name, "folder": folder, "minutes": round(trainer.seconds / 60, 1),
                "step": trainer.step, "examples_seen": trainer.step * train.batch_size,
                "heldout_loss": round(reliance.loc["given", "loss"], 4),
                "loss_masked": examples.masked_loss,  # a loss over allowed tokens only is lower
                "solve_1": last["solve_1"], "solve_2": last["solve_2"],
                "reliance_gap_blank": round(reliance.loc["blank", "loss"]
                                            - reliance.loc["given", "loss"], 4),
                "overrides": " ".join(args.overrides)})


if __name__ == "__main__":
    main()
