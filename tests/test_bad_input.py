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
    (TRAIN + ["--steps", "5", "--stop-at", "9"],
     "--stop-at 9 is past the end of the schedule (--steps 5)"),
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


def nested(depth: int) -> str:
    """A CSG2D program ``depth`` levels deep: binops down the left side to a circle, whose
    numbers are the deepest leaves (``depth - 1`` binops)."""
    return "(+ " * (depth - 1) + "(Circle 1 1 1)" + " (Circle 2 2 2))" * (depth - 1)


@pytest.mark.parametrize("command", [
    ["render", "--env", "csg2d", "PROGRAM", "-o", "x.png"],
    ["svg", "--env", "csg2d", "PROGRAM"],
    ["mutate", "--env", "csg2d", "PROGRAM", "--steps", "3"],
    ["path", "--env", "csg2d", "(Circle 1 1 1)", "PROGRAM"],
])
def test_programs_nested_too_deep_are_refused_and_deep_ones_work(tmp_path, monkeypatch, capsys,
                                                                 command):
    from tdlib.grammar import MAX_DEPTH
    monkeypatch.chdir(tmp_path)
    (tmp_path / "deep.txt").write_text(nested(MAX_DEPTH + 50))
    assert run([a if a != "PROGRAM" else "@deep.txt" for a in command]) == 2
    err = capsys.readouterr().err.strip()
    assert f"nests {MAX_DEPTH + 50} levels deep; tdlib handles at most {MAX_DEPTH}" in err
    assert len(err.splitlines()) == 1
    (tmp_path / "ok.txt").write_text(nested(MAX_DEPTH))
    assert run([a if a != "PROGRAM" else "@ok.txt" for a in command]) == 0


def test_a_program_can_come_from_standard_input(monkeypatch, capsys):
    import io
    monkeypatch.setattr("sys.stdin", io.StringIO(RING + "\n"))
    assert run(["svg", "--env", "csg2d", "-"]) == 0
    assert "<svg" in capsys.readouterr().out


def test_an_unexpected_error_keeps_its_traceback_and_asks_for_a_report(monkeypatch, capsys):
    import tdlib.cli

    def broken(args, out):
        raise RuntimeError("something tdlib did not expect")
    monkeypatch.setitem(tdlib.cli.COMMANDS, "envs", broken)
    assert run(["envs"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: something tdlib did not expect" in err
    assert err.strip().splitlines()[-1].startswith("tdlib envs: this is a bug in tdlib")


def test_ctrl_c_in_a_command_is_one_line_and_status_130(monkeypatch, capsys):
    import tdlib.cli

    def interrupted(args, out):
        raise KeyboardInterrupt
    monkeypatch.setitem(tdlib.cli.COMMANDS, "testset", interrupted)
    assert run(["testset", "--env", "csg2d", "-o", "x.jsonl"]) == 130
    assert capsys.readouterr().err.strip() == "tdlib testset: interrupted"


def wide(n: int, seed: int) -> str:
    """A balanced union of ``n`` random circles: a wide program, only log2(n) levels deep."""
    import random
    r = random.Random(seed)
    parts = [f"(Circle {r.randint(1, 6)} {r.choice('0123456789ABCDEF')} "
             f"{r.choice('0123456789ABCDEF')})" for _ in range(n)]
    while len(parts) > 1:
        parts = [f"(+ {parts[i]} {parts[i + 1]})" if i + 1 < len(parts) else parts[i]
                 for i in range(0, len(parts), 2)]
    return parts[0]


def test_the_path_between_wide_programs_is_written_step_by_step_in_little_memory(tmp_path,
                                                                                   capsys):
    """``tdlib path`` keeps one program of the path at a time: between two programs of 512
    primitives (1,400 edits) it allocates a few MB, not the path's whole list of programs
    with an index of every node each (1.6 GB at 512 primitives, 20 GB at 4,096)."""
    import tracemalloc

    import tdlib
    from tdlib.edit_paths import edit_steps
    env = tdlib.make_env("csg2d")
    (tmp_path / "a.txt").write_text(wide(512, 0))
    (tmp_path / "b.txt").write_text(wide(512, 1))
    tracemalloc.start()
    try:
        assert run(["path", "--env", "csg2d", f"@{tmp_path / 'a.txt'}",
                    f"@{tmp_path / 'b.txt'}"]) == 0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    lines = capsys.readouterr().out.splitlines()
    steps = edit_steps(env.parse(wide(512, 0)), env.parse(wide(512, 1)), 0)
    assert lines[-1] == f"# {len(steps)} edit(s)" and len(steps) > 1000
    assert lines[0] == wide(512, 0) and lines[-2] == wide(512, 1)
    for k in (0, len(steps) // 2, len(steps) - 1):  # the caret line under the edited node
        assert lines[2 * k] == steps[k].tree.text
        where = steps[k].edit.locate(steps[k].tree)
        carets, replacement = lines[2 * k + 1].split(" -> ")
        assert (carets.index("^"), len(carets)) == (where.start, where.end)
        assert replacement == steps[k].edit.new.text
    assert peak < 40e6, f"{peak / 1e6:.0f} MB"


def test_char_spans_walked_down_agree_with_the_node_index():
    import random

    import tdlib
    env = tdlib.make_env("tinysvg")
    r = random.Random(4)
    for _ in range(30):
        tree = env.sample(r, 1, 8)
        for located in tree.nodes:
            assert tree.char_span(located.path) == (located.start, located.end)
