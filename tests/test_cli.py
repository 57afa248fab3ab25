"""The ``tdlib`` command line, in process and as a subprocess."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import tdlib
from tdlib.cli import main

LANGUAGES = ["csg2d", "csg2d-sketch", "tinysvg", "rainbow"]
RING = "(- (Circle 6 8 8) (Circle 3 8 8))"
PROJECT = Path(__file__).resolve().parent.parent


def run(argv) -> int:
    """Exit status of ``tdlib argv``, whether main returns it or argparse raises SystemExit."""
    try:
        return main(list(argv))
    except SystemExit as exit_:
        return 0 if exit_.code is None else exit_.code


def read_png(path) -> np.ndarray:
    from PIL import Image
    return np.asarray(Image.open(path).convert("RGB"), np.float64) / 255


# ------------------------------------------------------------------ envs
def test_envs_lists_every_language(capsys):
    assert run(["envs"]) == 0
    out = capsys.readouterr().out
    listed = [line.split(":")[0] for line in out.splitlines() if not line.startswith(" ")]
    assert listed == LANGUAGES
    assert "Circle" in out and "Rectangle" in out and "Move" in out


# ------------------------------------------------------------------ render
@pytest.mark.parametrize("size", [128, 200])
def test_render_writes_png_whose_ink_is_the_ring_area(tmp_path, capsys, size):
    out = tmp_path / "ring.png"
    assert run(["render", "--env", "csg2d", RING, "-o", str(out), "--size", str(size)]) == 0
    assert str(out) in capsys.readouterr().out
    image = read_png(out)
    assert image.shape == (size, size, 3)
    unit = size / 16
    want = math.pi * (6 ** 2 - 3 ** 2) * unit ** 2
    dark = (1.0 - image.mean(axis=-1)).sum()  # black ink on white
    assert abs(dark - want) / want < 0.02, (dark, want)
    assert tuple(image[0, 0]) == (1.0, 1.0, 1.0)                     # background white
    assert tuple(image[size // 2, size // 2]) == (1.0, 1.0, 1.0)     # the hole
    assert tuple(image[size // 2, round(size / 2 + 4.5 * unit)]) == (0.0, 0.0, 0.0)  # the ring


def test_render_tinysvg_writes_colour(tmp_path):
    out = tmp_path / "r.png"
    assert run(["render", "--env", "tinysvg", "(Rectangle 9 9 blue none 0)", "-o", str(out)]) == 0
    image = read_png(out)
    assert image.shape == (128, 128, 3)
    assert tuple(image[64, 64]) == (0.0, 0.0, 1.0)


def test_render_default_size_is_128(tmp_path):
    out = tmp_path / "c.png"
    assert run(["render", "--env", "csg2d", "(Circle 4 8 8)", "-o", str(out)]) == 0
    assert read_png(out).shape == (128, 128, 3)


@pytest.mark.parametrize("size", ["0", "7", "-5", "3.5", "big"])
def test_render_bad_size_is_a_usage_error(tmp_path, capsys, size):
    assert run(["render", "--env", "csg2d", RING, "-o", str(tmp_path / "x.png"),
                "--size", size]) == 2
    err = capsys.readouterr().err
    assert "size" in err and "Traceback" not in err
    assert not (tmp_path / "x.png").exists()


def test_render_to_an_unwritable_place_exits_2(tmp_path, capsys):
    target = tmp_path / "no" / "such" / "dir" / "x.png"
    assert run(["render", "--env", "csg2d", RING, "-o", str(target)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


# ------------------------------------------------------------------ sample
def sample_lines(capsys, *args):
    assert run(["sample", *args]) == 0
    return capsys.readouterr().out.splitlines()


@pytest.mark.parametrize("name", LANGUAGES)
def test_sample_prints_parseable_programs_in_range(capsys, name):
    lines = sample_lines(capsys, "--env", name, "-n", "5", "--seed", "0",
                         "--min-primitives", "2", "--max-primitives", "4")
    assert len(lines) == 5
    env = tdlib.make_env(name)
    for line in lines:
        tree = env.parse(line)
        assert str(tree) == line
        assert 2 <= tree.sigma <= 4


def test_sample_defaults_and_seeds(capsys):
    first = sample_lines(capsys, "--env", "csg2d", "-n", "5", "--seed", "0")
    again = sample_lines(capsys, "--env", "csg2d", "-n", "5", "--seed", "0")
    other = sample_lines(capsys, "--env", "csg2d", "-n", "5", "--seed", "1")
    assert len(first) == 5 and first == again
    assert other != first
    env = tdlib.make_env("csg2d")
    assert all(1 <= env.parse(line).sigma <= 8 for line in first)  # default range 1..8
    assert sample_lines(capsys, "--env", "csg2d", "--seed", "3").__len__() == 1  # default n


def test_sample_exact_size(capsys):
    env = tdlib.make_env("tinysvg")
    lines = sample_lines(capsys, "--env", "tinysvg", "-n", "20", "--seed", "5",
                         "--min-primitives", "3", "--max-primitives", "3")
    assert len(lines) == 20 and {env.parse(line).sigma for line in lines} == {3}


def test_sample_with_min_above_max_exits_2(capsys):
    assert run(["sample", "--env", "csg2d", "--min-primitives", "9", "--max-primitives", "3"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("flag,value", [("-n", "-1"), ("-n", "two"), ("--max-primitives", "x")])
def test_sample_bad_counts_exit_2(capsys, flag, value):
    assert run(["sample", "--env", "csg2d", flag, value]) == 2
    assert "Traceback" not in capsys.readouterr().err


# ------------------------------------------------------------------ svg
@pytest.mark.parametrize("name,program", [("csg2d", RING),
                                          ("tinysvg", "(Move (Ellipse 4 3 red blue 2) +1 -2)"),
                                          ("rainbow", "(Arrange h (Ellipse 4 3 red blue 2) "
                                                      "(Rectangle 2 2 black none 0) 1)")])
def test_svg_writes_an_svg_file(tmp_path, capsys, name, program):
    out = tmp_path / "out.svg"
    assert run(["svg", "--env", name, program, "-o", str(out), "--size", "256"]) == 0
    assert str(out) in capsys.readouterr().out
    root = ET.parse(out).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert (root.get("width"), root.get("height")) == ("256", "256")
    assert len(list(root)) >= 2  # the white background and at least one shape
    assert out.read_text() == tdlib.make_env(name).to_svg(program, size=256)


def test_svg_to_stdout(capsys):
    assert run(["svg", "--env", "csg2d", RING]) == 0
    out = capsys.readouterr().out
    assert ET.fromstring(out).get("width") == "128"


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("command", ["render", "svg"])
@pytest.mark.parametrize("program", ["(Circle 4 8 8", "(Circle 4 8 8))", "(Circle  4 8 8)",
                                     "(circle 4 8 8)", "", "(+ (Circle 4 8 8))",
                                     "(Circle 4 8 8)\n"])
def test_malformed_program_exits_2_with_one_line(tmp_path, capsys, command, program):
    argv = [command, "--env", "csg2d", program]
    if command == "render":
        argv += ["-o", str(tmp_path / "x.png")]
    assert run(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip("\n").split("\n")
    assert len(lines) == 1, captured.err
    assert "column" in lines[0] and "Traceback" not in captured.err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("program,column", [("(Circle G 8 8)", 9), ("(Quad 1 2 3 4 O)", 15),
                                            ("(Quad 1 2 3 4 5)", 15)])
def test_out_of_range_value_exits_2_naming_the_column(tmp_path, capsys, program, column):
    assert run(["render", "--env", "csg2d", program, "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert f"column {column}" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_tinysvg_values_out_of_range_exit_2(tmp_path, capsys):
    for program in ("(Rectangle A 1 red none 0)", "(Rectangle 1 1 pink none 0)",
                    "(Move (Rectangle 1 1 red none 0) 3 +1)"):
        assert run(["svg", "--env", "tinysvg", program]) == 2
        err = capsys.readouterr().err
        assert "column" in err and len(err.strip().splitlines()) == 1
    # Rainbow has no Move
    assert run(["svg", "--env", "rainbow", "(Move (Rectangle 1 1 red none 0) +3 +1)"]) == 2
    assert "column 2" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["render", "sample", "svg"])
def test_unknown_env_exits_2_and_lists_languages(tmp_path, capsys, command):
    argv = [command, "--env", "csg3d"]
    if command != "sample":
        argv += [RING, "-o", str(tmp_path / "x.out")]
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "csg3d" in err and "Traceback" not in err
    for name in LANGUAGES:
        assert name in err


def subcommands() -> list[str]:
    import argparse
    from tdlib.cli import build_parser
    action = next(a for a in build_parser()._actions
                  if isinstance(a, argparse._SubParsersAction))
    return list(action.choices)


def test_the_documented_subcommands_exist():
    assert {"envs", "render", "sample", "svg"} <= set(subcommands())


@pytest.mark.parametrize("command", [None, *subcommands()])
def test_help_of_every_command(capsys, command):
    with pytest.raises(SystemExit) as exit_:
        main(([command] if command else []) + ["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: tdlib")
    if command in ("render", "sample", "svg"):
        assert "--env" in out and all(name in out for name in LANGUAGES)


def test_no_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main([])
    assert exit_.value.code == 2
    assert "usage" in capsys.readouterr().err


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(
    st.text(max_size=30),
    st.text(alphabet="()+- CircleQuad0123456789ABCDEFGHIJKLMNO", max_size=40),
))
def test_any_text_exits_0_or_2_without_traceback(capsys, text):
    code = run(["svg", "--env", "csg2d", "--", text])  # "--": text may start with "-"
    captured = capsys.readouterr()
    assert code in (0, 2)
    assert "Traceback" not in captured.err
    if code == 2:
        assert len(captured.err.strip("\n").split("\n")) == 1, captured.err
    else:
        tdlib.make_env("csg2d").parse(text)  # accepted only if it parses


# ------------------------------------------------------------------ as a process
def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PROJECT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_module_entry_point_exits_2_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tdlib.cli", "render", "--env", "csg2d", "(Circle 4 8 8",
         "-o", str(tmp_path / "x.png")],
        capture_output=True, text=True, timeout=120, env=_env(), cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "column 14" in result.stderr
    assert not (tmp_path / "x.png").exists()


def test_module_entry_point_renders(tmp_path):
    out = tmp_path / "ring.png"
    result = subprocess.run(
        [sys.executable, "-m", "tdlib.cli", "render", "--env", "csg2d", RING, "-o", str(out)],
        capture_output=True, text=True, timeout=120, env=_env(), cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert read_png(out).shape == (128, 128, 3)


def test_console_script_exits_2_without_traceback(tmp_path):
    script = Path(sys.executable).with_name("tdlib")
    if not script.exists():
        pytest.skip("the tdlib console script is not installed next to this interpreter")
    result = subprocess.run([str(script), "svg", "--env", "csg2d", "(Circle G 8 8)"],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "column 9" in result.stderr


# ---------------------------------------------------------------- mutate and path

def test_mutate_prints_each_step_with_a_caret_under_the_edit(capsys):
    program = "(+ (+ (+ (Circle A D 4) (Quad F E 4 6 K)) (Quad 3 E C 2 M)) (Circle C 2 1))"
    assert main(["mutate", "--env", "csg2d", program, "--steps", "3", "--seed", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 7 and lines[0] == program
    env = tdlib.make_env("csg2d")
    for before, caret, after in zip(lines[0:6:2], lines[1:6:2], lines[2:7:2]):
        start = len(caret) - len(caret.lstrip(" "))
        marker, replacement = caret.strip().split(" -> ")
        end = start + len(marker)
        # the caret spans exactly the replaced text: splicing the replacement in gives the next line
        assert before[:start] + replacement + before[end:] == after
        env.parse(after)
    assert main(["mutate", "--env", "csg2d", program, "--steps", "3", "--seed", "0"]) == 0
    assert capsys.readouterr().out.splitlines() == lines, "same seed, same steps"


def test_path_prints_programs_ending_at_the_target(capsys):
    a, b = "(Circle 1 2 3)", "(- (+ (Circle 5 5 5) (Circle 1 2 4)) (Quad 8 8 8 8 G))"
    assert main(["path", "--env", "csg2d", a, b]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == a and lines[-2] == b and lines[-1].startswith("# ")
    programs = lines[:-1:2]
    assert int(lines[-1].split()[1]) == len(programs) - 1


@pytest.mark.parametrize("argv", [
    ["mutate", "--env", "csg2d", "(Circle 1 2 G)"],
    ["path", "--env", "csg2d", "(Circle 1 2 3)", "(Circle 1 2"],
])
def test_mutate_and_path_reject_malformed_programs(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "column" in err[0] and "Traceback" not in err[0]
