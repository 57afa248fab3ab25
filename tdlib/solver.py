"""From a picture to a program: :func:`solve` (``tdlib solve``), for users.

The picture becomes the model's observation (:func:`tdlib.image_input.image_to_observation`) the
language's own way: for CSG2D dark shapes on a light background are ink, for TinySVG the colours
are kept.  TD search (the paper's: the AR model's greedy program as the start, a beam ranked by
the value network) then looks for a program whose render passes the language's goal check
against the picture.  A real picture may have no exact program; the result is then the program
of lowest pixel error reached, and that is not an error.  ``sketch=True`` treats the picture as
a hand drawing and uses the CSG2D-Sketch policy and AR model.

    result = tdlib.solve("csg2d", "icon.png", budget=5000, seed=0)
    result.program, result.solved, result.score, result.expansions, result.trajectory
"""

from __future__ import annotations

import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from tdlib import search
from tdlib.checkpoint import RECORD_FILE
from tdlib.env import Env, make_env
from tdlib.image_input import image_to_observation
from tdlib.images import image_batch
from tdlib.methods import Models, SearchConfig, default_model_folder, run_search
from tdlib.refine import PixelError, fit_primitives, grow, simplify
from tdlib.refine import refine as refine_program


@dataclass
class Solution:
    """What :func:`solve` found."""

    program: str  # the solution, else the program of lowest pixel error reached
    solved: bool  # whether it passed the language's goal check against the target
    score: float  # the program's mean absolute pixel difference to the target (0 is exact);
    # for a sketch picture (no clean target to compare with) the value network's predicted
    # number of edits left
    expansions: int  # programs compiled and checked (to the solution if solved)
    trajectory: list[str] = field(default_factory=list)  # start ... program, one edit apart
    judged: bool = True  # False for a sketch picture: the goal check cannot be made
    target: np.ndarray | None = None  # the target as judged (H x W x C, default size)
    seconds: float = 0.0
    stopped: str = ""  # why the search ended: solved, close enough, no improvement, budget,
    # interrupted (Ctrl-C)
    primitives: int = 0  # primitives in the program (the paper's sigma)
    searched: str = ""  # the search's own program, before refinement


# A picture from elsewhere rarely passes the goal check (anti-aliasing, shapes off the grid): the
# search stops once this many programs in a row have not lowered its best pixel error, and the
# best few programs are then refined.  Measured on the picture suite (results/tables/
# picture_suite.csv): the best error rarely falls after 1,000 fruitless programs.
PICTURE_PATIENCE = 1000
REFINED_CANDIDATES = 8  # the search's best programs that are refined
GROW_SIZE = 64  # growing tries many shapes: at half the size, then refined at full size
PRIMITIVE_COST = 0.004  # mean pixel error (65 pixels at 128 px) a primitive must save to stay


