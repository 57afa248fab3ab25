"""The paper's claims about its ablations (Figure 5), judged on what was measured (notebook 09).

A claim compares two solve rates.  Their difference counts only beyond twice its binomial
standard error (:func:`~tdlib.paper.solve_rates.difference_se`); within it the two "cannot be
told apart".  With search, two arms that solve no more than the autoregressive start they share
agree trivially, so a claim about them "cannot be told" (:data:`STILL`) rather than holding.
Each verdict is one of "holds", "does not hold", "cannot be told apart", :data:`STILL` or "not
measured" (an arm or budget without a row).

:func:`search_claims` judges the claims on Figure 5's table (:func:`~tdlib.paper.solve_rates.
ablation_table`), :func:`policy_claims` on one greedy edit of each arm's policy
(:func:`~tdlib.paper.arms.arm_one_step`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from tdlib.paper.arms import RHO_ARMS
from tdlib.paper.solve_rates import difference_se

STILL = "cannot be told: neither arm solves more than its start"
SEARCH_COLUMNS = ["paper's claim", "method", "here", "measured"]
POLICY_COLUMNS = ["paper's claim", "one greedy edit", "measured"]


def two_se(rows) -> pd.Series:
    """Twice the binomial standard error of each row's one-edit solve rate (``solved``, ``n``)."""
    return 2 * np.sqrt(rows["solved"] * (1 - rows["solved"]) / rows["n"])


def rate(table: pd.DataFrame, arm: str, method: str, at: int) -> pd.Series | None:
    """The row of ``arm`` under ``method`` at budget ``at`` (None: not measured)."""
    row = table[(table["arm"] == arm) & (table["method"] == method) & (table["budget"] == at)]
    return None if row.empty else row.iloc[0]


def difference(ra, rb) -> tuple[float, float]:
    """``ra``'s solve rate minus ``rb``'s, and that difference's binomial standard error."""
    return ra["solved_mean"] - rb["solved_mean"], difference_se(ra, rb)


def compare(table: pd.DataFrame, a: str, b: str, method: str, at: int):
    """``(difference, standard error, a line saying both rates)`` of arms ``a`` and ``b``
    (``None, None, why`` where one was not measured)."""
    ra, rb = rate(table, a, method, at), rate(table, b, method, at)
    if ra is None or rb is None:
        return None, None, f"{a} or {b} has no {method} run at {at}"
    diff, se = difference(ra, rb)
    return diff, se, (f"{a} {ra['solved_mean']:.1%} vs {b} {rb['solved_mean']:.1%} "
                      f"({method}, {at} expansions; difference {diff:+.1%}, 2 s.e. {2 * se:.1%})")


def improves(table: pd.DataFrame, start: pd.DataFrame, arm: str, method: str, at: int) -> bool:
    """Whether ``arm`` solves more within ``at`` expansions than its start alone (``start``: the
    arms' table at one expansion), beyond twice the standard error."""
    r = rate(table, arm, method, at)
    s = start[(start["arm"] == arm) & (start["method"] == method)]
    if r is None or s.empty:
        return False
    diff, se = difference(r, s.iloc[0])
    return diff > 2 * se


def verdict(holds: Callable[[float], bool], diff, se, moved: bool = True) -> str:
    """The verdict on a claim that ``holds(diff)``; ``moved``: whether either arm compared
    solves more than its start (with search)."""
    if diff is None:
        return "not measured"
    if not moved:
        return STILL  # two policies that add nothing to the start agree trivially
    if abs(diff) <= 2 * se:
        return "cannot be told apart"
    return "holds" if holds(diff) else "does not hold"


