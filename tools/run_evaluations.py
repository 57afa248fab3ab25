"""Run the committed evaluations (``results/eval/``) in parallel single-threaded workers.

Each job is one ``tdlib evaluate`` call (one run of a plan of :mod:`tdlib.paper.plans`: one
method, one scoring, one seed, one test set); its CSV goes to
``results/eval/<testset>_<method>[-<score>]_b<budget>_s<seed>.csv`` and every job resumes, so
the same command continues after an interruption, in this session or the next.
Single-threaded workers, one per core, beat one process with two torch threads on these small
networks (the search loop is Python-bound between small forward passes).

    python tools/run_evaluations.py --plan csg2d --seeds 0 1 2 --budget 1000 --workers 2
    python tools/run_evaluations.py --plan csg2d --dry-run     # print the commands only
    python tools/run_evaluations.py --queue csg2d/0 csg2d_hard/0/td-search-value,ar  # in order

A ``--queue`` entry is ``plan/seeds[/labels]``: seeds comma-separated, labels (``td-search-value``,
``ar``, ``random-search-value``, ``repl``, ``td-rollout``, ...; ``full:td-rollout`` for an arm of
the Rainbow plan) the runs of the plan to keep.  ``--candidate policy=FOLDER`` evaluates a
candidate network instead of the shipped one, into a staging ``--output-dir`` that
``tools/ship_candidate.py`` ships together with the network.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tdlib.methods import SearchConfig, models_used
from tdlib.model_config import KINDS
from tdlib.paper.plans import PLANS

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT / "results" / "eval"


def command(plan_run, budget, seed, limit=None, folder=EVAL, candidates=None) -> list[str]:
    """The worker process of one run of a plan: ``tdlib evaluate`` with the run's arguments,
    and ``--<kind> <folder>`` for each candidate network (kind -> folder) the run reads."""
    reads = models_used(SearchConfig(plan_run.method, score=plan_run.score))
    chosen = [arg for kind, folder in (candidates or {}).items() if kind in reads
              for arg in (f"--{kind}", str(folder))]
    return [sys.executable, "-m", "tdlib.evaluation",
            *plan_run.evaluate_args(budget, seed, folder, limit), *chosen]


def run_job(cmd: list[str]) -> int:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = Path(cmd[cmd.index("-o") + 1])
    print("start", out.name, flush=True)
    rc = subprocess.call(cmd, env=env, cwd=ROOT)
    print("done " if rc == 0 else f"FAILED ({rc})", out.name, flush=True)
    return rc


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plan", nargs="+", default=["csg2d"], choices=sorted(PLANS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--budget", type=int, default=1000)
    parser.add_argument("--limit", type=int, help="only the first N problems of each set")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--output-dir", type=Path, default=EVAL,
                        help="where the CSV files go (default: results/eval)")
    parser.add_argument("--queue", nargs="+", metavar="PLAN/SEEDS[/LABELS]",
                        help="run these, in order, instead of --plan and --seeds")
    parser.add_argument("--candidate", nargs="+", default=[], metavar="KIND=FOLDER",
                        help="evaluate this checkpoint instead of the shipped network of its "
                             "kind (policy, value, ar, repl) in every run that reads one; the "
                             "files go to a staging --output-dir (tools/ship_candidate.py)")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    candidates = {}
    for item in args.candidate:
        kind, _, folder = item.partition("=")
        if kind not in KINDS or not folder:
            parser.error(f"--candidate {item!r} is not KIND=FOLDER with KIND one of "
                         f"{', '.join(KINDS)}")
        if not (ROOT / folder / "model.json").exists():
            parser.error(f"--candidate {item!r}: {folder} holds no checkpoint")
        candidates[kind] = folder
    if candidates and args.output_dir.resolve() == EVAL.resolve():
        parser.error("candidates are evaluated into a staging --output-dir, not results/eval: "
                     "its files must read the shipped networks")
    args.output_dir = args.output_dir.resolve()  # the workers run from the project root
    # seed-major order: every method's first seed is done before any second seed begins
    queue = args.queue or [f"{plan}/{','.join(map(str, args.seeds))}" for plan in args.plan]
    jobs = []
    for entry in queue:
        plan, seeds, *labels = entry.split("/") + ([] if "/" in entry else [""])
        if plan not in PLANS:
            parser.error(f"unknown plan {plan!r} in {entry!r}; plans: {', '.join(PLANS)}")
        try:
            seed_list = [int(x) for x in seeds.split(",")]
        except ValueError:
            parser.error(f"{entry!r}: seeds are comma-separated integers (csg2d/0,1,2)")
        known = {plan_run.label for plan_run in PLANS[plan]}
        wanted = set(labels[0].split(",")) if labels else known
        if wanted - known:
            parser.error(f"{entry!r}: no run {', '.join(sorted(wanted - known))} in plan {plan}; "
                         f"its runs: {', '.join(sorted(known))}")
        if candidates and any(plan_run.policy for plan_run in PLANS[plan]
                              if plan_run.label in wanted):
            parser.error(f"{entry!r}: runs of an arm name their own policy; no --candidate")
        jobs += [command(plan_run, args.budget, seed, args.limit, args.output_dir, candidates)
                 for seed in seed_list for plan_run in PLANS[plan] if plan_run.label in wanted]
    if args.dry_run:
        print("\n".join(" ".join(c) for c in jobs))
        return 0
    args.output_dir.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(args.workers) as pool:
        failed = sum(rc != 0 for rc in pool.map(run_job, jobs))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
