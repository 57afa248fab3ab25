"""The committed evaluations (``results/eval/``) as one table of runs.

Each run of ``tdlib evaluate`` is a CSV of per-problem rows beside a ``<file>.json`` holding the
settings that made them (test set, method, score, seed, budget, ...).  :func:`load_runs` reads a
folder of them into one table, one row per (run, problem) with the run's settings as columns;
:func:`select_runs` keeps one complete run per seed; :func:`best_programs` is Figure 6's content.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Sequence

import pandas as pd

from tdlib.methods import SearchConfig

# policy and value: the folder name of a checkpoint other than the shipped one ("": shipped)
RUN_KEYS = ("testset", "method", "score", "variant", "policy", "value", "seed", "budget")
# the methods whose ranking of the beam is a setting (for the others the score is unused)
SCORED_METHODS = ("td-search", "random-search")
METHOD_LABELS = {
    "td-search": "TD search", "td-rollout": "TD rollouts", "ar": "AR (CSGNet)",
    "repl": "REPL Flow", "random-search": "random-mutation search",
}


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
        for kind in ("policy", "value"):
            rows[kind] = Path(settings.get("checkpoints", {}).get(kind, "")).name
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


def shipped_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs that read only the shipped networks (no policy or value checkpoint of their own)."""
    return runs[(runs["policy"] == "") & (runs["value"] == "")]


def select_runs(runs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The runs a figure compares: for each (test set, method, score, variant, checkpoints, seed)
    the file of the largest budget, and only complete runs (as many problems as the most
    complete run of its test set), so every curve counts the same problems.  Returns them and a
    line for each file left out, saying why."""
    if runs.empty:
        return runs, []
    files = runs.groupby("file").agg(**{k: (k, "first") for k in RUN_KEYS},
                                     problems=("index", "nunique"))
    full = files.groupby("testset")["problems"].transform("max")
    left_out = [f"{f}: partial, {n} of {m} problems" for f, n, m in
                zip(files.index, files["problems"], full) if n < m]
    files = files[files["problems"] == full]
    best = files.sort_values("budget").groupby(
        [k for k in RUN_KEYS if k != "budget"]).tail(1).index
    left_out += [f"{f}: a run of the same settings at a larger budget is used"
                 for f in files.index if f not in set(best)]
    return runs[runs["file"].isin(set(best))].reset_index(drop=True), left_out
