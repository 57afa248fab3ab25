import os

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _figures_to_tmp(tmp_path, monkeypatch):
    """Tests never overwrite the shipped figures and tables."""
    monkeypatch.setenv("TDLIB_FIGURES", str(tmp_path / "figures"))
    monkeypatch.setenv("TDLIB_RESULTS", str(tmp_path / "results"))
