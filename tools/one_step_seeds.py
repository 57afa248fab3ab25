"""One greedy edit of a policy checkpoint on several disjoint sets of held-out problems.

    python tools/one_step_seeds.py results/training/csg2d_policy_footprints \\
        --recipe "cpu recipe + footprints, long run" --seeds 0 1 2 3

Each seed is its own set of ``--n`` problems of 1, 2 and 3 mutations (the one-step table's
problems are seed 0).  A row per seed is appended to ``results/tables/recipe_one_step.csv``,
which notebook 10 plots as the mean over the seeds with every seed's dot.
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
                        help="held-out problem sets (0 1 2 3)")
    parser.add_argument("--n", type=int, default=256, help="problems per seed and mutation count")
    parser.add_argument("--table", type=Path, default=TABLE, help="the CSV to append to")
    args = parser.parse_args(argv)
    if read_record(args.checkpoint).get("kind") != "policy":
        parser.error(f"{args.checkpoint} is not a policy checkpoint")
    step = read_record(args.checkpoint).get("step")
    rows = []
    for seed in tqdm(args.seeds, desc="seeds"):
        found = {r["metric"]: r["value"] for r in checkpoint_metrics(args.checkpoint, args.n, seed)}
        rows.append({"recipe": args.recipe, "checkpoint": args.checkpoint, "step": step,
                     "seed": seed, "n": args.n,
                     **{k: f"{found[k]:.4f}" for k in FIELDS[5:]}})
        print(rows[-1])
    new = not args.table.exists()
    with open(args.table, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS, lineterminator="\n")
        if new:
            writer.writeheader()
        writer.writerows(rows)
    means = {k: sum(float(r[k]) for r in rows) / len(rows) for k in FIELDS[5:]}
    print("mean over seeds:", {k: round(v, 4) for k, v in means.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