def search_claims(table: pd.DataFrame, start: pd.DataFrame, budget: int) -> pd.DataFrame:
    """The claims on Figure 5's table (``ablation_table`` of the selected runs, with ``budget``
    and 10 among its budgets; ``start``: the same at budget 1): No Current Image hurts, the
    reverse path helps at small budgets, full and No Reverse Path end close (both under TD
    rollouts and TD search), and rho = 0.2 is best (rollouts).  Columns
    :data:`SEARCH_COLUMNS`."""
    def moved(arms, method, at):
        return any(improves(table, start, arm, method, at) for arm in arms)

    def better(x):
        return x > 0

    claims = []
    for method in ("td-rollout", "td-search"):
        pair = ("full", "no_current_image")
        d, se, text = compare(table, *pair, method, budget)
        claims.append(("No Current Image hurts", method,
                       verdict(better, d, se, moved(pair, method, budget)), text))
        pair = ("full", "no_reverse_path")
        d, se, text = compare(table, *pair, method, 10)
        claims.append(("the reverse path helps at small budgets", method,
                       verdict(better, d, se, moved(pair, method, 10)), text))
        d, se, text = compare(table, *pair, method, budget)
        if d is None:
            close = "not measured"
        elif not moved(pair, method, budget):
            close = STILL
        else:
            close = "holds" if abs(d) <= 2 * se else "does not hold"
        claims.append(("full and No Reverse Path end close", method, close, text))
    sweep = table[(table["method"] == "td-rollout") & (table["budget"] == budget)
                  & table["arm"].isin(list(RHO_ARMS.values()))].sort_values("rho")
    if len(sweep):
        best = sweep.loc[sweep["solved_mean"].idxmax()]
        d, se, text = compare(table, "full", best["arm"], "td-rollout", budget)
        best_is_02 = best["rho"] == 0.2 or (d is not None and abs(d) <= 2 * se)
        if moved(sweep["arm"], "td-rollout", budget):
            here = "holds" if best_is_02 else "does not hold"
        else:
            here = STILL.replace("neither arm", "no rho")
        claims.append(("rho = 0.2 is best", "td-rollout", here,
                       f"best rho {best['rho']} ({best['solved_mean']:.1%}); " + text))
    return pd.DataFrame(claims, columns=SEARCH_COLUMNS)


def one_edit(one_step: pd.DataFrame, arm: str, k: int = 1) -> dict | None:
    """``arm``'s one-edit solve rate on ``k``-mutation problems as a rate row (one seed of ``n``
    problems; None: not measured)."""
    row = one_step[(one_step["arm"] == arm) & (one_step["mutations"] == k)]
    if row.empty:
        return None
    return {"solved_mean": row.iloc[0]["solved"], "problems": int(row.iloc[0]["n"]), "seeds": 1}


def policy_claims(one_step: pd.DataFrame) -> pd.DataFrame:
    """The claims on one greedy edit of each arm's policy on 1-mutation problems (``arm_one_step``'s
    table): No Current Image hurts, the reverse path helps, noising helps, and rho = 0.2 is best.
    Columns :data:`POLICY_COLUMNS`."""
    def claim(name, a, b):
        ra, rb = one_edit(one_step, a), one_edit(one_step, b)
        if ra is None or rb is None:
            return name, "not measured", f"{a} or {b} has no one-step row"
        diff, se = difference(ra, rb)
        return name, verdict(lambda x: x > 0, diff, se), (
            f"{a} {ra['solved_mean']:.1%} vs {b} {rb['solved_mean']:.1%} "
            f"(n = {ra['problems']}; difference {diff:+.1%}, 2 s.e. {2 * se:.1%})")

    claims = [claim("No Current Image hurts", "full", "no_current_image"),
              claim("the reverse path helps", "full", "no_reverse_path"),
              claim("noising helps (No Noising does worse)", "full", "no_noising")]
    rated = [(rho, one_edit(one_step, arm)) for rho, arm in RHO_ARMS.items()
             if one_edit(one_step, arm)]
    if rated:
        best_rho, best = max(rated, key=lambda item: item[1]["solved_mean"])
        full = one_edit(one_step, "full")
        diff, se = difference(best, full) if full else (None, None)
        here = ("not measured" if full is None else
                "holds" if best_rho == 0.2 or abs(diff) <= 2 * se else "does not hold")
        claims.append(("rho = 0.2 is best", here, "; ".join(
            f"rho {rho}: {r['solved_mean']:.1%}" for rho, r in sorted(rated, key=lambda i: i[0]))))
    return pd.DataFrame(claims, columns=POLICY_COLUMNS)
