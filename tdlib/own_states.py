"""The policy's own states: programs a trained policy reaches on its way to targets.

Training examples start a few mutations from their targets (or at an unrelated program), but a
search starts from whatever the autoregressive model drew and then goes where the policy's edits
take it: states that training on noised targets shows rarely.  Training on states the policy
reaches itself, each labelled with Algorithm 1's path from there to its target, is DAgger (or
expert iteration): the labels stay the expert's, the states become the learner's.

:func:`collect` rolls a policy out from training-distribution starts (sampled edits) and keeps
every program it reaches that does not yet draw its target; :func:`write` stores them as a
JSON-lines file and :func:`load` reads it back.  ``ExampleConfig.own_states`` names such a file
and ``ExampleConfig.own_states_share`` the share of examples that start from one of its programs.
Given an autoregressive model, a share of the roll-outs starts where a search starts: at the
program that model writes for the target.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import torch
from tqdm import tqdm

from tdlib.images import image_batch, program_images
from tdlib.layout import project_root
from tdlib.refine import unchanged
from tdlib.tree import SyntaxTree

FORMAT = "tdlib-own-states"


def collect(decoder, maker, starts: int, steps: int = 4, seed: int = 0, batch: int = 64,
            temperature: float = 1.0, ar=None, ar_share: float = 0.0, progress: bool = False
            ) -> list[tuple[SyntaxTree, SyntaxTree]]:
    """``(target, state)`` pairs: the starts of ``starts`` examples of ``maker`` (an
    :class:`~tdlib.examples.ExampleMaker`: noised targets and, with probability rho, unrelated
    programs), each rolled out ``steps`` sampled edits by the policy of ``decoder``; every
    program reached that does not draw its target (at the model's size) is kept.

    With an autoregressive model's decoder ``ar``, a share ``ar_share`` of the roll-outs starts
    instead where a search starts: at the greedy program ``ar`` writes for the target's
    observation (kept too when it does not draw the target)."""
    if not 0.0 <= ar_share <= 1.0:
        raise ValueError(f"ar_share must be in [0, 1], not {ar_share}")
    if ar_share > 0 and ar is None:
        raise ValueError(f"ar_share {ar_share} needs an AR model's decoder (ar=...)")
    size = decoder.config.image_size
    if ar is not None and ar.config.image_size != size:
        raise ValueError(f"the AR model reads {ar.config.image_size} px images, "
                         f"the policy {size} px")
    env = maker.env
    r = random.Random(seed)
    generator = torch.Generator().manual_seed(seed)
    pairs: list[tuple[SyntaxTree, SyntaxTree]] = []
    for first in tqdm(range(0, starts, batch), desc="roll-outs", unit="batch",
                      disable=not progress):
        examples = [maker.example(r, render=False) for _ in range(min(batch, starts - first))]
        targets = [ex.target for ex in examples]
        states = [ex.chain[-1] for ex in examples]  # the start of each example's path
        observed = image_batch([env.observe(t, r, size) for t in targets])
        rendered = [env.render(t, size) for t in targets]
        from_ar = [i for i in range(len(states)) if ar_share and r.random() < ar_share]
        if from_ar:
            written = ar.programs(ar.images(observed[from_ar]))
            for i, (node, _) in zip(from_ar, written):
                states[i] = SyntaxTree(node, env.grammar)
                if not unchanged(env.render(states[i], size), rendered[i]):
                    pairs.append((targets[i], states[i]))
        for _ in range(steps):
            edits = decoder.edits(states, program_images(env, states, size), observed,
                                  temperature, generator)
            states = [edit.apply(state) for (edit, _), state in zip(edits, states)]
            pairs.extend((target, state) for target, state, image in zip(targets, states, rendered)
                         if state != target and not unchanged(env.render(state, size), image))
    return pairs


def write(path: str | Path, pairs, header: dict) -> None:
    """Write ``pairs`` of ``(target, state)`` after a header line (``header`` plus the format
    and the count); whole or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w") as f:
        f.write(json.dumps({"format": FORMAT, **header, "pairs": len(pairs)}) + "\n")
        for target, state in pairs:
            f.write(json.dumps({"target": str(target), "state": str(state)}) + "\n")
    os.replace(partial, path)


def resolve(path: str | Path) -> Path:
    """A states file named in a config: as given, or relative to the project's root (records
    travel with a clone)."""
    path = Path(path)
    return path if path.is_absolute() or path.exists() else project_root() / path


def load(path: str | Path, env_name: str) -> tuple[dict, list[tuple[str, str]]]:
    """The header and the ``(target, state)`` program texts of a states file of ``env_name``;
    ValueError naming the file (and line) when it is not one."""
    path = resolve(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read own-states file {path}: {err}") from None
    try:
        header = json.loads(lines[0]) if lines else None
    except json.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"{path}:1: not an own-states file (no {FORMAT} header)")
    if header.get("env") != env_name:
        raise ValueError(f"{path} holds {header.get('env')} programs, not {env_name} ones")
    pairs = []
    for number, line in enumerate(lines[1:], start=2):
        try:
            record = json.loads(line)
            pairs.append((str(record["target"]), str(record["state"])))
        except (json.JSONDecodeError, KeyError, TypeError):
            raise ValueError(f"{path}:{number}: expected a record with target and state") from None
    if not pairs:
        raise ValueError(f"{path} holds no states")
    return header, pairs
