"""Every numbered notebook runs headlessly with the smoke preset (papermill)."""

import json

import pytest

from tdlib.notebook_runner import notebook_paths, run_notebook

NOTEBOOKS = notebook_paths()


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found under notebooks/"


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_with_smoke_preset(path, tmp_path):
    source = json.loads(path.read_text())
    code_cells = [c for c in source["cells"] if c["cell_type"] == "code"]
    tagged = [c for c in code_cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one papermill parameters cell"
    assert "preset" in "".join(tagged[0]["source"])
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code_cells), \
        "source notebooks carry no outputs"

    executed = run_notebook(path, tmp_path / "executed", preset="smoke")
    result = json.loads(executed.read_text())
    errors = [o for c in result["cells"] if c["cell_type"] == "code"
              for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert (tmp_path / "figures").exists() and any((tmp_path / "figures").iterdir()), \
        "the notebook wrote its figures where TDLIB_FIGURES points"
