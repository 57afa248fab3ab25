"""Figures 4 and 5a: the fraction of problems solved against node expansions, mean and std over
seeds."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from tdlib.paper.arms import FIG5A_ARMS, RAINBOW_ARMS
from tdlib.paper.runs import method_label, shipped_runs
from tdlib.paper.solve_rates import solved_within


def _expansion_grid(budget: int, points: int) -> np.ndarray:
    return np.unique(np.geomspace(1, budget, points).round().astype(int))


def _plot_over_seeds(ax, curves: pd.DataFrame, label: str, ls: str = "-") -> float:
    """One curve: the mean over seeds of :func:`solved_within`'s rows, with a +-1 std band;
    returns the band's top."""
    table = curves.pivot_table(index="at", columns="seed", values="solved")
    mean, std = table.mean(axis=1), table.std(axis=1, ddof=1).fillna(0.0)
    line, = ax.plot(table.index, mean, ls=ls, label=f"{label} (n={table.shape[1]} seeds)")
    ax.fill_between(table.index, mean - std, mean + std, color=line.get_color(), alpha=0.15)
    return float((mean + std).max())


def _expansion_axes(ax, budget: int, top: float = 1.0):
    ax.set_xscale("log")
    ax.set_xlim(1, budget)
    ax.set_ylim(0, top)
    ax.set_xlabel("node expansions (programs compiled)")
    ax.set_ylabel("fraction of problems solved\n(line: mean over seeds; band: ± 1 std)")
    ax.grid(alpha=0.3)
    return ax


def _top(highest: float) -> float:
    """A y-axis top that shows curves near zero: 1.2 x the highest band, up to the next 0.05."""
    return min(1.0, max(0.05, np.ceil(highest * 1.2 / 0.05) * 0.05))


def plot_solved(ax, runs: pd.DataFrame, testset: str, methods: Sequence[tuple] | None = None,
                budget: int | None = None, points: int = 200):
    """Fraction solved against node expansions (log axis), mean and std over seeds, one curve
    per ``(method, score)`` of ``testset`` (default: all that were run on it; runs at the
    paper's settings only).  Pass :func:`select_runs`' runs."""
    runs = shipped_runs(runs)
    runs = runs[(runs["testset"] == testset) & (runs["variant"] == "")]
    budget = budget or int(runs["budget"].max())
    curves = solved_within(runs, _expansion_grid(budget, points))
    pairs = methods or sorted(set(zip(curves["method"], curves["score"])))
    for method, score in pairs:
        mine = curves[(curves["method"] == method) & (curves["score"] == score)]
        if not mine.empty:
            dashed = method == "td-search" and score != "value"
            _plot_over_seeds(ax, mine, method_label(method, score), "--" if dashed else "-")
    return _expansion_axes(ax, budget)


def plot_arms(ax, runs: pd.DataFrame, method: str, arms: Sequence[str] = FIG5A_ARMS,
              testset: str = "rainbow", budget: int | None = None, points: int = 200):
    """Figure 5a: fraction solved against node expansions for each arm under ``method``, mean
    and std over seeds.  Pass :func:`select_runs`' runs."""
    mine = runs[(runs["testset"] == testset) & (runs["method"] == method)
                & (runs["variant"] == "")]
    budget = budget or (int(mine["budget"].max()) if len(mine) else 1)
    grid = _expansion_grid(budget, points)
    highest = 0.0
    for arm in arms:
        run = mine[mine["policy"] == RAINBOW_ARMS[arm][0]]
        if not run.empty:
            highest = max(highest, _plot_over_seeds(ax, solved_within(run, grid),
                                                    arm.replace("_", " ")))
    # the arms solve few problems at this training budget: an axis to 1 would hide them
    return _expansion_axes(ax, budget, _top(highest))
