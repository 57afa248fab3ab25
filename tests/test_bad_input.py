"""Bad input on the command line: exit status 2 and one line that names the value, never a
traceback.  One table for the train, evaluate and solve commands."""

import pytest

from tdlib.cli import main
from tdlib.layout import project_root

RING = "(- (Circle 6 8 8) (Circle 3 8 8))"
HARD = str(project_root() / "results" / "testsets" / "csg2d_hard.jsonl")


def run(argv) -> int:
    try:
        return main(list(argv))
    except SystemExit as exit_:
        return 0 if exit_.code is None else exit_.code


TRAIN = ["train", "--env", "csg2d", "--preset", "smoke", "--no-progress"]
EVALUATE = ["evaluate", "--method", "ar", "--testset", HARD, "--limit", "1", "--no-progress"]
SOLVE = ["solve", "--env", "csg2d", "--program", RING, "--no-progress", "--budget", "5"]


@pytest.mark.parametrize("argv, message", [
    (TRAIN + ["--batch-size", "0"], "--batch-size: expected a positive integer, not 0"),
    (TRAIN + ["--lr", "-1"], "--lr: expected a positive number, not -1.0"),
    (TRAIN + ["--bucket-batches", "0"], "--bucket-batches: expected a positive integer, not 0"),
    (TRAIN + ["--steps", "-5"], "--steps: expected a positive integer, not -5"),
    (TRAIN + ["--max-minutes", "-1"], "--max-minutes: expected a positive number, not -1.0"),
    (TRAIN + ["--workers", "-2"], "--workers: expected a non-negative integer, not -2"),
    (TRAIN + ["--set", "d_model=abc"], "d_model takes int values (now"),
    (TRAIN + ["--set", "examples.rho=yes"], "rho takes float values"),
    (TRAIN + ["--device", "nonsense"], "'nonsense' is not a device"),
    (TRAIN + ["--device", "cuda:7"], "cuda:7"),
    (EVALUATE + ["--budget", "0", "-o", "x.csv"], "--budget: expected a positive integer"),
    (EVALUATE + ["--beam", "0", "-o", "x.csv"], "--beam: expected a positive integer"),
    (EVALUATE + ["--device", "gpu", "-o", "x.csv"], "'gpu' is not a device"),
    (SOLVE + ["--device", "nonsense"], "'nonsense' is not a device"),
    (SOLVE + ["--tolerance", "2"], "expected a number in [0, 1], not 2.0"),
])
def test_bad_values_end_in_one_line_naming_them(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert run(argv + (["--out", str(tmp_path / "run")] if argv[0] == "train" else [])) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1], err
    assert not any("Traceback" in line for line in err)


def test_train_refuses_an_out_that_is_a_file(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert run(TRAIN + ["--out", str(tmp_path / "file")]) == 2
    err = capsys.readouterr().err.strip()
    assert "is a file" in err and len(err.splitlines()) == 1
