"""The paper's main experiment: every method on the same test problems at the same budget.

``tdlib evaluate --env csg2d --method td-search --testset results/testsets/csg2d_hard.jsonl
--budget 5000 --seed 0 -o results/eval/td_search_hard_s0.csv`` writes one row per problem:
index, solved, expansions to solve (empty if unsolved), expansions spent, lowest pixel error
reached, best program, seconds.  Rows are appended as problems finish, so Ctrl-C keeps them, and
``--resume`` skips the problems a file already holds (``<file>.json`` records the settings that
made its rows, with the training step of each network read; a resume with other settings, or after
a model was retrained, is refused).  The models default to the shipped
checkpoints of the language (``results/checkpoints/<env>_policy`` etc.).
"""

from __future__ import annotations

import argparse
import csv
import fcntl
import hashlib
import json
import random
import sys
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from tdlib import search
from tdlib.cli import device, non_negative_int, positive_int

METHODS = ("td-search", "td-rollout", "ar", "repl", "random-search")
SCORES = ("value", "logprob", "pixel")
FIELDS = ("index", "solved", "expansions", "spent", "best_error", "best_program", "seconds")


@dataclass
class SearchConfig:
    """One method's settings (defaults: the paper's, REFERENCE.md §3)."""

    method: str = "td-search"
    budget: int = 5000
    seed: int = 0
    score: str = "value"
    beam: int = 64
    k: int = 3  # edits proposed per kept program
    temperature: float = 1.0  # for proposed edits and sampled programs
    starts: int = 1  # AR programs the search starts from (1: the greedy one, as the paper)
    chains: int = 32  # td-rollout
    max_steps: int = 100  # td-rollout

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; methods: {', '.join(METHODS)}")
        if self.score not in SCORES:
            raise ValueError(f"unknown score {self.score!r}; scores: {', '.join(SCORES)}")
        if self.method == "random-search" and self.score == "logprob":
            raise ValueError("random-search proposes no log-probabilities: score by value or pixel")
        for name in ("budget", "beam", "k", "starts", "chains", "max_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.temperature <= 0 and self.method != "td-search":
            raise ValueError(f"{self.method} samples: it needs a temperature above 0")
        if self.temperature < 0:
            raise ValueError(f"the temperature must be >= 0, not {self.temperature}")


def default_model_folder(env_name: str, kind: str) -> Path:
    """The shipped checkpoint of a language's model, a folder that may not exist (no sketch
    value or REPL model ships: CSG2D-Sketch borrows CSG2D's)."""
    from tdlib.layout import project_root
    from tdlib.presets import SHIPPED_MODELS, shipped_folder
    name = f"{env_name}_{kind}"
    if name not in SHIPPED_MODELS and env_name == "csg2d-sketch":
        name = f"csg2d_{kind}"
    if name not in SHIPPED_MODELS:
        return project_root() / "results" / "checkpoints" / name
    return shipped_folder(name)


class Models:
    """The networks of one evaluation, loaded on first use (``folders``: kind -> checkpoint)."""

    def __init__(self, env, folders: dict | None = None, device: str = "cpu"):
        self.env, self.device = env, device
        self.folders = {k: Path(v) for k, v in (folders or {}).items() if v}
        self._loaded: dict = {}

    def model(self, kind: str):
        if kind not in self._loaded:
            from tdlib.checkpoint import load_model
            folder = self.folders.get(kind) or default_model_folder(self.env.name, kind)
            self._loaded[kind] = load_model(folder, self.device, kind=kind,
                                            env=self.env.name)[0]
        return self._loaded[kind]

    def decoder(self, kind: str):
        key = ("decoder", kind)
        if key not in self._loaded:
            from tdlib.decode import Decoder
            from tdlib.tokens import Tokenizer
            model = self.model(kind)
            self._loaded[key] = Decoder(model, Tokenizer(self.env.grammar,
                                                         model.config.max_positions))
        return self._loaded[key]


def problem_seed(config: SearchConfig, index: int) -> int:
    """The seed of one problem's search: distinct per (seed, method, problem)."""
    return zlib.crc32(f"{config.seed}:{config.method}:{index}".encode())


def observation(env, problem: dict, size: int) -> torch.Tensor:
    """``1 x C x size x size``: what the models see of a test problem's target (a sketch for
    CSG2D-Sketch, drawn from the problem's own seed)."""
    return image_tensor(env.observe(env.parse(problem["program"]),
                                    random.Random(problem["seed"]), size))


def image_tensor(image: np.ndarray) -> torch.Tensor:
    """An ``H x W x C`` observation as the models take it: ``1 x C x H x W``."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].contiguous()


def solve(env, problem: dict, models: Models, config: SearchConfig) -> search.Outcome:
    """Run one method on one test problem."""
    began = time.perf_counter()
    expansions = search.Expansions(env, env.parse(problem["program"]), config.budget)
    outcome = run_search(env, expansions, lambda size: observation(env, problem, size), models,
                         config, problem_seed(config, int(problem["index"])))
    outcome.seconds = time.perf_counter() - began
    return outcome


def run_search(env, expansions: search.Expansions, observe, models: Models,
               config: SearchConfig, seed: int) -> search.Outcome:
    """Run ``config.method`` against ``expansions``' goal; ``observe(size)`` gives what the
    models see of the target (``1 x C x size x size``)."""
    torch.manual_seed(seed)
    method = config.method
    if method == "repl":
        decoder = models.decoder("repl")
        return search.repl_rollouts(expansions, decoder, observe(decoder.config.image_size),
                                    temperature=config.temperature, seed=seed)
    ar = models.decoder("ar")
    target = observe(ar.config.image_size)
    if method == "ar":
        return search.rejection(expansions, ar, target, temperature=config.temperature,
                                seed=seed)
    starts = ar_starts(env, ar, target, config.starts, seed)
    renders = search.Renders(env)  # the score's renders of kept programs serve the policy
    if method == "random-search":
        propose = search.RandomEdits(env, seed)
    else:
        policy = models.decoder("policy")
        propose = search.PolicyEdits(policy, env, observe(policy.config.image_size),
                                     config.temperature, seed, renders)
    if method == "td-rollout":
        return search.rollouts(expansions, starts, propose, config.chains, config.max_steps)
    return search.beam_search(expansions, starts, propose,
                              make_score(config.score, env, models, observe, renders),
                              config.beam, config.k)


def ar_starts(env, ar, target: torch.Tensor, n: int, seed: int) -> list:
    """The greedy AR program, then (for ``n > 1``) distinct programs sampled at T = 1."""
    from tdlib.tree import SyntaxTree
    programs = [SyntaxTree(ar.programs(target)[0][0], env.grammar)]
    if n > 1:
        generator = torch.Generator().manual_seed(seed)
        for node, _ in ar.programs(target, 1.0, generator, samples=n - 1):
            programs.append(SyntaxTree(node, env.grammar))
    return programs


def make_score(name: str, env, models: Models, observe, renders=None):
    if name == "logprob":
        return search.LogprobScore()
    kind = "value" if name == "value" else "ar"  # pixel: at the size the models read
    target = observe(models.model(kind).config.image_size)
    if name == "value":
        return search.ValueScore(models.model("value"), env, target, renders)
    return search.PixelScore(env, target)


def models_used(config: SearchConfig) -> tuple[str, ...]:
    """The kinds of network a method reads (its settings record which checkpoint made its rows)."""
    if config.method == "repl":
        return ("repl",)
    kinds = ["ar"]
    if config.method in ("td-search", "td-rollout"):
        kinds.append("policy")
    if config.method in ("td-search", "random-search") and config.score == "value":
        kinds.append("value")
    return tuple(kinds)


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
    from tdlib.layout import project_root
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
    from tqdm import tqdm
    from tdlib import testsets
    from tdlib.env import make_env
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
            outcome = solve(env, problem, models, config)
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
        for key in ("models", "testset_sha256"):  # files written before these were recorded
            if theirs is not None and key not in theirs:
                theirs[key] = mine[key]
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
    parser.add_argument("--method", required=True, choices=METHODS)
    parser.add_argument("--testset", required=True, help="a test-set file (tdlib testset)")
    parser.add_argument("--env", help="checked against the test set's language if given")
    parser.add_argument("--budget", type=positive_int, default=5000,
                        help="node expansions: distinct programs compiled and checked (5000)")
    parser.add_argument("--seed", type=int, default=0,
                        help="search seed; each problem's own seed derives from it (0)")
    parser.add_argument("--limit", type=non_negative_int, help="only the first N problems")
    parser.add_argument("--score", default="value", choices=SCORES,
                        help="how td-search / random-search rank the beam (value)")
    parser.add_argument("--beam", type=positive_int, default=64,
                        help="td-search / random-search: programs kept each round (64)")
    parser.add_argument("-k", type=positive_int, default=3,
                        help="edits proposed per kept program (3)")
    parser.add_argument("--temperature", type=float, default=1.0,
                        help="sampling temperature of the policy's and AR model's tokens; "
                             "0: greedy (td-search only) (1.0)")
    parser.add_argument("--starts", type=positive_int, default=1,
                        help="AR programs to start from (1)")
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
    from tdlib import testsets
    from tdlib.env import make_env
    try:
        config = SearchConfig(args.method, args.budget, args.seed, args.score, args.beam, args.k,
                              args.temperature, args.starts, args.chains, args.max_steps)
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
