"""The committed evaluations (``results/eval/``): which runs the study made, and how to run them.

A plan is a list of :class:`Run`: a test set, a method, its beam ranking and, for the Rainbow
arms of Figure 5, the policy checkpoint; seeds and budget are chosen per call.  Each run is one
``tdlib evaluate`` call and writes one CSV, named by :func:`output_name`.  Notebooks 07 and 09
run plans in their own process (:func:`run_plan`); ``tools/run_evaluations.py`` runs them in
parallel worker processes (:meth:`Run.evaluate_args`); both write the same files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from tdlib.env import make_env
from tdlib.evaluation import evaluate_testset
from tdlib.layout import project_root
from tdlib.methods import Models, SearchConfig
from tdlib.paper.arms import FIG5A_ARMS, RAINBOW_ARMS, arm_of
from tdlib.paper.runs import SCORED_METHODS
from tdlib.testsets import load


def output_name(folder: str | Path, testset: str, method: str, score: str, budget: int,
                seed: int, policy: str = "", starts: str = "") -> Path:
    """``<folder>/<testset>[_<arm>]_<method>[-<score>][_<starts>]_b<budget>_s<seed>.csv`` (an
    arm for a policy other than the shipped one, ``starts`` for other AR starts than the
    greedy program alone)."""
    label = f"{method}-{score}" if method in SCORED_METHODS else method
    arm = f"_{arm_of(policy)}" if policy else ""
    starts = f"_{starts}" if starts else ""
    return Path(folder) / f"{testset}{arm}_{label}{starts}_b{budget}_s{seed}.csv"


@dataclass(frozen=True)
class Run:
    """One evaluation of a plan: ``method`` on ``results/testsets/<testset>.jsonl``, its beam
    ranked by ``score``, with the policy checkpoint ``results/checkpoints/<policy>`` ("": the
    shipped one of the language), started from the AR model's greedy program and ``starts - 1``
    programs it samples at ``start_temperature``."""

    testset: str
    method: str
    score: str
    policy: str = ""
    starts: int = 1
    start_temperature: float = 1.0

    @property
    def starts_name(self) -> str:
        """``starts64t0.1`` for other starts than the greedy program alone, else blank."""
        return f"starts{self.starts}t{self.start_temperature:g}" if self.starts > 1 else ""

    @property
    def label(self) -> str:
        """``td-search-value``, ``ar``, ``full:td-rollout``: the run as ``--queue`` names it
        (with the arm first for a run of another policy than the shipped one)."""
        name = f"{self.method}-{self.score}" if self.method in SCORED_METHODS else self.method
        name += f"+{self.starts_name}" if self.starts_name else ""
        return f"{arm_of(self.policy)}:{name}" if self.policy else name

    @property
    def testset_file(self) -> Path:
        return project_root() / "results" / "testsets" / f"{self.testset}.jsonl"

    @property
    def policy_folder(self) -> Path | None:
        """Where the run's policy checkpoint lies (None: the shipped one)."""
        return project_root() / "results" / "checkpoints" / self.policy if self.policy else None

    def output(self, folder: str | Path, budget: int, seed: int) -> Path:
        return output_name(folder, self.testset, self.method, self.score, budget, seed,
                           self.policy, self.starts_name)

    def evaluate_args(self, budget: int, seed: int, folder: str | Path,
                      limit: int | None = None) -> list[str]:
        """The ``tdlib evaluate`` arguments that run (or resume) this run at ``budget`` and
        ``seed`` into ``folder``, without a progress bar."""
        args = ["--method", self.method, "--testset", str(self.testset_file),
                "--budget", str(budget), "--seed", str(seed), "--score", self.score,
                "-o", str(self.output(folder, budget, seed)), "--resume", "--no-progress"]
        if self.policy:
            args += ["--policy", str(self.policy_folder)]
        if self.starts > 1:
            args += ["--starts", str(self.starts),
                     "--start-temperature", str(self.start_temperature)]
        return args + (["--limit", str(limit)] if limit is not None else [])

    def run(self, budget: int, seed: int, folder: str | Path, limit: int | None = None,
            progress: bool = True) -> Path:
        """Run (or resume) this run in this process; returns its CSV file."""
        models = None
        if self.policy:
            env = make_env(load(self.testset_file)[0]["spec"]["env"])
            models = Models(env, {"policy": self.policy_folder})
        out = self.output(folder, budget, seed)
        config = SearchConfig(self.method, budget, seed, self.score, starts=self.starts,
                              start_temperature=self.start_temperature)
        evaluate_testset(self.testset_file, config, out, models, limit=limit, resume=True,
                         progress=progress)
        return out


def _runs(testset: str, methods: Sequence[str], score: str = "value") -> list[Run]:
    return [Run(testset, method, score) for method in methods]


# Figure 4's evaluations, and Figure 7's (CSG2D-Sketch).
PLANS: dict[str, list[Run]] = {
    "csg2d": _runs("csg2d", ("td-search", "ar", "random-search", "repl", "td-rollout"))
             + [Run("csg2d", "td-search", score) for score in ("logprob", "pixel")],
    # on the hard set, value ranking against pixel ranking, and the search also as the public
    # code starts it: 64 AR programs sampled at T = 0.1
    "csg2d_hard": _runs("csg2d_hard", ("td-search", "ar", "random-search", "repl",
                                       "td-rollout"))
                  + [Run("csg2d_hard", "td-search", "pixel"),
                     Run("csg2d_hard", "td-search", "value", starts=64, start_temperature=0.1)],
    "tinysvg": _runs("tinysvg", ("td-search", "ar", "td-rollout")),
    "csg2d_sketch": _runs("csg2d_sketch", ("td-search", "ar")),
    # Figure 5: roll-outs of every arm first (Figure 5b reads them), then TD search for the four
    # arms of Figure 5a.  Rainbow has no value network, so TD search ranks its beam by pixel
    # difference, the same for every arm.
    "rainbow": [Run("rainbow", "td-rollout", "pixel", RAINBOW_ARMS[arm][0])
                for arm in RAINBOW_ARMS]
               + [Run("rainbow", "td-search", "pixel", RAINBOW_ARMS[arm][0])
                  for arm in FIG5A_ARMS],
}


def run_plan(plan: str, seeds: Sequence[int], budget: int, folder: str | Path,
             limit: int | None = None, progress: bool = True) -> list[Path]:
    """Run (or resume) every evaluation of ``PLANS[plan]`` in this process, one after another,
    seed by seed; returns the CSV files."""
    return [run.run(budget, seed, folder, limit, progress)
            for seed in seeds for run in PLANS[plan]]
