"""Fixed, versioned test sets: files of problems that every method is evaluated on.

A test set is a JSON-lines file.  The first line is a header recording the generator, its
parameters and the command that regenerates the file byte for byte; each further line is one
problem: its index, the program text, its sigma and the seed it was drawn from (for
``csg2d-sketch`` that seed also draws the sketch the model sees).

Test programs come from a seed space disjoint from training (:mod:`tdlib.seeds`: problem seeds
are drawn from ``[seed, TESTSET_DOMAIN, set id]``, training workers from ``[seed, rank,
worker]``); :func:`training_overlap` checks a large training sample for duplicates anyway.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import asdict, dataclass
from pathlib import Path

from tdlib.complexity import complexity_threshold, lz4_score
from tdlib.env import make_env
from tdlib.grammar import ProgramSyntaxError
from tdlib.seeds import testset_rng, worker_seed

FORMAT_VERSION = 1


@dataclass(frozen=True)
class TestSetSpec:
    """Everything that determines a test set."""

    __test__ = False  # not a pytest class

    env: str
    n: int = 256
    seed: int = 0
    hard: bool = False
    percentile: float = 95.0
    calibration_samples: int = 10_000
    min_primitives: int = 2
    max_primitives: int = 8
    size: int = 128

    def command(self) -> str:
        hard = f" --hard --percentile {self.percentile:g}" if self.hard else ""
        return (f"tdlib testset --env {self.env}{hard} --n {self.n} --seed {self.seed} "
                f"--min-primitives {self.min_primitives} --max-primitives {self.max_primitives}")


def generate(spec: TestSetSpec) -> tuple[dict, list[dict]]:
    """The header and the problems of a test set (deterministic in ``spec``)."""
    if spec.n < 1:
        raise ValueError(f"a test set needs n >= 1 problems, not {spec.n}")
    env = make_env(spec.env)
    master = testset_rng(spec.seed, f"{spec.env}:{'hard' if spec.hard else 'plain'}")
    threshold = None
    if spec.hard:
        threshold = complexity_threshold(env, spec.percentile, master.getrandbits(63),
                                         spec.calibration_samples, spec.min_primitives,
                                         spec.max_primitives, spec.size)
    problems, seen, drawn = [], set(), 0
    while len(problems) < spec.n:
        problem_seed = master.getrandbits(63)
        drawn += 1
        tree = env.sample(problem_seed, spec.min_primitives, spec.max_primitives)
        text = str(tree)
        if text in seen:
            continue
        record = {"index": len(problems), "program": text, "sigma": tree.sigma,
                  "seed": problem_seed}
        if spec.hard:
            score = lz4_score(env.render(tree, spec.size))
            if score < threshold:
                continue
            record["lz4_score"] = round(score, 6)
        seen.add(text)
        problems.append(record)
    header = {"tdlib_testset": FORMAT_VERSION, "spec": asdict(spec), "regenerate": spec.command(),
              "lz4_threshold": None if threshold is None else round(threshold, 6),
              "candidates_drawn": drawn}
    return header, problems


def write(path: str | Path, header: dict, problems: list[dict]) -> None:
    """Write a test set whole or not at all (a temporary file renamed into place)."""
    lines = [json.dumps(header, sort_keys=True)] + [json.dumps(p, sort_keys=True) for p in problems]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text("\n".join(lines) + "\n")
    os.replace(partial, path)


def load(path: str | Path) -> tuple[dict, list[dict]]:
    """Read a test set; a file that is not one, or a problem that is malformed or whose program
    does not parse, raises ValueError naming the file and line."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not a tdlib test set: {err}") from None
    if not lines:
        raise ValueError(f"{path} is not a tdlib test set: it is empty")
    records = []
    for number, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            what = f"not JSON ({err.msg}, column {err.colno})"
            if number == 1:
                raise ValueError(f"{path} is not a tdlib test set: line 1 is {what}") from None
            raise ValueError(f"{path}, line {number}: {what}") from None
    header, problems = records[0], records[1:]
    if not isinstance(header, dict) or header.get("tdlib_testset") != FORMAT_VERSION:
        raise ValueError(f"{path} is not a tdlib test set of format {FORMAT_VERSION}")
    try:
        env = make_env(str((header.get("spec") or {}).get("env", "")))
    except ValueError as err:
        raise ValueError(f"{path}, line 1: {err}") from None
    for number, problem in enumerate(problems, 2):
        if not (isinstance(problem, dict) and isinstance(problem.get("index"), int)
                and isinstance(problem.get("program"), str)):
            raise ValueError(f"{path}, line {number}: a problem has an integer index and a "
                             "program")
        try:
            env.parse(problem["program"])
        except ProgramSyntaxError as err:
            raise ValueError(f"{path}, line {number}: {err}") from None
    return header, problems


def training_overlap(problems: list[dict], env_name: str, n: int, seed: int = 0,
                     min_primitives: int = 2, max_primitives: int = 8) -> set[str]:
    """Programs of the test set that also appear among ``n`` training targets of stream ``seed``."""
    env = make_env(env_name)
    r = random.Random(worker_seed(seed, 0))
    training = {str(env.sample(r, min_primitives, max_primitives)) for _ in range(n)}
    return {p["program"] for p in problems} & training


# The shipped test sets: file name -> spec (results/testsets/).
SHIPPED = {
    "csg2d_hard.jsonl": TestSetSpec("csg2d", hard=True),
    "csg2d.jsonl": TestSetSpec("csg2d"),
    "csg2d_sketch.jsonl": TestSetSpec("csg2d-sketch"),
    "tinysvg.jsonl": TestSetSpec("tinysvg"),
    "rainbow.jsonl": TestSetSpec("rainbow"),
}
