"""A picture from elsewhere as a language's observation: what :func:`tdlib.solver.solve` reads.

:func:`load_image` reads a path, a PIL image or an array (grey, RGB or RGBA, 8 or 16 bits,
floats) into RGB on white paper; :func:`image_to_observation` turns it into what the language's
models see of a render (CSG2D: ink on paper; TinySVG: colours), at the models' size.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from tdlib.env import Env


class ImageError(ValueError):
    """A picture that cannot be read (missing, not an image, empty)."""


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
