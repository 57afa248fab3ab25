"""Figures: the one ``savefig`` helper, image grids and PNG output.

Figures are written under ``figures/`` of the project (or ``$TDLIB_FIGURES``), named after
the paper's (``fig09_examples.png``); tables go under ``results/`` as CSV.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use(os.environ.get("MPLBACKEND", "Agg"))
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tdlib.layout import figures_dir, project_root, results_dir  # noqa: E402,F401  (re-exported)


def savefig(fig: plt.Figure, name: str, dpi: int = 150) -> Path:
    """Save ``fig`` as ``figures/<name>.png`` (the only way tdlib writes figures)."""
    path = figures_dir() / (name if name.endswith(".png") else f"{name}.png")
    fig.savefig(path, dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    return path


def save_table(table, name: str, **to_csv_options) -> Path:
    """Save a pandas table as ``results/tables/<name>.csv`` (the only way tdlib writes tables)."""
    folder = results_dir() / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name if name.endswith(".csv") else f"{name}.csv")
    table.to_csv(path, **to_csv_options)
    return path


def save_png(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """Write an ``H x W x 3`` float image in [0, 1] as PNG."""
    plt.imsave(os.fspath(path), np.clip(rgb, 0.0, 1.0), format="png",
               metadata={"Software": None})


def image_grid(images: Sequence[np.ndarray], titles: Sequence[str] | None = None,
               columns: int = 4, cell: float = 2.0, title_size: float = 6.0) -> plt.Figure:
    """A grid of RGB images with optional (wrapped) titles under each."""
    rows = max(1, -(-len(images) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * cell, rows * cell * 1.25),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_color("0.75")
        if i >= len(images):
            ax.axis("off")
        else:
            ax.imshow(images[i], interpolation="nearest")
            if titles is not None:
                ax.set_title(wrap(titles[i], 38), fontsize=title_size, family="monospace")
    fig.tight_layout()
    return fig


def wrap(text: str, width: int) -> str:
    """Break program text at spaces into lines of at most ``width`` characters."""
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return "\n".join(lines)
