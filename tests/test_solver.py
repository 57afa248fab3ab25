"""From a picture to a program: the image conversion against known renders, ``tdlib solve``."""

import numpy as np
import pytest
from PIL import Image

import tdlib
from tdlib.cli import main
from tdlib.plotting import save_png
from tdlib.solver import ImageError, image_to_observation, load_image

RING = "(- (Circle 6 8 8) (Circle 3 8 8))"


def run(argv) -> int:
    try:
        return main(list(argv))
    except SystemExit as exit_:
        return 0 if exit_.code is None else exit_.code


@pytest.mark.parametrize("env_name, program", [("csg2d", RING), ("tinysvg", None)])
def test_a_render_written_as_png_reads_back_as_the_same_observation(tmp_path, env_name, program):
    env = tdlib.make_env(env_name)
    tree = env.parse(program) if program else env.sample(3, 2, 5)
    render = env.render(tree)
    save_png(tmp_path / "target.png", env.display(render))
    observed = image_to_observation(env, tmp_path / "target.png")
    assert observed.shape == render.shape and observed.dtype == np.float32
    assert np.abs(observed - render).max() <= 1 / 255 + 1e-6


def test_alpha_is_paper_and_inverted_pictures_read_as_documented(tmp_path):
    env = tdlib.make_env("csg2d")
    ink = env.render(RING)[:, :, 0]
    rgba = np.zeros((128, 128, 4), np.uint8)  # black ink, transparent elsewhere
    rgba[:, :, 3] = np.round(ink * 255).astype(np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    assert np.abs(image_to_observation(env, tmp_path / "alpha.png")[:, :, 0] - ink).max() \
        <= 1 / 255 + 1e-6
    inverted = np.round(ink * 255).astype(np.uint8)  # white shapes on black: dark is ink
    observed = image_to_observation(env, inverted)[:, :, 0]
    assert np.abs(observed - (1 - ink)).max() <= 1 / 255 + 1e-6


def test_other_sizes_are_padded_to_a_square_and_resized():
    env = tdlib.make_env("csg2d")
    big = env.display(env.render(RING, 256))
    wide = np.ones((256, 512, 3), np.float32)
    wide[:, 128:384] = big  # the ring in the middle of a white strip twice as wide
    observed = image_to_observation(env, wide)[:, :, 0]
    square = np.zeros((128, 128), np.float32)
    square[32:96, 32:96] = env.render(RING, 64)[:, :, 0]  # what the padded square holds
    assert np.abs(observed - square).mean() < 0.01
    assert observed[:30].max() == 0 and observed[98:].max() == 0  # the white padding


def test_sixteen_bit_and_float_pictures_read_like_eight_bit_ones(tmp_path):
    env = tdlib.make_env("csg2d")
    ink = env.render(RING)[:, :, 0]
    Image.fromarray(np.round((1 - ink) * 65535).astype(np.uint16)).save(tmp_path / "grey16.png")
    for picture in (tmp_path / "grey16.png", np.round((1 - ink) * 65535).astype(np.uint16),
                    (1 - ink).astype(np.float64)):
        assert np.abs(image_to_observation(env, picture)[:, :, 0] - ink).max() <= 1 / 255
    with pytest.raises(ImageError, match=r"values in \[0, 1\]"):
        load_image((1 - ink) * 255.0)


def test_a_sketch_on_grey_paper_is_stretched_to_ink():
    env = tdlib.make_env("csg2d")
    ink = env.render(RING)[:, :, 0]
    grey_paper = 0.8 - 0.5 * ink  # pencil (grey 0.3) on grey paper (0.8)
    observed = image_to_observation(env, grey_paper, sketch=True)[:, :, 0]
    assert observed[ink == 0].max() < 0.02 and observed[ink == 1].min() > 0.98


def test_thin_strokes_and_blank_noisy_pages_are_not_stretched_into_noise(rng):
    env = tdlib.make_env("csg2d")
    page = np.clip(0.9 + rng.normal(0, 0.01, (256, 256)), 0, 1)
    blank = image_to_observation(env, page, sketch=True)[:, :, 0]
    assert blank.max() < 0.15, "noise alone is not stretched into strokes"
    page[100:120, 100] = page[100:120, 119] = page[100, 100:120] = page[119, 100:120] = 0.2
    outline = image_to_observation(env, page, sketch=True)[:, :, 0]  # 0.1 % of the pixels
    assert (outline > 0.5).mean() < 0.01, "the paper stays paper"
    assert outline[10:40, 10:40].max() < 0.05 and outline[50:60, 50].min() > 0.3


def test_unreadable_pictures_are_refused(tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    (tmp_path / "empty.png").write_bytes(b"")
    for path, message in [(tmp_path / "missing.png", "no such image"),
                          (tmp_path / "notes.png", "not a readable image"),
                          (tmp_path / "empty.png", "not a readable image")]:
        with pytest.raises(ImageError, match=message):
            load_image(path)
    with pytest.raises(ImageError, match="shape"):
        load_image(np.zeros((0, 5, 3)))


def test_solve_with_a_program_prints_a_program_that_parses_and_writes_its_files(tmp_path,
                                                                                 capsys):
    out = tmp_path / "out" / "ring"
    assert run(["solve", "--env", "csg2d", "--program", RING, "--budget", "40", "--seed", "1",
                "-o", str(out), "--no-progress"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    program = tdlib.make_env("csg2d").parse(lines[-1])  # the last line parses
    assert lines[-2].startswith(("solved", "not solved"))
    assert "<svg" in out.with_suffix(".svg").read_text()
    png = np.asarray(Image.open(out.with_suffix(".png")))
    assert png.shape[0] == 130 and png.shape[1] > 2 * 128  # target beside the result
    gif = Image.open(out.with_suffix(".gif"))
    assert gif.n_frames >= 1
    again = tdlib.solve("csg2d", program=RING, budget=40, seed=1)
    assert again.program == str(program), "the same seed gives the same program"
    assert again.trajectory[-1] == again.program and again.expansions <= 40


def test_solve_from_an_image_file(tmp_path, capsys):
    env = tdlib.make_env("csg2d")
    save_png(tmp_path / "ring.png", env.display(env.render(RING, 200)))
    assert run(["solve", "--env", "csg2d", "--image", str(tmp_path / "ring.png"), "--budget", "30",
                "--no-progress"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    env.parse(lines[-1])
    result = tdlib.solve("csg2d", tmp_path / "ring.png", budget=30)
    assert result.program == lines[-1] and result.judged
    assert result.score == pytest.approx(np.abs(env.render(result.program) - result.target).mean())
    drawing = tdlib.solve("csg2d", tmp_path / "ring.png", budget=30, sketch=True)
    assert not drawing.judged and not drawing.solved and drawing.expansions == 30, \
        "a sketch is never judged solved: the whole budget is searched"
    assert drawing.trajectory[-1] == drawing.program


@pytest.mark.parametrize("argv, message", [
    (["--env", "csg2d", "--image", "missing.png"], "no such image"),
    (["--env", "csg2d", "--image", "notes.png"], "not a readable image"),
    (["--env", "rainbow", "--program", "(Rectangle 7 6 orange blue 8)"], "no trained policy"),
    (["--env", "tinysvg", "--image", "notes.png", "--sketch"], "sketches are CSG2D"),
    (["--env", "csg2d", "--program", "(Circle 4 8"], "malformed program"),
])
def test_solve_explains_bad_input_in_one_line(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.png").write_text("not an image")
    assert run(["solve", "--budget", "5", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize("argv, message", [
    (["--env", "logo", "--program", "x"], "invalid choice"),
    (["--env", "csg2d", "--program", RING, "--beam", "0"], "expected a positive integer"),
    (["--env", "csg2d", "--program", RING, "--budget", "0"], "expected a positive integer"),
])
def test_bad_options_are_refused_by_the_parser(capsys, argv, message):
    assert run(["solve", *argv]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # argparse: usage, then the error
    assert last.startswith("tdlib solve: error:") and message in last
