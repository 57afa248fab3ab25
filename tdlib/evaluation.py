"""``tdlib evaluate``: one search method over a whole test set, one CSV row per problem.

``tdlib evaluate --method td-search --testset results/testsets/csg2d_hard.jsonl --budget 5000
--seed 0 -o results/eval/td_search_hard_s0.csv`` writes one row per problem: index, solved,
expansions to solve (empty if unsolved), expansions spent, lowest pixel error reached, best
program, seconds.  Rows are appended as problems finish, so Ctrl-C keeps them, and ``--resume``
skips the problems a file already holds (``<file>.json`` records the settings that made its rows,
with the training step and weights' hash of each network read; a resume with other settings, or
after a model was retrained, is refused).  The models default to the shipped checkpoints of the
language (``results/checkpoints/<env>_policy`` etc.).  The methods themselves live in
:mod:`tdlib.methods`.
"""

from __future__ import annotations

import argparse
import csv
import fcntl
import hashlib
import json
import sys
from dataclasses import asdict, fields
from pathlib import Path

from tqdm import tqdm

from tdlib import testsets
from tdlib.arguments import device, non_negative_int, positive_int
from tdlib.env import make_env
from tdlib.layout import project_root
from tdlib.methods import (METHODS, SCORES, Models, SearchConfig, default_model_folder,
                           models_used, solve_problem)

FIELDS = ("index", "solved", "expansions", "spent", "best_error", "best_program", "seconds")


def model_versions(env, models: Models, config: SearchConfig) -> dict:
    """Kind -> the training step, examples seen and weights' content hash of the checkpoint each
    network comes from, so that a resume after a model is retrained (even to the same step) is
    refused instead of mixing rows of two models."""
    versions = {}
    for kind in models_used(config):
        folder = Path(models.folders.get(kind) or default_model_folder(env.name, kind))
        record = folder / "model.json"
        if record.exists():
            data = json.loads(record.read_text())
            versions[kind] = {"step": data.get("step"), "examples_seen": data.get("examples_seen")}
            weights = folder / "model.safetensors"
            if weights.exists():
                versions[kind]["weights_sha256"] = file_sha256(weights)
    return versions


def checkpoint_name(folder: str | Path) -> str:
    """A checkpoint folder as a run's settings record it: relative to the project root when it
    lies inside it (so a clone elsewhere reads the same settings), else as given."""
    folder = Path(folder).resolve()
    try:
        return str(folder.relative_to(project_root()))
    except ValueError:
        return str(folder)


def finished_indices(path: Path) -> set[int]:
    if not path.exists() or not path.stat().st_size:
        return set()
    with open(path) as f:
        return {int(row["index"]) for row in csv.DictReader(f)}


def drop_torn_row(f) -> bool:
    """Cut a row that was being written when a run died (a full disk, a kill) from the open
    file ``f``: everything after its last newline.  True if one was cut."""
    f.seek(0, 2)
    size = f.tell()
    if size == 0:
        return False
    f.seek(0)
    data = f.read()
    if data.endswith("\n"):
        return False
    f.seek(0)
    f.truncate(len(data[:data.rfind("\n") + 1].encode()))
    f.seek(0, 2)
    return True


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _lock(f, out: Path) -> None:
    """Hold ``out`` for this process alone until it ends (two runs writing one file would each
    write every problem)."""
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise ValueError(f"{out} is being written by another evaluation; wait for it to end "
                         "or choose another file") from None


