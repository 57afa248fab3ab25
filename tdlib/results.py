"""Committed evaluation results (``results/eval/``): solve-rate curves and the Figure 4 table.

Each run of ``tdlib evaluate`` is a CSV of per-problem rows beside a ``<file>.json`` holding the
settings that made them (test set, method, score, seed, budget, ...).  :func:`load_runs` reads a
folder of them into one table; :func:`solved_within` gives, per run, the fraction of its problems
solved within each budget of node expansions (a method stops at its first solution, so one run at
budget B tells how many problems it solved within every smaller budget b; for TD search and
roll-outs that is exactly a run at budget b, for AR and REPL sampling nearly: their cap on sampling
rounds grows with the budget); :func:`select_runs` keeps one complete run per seed;
:func:`solved_table` averages over seeds (Figure 4's table); :func:`plot_solved` draws the curves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

RUN_KEYS = ("testset", "method", "score", "variant", "policy", "seed", "budget")
# the methods whose ranking of the beam is a setting (for the others the score is unused)
SCORED_METHODS = ("td-search", "random-search")
METHOD_LABELS = {
    "td-search": "TD search", "td-rollout": "TD rollouts", "ar": "AR (CSGNet)",
    "repl": "REPL Flow", "random-search": "random-mutation search",
}


# (test set, method, score) of every committed evaluation (issue 13); seeds and budget are set
# per call.  ``tools/run_evaluations.py`` runs them in parallel workers; notebook 07 reads them.
PLANS = {
    "csg2d": [("csg2d", m, "value") for m in ("td-search", "ar", "random-search", "repl",
                                              "td-rollout")]
             + [("csg2d", "td-search", s) for s in ("logprob", "pixel")],
    "csg2d_hard": [("csg2d_hard", m, "value") for m in ("td-search", "ar", "random-search",
                                                        "repl", "td-rollout")],
    "tinysvg": [("tinysvg", m, "value") for m in ("td-search", "ar", "td-rollout")],
    "csg2d_sketch": [("csg2d_sketch", m, "value") for m in ("td-search", "ar")],
}

# Figure 5 (issue 15): the Rainbow ablation arms, arm -> (policy checkpoint, rho, what differs).
# Every arm starts from the same Rainbow AR model's greedy program; Rainbow has no value network,
# so TD search ranks its beam by pixel difference, the same for every arm.
RAINBOW_ARMS = {
    "full": ("rainbow_policy_full", 0.2, "path targets, rho = 0.2 (the paper's model)"),
    "no_reverse_path": ("rainbow_policy_no_reverse_path", 0.2,
                        "targets undo the last noising step only"),
    "no_current_image": ("rainbow_policy_no_current_image", 0.2, "the current image is blank"),
    "no_noising": ("rainbow_policy_no_noising", 1.0,
                   "rho = 1: paths between two random programs"),
    "rho0.0": ("rainbow_policy_rho0.0", 0.0, "rho = 0: noised starts only"),
    "rho0.1": ("rainbow_policy_rho0.1", 0.1, "rho = 0.1"),
    "rho0.5": ("rainbow_policy_rho0.5", 0.5, "rho = 0.5"),
}
FIG5A_ARMS = ("full", "no_reverse_path", "no_current_image", "no_noising")
# the rho sweep: rho -> arm (0.2 and 1.0 are the full and No Noising arms)
RHO_ARMS = {0.0: "rho0.0", 0.1: "rho0.1", 0.2: "full", 0.5: "rho0.5", 1.0: "no_noising"}
# (test set, method, score, policy checkpoint): roll-outs for every arm first (Figure 5b reads
# them), then TD search for the four arms of Figure 5a
PLANS["rainbow"] = ([("rainbow", "td-rollout", "pixel", RAINBOW_ARMS[a][0]) for a in RAINBOW_ARMS]
                    + [("rainbow", "td-search", "pixel", RAINBOW_ARMS[a][0]) for a in FIG5A_ARMS])


def arm_of(policy: str) -> str:
    """The Figure 5 arm of a policy checkpoint name ("" for the shipped policy)."""
    return next((arm for arm, (folder, _, _) in RAINBOW_ARMS.items() if folder == policy), policy)


def output_name(folder: str | Path, testset: str, method: str, score: str, budget: int,
                seed: int, policy: str = "") -> Path:
    """``<folder>/<testset>[_<arm>]_<method>[-<score>]_b<budget>_s<seed>.csv`` (an arm for a
    policy other than the shipped one)."""
    label = f"{method}-{score}" if method in SCORED_METHODS else method
    arm = f"_{arm_of(policy)}" if policy else ""
    return Path(folder) / f"{testset}{arm}_{label}_b{budget}_s{seed}.csv"


def policy_folder(policy: str) -> Path | None:
    """Where a plan's policy checkpoint lies (None: the shipped one)."""
    from tdlib.layout import project_root
    return project_root() / "results" / "checkpoints" / policy if policy else None


