"""Where a policy's one greedy edit acts, against where the start differs from its target.

Algorithm 1's edit sites are the tops of the subtrees in which a start differs from its target;
:func:`edit_place` places a policy's edit at one of them, around one (it replaces more than
needed), inside one, or elsewhere (it touches only what already matches).  The shares tell a
policy that finds the place but writes the wrong replacement from one that does not find the
place (notebook 05).
"""

from __future__ import annotations

import random

import pandas as pd

from tdlib.decode import Decoder
from tdlib.edit_paths import tree_diff
from tdlib.metrics import greedy_edits, load_checkpoint, policy_problems
from tdlib.mutation import SIGMA_SMALL
from tdlib.tree import SyntaxTree

EDIT_PLACES = ("a differing node", "around one", "inside one", "elsewhere")


def edit_place(edit, start: SyntaxTree, target: SyntaxTree) -> str:
    """Where ``edit`` acts on ``start`` relative to the subtrees that differ from ``target``
    (Algorithm 1's edit sites, the tops of the differing subtrees): at one of them, at an
    ancestor of one (it replaces more than needed), inside one, or elsewhere (it touches only
    what already matches)."""
    sites = [e.path for e in tree_diff(start.root, target.root, SIGMA_SMALL, random.Random(0),
                                       start.grammar)]
    path = tuple(edit.path)
    if path in sites:
        return "a differing node"
    if any(site[:len(path)] == path for site in sites):
        return "around one"
    if any(path[:len(site)] == site for site in sites):
        return "inside one"
    return "elsewhere"


def edit_places(decoder: Decoder, env, problems, size: int, seed: int = 0,
                batch: int = 64) -> pd.DataFrame:
    """Per problem, where the policy's one greedy edit acts (:func:`edit_place`) and whether it
    solves the problem: it tells a policy that finds the place but writes the wrong replacement
    from one that does not find the place."""
    rows = [{"place": edit_place(edit, start, target),
             "solved": bool(env.is_solved(env.render(edit.apply(start)), env.render(target)))}
            for target, start, edit in greedy_edits(decoder, env, problems, size, seed, batch)]
    return pd.DataFrame(rows, columns=["place", "solved"])


def checkpoint_edit_places(folder, n: int = 256, seed: int = 0, mutations=(1, 2, 3),
                           device: str = "cpu") -> pd.DataFrame:
    """For a policy checkpoint, the share of ``k``-mutation problems (those of
    :func:`tdlib.metrics.checkpoint_metrics`) whose one greedy edit acts at each place of
    :data:`EDIT_PLACES`, solved or not: one row per (mutations, place, solved)."""
    model, _, env, examples, decoder = load_checkpoint(folder, device)
    if model.config.kind != "policy":
        raise ValueError(f"{folder} holds a {model.config.kind} network, not a policy")
    rows = []
    for k in mutations:
        places = edit_places(decoder, env, policy_problems(env, examples, n, k, seed),
                             model.config.image_size, seed)
        for place in EDIT_PLACES:
            for solved in (True, False):
                share = ((places["place"] == place) & (places["solved"] == solved)).mean()
                rows.append({"env": model.config.env, "mutations": k, "place": place,
                             "solved": solved, "share": float(share)})
    return pd.DataFrame(rows)