def solve(env: str | Env, image=None, *, program: str | None = None, budget: int = 5000,
          seed: int = 0, sketch: bool = False, beam: int = 64, k: int = 3,
          tolerance: float | None = None, patience: int | None = None, refine: bool = True,
          observation_seed: int | None = None, models: dict | None = None,
          device: str = "cpu", progress: bool = False) -> Solution:
    """Find a program of language ``env`` that draws ``image`` (a path, PIL image or array), or
    the render of ``program``, with TD search within ``budget`` programs, then make it as short
    and as close as it can.

    The search stops at the first program that passes the language's goal check, at the budget,
    once a program's mean pixel error is at most ``tolerance`` (default: none), or once
    ``patience`` programs in a row have not lowered the best error (default: 1,000 for a
    picture, none for a ``program`` target, whose goal check can pass).  ``Solution.stopped``
    says which.  With ``refine`` (default), a program that passed the goal check is polished
    and simplified (:func:`tdlib.refine.refine`: every number tried at its other values while
    the pixel error falls, every dead part dropped) and keeps the goal check.  Otherwise the
    search's best few programs are refined, and two layer-by-layer fits
    (:func:`tdlib.refine.grow`) are made, one from those programs and one from scratch; the
    answer is the one of lowest pixel error plus :data:`PRIMITIVE_COST` a primitive among those
    whose pixel error is no higher than the search's best program polished.  Ctrl-C stops the
    search and returns the best program so far (``stopped == "interrupted"``).

    ``sketch=True``: ``image`` is a hand drawing (CSG2D only).  A sketch has no clean render to
    check a program against, so the search runs its whole budget and returns the program the
    value network ranked closest (``judged`` is False, ``score`` its predicted edits left).  A
    ``program`` target with ``sketch=True`` is observed as a random sketch of it (drawn from
    ``observation_seed``, default ``seed``) and judged on its clean render, as the CSG2D-Sketch
    test set is.  ``models`` maps ``policy``/``value``/``ar`` to checkpoint folders (default:
    the shipped ones).  Raises :class:`~tdlib.image_input.ImageError` for an unreadable picture and
    ``ValueError`` for bad settings, an unknown language or one without trained models."""
    began = time.perf_counter()
    if (image is None) == (program is None):
        raise ValueError("give either an image or a program as the target")
    if tolerance is not None and not 0.0 <= tolerance <= 1.0:
        raise ValueError(f"the tolerance is a mean pixel error in [0, 1], not {tolerance}")
    config = SearchConfig("td-search", budget, seed, "value", beam, k)  # validates them
    env = make_env(env) if isinstance(env, str) else env
    if sketch and env.name == "csg2d":
        env = make_env("csg2d-sketch")
    if sketch and env.name != "csg2d-sketch":
        raise ValueError(f"sketches are CSG2D drawings; {env.name} has no sketch models")
    folders = dict(models or {})
    for kind in ("policy", "value", "ar"):
        folder = Path(folders.get(kind) or default_model_folder(env.name, kind))
        if not (folder / RECORD_FILE).exists():
            raise ValueError(f"{env.name} has no trained {kind} model ({folder} is missing); "
                             f"train one with tdlib train or pass --{kind}")
        folders[kind] = folder
    judged = not (sketch and image is not None)
    if patience is None and image is not None and judged:
        patience = PICTURE_PATIENCE
    if program is not None:
        tree = env.parse(program)
        target = env.render(tree)  # judged on the clean render
        sketch_seed = seed if observation_seed is None else observation_seed

        def observe(size):
            return image_batch([env.observe(tree, random.Random(sketch_seed), size)])
    else:
        target = image_to_observation(env, image, env.default_size, sketch)
        cache = {}

        def observe(size):
            if size not in cache:
                cache[size] = image_batch([image_to_observation(env, image, size, sketch)])
            return cache[size]

    bar = None
    # a drawing never passes a goal check made for clean renders: search the whole budget
    search_env = env if judged else _NeverSolved(env)
    expansions = search.Expansions(search_env, target, budget, None,
                                   tolerance if judged else None, patience if judged else None,
                                   REFINED_CANDIDATES)
    interrupted = False
    try:
        if progress:
            bar = tqdm(total=budget, desc=f"TD search {env.name}", unit="programs",
                       dynamic_ncols=True)

            def tick(expansions):
                bar.update(1)
                if judged and expansions.spent % 50 == 0:
                    bar.set_postfix(best_error=f"{expansions.best_error:.4f}")
            expansions.on_check = tick
        run_search(search_env, expansions, observe, Models(env, folders, device), config, seed)
    except KeyboardInterrupt:
        interrupted = True  # the best program so far is still worth having
    finally:
        if bar is not None:
            bar.close()
    outcome = expansions.outcome()
    stopped = "interrupted" if interrupted else (expansions.stop_reason or "search ended")
    if judged:
        searched, solved = outcome.best_program, outcome.solved
    else:
        score, searched = expansions.best_scored or (float("nan"), outcome.best_program)
        solved = False
    best, trajectory = searched, expansions.trajectory(searched)
    if searched and refine:
        if progress and judged and not solved:
            print(f"refining the search's {len(expansions.leaders)} best programs ...",
                  file=sys.stderr, flush=True)
        try:
            if interrupted or not judged:  # no clean target, or no time: only drop dead parts
                best, solved = _without_dead_parts(env, searched, solved, target)
            else:
                best, solved = _refined(env, expansions, searched, solved, target,
                                        lambda size: image_to_observation(env, image, size, sketch)
                                        if image is not None else env.render(program, size), seed)
        except KeyboardInterrupt:  # Ctrl-C while refining
            stopped = "interrupted"
            best, solved = _without_dead_parts(env, searched, solved, target)
        if best != searched:
            trajectory = trajectory + [best]
    if judged:
        score = PixelError(env, target)(env.parse(best))
    return Solution(best, solved, score, outcome.expansions, trajectory, judged, target,
                    time.perf_counter() - began, stopped, env.parse(best).sigma if best else 0,
                    searched)


