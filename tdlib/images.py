"""Images as the networks read them.

Renderers and observations give ``H x W x C`` float32 arrays; the networks read ``C x H x W``
planes, in batches ``B x C x H x W``.  :func:`planes` turns one image, :func:`image_batch` a
list of them, and :func:`program_images` renders (or observes) programs into a batch.
"""

from __future__ import annotations

import numpy as np
import torch


def planes(image: np.ndarray) -> np.ndarray:
    """One ``H x W x C`` image as contiguous float32 ``C x H x W`` planes."""
    return np.ascontiguousarray(np.asarray(image).transpose(2, 0, 1), dtype=np.float32)


def image_batch(images) -> torch.Tensor:
    """``H x W x C`` images of one shape as one float32 ``B x C x H x W`` tensor."""
    return torch.from_numpy(np.stack([planes(image) for image in images]))


def program_images(env, programs, size: int, observe_rng=None) -> torch.Tensor:
    """``B x C x H x W`` renders (or observations, with ``observe_rng``) of programs."""
    if observe_rng is None:
        return image_batch(env.render(p, size) for p in programs)
    return image_batch(env.observe(p, observe_rng, size) for p in programs)
