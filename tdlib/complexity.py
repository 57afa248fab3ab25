"""Visual complexity by LZ4 incompressibility, and rejection sampling of hard programs.

Paper, Appendix D: scenes with many primitives often look simple (a large shape subtracts most of
the rest), so the hard CSG2D test set keeps only images at or above the 95th percentile of the
training distribution's incompressibility.  The score (DECISIONS.md §3) is the LZ4
frame-compressed size of the image, binarised at 0.5, divided by its raw size: blank images
compress to almost nothing, busy ones barely compress.
"""

from __future__ import annotations

import lz4.frame
import numpy as np

from tdlib.env import Env
from tdlib.sampling import as_random


def lz4_score(image: np.ndarray) -> float:
    """Compressed / raw size of the image binarised at 0.5 (higher = more complex)."""
    raw = np.ascontiguousarray(np.asarray(image) > 0.5, dtype=np.uint8).tobytes()
    if not raw:
        raise ValueError("cannot score an empty image")
    return len(lz4.frame.compress(raw, compression_level=0)) / len(raw)


def training_scores(env: Env, n: int, rng, min_primitives: int = 2, max_primitives: int = 8,
                    size: int = 128) -> np.ndarray:
    """Scores of ``n`` programs drawn like training targets."""
    r = as_random(rng)
    return np.array([lz4_score(env.render(env.sample(r, min_primitives, max_primitives), size))
                     for _ in range(n)])


def complexity_threshold(env: Env, percentile: float, rng, n: int = 10_000,
                         min_primitives: int = 2, max_primitives: int = 8,
                         size: int = 128) -> float:
    """The ``percentile`` of training-distribution scores (e.g. 95 for the hard test set)."""
    if not 0 <= percentile <= 100:
        raise ValueError(f"percentile must be in [0, 100], not {percentile}")
    scores = training_scores(env, n, rng, min_primitives, max_primitives, size)
    return float(np.percentile(scores, percentile))
