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


def outputs_for(preset: str) -> Path:
    """Where a notebook run with ``preset`` writes its figures and tables: the project's own
    ``figures/`` and ``results/`` for ``cpu`` (the shipped results), else ``runs/<preset>/`` (unless
    ``$TDLIB_FIGURES`` / ``$TDLIB_RESULTS`` already say), so that a smoke or paper run never
    overwrites them.  Returns the figures folder."""
    if preset != "cpu":
        base = project_root() / "runs" / preset
        os.environ.setdefault("TDLIB_FIGURES", str(base / "figures"))
        os.environ.setdefault("TDLIB_RESULTS", str(base / "results"))
    return figures_dir()
