"""Which programs the value network keeps in TD search's beam, against what the pixel difference
and an oracle would keep (:func:`tdlib.paper.value_studies.beam_rankings`).

    python tools/beam_rankings.py --problems 32 --budget 2000
    python tools/beam_rankings.py --policy results/training/RUN --value results/training/RUN

One row per search round goes into ``results/tables/beam_rankings.csv`` (replacing the rows of
the same test set, networks, problems, budget, beam and seed); notebook 10 summarises them.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from tdlib.checkpoint import read_record
from tdlib.env import make_env
from tdlib.methods import Models, default_model_folder
from tdlib.paper.value_studies import beam_rankings, summarise_beam_rankings
from tdlib.testsets import load

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "results" / "tables" / "beam_rankings.csv"


def _name(folder: Path) -> str:
    """A checkpoint as the table names it: relative to the project when inside it (a shipped
    network by its folder; tools/ship_candidate.py's ``--previous`` renames that folder, so the
    rows of a network shipped before are relabelled with it)."""
    folder = folder.resolve()
    return str(folder.relative_to(ROOT)) if folder.is_relative_to(ROOT) else str(folder)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--testset", type=Path,
                        default=ROOT / "results" / "testsets" / "csg2d_hard.jsonl")
    parser.add_argument("--problems", type=int, default=32, help="the first N problems (32)")
    parser.add_argument("--budget", type=int, default=2000, help="expansions per problem (2000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--beam", type=int, default=64, help="programs the beam keeps (64)")
    parser.add_argument("--policy", type=Path, help="policy checkpoint (default: the shipped one)")
    parser.add_argument("--value", type=Path, help="value checkpoint (default: the shipped one)")
    parser.add_argument("--table", type=Path, default=TABLE)
    args = parser.parse_args(argv)
    for name in ("problems", "budget", "beam"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, not {getattr(args, name)}")
    header, problems = load(args.testset)
    env = make_env(header["spec"]["env"])
    folders = {kind: folder for kind, folder in (("policy", args.policy), ("value", args.value))
               if folder is not None}
    for kind, folder in folders.items():
        if read_record(folder).get("kind") != kind:
            parser.error(f"--{kind} {folder} is not a {kind} checkpoint")
    rounds = beam_rankings(env, problems[:args.problems], Models(env, folders), args.budget,
                           args.seed, args.beam, progress=True)
    named = {kind: folders.get(kind) or default_model_folder(env.name, kind)
             for kind in ("policy", "value")}
    key = {"testset": args.testset.name, "policy": _name(named["policy"]),
           "value": _name(named["value"]),
           "problems": args.problems, "budget": args.budget, "beam": args.beam, "seed": args.seed}
    for column, (name, value) in enumerate(key.items()):
        rounds.insert(column, name, value)
    table = rounds
    if args.table.exists():
        old = pd.read_csv(args.table)
        same = np.logical_and.reduce([old[name] == value for name, value in key.items()])
        table = pd.concat([old[~same], rounds], ignore_index=True)
    args.table.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.table, index=False, float_format="%.4g")
    print(summarise_beam_rankings(rounds, args.beam).round(3).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