def run_plan(plan: str, seeds: Sequence[int], budget: int, folder: str | Path,
             limit: int | None = None, progress: bool = True) -> list[Path]:
    """Run (or resume) every evaluation of ``PLANS[plan]`` in this process, one after another,
    with the shipped checkpoints; returns the CSV files."""
    from tdlib.env import make_env
    from tdlib.experiment import Models, SearchConfig, evaluate_testset
    from tdlib.layout import project_root
    from tdlib.testsets import load
    written = []
    for seed in seeds:
        for testset, method, score, *policy in PLANS[plan]:
            policy = policy[0] if policy else ""
            out = output_name(folder, testset, method, score, budget, seed, policy)
            path = project_root() / "results" / "testsets" / f"{testset}.jsonl"
            models = None
            if policy:
                models = Models(make_env(load(path)[0]["spec"]["env"]),
                                {"policy": policy_folder(policy)})
            evaluate_testset(path, SearchConfig(method, budget, seed, score), out, models,
                             limit=limit, resume=True, progress=progress)
            written.append(out)
    return written


def best_programs(runs: pd.DataFrame, testset: str, indices: Sequence[int],
                  seed: int = 0) -> pd.DataFrame:
    """Figure 6's content: per problem and method (labelled), the best program each run reached
    and whether it solved, from the runs of ``seed`` (pass :func:`select_runs`' runs)."""
    mine = runs[(runs["testset"] == testset) & (runs["seed"] == seed) & (runs["variant"] == "")
                & runs["index"].isin(list(indices))]
    rows = []
    for (method, score), run in mine.groupby(["method", "score"], sort=True):
        for _, r in run.iterrows():
            rows.append({"index": int(r["index"]), "method": method_label(method, score),
                         "program": r["best_program"], "solved": bool(r["solved"]),
                         "best_error": float(r["best_error"])})
    return pd.DataFrame(rows)


def method_label(method: str, score: str | None = None) -> str:
    """``"TD search (value)"``, ``"AR (CSGNet)"``: the name a figure shows for a method."""
    label = METHOD_LABELS.get(method, method)
    return f"{label} ({score})" if method in SCORED_METHODS and score else label


def run_variant(settings: dict) -> str:
    """The settings of a run beyond method, score, seed and budget that differ from the
    defaults (``"beam=16 k=1"``; blank for the paper's settings): runs that differ so are kept
    apart."""
    from dataclasses import fields
    from tdlib.experiment import SearchConfig
    defaults = {f.name: f.default for f in fields(SearchConfig)}
    return " ".join(f"{k}={settings[k]}" for k in sorted(defaults)
                    if k not in ("method", "score", "seed", "budget") and k in settings
                    and settings[k] != defaults[k])


def load_runs(folder: str | Path) -> pd.DataFrame:
    """Every ``*.csv`` with a settings sidecar in ``folder``: one row per (run, problem), with
    the run's settings as columns (``score`` is blank for methods that do not use one).  Files
    with no rows yet (a run that is starting) are skipped."""
    frames = []
    for path in sorted(Path(folder).glob("*.csv")):
        sidecar = path.with_suffix(".csv.json")
        if not sidecar.exists() or path.stat().st_size == 0:
            continue
        settings = json.loads(sidecar.read_text())
        try:
            rows = pd.read_csv(path, keep_default_na=False, na_values={"expansions": [""]})
        except pd.errors.EmptyDataError:
            continue
        if rows.empty:
            continue
        rows["testset"] = Path(settings["testset"]).stem
        rows["method"] = settings["method"]
        rows["score"] = settings["score"] if settings["method"] in SCORED_METHODS else ""
        rows["variant"] = run_variant(settings)
        rows["policy"] = Path(settings.get("checkpoints", {}).get("policy", "")).name
        rows["seed"] = int(settings["seed"])
        rows["budget"] = int(settings["budget"])
        rows["file"] = path.name
        frames.append(rows)
    if not frames:
        return pd.DataFrame(columns=[*RUN_KEYS, "index", "solved", "expansions", "spent",
                                     "best_error", "best_program", "seconds", "file"])
    runs = pd.concat(frames, ignore_index=True)
    runs["solved"] = runs["solved"].astype(int).astype(bool)
    return runs


