"""From a picture to a program: the image conversion against known renders, ``tdlib solve``."""

import numpy as np
import pytest
from PIL import Image

import tdlib
from tdlib.cli import main
from tdlib.plotting import save_png
from tdlib.image_input import ImageError, image_to_observation, load_image

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
    (["--env", "rainbow", "--program", "(Rectangle 7 6 orange blue 8)"],
     "invalid choice: 'rainbow' (choose from 'csg2d', 'csg2d-sketch', 'tinysvg')"),
    (["--env", "csg2d", "--program", RING, "--beam", "0"], "expected a positive integer"),
    (["--env", "csg2d", "--program", RING, "--budget", "0"], "expected a positive integer"),
])
def test_bad_options_are_refused_by_the_parser(capsys, argv, message):
    assert run(["solve", *argv]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # argparse: usage, then the error
    assert last.startswith("tdlib solve: error:") and message in last


def test_a_language_without_a_policy_is_named_by_the_api():
    with pytest.raises(ValueError, match="no trained policy"):
        tdlib.solve("rainbow", program="(Rectangle 7 6 orange blue 8)", budget=5)


def dead_parts(env, program):
    """Brute force: removals (a node replaced by its child of the same rule) that leave every
    pixel as it was."""
    from tdlib.refine import UNCHANGED_ATOL, removals
    tree = env.parse(program)
    image = env.render(tree)
    return [str(c) for c in removals(tree)
            if np.abs(env.render(c) - image).max() <= UNCHANGED_ATOL]


def test_no_answer_has_a_dead_part_and_none_is_worse_than_the_search(tmp_path):
    env = tdlib.make_env("csg2d")
    save_png(tmp_path / "ring.png", env.display(env.render(RING, 200)))
    targets = [dict(program=str(env.sample(seed, 3, 7))) for seed in range(4)]
    targets += [dict(image=tmp_path / "ring.png"), dict(image=tmp_path / "ring.png", sketch=True)]
    for i, target in enumerate(targets):
        result = tdlib.solve(env, budget=12, seed=i, **target)
        assert dead_parts(env, result.program) == [], target
        if result.judged:
            searched = np.abs(env.render(result.searched) - result.target).mean()
            assert result.score <= searched + 1e-9
            assert result.primitives == env.parse(result.program).sigma


def test_ctrl_c_returns_the_best_program_so_far(tmp_path, monkeypatch, capsys):
    import tdlib.solver

    def interrupted_search(env, expansions, *args, **kwargs):
        for seed in range(5):
            expansions.check(env.sample(seed, 1, 3))
        raise KeyboardInterrupt

    monkeypatch.setattr(tdlib.solver, "run_search", interrupted_search)
    result = tdlib.solve("csg2d", program=RING, budget=100)
    assert result.stopped == "interrupted" and result.expansions == 5
    assert result.searched in {str(tdlib.make_env("csg2d").sample(s, 1, 3)) for s in range(5)}
    out = tmp_path / "best"
    assert run(["solve", "--env", "csg2d", "--program", RING, "--no-progress",
                "-o", str(out)]) == 130
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-2].startswith("interrupted after 5 programs")
    tdlib.make_env("csg2d").parse(lines[-1])
    assert out.with_suffix(".svg").exists()


def test_the_search_stops_when_close_enough_or_when_the_error_stops_falling():
    from tdlib.search import Expansions
    env = tdlib.make_env("csg2d")
    target = env.render(RING)
    stalled = Expansions(env, RING, budget=100, patience=3)
    programs = ["(Circle 6 8 8)", "(Circle 1 0 0)", "(Circle 1 1 0)", "(Circle 1 2 0)",
                "(Circle 1 3 0)"]
    for program in programs:
        stalled.check(env.parse(program))
    assert stalled.spent == 4 and stalled.stop_reason == "no improvement"
    close = Expansions(env, target, budget=100, stop_error=0.12)
    close.check(env.parse("(Circle 1 0 0)"))
    assert close.stop_reason is None
    close.check(env.parse("(Circle 6 8 8)"))  # the ring's hole: pi 24^2 px, 11 % of 128^2
    assert close.stop_reason == "close enough"
    leaders = Expansions(env, RING, budget=100, keep_best=2)
    for program in programs:
        leaders.check(env.parse(program))
    errors = [e for e, _ in leaders.leaders]
    assert [p for _, p in leaders.leaders][0] == "(Circle 6 8 8)" and errors == sorted(errors)
    assert len(errors) == 2


def test_a_picture_on_coloured_paper_is_padded_with_its_paper():
    env = tdlib.make_env("csg2d")
    page = np.zeros((64, 128, 3), np.float32)
    page[:] = (0.98, 0.92, 0.47)  # yellow paper
    page[24:40, 56:72] = (0.1, 0.4, 0.15)  # a green square
    observed = image_to_observation(env, page)[:, :, 0]
    assert observed[:30].max() < 0.01 and observed[98:].max() < 0.01  # padding reads as paper
    assert observed[60:68, 60:68].min() > 0.99  # the square is full ink after the stretch


def test_the_picture_suite_is_drawn_as_described(tmp_path):
    from tdlib.pictures import SUITE
    env = tdlib.make_env("csg2d")
    assert len(SUITE) >= 12 and len({p.name for p in SUITE}) == len(SUITE)
    for picture in SUITE:
        path = picture.save(tmp_path)
        with Image.open(path) as image:
            assert image.size == (picture.width, picture.height)
        target = image_to_observation(env, path)
        reference = env.render(picture.reference)
        # the hand-written reference draws about the same: far closer than an empty page
        assert np.abs(reference - target).mean() < 0.5 * target.mean(), picture.name


@pytest.mark.parametrize("argv, message", [
    (["--tolerance", "1.5"], "expected a number in [0, 1]"),
    (["--tolerance", "x"], "expected a number in [0, 1]"),
    (["--patience", "0"], "expected a positive integer"),
])
def test_bad_stopping_options_are_refused(capsys, argv, message):
    assert run(["solve", "--env", "csg2d", "--program", RING, *argv]) == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]


def test_a_float_tiff_outside_zero_to_one_is_refused_not_rescaled(tmp_path):
    values = np.linspace(0, 765, 64 * 64, dtype=np.float32).reshape(64, 64)
    Image.fromarray(values, "F").save(tmp_path / "float.tif")
    with pytest.raises(ImageError, match=r"values in \[0, 1\]; this one has 0 to 765"):
        load_image(tmp_path / "float.tif")


def test_huge_and_extreme_pictures_are_shrunk_or_refused_before_they_cost_memory(tmp_path):
    import tracemalloc
    env = tdlib.make_env("csg2d")
    strip = np.full((1, 20_000), 255, np.uint8)
    strip[0, 9_000:11_000] = 0  # a dark dash in the middle of a long white line
    Image.fromarray(strip).save(tmp_path / "strip.png")
    tracemalloc.start()
    observed = image_to_observation(env, tmp_path / "strip.png")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 200e6, f"{peak / 1e6:.0f} MB for a 1 x 20,000 picture"
    assert observed.shape == (128, 128, 1)
    Image.new("1", (12_000, 9_000)).save(tmp_path / "huge.png")  # 108 million pixels
    with pytest.raises(ImageError, match="12000 x 9000 pixels; at most"):
        load_image(tmp_path / "huge.png")
