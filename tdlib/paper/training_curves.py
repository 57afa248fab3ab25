"""The shipped networks' training curves (notebook 05's ``figures/training_curves.png``): one row of
panels per group of comparable networks, the training loss beside the held-out metric."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import matplotlib.pyplot as plt
import pandas as pd

from tdlib import checkpoint

# The held-out metric each kind is drawn with. The autoregressive baselines' exact reproduction of
# a target stays near zero on these budgets; the visual one (same picture) is what moves.
METRIC_BY_KIND = {"policy": "solve_1", "value": "spearman", "ar": "ar_visual", "repl": "repl_step_acc"}
_GROUP_TITLES = {
    ("policy", "image"): "policies (CSG2D, sketches, TinySVG)",
    ("policy", "rainbow"): "policies: the Rainbow ablation arms",
    ("value", ""): "value networks",
    ("ar", ""): "autoregressive baselines",
    ("repl", ""): "REPL Flow",
}


def curve_group(record: dict) -> tuple[str, str]:
    """The group a network's curves are drawn in: policies apart from the seven Rainbow arms
    (too many lines for one panel), every other kind in a group of its own."""
    kind = record.get("kind", "")
    if kind != "policy":
        return kind, ""
    return kind, "rainbow" if record.get("env") == "rainbow" else "image"


def curve_groups(records: Mapping[str, dict]) -> dict[tuple[str, str], list[str]]:
    """Network names by :func:`curve_group`, groups in a fixed order, names in ``records``' order."""
    found: dict[tuple[str, str], list[str]] = {}
    for name, record in records.items():
        found.setdefault(curve_group(record), []).append(name)
    order = list(_GROUP_TITLES)
    return dict(sorted(found.items(), key=lambda item: order.index(item[0])
                       if item[0] in order else len(order)))


def held_out_metric(evals: pd.DataFrame, kind: str) -> str | None:
    """The column of an ``eval_log.csv`` drawn for ``kind`` (its first metric when it lacks the
    preferred one)."""
    preferred = METRIC_BY_KIND.get(kind)
    if preferred in evals.columns:
        return preferred
    others = [c for c in evals.columns if c not in ("step", "examples_seen", "train_minutes")]
    return others[0] if others else None


def plot_training_curves(runs: Mapping[str, Path], records: Mapping[str, dict]) -> plt.Figure:
    """Loss (running mean over about a fiftieth of the run) and held-out metric against the step,
    a network trained further from another checkpoint drawn from the step that one had reached."""
    groups = curve_groups(records)
    fig, axes = plt.subplots(len(groups), 2, figsize=(12, 3.2 * len(groups)), squeeze=False)
    for (ax_loss, ax_eval), (group, names) in zip(axes, groups.items()):
        kind = group[0]
        for name in names:
            folder, record = Path(runs[name]), records[name]
            log = pd.read_csv(folder / "train_log.csv")
            offset = checkpoint.trained_before(record)["step"]
            window = max(1, len(log) // 50)
            line, = ax_loss.plot(log["step"] + offset,
                                 log["loss"].rolling(window, min_periods=1).mean(), lw=1.2, label=name)
            if (folder / "eval_log.csv").exists():
                evals = pd.read_csv(folder / "eval_log.csv")
                metric = held_out_metric(evals, kind)
                if metric:
                    ax_eval.plot(evals["step"] + offset, evals[metric], "o-", ms=3,
                                 color=line.get_color(), label=name)
        title = _GROUP_TITLES.get(group, kind)
        ax_loss.set(xlabel="step", ylabel="training loss (running mean)", title=title)
        ax_eval.set(xlabel="step", ylabel=METRIC_BY_KIND.get(kind, "held-out metric"),
                    title="held-out, measured during training")
        ax_loss.ticklabel_format(axis="x", style="sci", scilimits=(0, 3))
        ax_eval.ticklabel_format(axis="x", style="sci", scilimits=(0, 3))
        for ax in (ax_loss, ax_eval):
            ax.grid(alpha=0.3)
        if ax_loss.get_lines():
            ax_loss.legend(fontsize=7, ncol=2 if len(names) > 4 else 1)
    fig.tight_layout()
    return fig