def evaluate_testset(testset: str | Path, config: SearchConfig, out: str | Path,
                     models: Models | None = None, limit: int | None = None,
                     resume: bool = False, progress: bool = True) -> Path:
    """Run ``config`` on every problem of a test set (the first ``limit``), one CSV row each.

    The file's settings (``<out>.json``: test set and its content hash, method and search
    settings, network versions) must match for ``resume``; a row cut short by an interrupted
    run is dropped and run again; a file another evaluation is writing is refused."""
    header, problems = testsets.load(testset)
    env = make_env(header["spec"]["env"])
    models = models or Models(env)
    problems = problems[:limit] if limit is not None else problems
    out = Path(out)
    if out.is_dir():
        raise ValueError(f"{out} is a folder; -o names the CSV file to write")
    if out.exists() and out.stat().st_size and not resume:
        raise FileExistsError(f"{out} exists; pass --resume to continue it or choose another file")
    if limit is not None and limit < 0:
        raise ValueError(f"--limit must be >= 0, not {limit}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OSError(20, "a file is in the way of its folder", str(out)) from None
    with open(out, "a+", newline="") as f:
        _lock(f, out)
        if drop_torn_row(f):
            print(f"{out}: dropped a row cut short by an interrupted run", file=sys.stderr)
        done = finished_indices(out)
        _check_settings(out, testset, config, models, env, done)
        todo = [p for p in problems if int(p["index"]) not in done]
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        if f.tell() == 0:  # a new (or header-less) file; a resumed one has its header
            writer.writeheader()
            f.flush()  # a reader sees a header, not an empty file, while the first row runs
        solved, total = 0, 0
        bar = tqdm(todo, disable=not progress, desc=f"{config.method} {env.name}",
                   dynamic_ncols=True)
        for problem in bar:
            outcome = solve_problem(env, problem, models, config)
            writer.writerow({"index": problem["index"], "solved": int(outcome.solved),
                             "expansions": outcome.expansions if outcome.solved else "",
                             "spent": outcome.expansions, "best_error": f"{outcome.best_error:.6f}",
                             "best_program": outcome.best_program,
                             "seconds": f"{outcome.seconds:.2f}"})
            f.flush()
            solved, total = solved + outcome.solved, total + 1
            bar.set_postfix(solved=f"{solved}/{total}")
    return out


def _check_settings(out: Path, testset, config: SearchConfig, models: Models, env,
                    done: set[int]) -> None:
    """Write ``<out>.json``, or, for a file with rows, check that it matches: a resume with
    another test set, method or network would mix rows of two evaluations."""
    settings = out.with_suffix(out.suffix + ".json")  # what made the rows: a resume must match
    mine = {"testset": str(Path(testset).name), **asdict(config)}
    if models.folders:  # runs of other checkpoints than the shipped ones (Figure 5's arms)
        mine["checkpoints"] = {kind: checkpoint_name(folder)
                               for kind, folder in sorted(models.folders.items())}
    mine["models"] = model_versions(env, models, config)
    mine["testset_sha256"] = file_sha256(testset)
    if done or (settings.exists() and out.stat().st_size):
        try:
            theirs = json.loads(settings.read_text()) if settings.exists() else None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{settings} is corrupt ({err}); move it away to start anew") from None
        if theirs is not None and not isinstance(theirs, dict):
            raise ValueError(f"{settings} holds {type(theirs).__name__}, not an evaluation's "
                             "settings; move it away to start anew")
        for key in ("models", "testset_sha256"):  # a settings file without them resumes
            if theirs is not None and key not in theirs:
                theirs[key] = mine[key]
        for field in fields(SearchConfig):  # as does one from before a setting existed
            if theirs is not None and field.name not in theirs:
                theirs[field.name] = field.default
        if theirs is not None and isinstance(theirs.get("models"), dict):
            for kind, version in theirs["models"].items():  # nor the weights' hash
                if isinstance(version, dict) and "weights_sha256" not in version:
                    version["weights_sha256"] = mine["models"].get(kind, {}).get("weights_sha256")
        if theirs != mine:
            differ = sorted(k for k in set(mine) | set(theirs or {})
                            if (theirs or {}).get(k) != mine.get(k))
            raise ValueError(f"{out} was written with other settings ({settings} differs in "
                             f"{', '.join(differ)}); resume it with the same ones or choose "
                             "another file")
    settings.write_text(json.dumps(mine, indent=1, sort_keys=True) + "\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tdlib evaluate",
        description="Run one search method on a test set at a budget of node expansions "
                    "(distinct programs compiled and goal-checked); one CSV row per problem.",
        epilog="Example:\n  tdlib evaluate --method td-search --testset "
               "results/testsets/csg2d_hard.jsonl --budget 5000 --seed 0 --limit 32 "
               "-o results/eval/td_search_hard_s0.csv",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", required=True, choices=METHODS,
                        help="td-search (the paper's), td-rollout (the policy alone), ar (CSGNet "
                             "rejection sampling), repl (REPL Flow), random-search (the beam with "
                             "random mutations)")
    parser.add_argument("--testset", required=True, help="a test-set file (tdlib testset)")
    parser.add_argument("--env", help="checked against the test set's language if given")
    parser.add_argument("--budget", type=positive_int, default=5000,
                        help="node expansions: distinct programs compiled and checked (5000)")
    parser.add_argument("--seed", type=int, default=0,
                        help="search seed; each problem's own seed derives from it (0)")
    parser.add_argument("--limit", type=non_negative_int, help="only the first N problems")
    parser.add_argument("--score", default="value", choices=SCORES,
                        help="how td-search / random-search rank the beam (value; oracle-path "
                             "and oracle-visible rank by the true distance to the target program, "
                             "for studies)")
    parser.add_argument("--beam", type=positive_int, default=64,
                        help="td-search / random-search: programs kept each round (64)")
    parser.add_argument("-k", type=positive_int, default=3,
                        help="edits proposed per kept program (3)")
    parser.add_argument("--temperature", type=float, default=1.0,
                        help="sampling temperature of the policy's and AR model's tokens; "
                             "0: greedy (td-search only) (1.0)")
    parser.add_argument("--starts", type=positive_int, default=1,
                        help="AR programs to start from: the greedy one, then samples (1)")
    parser.add_argument("--start-temperature", type=float, default=1.0, dest="start_temperature",
                        help="the AR model's temperature for the sampled starts (1.0; the "
                             "public code samples 64 starts at 0.1)")
    parser.add_argument("--chains", type=positive_int, default=32,
                        help="td-rollout: parallel chains (32)")
    parser.add_argument("--max-steps", type=positive_int, default=100, dest="max_steps",
                        help="td-rollout: steps per chain (100)")
    parser.add_argument("--device", type=device, default="cpu",
                        help="where the networks run (cpu, cuda, cuda:1)")
    for kind in ("policy", "value", "ar", "repl"):
        parser.add_argument(f"--{kind}", help=f"{kind} checkpoint folder (default: shipped)")
    parser.add_argument("-o", "--output", required=True, help="CSV file to write")
    parser.add_argument("--resume", action="store_true",
                        help="continue an existing file (its settings must match)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = SearchConfig(**{f.name: getattr(args, f.name) for f in fields(SearchConfig)})
        header, _ = testsets.load(args.testset)
        env = make_env(header["spec"]["env"])
        if args.env and args.env != env.name:
            raise ValueError(f"{args.testset} is a {env.name} test set, not {args.env}")
        models = Models(env, {k: getattr(args, k) for k in ("policy", "value", "ar", "repl")},
                        args.device)
        evaluate_testset(args.testset, config, args.output, models, args.limit, args.resume,
                         not args.no_progress)
    except (ValueError, FileExistsError, FileNotFoundError) as err:
        print(f"tdlib evaluate: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a full or read-only disk: finished rows are kept
        print(f"tdlib evaluate: cannot write {err.filename or args.output}: "
              f"{err.strerror or err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted; finished rows are in {args.output} (--resume continues)",
              file=sys.stderr)
        return 130
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
