"""Footprints: which pixels each part of the current program draws, for the policy to read.

A policy that sees the images and the program's tokens must learn by itself which primitive draws
which part of the picture before it can point at the one to edit.  A renderer that can say it
(``Env.has_footprints``) gives, for every part of a program (every node of a rule that draws, in
preorder), two planes in [0, 1] at the model's resolution:

* ``drawn``: the coverage of the part's own shapes;
* ``visible``: the pixels whose value the part decides in the whole program: removing it would
  change them.  In CSG2D a primitive hidden under another, or cut away by a difference, has none;
  in TinySVG and Rainbow removing a part also lays its neighbours out anew, so its visible pixels
  reach beyond its own shape (how much each pixel changes).

Every context token is tied to the innermost part that spans it, so that a node's first token,
where ``<POS k>`` points, carries its own part.  The network then pools the image features under
each part and measures the images there (``EditModel.footprint_embedding``): the pointer reads
"the difference lies under this primitive" instead of inferring it.
"""

from __future__ import annotations

import numpy as np
import torch

from tdlib.tree import SyntaxTree

NONE = -1  # a token in no part


def program_footprints(env, tree: SyntaxTree, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``masks`` (``parts x 2 x size x size`` uint8: drawn, visible, 0-255) and ``token_part``
    (one int16 per token of the program: the index of the innermost part spanning it, or
    :data:`NONE`)."""
    parts = env.footprints(tree, size)
    planes = np.empty((len(parts), 2, size, size), np.float32)
    token_part = np.full(tree.nodes[0].token_end, NONE, np.int16)
    for i, (path, drawn, visible) in enumerate(parts):
        planes[i, 0] = drawn
        planes[i, 1] = visible
        located = tree.locate(path)
        token_part[located.token_start:located.token_end] = i  # preorder: inner parts win
    planes *= 255
    return np.rint(planes, out=planes).astype(np.uint8), token_part


def batch_footprints(items: list[tuple[np.ndarray, np.ndarray]], width: int
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad the footprints of several programs into ``B x parts x 2 x H x W`` masks and a
    ``B x width`` token-to-part index (:data:`NONE` past each program's tokens)."""
    most = max((len(masks) for masks, _ in items), default=0)
    size = items[0][0].shape[-1] if items else 1
    masks = np.zeros((len(items), max(most, 1), 2, size, size), np.uint8)
    index = np.full((len(items), width), NONE, np.int64)
    for row, (m, token_part) in enumerate(items):
        masks[row, :len(m)] = m
        n = min(len(token_part), width)
        index[row, :n] = token_part[:n]
    return torch.from_numpy(masks), torch.from_numpy(index)
