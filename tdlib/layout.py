"""Where the project keeps things: its root, ``figures/`` and ``results/`` (no plotting here, so
loading a checkpoint never imports matplotlib)."""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The checkout holding tdlib (the folder with pyproject.toml), else the working folder."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").exists() else Path.cwd()


def figures_dir() -> Path:
    """``figures/`` of the project, or ``$TDLIB_FIGURES``; created if missing."""
    path = Path(os.environ.get("TDLIB_FIGURES", project_root() / "figures"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def results_dir() -> Path:
    """``results/`` of the project, or ``$TDLIB_RESULTS``; created if missing."""
    path = Path(os.environ.get("TDLIB_RESULTS", project_root() / "results"))
    path.mkdir(parents=True, exist_ok=True)
    return path
