"""One greedy edit of a policy checkpoint on several disjoint sets of held-out problems.

    python tools/one_step_seeds.py results/training/csg2d_policy_footprints \\
        --recipe "cpu recipe + footprints, long run" --seeds 0 1 2 3

Each seed draws its own set of ``--n`` problems of 1, 2 and 3 mutations (the one-step table's
problems are seed 0).  A row per seed goes into ``results/tables/recipe_one_step.csv``, replacing
a row of the same recipe, checkpoint and seed; notebook 10 plots the mean over the seeds with
every seed's dot.
"""

import argparse
import csv
import sys
from pathlib import Path

from tqdm import tqdm

from tdlib.checkpoint import read_record
from tdlib.metrics import checkpoint_metrics

TABLE = Path(__file__).resolve().parents[1] / "results" / "tables" / "recipe_one_step.csv"
FIELDS = ["recipe", "checkpoint", "step", "seed", "n", "solved_1_mutation", "solved_2_mutation",
          "solved_3_mutation"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", help="policy checkpoint folder")
    parser.add_argument("--recipe", required=True, help="the row's name in the table")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3],
                        help="held-out problem sets, distinct (0 1 2 3)")
    parser.add_argument("--n", type=int, default=256, help="problems per seed and mutation count")
    parser.add_argument("--table", type=Path, default=TABLE, help="the CSV to append to")
    args = parser.parse_args(argv)
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds repeats a seed: {args.seeds}")
    record = read_record(args.checkpoint)
    if record.get("kind") != "policy":
        parser.error(f"{args.checkpoint} is not a policy checkpoint")
    step = record.get("step")
    rows = []
    for seed in tqdm(args.seeds, desc="seeds"):
        found = {r["metric"]: r["value"] for r in checkpoint_metrics(args.checkpoint, args.n, seed)}
        rows.append({"recipe": args.recipe, "checkpoint": args.checkpoint, "step": step,
                     "seed": seed, "n": args.n,
                     **{k: f"{found[k]:.4f}" for k in FIELDS[5:]}})
        print(rows[-1])
    kept = []
    if args.table.exists() and args.table.stat().st_size:
        with open(args.table, newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames != FIELDS:
                raise SystemExit(f"{args.table} has columns {reader.fieldnames}, not {FIELDS}")
            fresh = {(r["recipe"], r["checkpoint"], str(r["seed"])) for r in rows}
            kept = [r for r in reader if (r["recipe"], r["checkpoint"], r["seed"]) not in fresh]
    with open(args.table, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(kept + rows)
    means = {k: sum(float(r[k]) for r in rows) / len(rows) for k in FIELDS[5:]}
    print("mean over seeds:", {k: round(v, 4) for k, v in means.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
