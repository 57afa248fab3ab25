"""LZ4 complexity scores and the versioned test sets."""

import numpy as np
import pytest

import tdlib
from tdlib import testsets
from tdlib.cli import main
from tdlib.complexity import complexity_threshold, lz4_score, training_scores
from tdlib.layout import project_root

SHIPPED_DIR = project_root() / "results" / "testsets"


def test_lz4_score_orders_blank_simple_noisy():
    rng = np.random.default_rng(0)
    blank = np.zeros((128, 128, 1), np.float32)
    env = tdlib.make_env("csg2d")
    simple = env.render("(Circle 4 8 8)")
    busy = env.render("(+ (- (Quad 8 8 E E H) (Circle 3 8 8)) (+ (Circle 2 3 3) (Quad C 4 2 6 J)))")
    noise = rng.random((128, 128, 1)).astype(np.float32)
    scores = [lz4_score(x) for x in (blank, simple, busy, noise)]
    assert scores == sorted(scores) and len(set(scores)) == 4
    assert scores[-1] > 5 * scores[1]


def test_threshold_is_the_requested_percentile_of_training_scores():
    env = tdlib.make_env("csg2d")
    threshold = complexity_threshold(env, 90, 1, n=2000)
    fresh = training_scores(env, 2000, 2)
    assert 0.07 <= (fresh >= threshold).mean() <= 0.13


def test_generation_is_byte_identical_and_hard_sets_are_hard(tmp_path):
    spec = testsets.TestSetSpec("csg2d", n=24, seed=5, hard=True, calibration_samples=600)
    for name in ("a.jsonl", "b.jsonl"):
        testsets.write(tmp_path / name, *testsets.generate(spec))
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    header, problems = testsets.load(tmp_path / "a.jsonl")
    env = tdlib.make_env("csg2d")
    assert header["spec"]["hard"] and len(problems) == 24
    for p in problems:
        tree = env.sample(p["seed"], 2, 8)
        assert str(tree) == p["program"], "each problem regenerates from its own seed"
        assert lz4_score(env.render(tree)) >= header["lz4_threshold"] - 1e-6
    assert len({p["program"] for p in problems}) == 24


@pytest.mark.parametrize("name", ["csg2d.jsonl", "rainbow.jsonl"])
def test_shipped_test_sets_regenerate_byte_for_byte(name, tmp_path):
    out = tmp_path / name
    header, _ = testsets.load(SHIPPED_DIR / name)
    assert main(header["regenerate"].split()[1:] + ["-o", str(out)]) == 0
    assert out.read_bytes() == (SHIPPED_DIR / name).read_bytes()


def test_every_shipped_set_is_complete_and_parses():
    for name, spec in testsets.SHIPPED.items():
        header, problems = testsets.load(SHIPPED_DIR / name)
        assert header["spec"] == testsets.TestSetSpec(**header["spec"]).__dict__
        assert header["spec"]["env"] == spec.env and len(problems) == spec.n == 256
        env = tdlib.make_env(spec.env)
        assert all(str(env.parse(p["program"])) == p["program"] for p in problems)


def test_no_test_program_is_a_training_target():
    for name in ("csg2d.jsonl", "csg2d_hard.jsonl", "tinysvg.jsonl"):
        header, problems = testsets.load(SHIPPED_DIR / name)
        assert testsets.training_overlap(problems, header["spec"]["env"], n=20_000) == set()


def test_a_file_that_is_not_a_test_set_is_refused(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("hello\n")
    with pytest.raises(ValueError, match="not a tdlib test set"):
        testsets.load(bad)
    bad.write_text('{"other": 1}\n')
    with pytest.raises(ValueError, match="not a tdlib test set"):
        testsets.load(bad)
