"""The authors' public code's goal check beside the paper's, for comparing solve rates like for like.

The paper counts a CSG2D problem solved when the IoU of the two masks (binarised at 0.5) is at least
0.99; tdlib's searches stop on that check.  The public code's evaluation counts a problem solved
when the mean of the foreground IoU and the background IoU is above 0.98, for the candidate or its
complement.  Neither is looser everywhere: a mask that misses a sliver of a small shape passes the
public code's check and fails the paper's, while on a picture that is mostly ink a few wrong pixels
are a large share of the background and fail the public code's check but pass the paper's.  Its solve
rates (84 % of its own hard set) are read beside :func:`final_program_checks`, which applies both
checks to the program each run ended with (its solution, else its program of lowest pixel error).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tdlib import testsets
from tdlib.env import make_env
from tdlib.csg2d import mask_iou
from tdlib.paper.runs import RUN_KEYS, shipped_runs

PUBLIC_CODE_THRESHOLD = 0.98


def public_code_value(image: np.ndarray, target: np.ndarray) -> float:
    """The mean of foreground and background IoU of the masks binarised at 0.5, for the image
    or its complement, whichever is higher."""
    a, b = np.asarray(image) > 0.5, np.asarray(target) > 0.5
    return max((mask_iou(a, b) + mask_iou(~a, ~b)) / 2, (mask_iou(~a, b) + mask_iou(a, ~b)) / 2)


def passes_public_code_check(image: np.ndarray, target: np.ndarray,
                             threshold: float = PUBLIC_CODE_THRESHOLD) -> bool:
    return public_code_value(image, target) > threshold


def final_program_checks(runs: pd.DataFrame, testsets_folder: str | Path) -> pd.DataFrame:
    """Per run (file): the share of its problems solved under the paper's check (what the run
    recorded) and the share whose final program passes the public code's check, rendered at the
    language's default size.  ``runs`` as :func:`tdlib.paper.runs.select_runs` gives them."""
    rows = []
    for testset, of_set in runs.groupby("testset", sort=True):
        header, problems = testsets.load(Path(testsets_folder) / f"{testset}.jsonl")
        env = make_env(header["spec"]["env"])
        if env.channels != 1:
            continue  # a check of masks
        targets = {int(p["index"]): env.render(p["program"]) for p in problems}
        for file, run in of_set.groupby("file", sort=True):
            passed = [passes_public_code_check(env.render(program), targets[int(index)])
                      if program else False
                      for index, program in zip(run["index"], run["best_program"])]
            rows.append({**{k: run[k].iloc[0] for k in RUN_KEYS}, "file": file,
                         "problems": len(run), "solved_paper_check": float(run["solved"].mean()),
                         "passes_public_code_check": float(np.mean(passed))})
    return pd.DataFrame(rows)


def summarise_checks(per_run: pd.DataFrame) -> pd.DataFrame:
    """Mean and sample standard deviation over seeds of :func:`final_program_checks`' shares."""
    if per_run.empty:
        return per_run
    keys = ["testset", "method", "score", "variant", "budget"]
    return (shipped_runs(per_run)
            .groupby(keys, sort=True)
            .agg(seeds=("seed", "nunique"), problems=("problems", "first"),
                 paper_check_mean=("solved_paper_check", "mean"),
                 paper_check_std=("solved_paper_check", "std"),
                 public_check_mean=("passes_public_code_check", "mean"),
                 public_check_std=("passes_public_code_check", "std"))
            .reset_index())