def select_runs(runs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The runs a figure compares: for each (test set, method, score, variant, seed) the file of
    the largest budget, and only complete runs (as many problems as the most complete run of
    its test set), so every curve counts the same problems.  Returns them and a line for each
    file left out, saying why."""
    if runs.empty:
        return runs, []
    files = runs.groupby("file").agg(**{k: (k, "first") for k in RUN_KEYS},
                                     problems=("index", "nunique"))
    full = files.groupby("testset")["problems"].transform("max")
    left_out = [f"{f}: partial, {n} of {m} problems" for f, n, m in
                zip(files.index, files["problems"], full) if n < m]
    files = files[files["problems"] == full]
    best = files.sort_values("budget").groupby(
        ["testset", "method", "score", "variant", "policy", "seed"]).tail(1).index
    left_out += [f"{f}: a run of the same settings at a larger budget is used"
                 for f in files.index if f not in set(best)]
    return runs[runs["file"].isin(set(best))].reset_index(drop=True), left_out


def solved_within(runs: pd.DataFrame, budgets: Sequence[int]) -> pd.DataFrame:
    """Per run (file) and budget ``b``: the fraction of the run's problems solved within ``b``
    expansions (NaN above the run's own budget: not measured), and the problem count."""
    out = []
    for _, run in runs.groupby("file", sort=True):
        record = {k: run[k].iloc[0] for k in RUN_KEYS}
        expansions = np.where(run["solved"], run["expansions"].astype(float), np.inf)
        for b in budgets:
            rate = float((expansions <= b).mean()) if b <= record["budget"] else np.nan
            out.append({**record, "problems": len(run), "at": int(b), "solved": rate})
    return pd.DataFrame(out)


def solved_table(runs: pd.DataFrame, budgets: Sequence[int] = (10, 100, 1000, 5000),
                 env_of: dict | None = None) -> pd.DataFrame:
    """Figure 4's table: ``env,testset,method,score,variant,seeds,budget,problems,solved_mean,
    solved_std`` (the sample standard deviation over seeds; NaN for one seed); budgets no run
    reached are left out; runs of other policies than the shipped one (Figure 5's arms) too.
    Pass :func:`select_runs`' runs: one run per seed."""
    curves = solved_within(runs[runs["policy"] == ""], budgets)
    if curves.empty:
        return pd.DataFrame(columns=["env", "testset", "method", "score", "variant", "seeds",
                                     "budget", "problems", "solved_mean", "solved_std"])
    rows = []
    for (testset, method, score, variant, at), group in curves.groupby(
            ["testset", "method", "score", "variant", "at"], sort=True):
        stats = _over_seeds(group, f"{testset} {method} {score} {variant}")
        if stats:
            rows.append({"env": (env_of or {}).get(testset, testset.split("_")[0]),
                         "testset": testset, "method": method, "score": score,
                         "variant": variant, "budget": int(at), **stats})
    return pd.DataFrame(rows, columns=["env", "testset", "method", "score", "variant", "seeds",
                                       "budget", "problems", "solved_mean", "solved_std"])


def _over_seeds(group: pd.DataFrame, what: str) -> dict | None:
    """The mean and sample std over seeds of one budget's solve rates (None: none measured)."""
    measured = group["solved"].dropna()
    if measured.empty:
        return None
    if group["seed"].duplicated().any():
        raise ValueError(f"{what}: several runs of one seed; pass the runs through select_runs "
                         "first")
    return {"seeds": len(measured), "problems": int(group["problems"].min()),
            "solved_mean": measured.mean(),
            "solved_std": measured.std(ddof=1) if len(measured) > 1 else np.nan}


def _expansion_grid(budget: int, points: int) -> np.ndarray:
    return np.unique(np.geomspace(1, budget, points).round().astype(int))


def _plot_over_seeds(ax, curves: pd.DataFrame, label: str, ls: str = "-"):
    """One curve: the mean over seeds of :func:`solved_within`'s rows, with a +-1 std band."""
    table = curves.pivot_table(index="at", columns="seed", values="solved")
    mean, std = table.mean(axis=1), table.std(axis=1, ddof=1).fillna(0.0)
    line, = ax.plot(table.index, mean, ls=ls, label=f"{label} (n={table.shape[1]} seeds)")
    ax.fill_between(table.index, mean - std, mean + std, color=line.get_color(), alpha=0.15)


def _expansion_axes(ax, budget: int):
    ax.set_xscale("log")
    ax.set_xlim(1, budget)
    ax.set_ylim(0, 1)
    ax.set_xlabel("node expansions (programs compiled)")
    ax.set_ylabel("fraction of problems solved")
    ax.grid(alpha=0.3)
    return ax


def plot_solved(ax, runs: pd.DataFrame, testset: str, methods: Sequence[tuple] | None = None,
                budget: int | None = None, points: int = 200):
    """Fraction solved against node expansions (log axis), mean and std over seeds, one curve
    per ``(method, score)`` of ``testset`` (default: all that were run on it; runs at the
    paper's settings only).  Pass :func:`select_runs`' runs."""
    runs = runs[(runs["testset"] == testset) & (runs["variant"] == "")
                & (runs["policy"] == "")]
    budget = budget or int(runs["budget"].max())
    curves = solved_within(runs, _expansion_grid(budget, points))
    pairs = methods or sorted(set(zip(curves["method"], curves["score"])))
    for method, score in pairs:
        mine = curves[(curves["method"] == method) & (curves["score"] == score)]
        if not mine.empty:
            dashed = method == "td-search" and score != "value"
            _plot_over_seeds(ax, mine, method_label(method, score), "--" if dashed else "-")
    return _expansion_axes(ax, budget)


def difference_se(a, b) -> float:
    """The binomial standard error of the difference of two solve rates, each a table row with
    ``solved_mean``, ``problems`` and ``seeds`` (every problem of every seed one trial).  One seed
    of 256 problems cannot tell 0.4 % from 0.8 %: a difference counts beyond twice this."""
    return float(np.sqrt(sum(r["solved_mean"] * (1 - r["solved_mean"]) / (r["problems"] * r["seeds"])
                             for r in (a, b))))


def doubling_fit(examples_seen, solve_rate) -> tuple[float, float]:
    """The least-squares line ``rate = at_1m + per_doubling * log2(examples_seen / 1e6)``.

    Returns ``(per_doubling, at_1m)``: the solve rate gained per doubling of the examples seen, and
    the line's rate at one million examples.  The CPU policies' one-edit solve rates grow about
    linearly in log examples (``results/tables/recipe_curves.csv``), so this line is how far a
    curve says a bar is; :func:`examples_to_reach` reads it off."""
    x = np.log2(np.asarray(examples_seen, dtype=float) / 1e6)
    y = np.asarray(solve_rate, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"examples_seen and solve_rate must be two 1-D sequences of one length, "
                         f"got shapes {x.shape} and {y.shape}")
    if np.unique(x).size < 2:
        raise ValueError("a line needs evaluations at two or more distinct example counts")
    per_doubling, at_1m = np.polyfit(x, y, 1)
    return float(per_doubling), float(at_1m)


def examples_to_reach(target: float, per_doubling: float, at_1m: float) -> float:
    """The examples seen at which :func:`doubling_fit`'s line reaches ``target`` (infinite where
    the line does not rise)."""
    if per_doubling <= 0:
        return float("inf")
    return 1e6 * 2.0 ** ((target - at_1m) / per_doubling)


def ablation_table(runs: pd.DataFrame, budgets: Sequence[int] = (10, 100, 1000),
                   testset: str = "rainbow") -> pd.DataFrame:
    """Figure 5's table: ``arm,rho,method,seeds,budget,problems,solved_mean,solved_std`` for the
    arms of :data:`RAINBOW_ARMS` run on ``testset``.  Pass :func:`select_runs`' runs."""
    folders = {folder: arm for arm, (folder, _, _) in RAINBOW_ARMS.items()}
    mine = runs[(runs["testset"] == testset) & runs["policy"].isin(list(folders))
                & (runs["variant"] == "")]
    columns = ["arm", "rho", "method", "seeds", "budget", "problems", "solved_mean", "solved_std"]
    curves = solved_within(mine, budgets)
    if curves.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for (policy, method, at), group in curves.groupby(["policy", "method", "at"], sort=True):
        arm = folders[policy]
        stats = _over_seeds(group, f"{testset} {arm} {method}")
        if stats:
            rows.append({"arm": arm, "rho": RAINBOW_ARMS[arm][1], "method": method,
                         "budget": int(at), **stats})
    order = {arm: i for i, arm in enumerate(RAINBOW_ARMS)}
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values(["method", "budget"], kind="stable").sort_values(
        "arm", key=lambda a: a.map(order), kind="stable").reset_index(drop=True)


def plot_arms(ax, runs: pd.DataFrame, method: str, arms: Sequence[str] = FIG5A_ARMS,
              testset: str = "rainbow", budget: int | None = None, points: int = 200):
    """Figure 5a: fraction solved against node expansions for each arm under ``method``, mean
    and std over seeds.  Pass :func:`select_runs`' runs."""
    mine = runs[(runs["testset"] == testset) & (runs["method"] == method)
                & (runs["variant"] == "")]
    budget = budget or (int(mine["budget"].max()) if len(mine) else 1)
    grid = _expansion_grid(budget, points)
    for arm in arms:
        run = mine[mine["policy"] == RAINBOW_ARMS[arm][0]]
        if not run.empty:
            _plot_over_seeds(ax, solved_within(run, grid), arm.replace("_", " "))
    return _expansion_axes(ax, budget)


def arm_training(checkpoints: str | Path | None = None) -> pd.DataFrame:
    """What each Figure 5 arm was trained with and how far it got: steps, examples seen, training
    minutes, parameters, and its last one-greedy-edit solve rates on held-out 1- and 2-mutation
    problems (the trainer's own evaluation, the same problems for every arm).  Arms whose
    checkpoint does not exist yet are left out."""
    from tdlib.layout import project_root
    root = Path(checkpoints) if checkpoints else project_root() / "results" / "checkpoints"
    rows = []
    for arm, (folder, rho, what) in RAINBOW_ARMS.items():
        record_file = root / folder / "model.json"
        if not record_file.exists():
            continue
        record = json.loads(record_file.read_text())
        row = {"arm": arm, "rho": rho, "what differs": what, "steps": record["step"],
               "examples_seen": record["examples_seen"],
               "train_minutes": round(record.get("train_seconds", np.nan) / 60, 1),
               "parameters": record["parameters"]}
        log = root / folder / "eval_log.csv"
        if log.exists():
            last = pd.read_csv(log).iloc[-1]
            row.update(solve_1=last["solve_1"], solve_2=last["solve_2"])
        rows.append(row)
    return pd.DataFrame(rows)


def arm_one_step(n: int = 1024, seed: int = 0, mutations: Sequence[int] = (1, 2, 3),
                 checkpoints: str | Path | None = None, progress: bool = False) -> pd.DataFrame:
    """What each Figure 5 arm's policy learned, without search: the share of ``n`` held-out
    Rainbow problems ``k`` small mutations from their target that one greedy edit solves, for
    each ``k`` in ``mutations``.  Every arm sees the same problems and target observations, so
    the arms differ only in their weights.  Columns ``arm,rho,mutations,n,solved``."""
    from tdlib.env import make_env
    from tdlib.evaluate import mutation_problems, one_step_solve_rate
    from tdlib.experiment import Models
    from tdlib.layout import project_root
    from tqdm.auto import tqdm
    root = Path(checkpoints) if checkpoints else project_root() / "results" / "checkpoints"
    env = make_env("rainbow")
    problems = {k: mutation_problems(env, n, k, seed) for k in mutations}
    rows = []
    arms = [arm for arm, (folder, _, _) in RAINBOW_ARMS.items() if (root / folder).exists()]
    for arm in tqdm(arms, desc="arms", disable=not progress):
        folder, rho, _ = RAINBOW_ARMS[arm]
        models = Models(env, {"policy": root / folder})
        size = models.model("policy").config.image_size
        for k in mutations:
            rate = one_step_solve_rate(models.decoder("policy"), env, problems[k], size, seed)
            rows.append({"arm": arm, "rho": rho, "mutations": k, "n": n, "solved": rate})
    return pd.DataFrame(rows, columns=["arm", "rho", "mutations", "n", "solved"])
