"""Solve rates over budgets and seeds: the numbers behind Figures 4 and 5 and their tables.

A method stops at its first solution, so one run at budget B tells how many problems it solved
within every smaller budget b (:func:`solved_within`); for TD search and roll-outs that is
exactly a run at budget b, for AR and REPL sampling nearly (their cap on sampling rounds grows
with the budget).  :func:`solved_table` averages over seeds (Figure 4's table),
:func:`ablation_table` does so per Rainbow arm (Figure 5's), and :func:`difference_se` says how
large a difference of two rates must be to count.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from tdlib.paper.arms import RAINBOW_ARMS
from tdlib.paper.runs import RUN_KEYS, shipped_runs


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
    table = configuration_table(shipped_runs(runs), budgets).drop(columns=["policy", "value"])
    table.insert(0, "env", [(env_of or {}).get(t, t.split("_")[0]) for t in table["testset"]])
    return table


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


def configuration_table(runs: pd.DataFrame, budgets: Sequence[int]) -> pd.DataFrame:
    """Solve rates over seeds for every configuration of the runs (method, score, variant and the
    checkpoints read), shipped or not: ``testset,method,score,variant,policy,value,seeds,budget,
    problems,solved_mean,solved_std``.  For comparisons of candidate networks, which Figure 4's
    table leaves out.  Pass :func:`select_runs`' runs."""
    keys = ["testset", "method", "score", "variant", "policy", "value"]
    columns = [*keys, "seeds", "budget", "problems", "solved_mean", "solved_std"]
    curves = solved_within(runs, budgets)
    if curves.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for values, group in curves.groupby([*keys, "at"], sort=True):
        stats = _over_seeds(group, " ".join(map(str, values)))
        if stats:
            rows.append({**dict(zip(keys, values[:-1])), "budget": int(values[-1]), **stats})
    return pd.DataFrame(rows, columns=columns)


def difference_se(a, b) -> float:
    """The binomial standard error of the difference of two solve rates, each a table row with
    ``solved_mean``, ``problems`` and ``seeds`` (every problem of every seed one trial).  One seed
    of 256 problems cannot tell 0.4 % from 0.8 %: a difference counts beyond twice this."""
    return float(np.sqrt(sum(r["solved_mean"] * (1 - r["solved_mean"]) / (r["problems"] * r["seeds"])
                             for r in (a, b))))
