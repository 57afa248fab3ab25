"""The Rainbow ablation arms of Figure 5: what each arm is, how far it was trained, what it learned.

Each arm is a policy checkpoint under ``results/checkpoints/`` trained with one thing changed
(:data:`tdlib.presets.SHIPPED_MODELS` says how); :func:`arm_training` reads what each was
trained with, :func:`arm_one_step` measures what one greedy edit of each solves on the same
held-out problems.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from tqdm import tqdm

from tdlib.env import make_env
from tdlib.layout import project_root
from tdlib.methods import Models
from tdlib.metrics import mutation_problems, one_step_solve_rate

# Figure 5: the Rainbow ablation arms, arm -> (policy checkpoint, rho, what differs).
# Every arm starts from the same Rainbow AR model's greedy program; Rainbow has no value network,
# so TD search ranks its beam by pixel difference, the same for every arm.
RAINBOW_ARMS = {
    "full": ("rainbow_policy_full", 0.2, "path targets, rho = 0.2 (the paper's model)"),
    "no_reverse_path": ("rainbow_policy_no_reverse_path", 0.2,
                        "targets undo the last noising step only"),
    "no_current_image": ("rainbow_policy_no_current_image", 0.2, "the current image is blank"),
    "no_noising": ("rainbow_policy_no_noising", 1.0,
                   "rho = 1: paths between two random programs"),
    "rho0.0": ("rainbow_policy_rho0.0", 0.0, "rho = 0: noised starts only"),
    "rho0.1": ("rainbow_policy_rho0.1", 0.1, "rho = 0.1"),
    "rho0.5": ("rainbow_policy_rho0.5", 0.5, "rho = 0.5"),
}
FIG5A_ARMS = ("full", "no_reverse_path", "no_current_image", "no_noising")
# the rho sweep: rho -> arm (0.2 and 1.0 are the full and No Noising arms)
RHO_ARMS = {0.0: "rho0.0", 0.1: "rho0.1", 0.2: "full", 0.5: "rho0.5", 1.0: "no_noising"}


def arm_of(policy: str) -> str:
    """The Figure 5 arm of a policy checkpoint name ("" for the shipped policy)."""
    return next((arm for arm, (folder, _, _) in RAINBOW_ARMS.items() if folder == policy), policy)


def arm_training(checkpoints: str | Path | None = None) -> pd.DataFrame:
    """What each Figure 5 arm was trained with and how far it got: steps, examples seen, training
    minutes, parameters, and its last one-greedy-edit solve rates on held-out 1- and 2-mutation
    problems (the trainer's own evaluation, the same problems for every arm).  Arms whose
    checkpoint does not exist yet are left out."""
    root = Path(checkpoints) if checkpoints else project_root() / "results" / "checkpoints"
    rows = []
    for arm, (folder, rho, what) in RAINBOW_ARMS.items():
        record_file = root / folder / "model.json"
        if not record_file.exists():
            continue
        record = json.loads(record_file.read_text())
        row = {"arm": arm, "rho": rho, "what differs": what, "steps": record["step"],
               "examples_seen": record["examples_seen"],
               "train_minutes": round(record.get("train_seconds", np.nan) / 60, 1),
               "parameters": record["parameters"]}
        log = root / folder / "eval_log.csv"
        if log.exists():
            last = pd.read_csv(log).iloc[-1]
            row.update(solve_1=last["solve_1"], solve_2=last["solve_2"])
        rows.append(row)
    return pd.DataFrame(rows)


def arm_one_step(n: int = 1024, seed: int = 0, mutations: Sequence[int] = (1, 2, 3),
                 checkpoints: str | Path | None = None, progress: bool = False) -> pd.DataFrame:
    """What each Figure 5 arm's policy learned, without search: the share of ``n`` held-out
    Rainbow problems ``k`` small mutations from their target that one greedy edit solves, for
    each ``k`` in ``mutations``.  Every arm sees the same problems and target observations, so
    the arms differ only in their weights.  Columns ``arm,rho,mutations,n,solved``."""
    root = Path(checkpoints) if checkpoints else project_root() / "results" / "checkpoints"
    env = make_env("rainbow")
    problems = {k: mutation_problems(env, n, k, seed) for k in mutations}
    rows = []
    arms = [arm for arm, (folder, _, _) in RAINBOW_ARMS.items() if (root / folder).exists()]
    for arm in tqdm(arms, desc="arms", disable=not progress):
        folder, rho, _ = RAINBOW_ARMS[arm]
        models = Models(env, {"policy": root / folder})
        size = models.model("policy").config.image_size
        for k in mutations:
            rate = one_step_solve_rate(models.decoder("policy"), env, problems[k], size, seed)
            rows.append({"arm": arm, "rho": rho, "mutations": k, "n": n, "solved": rate})
    return pd.DataFrame(rows, columns=["arm", "rho", "mutations", "n", "solved"])
