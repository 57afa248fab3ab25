"""The transformer's parts: self-attention, a pre-norm block, and the key/value caches of decoding.

Sequences are right-padded, in training and in decoding: causal attention never lets a real token
see the padding after it.  While decoding, the prompts' keys are cached once and shared by every
sequence decoded from them; each row writes its decoded tokens at its own output indices
(:class:`DecodeCache`, :meth:`tdlib.model.EditModel.extend`).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class DecodeCache:
    """The key/value caches of one decoding call (:meth:`EditModel.extend`).

    ``prompt``: per layer ``2 x G x heads x Lp x head_dim``, the prefilled prompts (image prefix,
    context, ``<EDIT>``; :meth:`EditModel.prefill` into :meth:`EditModel.new_cache`), each with
    ``prompt_keys[g]`` real keys.  Batch rows ``g * group`` to ``g * group + group - 1`` are
    sequences decoded from prompt ``g``.  The decoded tokens' keys go, per row and by output
    index, to caches of ``length`` slots plus one spare that takes padding's writes and is never
    read.  A query sees its prompt's real keys and its row's decoded keys up to its own.

    A prompt is most of what a query attends to, and it is read once for all its ``group``
    sequences (one product per prompt and head with their queries stacked), not copied and read
    once per sequence: that makes sampling several edits per program cheap.
    """

    def __init__(self, prompt: list[torch.Tensor], prompt_keys: torch.Tensor, group: int,
                 length: int):
        if group < 1:
            raise ValueError(f"a group has at least one sequence, not {group}")
        two, g, heads, lp, head_dim = prompt[0].shape
        if len(prompt_keys) != g:
            raise ValueError(f"{len(prompt_keys)} prompt lengths for {g} prompts")
        device = prompt[0].device
        prompt_keys = prompt_keys.to(device)
        self.prompt, self.group = prompt, group
        ahead = torch.arange(lp, device=device)[None] >= prompt_keys[:, None]
        self.prompt_bias = torch.zeros(g, lp, device=device).masked_fill_(ahead, -math.inf)
        self.out = [torch.zeros(two, g * group, heads, length + 1, head_dim, device=device,
                                dtype=layer.dtype) for layer in prompt]
        # Per row: the position of its first decoded token (right after its prompt).
        self.starts = prompt_keys.repeat_interleave(group)

    @property
    def spare(self) -> int:
        return self.out[0].shape[3] - 1

    def keep_rows(self, rows: torch.Tensor) -> None:
        """Go on with batch rows ``rows`` (ascending) only.  Where some but not all rows of a
        prompt stay, each kept row gets its own copy of its prompt's keys from then on."""
        prompts = torch.div(rows, self.group, rounding_mode="floor")
        if self.group > 1 and len(rows) != self.group * len(prompts.unique()):
            self.group = 1  # ragged: one prompt per row
        else:
            prompts = prompts[::self.group]
        self.prompt = [layer.index_select(1, prompts) for layer in self.prompt]
        self.prompt_bias = self.prompt_bias.index_select(0, prompts)
        self.out = [layer.index_select(1, rows) for layer in self.out]
        self.starts = self.starts.index_select(0, rows)

    def attend(self, layer: int, q, kv, where, mask):
        """Attention of queries ``q`` (``B x heads x t x head_dim``) whose keys and values ``kv``
        (``2 x B x heads x t x head_dim``) are written at output indices ``where`` (``B x t``);
        ``mask`` (``B x 1 x t x span``, additive, float32) says which decoded keys each query sees.
        In float32, as the fused kernels of the prefill and of training compute it."""
        b, heads, t, head_dim = q.shape
        out, prompt = self.out[layer], self.prompt[layer]
        rows = torch.arange(b, device=q.device)[:, None]
        # One write for keys and values; index_put_ does not cast (bf16 under autocast).
        out[:, rows, :, where] = kv.permute(1, 3, 0, 2, 4).to(out.dtype)
        span, g, s, lp = mask.shape[-1], b // self.group, self.group, prompt.shape[3]
        q = q.float() * head_dim ** -0.5

        def stacked(x):  # B x heads x t x n -> G x heads x (group * t) x n
            return x.reshape(g, s, heads, t, -1).transpose(1, 2).reshape(g, heads, s * t, -1)

        def unstacked(x):  # the inverse
            return x.reshape(g, heads, s, t, -1).transpose(1, 2).reshape(b, heads, t, -1)

        to_prompt = torch.matmul(stacked(q), prompt[0].float().transpose(-1, -2))
        to_prompt = unstacked(to_prompt + self.prompt_bias[:, None, None, :])
        to_out = torch.matmul(q, out[0, :, :, :span].float().transpose(-1, -2)) + mask
        weights = torch.softmax(torch.cat([to_prompt, to_out], dim=-1), dim=-1)
        y = unstacked(torch.matmul(stacked(weights[..., :lp]), prompt[1].float()))
        return y + torch.matmul(weights[..., lp:], out[1, :, :, :span].float())


class Attention(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)

    def forward(self, x, mask=None, cache=None, cache_at: int | torch.Tensor = 0, layer: int = 0):
        """Self-attention: causal without ``mask``, else ``mask`` (True = may attend, or an additive
        float bias; e.g. the prefix-LM mask of :meth:`EditModel.attention_mask`).  With a key/value
        ``cache`` (``2 x B x heads x length x head_dim``, keys then values) and an int
        ``cache_at``, the ``t`` new keys are written there for every row (prefill).  With a
        :class:`DecodeCache`, ``cache_at`` (``B x t``) is where row ``i``'s key ``j`` goes among
        the decoded tokens of this ``layer``, and ``mask`` (``B x 1 x t x span``) which of them
        each query sees; every query also sees its prompt's real keys (decoding)."""
        b, t, d = x.shape
        qkv = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q = qkv[0]
        if isinstance(cache, DecodeCache):
            y = cache.attend(layer, q, qkv[1:], cache_at, mask)
            return self.out(y.transpose(1, 2).reshape(b, t, d))
        if cache is None:
            k, v = qkv[1], qkv[2]
        else:
            cache[:, :, :, cache_at:cache_at + t] = qkv[1:]
            k, v = cache[0, :, :, :cache_at + t], cache[1, :, :, :cache_at + t]
        if mask is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            if mask.is_floating_point() and mask.dtype != q.dtype:  # bf16 under autocast
                mask = mask.to(q.dtype)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(y.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(d)
        self.attn = Attention(d, heads)
        self.norm2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.SiLU(), nn.Linear(4 * d, d))

    def forward(self, x, mask=None, cache=None, cache_at: int | torch.Tensor = 0, layer: int = 0):
        x = x + self.attn(self.norm1(x), mask, cache, cache_at, layer)
        return x + self.mlp(self.norm2(x))
