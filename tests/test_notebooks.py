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


def test_the_runner_reports_new_and_changed_files(tmp_path):
    from tdlib.notebook_runner import report_changes, snapshot
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "a.png").write_bytes(b"a")
    (tmp_path / "figures" / "b.png").write_bytes(b"b")
    before = snapshot([tmp_path / "figures", tmp_path / "missing"])
    (tmp_path / "figures" / "b.png").write_bytes(b"B")
    (tmp_path / "figures" / "c.png").write_bytes(b"c")
    lines = report_changes(before, snapshot([tmp_path / "figures"]), tmp_path).splitlines()
    assert lines == ["  new: figures/c.png", "  changed: figures/b.png",
                     "1 new, 1 changed, 1 unchanged figure and table files"]
