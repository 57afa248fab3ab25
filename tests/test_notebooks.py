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
    printed = "".join("".join(o.get("text", "")) for c in result["cells"]
                      if c["cell_type"] == "code" for o in c.get("outputs", []))
    assert "IProgress not found" not in printed, "progress bars fell back with a warning"
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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_notebook_sends_a_smoke_run_away_from_the_shipped_results(path):
    code = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    assert "outputs_for(preset)" in "".join(code[1]["source"]), \
        "the cell after the parameters calls tdlib.layout.outputs_for(preset)"


def test_outputs_go_under_runs_for_every_preset_but_cpu(monkeypatch):
    from tdlib.layout import figures_dir, outputs_for, project_root, results_dir
    for name in ("TDLIB_FIGURES", "TDLIB_RESULTS"):  # set first, so that teardown unsets them
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    assert outputs_for("cpu") == project_root() / "figures"
    assert results_dir() == project_root() / "results"
    assert outputs_for("smoke") == project_root() / "runs" / "smoke" / "figures"
    assert figures_dir() == project_root() / "runs" / "smoke" / "figures"
    assert results_dir() == project_root() / "runs" / "smoke" / "results"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_notebook_is_valid_nbformat_with_unique_cell_ids(path):
    """JupyterLab and papermill read them without complaint: nbformat 4.5 wants an id per cell."""
    import nbformat
    nbformat.validate(nbformat.read(path, as_version=4))
    ids = [cell.get("id") for cell in json.loads(path.read_text())["cells"]]  # as written
    assert all(ids) and len(set(ids)) == len(ids), "a cell without an id, or two with one"
