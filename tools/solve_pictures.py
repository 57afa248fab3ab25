"""``tdlib solve`` at its defaults on pictures no tdlib renderer drew, and on test-set programs.

    python tools/solve_pictures.py            # the picture suite -> results/tables/picture_suite.csv
    python tools/solve_pictures.py --testset  # the first 64 CSG2D test problems
                                              # -> results/tables/solve_in_distribution.csv

The suite's pictures (tdlib.pictures.SUITE) are drawn into results/pictures/ when missing.
Each row records the solver's answer beside the hand-written reference (picture suite) or the
search's own program before refinement (test set), with the seconds it took.  Run it single-
threaded (OMP_NUM_THREADS=1) for timings comparable with the README's.
"""

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

from tdlib.env import make_env
from tdlib.layout import results_dir
from tdlib.pictures import meets_bar, solve_suite
from tdlib.solver import solve


def write_rows(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {path} ({len(rows)} rows)")


def solve_testset(limit: int, seed: int) -> list[dict]:
    env = make_env("csg2d")
    lines = (results_dir() / "testsets" / "csg2d.jsonl").read_text().splitlines()[1:1 + limit]
    rows = []
    for line in lines:
        problem = json.loads(line)
        result = solve(env, program=problem["program"], seed=seed)
        target = env.render(problem["program"])
        searched = env.parse(result.searched)
        rows.append({
            "index": problem["index"],
            "search_solved": int(env.is_solved(env.render(searched), target)),
            "search_error": float(np.abs(env.render(searched) - target).mean()),
            "search_primitives": searched.sigma,
            "solved": int(result.solved), "error": result.score,
            "primitives": result.primitives, "expansions": result.expansions,
            "seconds": round(result.seconds, 1), "program": result.program,
        })
        print(f"{problem['index']}: search {'solved' if rows[-1]['search_solved'] else '-'}, "
              f"answer {'solved' if result.solved else '-'} ({result.seconds:.1f} s)", flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--testset", action="store_true",
                        help="solve the first --limit CSG2D test problems instead of the pictures")
    parser.add_argument("--limit", type=int, default=64, help="test problems (64)")
    parser.add_argument("--seed", type=int, default=0, help="search seed (0)")
    args = parser.parse_args(argv)
    tables = results_dir() / "tables"
    if args.testset:
        write_rows(solve_testset(args.limit, args.seed), tables / "solve_in_distribution.csv")
        return 0
    rows = solve_suite(results_dir() / "pictures", args.seed, progress=False)
    for row in rows:
        print(f"{row['picture']:16s} error {row['error']:.4f} (reference "
              f"{row['reference_error']:.4f}), {row['primitives']} primitives (reference "
              f"{row['reference_primitives']}), {row['seconds']} s")
    print(f"{sum(map(meets_bar, rows))} of {len(rows)} no worse than the reference")
    write_rows(rows, tables / "picture_suite.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
