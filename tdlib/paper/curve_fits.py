"""Training curves read as lines in log examples: how many examples a solve rate needs."""

from __future__ import annotations

import numpy as np


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