def _without_dead_parts(env, program: str, solved: bool, target) -> tuple[str, bool]:
    """``program`` simplified; still solved if it was and its render still passes."""
    tree = simplify(env, program)
    return str(tree), solved and env.is_solved(env.render(tree), target)


def _refined(env, expansions, best: str, solved: bool, target, observe_size,
             seed: int) -> tuple[str, bool]:
    """The search's answer made shorter and closer (see :func:`solve`); a solution stays one (its
    refinement is kept only if it still passes the goal check)."""
    if solved:
        tree = refine_program(env, best, target)
        if not env.is_solved(env.render(tree), target):
            tree = simplify(env, best)
        return str(tree), True
    error = PixelError(env, target)
    coarse = observe_size(GROW_SIZE)
    starts = [refine_program(env, p, target, cost=PRIMITIVE_COST) for _, p in expansions.leaders]
    grown = [grow(env, starts, coarse, rng=seed, cost=PRIMITIVE_COST),
             grow(env, fit_primitives(env, coarse, seed), coarse, rng=seed, cost=PRIMITIVE_COST)]
    ranked = starts + [refine_program(env, t, target, cost=PRIMITIVE_COST) for t in grown]
    # a shorter answer, but never a worse one than the search's own, polished at no cost
    floor = refine_program(env, best, target)
    ranked = [t for t in ranked if error(t) <= error(floor) + 1e-9] + [floor]
    best_tree = min(ranked, key=lambda t: (error(t) + PRIMITIVE_COST * t.sigma, t.sigma))
    return str(best_tree), env.is_solved(env.render(best_tree), target)


class _NeverSolved:
    """A language whose goal check never passes (a sketch picture has no clean target)."""

    def __init__(self, env):
        self.env = env

    def __getattr__(self, name):
        return getattr(self.env, name)

    def is_solved(self, image, target_image) -> bool:
        return False


def side_by_side(env: Env, images: list[np.ndarray], gap: int = 4) -> np.ndarray:
    """RGB images of one height in a row, each framed in grey, white between them."""
    views = [np.pad(env.display(im), ((1, 1), (1, 1), (0, 0)), constant_values=0.75)
             for im in images]
    spacer = np.ones((views[0].shape[0], gap, 3), np.float32)
    row = [views[0]]
    for view in views[1:]:
        row += [spacer, view]
    return np.concatenate(row, axis=1)


def write_outputs(env: Env, solution: Solution, prefix: str | Path,
                  frame_ms: int = 400) -> list[Path]:
    """``<prefix>.svg`` (the program), ``<prefix>.png`` (the target beside the program's
    render) and ``<prefix>.gif`` (the search's path from its start to the program, each frame
    the target beside the program so far); returns the paths."""
    from tdlib.plotting import save_png  # matplotlib only when files are written
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    svg, png, gif = (prefix.with_name(prefix.name + ext) for ext in (".svg", ".png", ".gif"))
    svg.write_text(env.to_svg(solution.program))
    save_png(png, side_by_side(env, [solution.target, env.render(solution.program)]))
    frames = [side_by_side(env, [solution.target, env.render(p)])
              for p in (solution.trajectory or [solution.program])]
    pictures = [Image.fromarray(np.round(f * 255).astype(np.uint8)) for f in frames]
    durations = [frame_ms] * (len(pictures) - 1) + [frame_ms * 5]  # rest on the result
    pictures[0].save(gif, save_all=True, append_images=pictures[1:], duration=durations,
                     loop=0)
    return [svg, png, gif]
