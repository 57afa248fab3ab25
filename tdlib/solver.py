"""From a picture to a program: :func:`solve` (``tdlib solve``), for users.

The picture becomes the model's observation by :func:`image_to_observation`, the language's own
way: for CSG2D dark shapes on a light background are ink, for TinySVG the colours are kept.  TD
search (the paper's: the AR model's greedy program as the start, a beam ranked by the value
network) then looks for a program whose render passes the language's goal check against the
picture.  A real picture may have no exact program; the result is then the program of lowest
pixel error reached, and that is not an error.  ``sketch=True`` treats the picture as a hand
drawing and uses the CSG2D-Sketch policy and AR model.

    result = tdlib.solve("csg2d", "icon.png", budget=5000, seed=0)
    result.program, result.solved, result.score, result.expansions, result.trajectory
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tdlib import search
from tdlib.env import Env, make_env
from tdlib.refine import PixelError, fit_primitives, grow, simplify
from tdlib.refine import refine as refine_program


class ImageError(ValueError):
    """A picture that cannot be read (missing, not an image, empty)."""


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


# The models read 64-128 px: a larger picture is shrunk on reading (long side at most
# MAX_SIDE) so that padding it to a square stays small, and one past MAX_PIXELS is refused
# before it is decoded.
MAX_SIDE = 2048
MAX_PIXELS = 100_000_000


def load_image(image) -> np.ndarray:
    """An ``H x W x 3`` float RGB array in [0, 1] from a path, a PIL image or an array (grey
    ``H x W``, ``H x W x 1``, RGB or RGBA; integers scaled by their type's maximum, so 8- and
    16-bit pictures read alike; floats in [0, 1]; booleans: True is white); alpha is composited
    on white, so a transparent background is paper.  EXIF rotation is applied.  A picture whose
    long side exceeds :data:`MAX_SIDE` is shrunk to it (area averaging); one of more than
    :data:`MAX_PIXELS` pixels is refused unread."""
    from PIL import Image, ImageOps, UnidentifiedImageError
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise ImageError(f"no such image file: {path}")
        try:
            with warnings.catch_warnings():  # our own limit, MAX_PIXELS, is checked below
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                opened = Image.open(path)
            with opened:
                _check_pixels(opened.width, opened.height, path)
                opened.draft("RGB", (MAX_SIDE, MAX_SIDE))  # JPEG: decode at a reduced scale
                opened.load()
                image = ImageOps.exif_transpose(opened)  # photos: the way the camera was held
        except Image.DecompressionBombError as err:
            raise ImageError(f"{path} is too large to read ({err})") from None
        except (UnidentifiedImageError, OSError) as err:
            raise ImageError(f"{path} is not a readable image ({err})") from None
    if isinstance(image, Image.Image):
        if image.width == 0 or image.height == 0:
            raise ImageError("the image is empty")
        _check_pixels(image.width, image.height, "the image")
        if max(image.size) > MAX_SIDE:
            image = image.copy()
            image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BOX)
        if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16-bit grey, float grey
            array = np.asarray(image, np.float64)
            if image.mode == "F":  # floats must already be in [0, 1]: checked below
                pass
            elif array.max(initial=0) <= 65535 and array.min(initial=0) >= 0:
                array = array / 65535.0
            else:
                raise ImageError(f"a {image.mode} image holds values in 0-65535; this one has "
                                 f"{array.min():.6g} to {array.max():.6g}")
        else:
            array = np.asarray(image.convert("RGBA"), np.float32) / 255.0
    else:
        array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4) or 0 in array.shape:
        raise ImageError(f"an image is H x W, H x W x 1, 3 or 4, got shape {array.shape}")
    _check_pixels(array.shape[1], array.shape[0], "the image")
    if array.dtype == bool:
        array = array.astype(np.float32)  # True is white (bright), as in any grey image
    elif np.issubdtype(array.dtype, np.integer):
        array = array.astype(np.float64) / np.iinfo(array.dtype).max
    array = array.astype(np.float32)
    if np.isnan(array).any() or array.min() < 0 or array.max() > 1:
        raise ImageError("a float image holds values in [0, 1]; this one has "
                         f"{np.nanmin(array):.3g} to {np.nanmax(array):.3g}")
    if max(array.shape[:2]) > MAX_SIDE:
        array = _shrink(array)
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    if array.shape[-1] == 3:
        array = np.concatenate([array, np.ones_like(array[:, :, :1])], axis=-1)
    rgb, alpha = array[:, :, :3], array[:, :, 3:]
    return np.clip(rgb * alpha + (1.0 - alpha), 0.0, 1.0)


def _check_pixels(width: int, height: int, name) -> None:
    if width * height > MAX_PIXELS:
        raise ImageError(f"{name} is {width} x {height} pixels; at most {MAX_PIXELS:,} pixels "
                         "are read (shrink it first)")


def _shrink(array: np.ndarray) -> np.ndarray:
    """An ``H x W x C`` float array with its long side shrunk to :data:`MAX_SIDE`."""
    from PIL import Image
    h, w = array.shape[:2]
    scale = MAX_SIDE / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    planes = [np.asarray(Image.fromarray(np.ascontiguousarray(array[:, :, c]), "F").resize(
        size, Image.Resampling.BOX)) for c in range(array.shape[-1])]
    return np.stack(planes, axis=-1)


def image_to_observation(env: Env, image, size: int | None = None,
                         sketch: bool = False) -> np.ndarray:
    """A picture as ``env`` sees a render: ``size x size x channels`` float32 in [0, 1].

    The paper is the median colour of the picture's outermost pixels.  A non-square picture is
    padded with paper to a square around its centre, then resized (area averaging).
    One-channel languages (CSG2D) read ink: ``1 - luminance``, dark shapes on light paper,
    stretched so that the paper is 0 and the darkest ink (the 99.5th percentile) 1: grey on grey,
    or green on yellow, reads like the black-on-white renders the models were trained on.  With
    ``sketch=True`` the paper is the median and the darkest the 99.9th percentile, as the
    CSG2D-Sketch models were trained.  A page with less contrast than 0.15 is left as it is
    (there is nothing to stretch but noise).
    Colour languages keep RGB.  The inverse of :meth:`Env.display` within 1/255 for a render."""
    from PIL import Image
    size = env.default_size if size is None else int(size)
    rgb = load_image(image)
    h, w = rgb.shape[:2]
    frame = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    paper_rgb = np.median(frame, axis=0)  # a picture's edge is its paper
    if h != w:
        side = max(h, w)
        square = np.empty((side, side, 3), np.float32)
        square[:] = paper_rgb
        top, left = (side - h) // 2, (side - w) // 2
        square[top:top + h, left:left + w] = rgb
        rgb = square
    if env.channels == 3:
        planes = [rgb[:, :, c] for c in range(3)]
    elif env.channels == 1:
        ink = 1.0 - (0.299 * rgb[:, :, 0] + 0.587 * rgb[:, :, 1] + 0.114 * rgb[:, :, 2])
        if sketch:  # as the CSG2D-Sketch models were trained
            paper, darkest = np.median(ink), np.percentile(ink, 99.9)
        else:
            paper = 1.0 - float(np.dot([0.299, 0.587, 0.114], paper_rgb))
            if paper > 0.5:  # ink reaches the edge all round: the lightest pixels are paper
                paper = float(np.percentile(ink, 0.5))
            darkest = np.percentile(ink, 99.5)
        if darkest - paper >= 0.15:
            ink = (ink - paper) / (darkest - paper)
        planes = [np.clip(ink, 0.0, 1.0)]
    else:
        raise ValueError(f"{env.name} images have {env.channels} channels: no conversion known")
    if planes[0].shape[0] != size:  # float planes: no rounding to 8 bits before resizing
        planes = [np.asarray(Image.fromarray(p.astype(np.float32), "F").resize(
            (size, size), Image.Resampling.BOX)) for p in planes]
    return np.clip(np.stack(planes, axis=-1), 0.0, 1.0).astype(np.float32)


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
    the shipped ones).  Raises :class:`ImageError` for an unreadable picture and
    ``ValueError`` for bad settings, an unknown language or one without trained models."""
    import random
    import time
    from tdlib.checkpoint import RECORD_FILE
    from tdlib.experiment import (Models, SearchConfig, default_model_folder, image_tensor,
                                  run_search)
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
            return image_tensor(env.observe(tree, random.Random(sketch_seed), size))
    else:
        target = image_to_observation(env, image, env.default_size, sketch)
        cache = {}

        def observe(size):
            if size not in cache:
                cache[size] = image_tensor(image_to_observation(env, image, size, sketch))
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
            from tqdm import tqdm
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
    from PIL import Image
    from tdlib.plotting import save_png
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
