"""Candidates are evaluated into a staging folder and shipped together with those evaluations."""

import json
import runpy
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1] / "tools"


@pytest.fixture(scope="module")
def tool():
    return runpy.run_path(str(TOOLS / "ship_candidate.py"))


@pytest.fixture(scope="module")
def queue():
    return runpy.run_path(str(TOOLS / "run_evaluations.py"))["main"]


def checkpoint(folder: Path, weights: bytes, init_from: str = "", optimizer: bool = True):
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(weights)
    record = {"kind": "policy", "step": len(weights), "train": {"init_from": init_from}}
    if init_from:
        record["initialised_from"] = {"folder": init_from, "step": 1}
    (folder / "model.json").write_text(json.dumps(record))
    if optimizer:
        (folder / "train_state.safetensors").write_bytes(b"adam")


def staged_run(folder: Path, name: str, policy: str | None, weights_sha: str):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("index,solved\n0,1\n")
    settings = {"method": "td-search", "models": {"policy": {"weights_sha256": weights_sha}}}
    if policy:
        settings["checkpoints"] = {"policy": policy}
    (folder / f"{name}.json").write_text(json.dumps(settings))


def record(folder: Path) -> dict:
    return json.loads((folder / "model.json").read_text())


def test_a_candidate_ships_in_place_of_the_previous_network_with_its_evaluations(tmp_path, tool):
    from tdlib.evaluation import file_sha256
    root, shipped = tmp_path, tmp_path / "results" / "checkpoints"
    checkpoint(shipped / "x_policy", b"old weights", optimizer=False)
    checkpoint(root / "results" / "training" / "long", b"long run", "results/checkpoints/x_policy")
    checkpoint(root / "results" / "training" / "more", b"more", "results/training/long")
    (root / "results" / "eval").mkdir()
    staged_run(root / "staged", "a.csv", "results/training/more",
               file_sha256(root / "results" / "training" / "more" / "model.safetensors"))
    staged_run(root / "staged", "ar.csv", None, "")
    moves = tool["staged_moves"](root, Path("staged"),
                                 [Path("results/training/long"), Path("results/training/more")])
    tool["rename_shipped"](root, "x_policy", "x_policy_old")
    tool["ship"](root, "x_policy_long", Path("results/training/long"))
    tool["ship"](root, "x_policy", Path("results/training/more"))
    promoted = tool["promote"](root, moves)
    # each shipped record names the shipped folder its weights started from
    assert record(shipped / "x_policy_long")["train"]["init_from"] == \
        "results/checkpoints/x_policy_old"
    assert record(shipped / "x_policy")["initialised_from"]["folder"] == \
        "results/checkpoints/x_policy_long"
    assert (shipped / "x_policy" / "model.safetensors").read_bytes() == b"more"
    assert not (shipped / "x_policy" / "train_state.safetensors").exists()
    assert (shipped / "x_policy_old" / "model.safetensors").read_bytes() == b"old weights"
    assert sorted(p.name for p in promoted) == ["a.csv", "ar.csv"]
    settings = json.loads((root / "results" / "eval" / "a.csv.json").read_text())
    assert "checkpoints" not in settings  # it read the shipped network now
    assert not list((root / "staged").iterdir())


def test_a_staged_evaluation_of_other_weights_or_folders_stops_everything_first(tmp_path, tool):
    root = tmp_path
    checkpoint(root / "results" / "training" / "cand", b"cand")
    staged_run(root / "staged", "a.csv", "results/training/cand", "not its hash")
    with pytest.raises(ValueError, match="other policy weights"):
        tool["staged_moves"](root, Path("staged"), [Path("results/training/cand")])
    staged_run(root / "staged2", "b.csv", "results/training/elsewhere", "")
    with pytest.raises(ValueError, match="does not ship"):
        tool["staged_moves"](root, Path("staged2"), [Path("results/training/cand")])


def test_candidates_reach_only_the_runs_that_read_their_kind(tmp_path, queue, capsys):
    policy = "results/checkpoints/csg2d_policy"
    assert queue(["--queue", "csg2d_hard/0/ar,td-search-value,random-search-value", "--dry-run",
                  "--candidate", f"policy={policy}", "--output-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    reads_policy = {line.split(" -o ")[1].split()[0].split("/")[-1]: f"--policy {policy}" in line
                    for line in lines}
    assert reads_policy == {"csg2d_hard_ar_b1000_s0.csv": False,
                            "csg2d_hard_td-search-value_b1000_s0.csv": True,
                            "csg2d_hard_random-search-value_b1000_s0.csv": False}
    for bad, message in (([f"policy={policy}"], "staging --output-dir"),  # into results/eval
                         (["critic=x", "--output-dir", str(tmp_path)], "is not KIND=FOLDER"),
                         (["policy=results/nowhere", "--output-dir", str(tmp_path)],
                          "holds no checkpoint")):
        with pytest.raises(SystemExit):
            queue(["--queue", "csg2d_hard/0/ar", "--dry-run", "--candidate", *bad])
        assert message in capsys.readouterr().err
