"""The public code's goal check, against pixel-by-pixel counting and analytic shapes."""

import json

import numpy as np
import pandas as pd
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

import tdlib
from tdlib.layout import project_root
from tdlib.paper.goal_checks import (final_program_checks, passes_public_code_check,
                                     public_code_value)
from tdlib.paper.runs import RUN_KEYS


def counted_iou(a, b):
    inter = union = 0
    for x, y in zip(a.ravel().tolist(), b.ravel().tolist()):
        inter += x and y
        union += x or y
    return 1.0 if union == 0 else inter / union


@settings(max_examples=60, deadline=None)
@given(arrays(np.float32, (6, 7), elements=st.sampled_from([0.0, 0.3, 0.7, 1.0])),
       arrays(np.float32, (6, 7), elements=st.sampled_from([0.0, 0.3, 0.7, 1.0])))
def test_the_value_is_the_better_of_image_and_complement_of_mean_foreground_background_iou(x, y):
    a, b = x > 0.5, y > 0.5
    direct = (counted_iou(a, b) + counted_iou(~a, ~b)) / 2
    flipped = (counted_iou(~a, b) + counted_iou(a, ~b)) / 2
    assert public_code_value(x, y) == max(direct, flipped)


def square(size, top, left, side):
    image = np.zeros((size, size, 1), np.float32)
    image[top:top + side, left:left + side] = 1.0
    return image


def test_a_sliver_missed_passes_the_public_code_check_but_not_the_papers():
    env = tdlib.make_env("csg2d")
    target = square(128, 20, 20, 80)          # 6,400 pixels
    missing = square(128, 20, 20, 80)
    missing[20:100, 20:21] = 0.0                # one column of 80: foreground IoU 0.9875
    assert not env.is_solved(missing, target)
    assert passes_public_code_check(missing, target)
    assert not passes_public_code_check(square(128, 20, 20, 60), target)  # IoU 0.5625


def test_the_complement_of_the_target_passes_the_public_code_check():
    target = square(64, 10, 10, 30)
    assert passes_public_code_check(1.0 - target, target)
    assert not tdlib.make_env("csg2d").is_solved(1.0 - target, target)


def test_final_programs_are_checked_against_their_own_targets():
    testset = project_root() / "results" / "testsets" / "csg2d_hard.jsonl"
    problems = [json.loads(line) for line in testset.read_text().splitlines()[1:4]]
    runs = pd.DataFrame([{"testset": "csg2d_hard", "method": "td-search", "score": "value",
                          "variant": "", "policy": "", "value": "", "seed": 0, "budget": 10, "file": "f.csv",
                          "index": p["index"], "solved": False, "best_program": program}
                         for p, program in zip(problems, [problems[0]["program"],
                                                          problems[0]["program"], ""])])
    checks = final_program_checks(runs, testset.parent)
    assert list(checks.columns[:len(RUN_KEYS)]) == list(RUN_KEYS)
    assert checks["passes_public_code_check"].iloc[0] == 1 / 3   # only its own program passes
    assert checks["solved_paper_check"].iloc[0] == 0.0


def test_on_a_picture_that_is_mostly_ink_the_public_code_check_is_the_stricter():
    env = tdlib.make_env("csg2d")
    target = square(128, 4, 4, 120)              # 14,400 of 16,384 pixels
    image = square(128, 4, 4, 120)
    image[4:124, 4:5] = 0.0                      # 120 pixels: foreground IoU 0.9917
    assert env.is_solved(image, target)
    assert not passes_public_code_check(image, target)  # background IoU 0.943
