"""The networks: an NF-ResNet image encoder, a decoder-only transformer, and the value head.

:class:`EditModel` is the paper's Figure 3.  The image encoder reads three planes per channel,
``[current, target, |current - target|]``, and gives ``prefix_tokens`` embeddings that open the
sequence; then come the current program's tokens and the edit ``<EDIT> <POS k> replacement <EOS>``.
The same class, with ``kind`` set, is the autoregressive baseline (blank current image, no context,
the whole program as the "replacement") and the REPL Flow baseline (current image = the render of
the shapes so far, context = those shapes, output = the next shape and its operator).

:class:`ValueModel` maps the same three planes of two images to the predicted edit-path distance.

Sequences are right-padded, in training and in decoding: causal attention never lets a real token
see the padding after it.  While decoding, the prompts' keys are cached once and shared by every
sequence decoded from them; each row writes its decoded tokens at its own output indices
(:class:`DecodeCache`, :meth:`EditModel.extend`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import timm
import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.models.nfnet import NfCfg, NormFreeNet

KINDS = ("policy", "value", "ar", "repl")
# Per part (drawn and visible pixels): its share of the image, the mean current, target and
# difference under it, and its share of the whole difference.
FOOTPRINT_STATS = 2 * 5


@dataclass
class ModelConfig:
    """Everything that determines a network's shape; stored in every checkpoint."""

    kind: str = "policy"
    env: str = "csg2d"
    channels: int = 1  # image channels of the language (1 for CSG2D, 3 for TinySVG)
    image_size: int = 64
    encoder: str = "nf_tiny"  # a SMALL_ENCODERS name (built here) or any timm model name
    encoder_stride: int = 32  # 16 keeps a finer feature map (timm's output_stride)
    coord_planes: bool = False  # add x and y planes to the input (CoordConv): where things are
    prefix_tokens: int = 4
    # LayerNorm on the image prefix: the NF-ResNet's features are ~100x the size of token
    # embeddings, which drowns what the transformer writes into the prefix positions.
    prefix_norm: bool = False
    # Prefix-LM attention: the image prefix and the context (the prompt) attend both ways, the
    # output stays causal.  A node's first token then sees its whole subtree, so choosing
    # <POS k> is a lookup of content at k instead of a reconstruction from later tokens.
    bidirectional_prompt: bool = False
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    max_positions: int = 192  # <POS k> tokens: the longest context the policy can edit
    context: int = 256  # longest sequence, image prefix included
    max_edit_tokens: int = 64
    vocab_size: int = 0  # set from the tokenizer
    use_current_image: bool = True  # False: the No Current Image ablation
    # Adds h . position_embedding[prefix + k] to the logit of <POS k>: the output for a position
    # is tied to the input embedding of that position, which makes pointing learnable quickly.
    tie_positions: bool = True
    # Content pointer: the logit of <POS k> also gets q(h) . k(c_k) / sqrt(d), c_k the final
    # state of context token k.  Choosing where to edit becomes matching the output state against
    # what is written (and, with bidirectional_prompt, drawn) at k, instead of recalling k's
    # index.  Needs prompt_lengths, so that no query points into its own output.
    pointer_positions: bool = False
    pos_offset: int = 0  # id of <POS 0> (set from the tokenizer)
    # Footprints (tdlib.footprints): each context token also gets its program part's drawn and
    # visible pixels, read as the image features pooled under them and the current, target and
    # difference images measured there, so that the pointer can see which primitive draws where
    # the images differ.  Needs a renderer with footprints and the current image (they are
    # computed from the current program's render).
    footprints: bool = False
    # Value network only: 0 pools the image features to one vector (the first design); k > 0
    # keeps prefix_tokens spatial tokens and runs k transformer blocks over them and a learned
    # summary token, so that the distance can be read from where the two images differ and how.
    value_layers: int = 0
    # Value network only: 0 regresses the distance (smooth L1); k > 0 predicts a distribution
    # over distances 0 .. k-1 (the last bin: k-1 or more), trained by cross-entropy, and reports
    # its mean.  Path distances are small integers with a long tail: a regression to them is
    # pulled toward the mean, a classification is not.
    value_bins: int = 0
    # Value network only: weight of a pairwise ranking term added to the loss (0: none).  Every
    # two examples of a batch at different distances add softplus(v_near - v_far): search only
    # needs the order of its candidates, which a regression or a classification learns only
    # indirectly.
    value_rank_weight: float = 0.0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {self.kind!r}")
        if self.d_model % self.n_heads:
            raise ValueError("d_model must be a multiple of n_heads")
        if self.vocab_size and (self.tie_positions or self.pointer_positions) and \
                self.pos_offset + self.max_positions != self.vocab_size:
            raise ValueError("tie_positions and pointer_positions need the <POS k> tokens last: "
                             "pos_offset + max_positions == vocab_size")
        if self.footprints and not self.use_current_image:
            raise ValueError("footprints are read from the current program's render: they need "
                             "use_current_image")
        if self.value_rank_weight < 0:
            raise ValueError("value_rank_weight must be >= 0")
        if self.prefix_tokens + self.max_positions > self.context:
            raise ValueError(f"prefix_tokens + max_positions ({self.prefix_tokens} + "
                             f"{self.max_positions}) exceeds the context of {self.context}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config fields: {sorted(unknown)}")
        return cls(**data)


# Four-stage NF-ResNets at a fraction of nf_resnet26's width, for 2-core CPU training.
# nf_micro halves nf_tiny's widths and pools after its stem (stride 4 before the first stage):
# less than half the encoder's time, which decoding pays once per problem (README, "Speed").
SMALL_ENCODERS = {
    "nf_tiny": NfCfg(depths=(1, 1, 1, 1), channels=(32, 64, 128, 256), stem_type="3x3",
                     stem_chs=24, bottle_ratio=0.5, act_layer="silu"),
    "nf_micro": NfCfg(depths=(1, 1, 1, 1), channels=(16, 32, 64, 128), stem_type="3x3_pool",
                      stem_chs=16, bottle_ratio=0.5, act_layer="silu"),
}


def make_encoder(name: str, in_chans: int, output_stride: int = 32) -> nn.Module:
    """An NF-ResNet feature extractor (no pooling, no classifier)."""
    if name in SMALL_ENCODERS:
        return NormFreeNet(SMALL_ENCODERS[name], num_classes=0, in_chans=in_chans,
                           global_pool="", output_stride=output_stride)
    return timm.create_model(name, pretrained=False, num_classes=0, global_pool="",
                             in_chans=in_chans, output_stride=output_stride)


class ImageEncoder(nn.Module):
    """Three planes per channel -> ``n_tokens`` embeddings of width ``d``."""

    def __init__(self, config: ModelConfig, n_tokens: int, d: int):
        super().__init__()
        self.use_current = config.use_current_image
        self.coord_planes = config.coord_planes
        extra = 2 if config.coord_planes else 0
        self.backbone = make_encoder(config.encoder, 3 * config.channels + extra,
                                     config.encoder_stride)
        side = int(math.isqrt(n_tokens))
        if side * side != n_tokens:
            raise ValueError("prefix_tokens must be a square number (1, 4, 9, ...)")
        self.pool = nn.AdaptiveAvgPool2d(side)
        self.project = nn.Linear(self.backbone.num_features, d)
        self.norm = nn.LayerNorm(d) if config.prefix_norm else nn.Identity()

    def forward(self, current: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if not self.use_current:
            current = torch.zeros_like(current)
        planes = [current, target, (current - target).abs()]
        if self.coord_planes:
            b, _, h, w = current.shape
            ys = torch.linspace(-1, 1, h, device=current.device, dtype=current.dtype)
            xs = torch.linspace(-1, 1, w, device=current.device, dtype=current.dtype)
            planes += [xs.view(1, 1, 1, w).expand(b, 1, h, w), ys.view(1, 1, h, 1).expand(b, 1, h, w)]
        # Channels-last: the CPU's convolution and pooling kernels run about twice as fast on it
        # as on NCHW with these few channels (results equal to float rounding).
        planes = torch.cat(planes, dim=1).contiguous(memory_format=torch.channels_last)
        features = self.pool(self.backbone(planes))  # B x C x side x side
        return self.norm(self.project(features.flatten(2).transpose(1, 2)))  # B x n_tokens x d


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


class EditModel(nn.Module):
    """Tree-diffusion policy (and the AR / REPL baselines): images + tokens -> next-token logits."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.kind == "value":
            raise ValueError("use ValueModel for kind='value'")
        if config.vocab_size <= 0:
            raise ValueError("config.vocab_size must be set (from the tokenizer)")
        self.config = config
        d = config.d_model
        self.encoder = ImageEncoder(config, config.prefix_tokens, d)
        self.token_embedding = nn.Embedding(config.vocab_size, d)
        self.position_embedding = nn.Embedding(config.context, d)
        self.blocks = nn.ModuleList(Block(d, config.n_heads) for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, config.vocab_size, bias=False)
        if config.pointer_positions:
            self.pointer_query = nn.Linear(d, d, bias=False)
            self.pointer_key = nn.Linear(d, d, bias=False)
        if config.footprints:
            self.footprint_project = nn.Linear(d + FOOTPRINT_STATS, d)
        self.apply(_init_weights)
        if config.footprints:  # zero: a policy started from one without footprints starts as it
            nn.init.zeros_(self.footprint_project.weight)

    def footprint_embedding(self, prefix, current, target, masks, token_part) -> torch.Tensor:
        """``B x T x d``, added to the token embeddings: for each token the projection of its
        part's image features (the prefix tokens averaged under the part's drawn pixels) and
        statistics (``FOOTPRINT_STATS``); zero for a token in no part (``token_part < 0``).
        ``masks``: ``B x parts x 2 x H x W`` uint8 (:func:`tdlib.footprints.batch_footprints`)."""
        m = masks.to(prefix.device, torch.float32) / 255
        pixels = m.shape[-1] * m.shape[-2]
        flat = m.flatten(3)  # B x N x 2 x HW
        diff = (current - target).abs().float().mean(1).flatten(1)
        planes = torch.stack([current.float().mean(1).flatten(1),
                              target.float().mean(1).flatten(1), diff], dim=-1)  # B x HW x 3
        area = flat.sum(-1)  # B x N x 2
        sums = torch.einsum("bnkp,bpc->bnkc", flat, planes)
        stats = torch.cat([(area / pixels)[..., None], sums / (area[..., None] + 1),
                           (sums[..., 2] / (diff.sum(-1)[:, None, None] + 1))[..., None]], dim=-1)
        side = math.isqrt(prefix.shape[1])
        grid = F.adaptive_avg_pool2d(m[:, :, 0], side).flatten(2)  # B x N x prefix tokens
        grid = grid / (grid.sum(-1, keepdim=True) + 1e-6)
        parts = torch.cat([grid @ prefix.float(), stats.flatten(2)], dim=-1)
        parts = self.footprint_project(parts.to(self.footprint_project.weight.dtype))
        index = token_part.to(prefix.device)
        out = parts.gather(1, index.clamp(min=0)[..., None].expand(-1, -1, parts.shape[-1]))
        return out * (index >= 0)[..., None].to(out.dtype)

    def token_inputs(self, prefix, tokens, current=None, target=None, footprints=None):
        """The embeddings of ``tokens`` (``B x T x d``), with their footprints where the model
        reads them (``footprints``: masks and token-to-part index of
        :func:`tdlib.footprints.batch_footprints`)."""
        x = self.token_embedding(tokens)
        if not self.config.footprints:
            return x
        if footprints is None:
            raise ValueError("this model reads footprints: pass footprints")
        masks, token_part = footprints
        return x + self.footprint_embedding(prefix, current, target, masks,
                                            token_part[:, :tokens.shape[1]]).to(x.dtype)

    def forward(self, current, target, tokens, select: torch.Tensor | None = None,
                prompt_lengths: torch.Tensor | None = None, footprints=None) -> torch.Tensor:
        """Training: logits ``B x T x V`` for every token position (prefix excluded).

        ``tokens`` are right-padded; position ``i`` of the output predicts ``tokens[:, i + 1]``.
        With a boolean ``select`` (``B x T``), only those positions' logits (``N x V``), which
        spares the output layer the context positions that carry no loss.  ``prompt_lengths``
        (tokens of each row's context and ``<EDIT>``) is needed with ``bidirectional_prompt``,
        ``footprints`` with ``footprints``.
        """
        p = self.config.prefix_tokens
        positions = torch.arange(p + tokens.shape[1], device=tokens.device)
        if len(positions) > self.config.context:
            raise ValueError(f"sequence of {len(positions)} exceeds the context of "
                             f"{self.config.context}")
        prefix = self.encoder(current, target)
        x = torch.cat([prefix, self.token_inputs(prefix, tokens, current, target, footprints)],
                      dim=1) + self.position_embedding(positions)
        mask = self.attention_mask(prompt_lengths, len(positions))
        for block in self.blocks:
            x = block(x, mask)
        h = self.norm(x[:, p:])
        keys = self.context_keys(h, prompt_lengths)
        pointer = None if keys is None else self.pointer_scores(h, keys)
        if select is None:
            return self.logits(h, pointer)
        # The pointer over the whole batch (B x T x L), then the selected rows: gathering each
        # selected row's keys instead would copy an N x L x d tensor.
        return self.logits(h[select], None if pointer is None else pointer[select])

    def context_keys(self, h, prompt_lengths):
        """With ``pointer_positions``: the pointer keys of the context tokens of ``h``
        (``B x L x d``, the final states of the tokens) and which are real context
        (``B x L``: index < the row's context length); else None."""
        if not self.config.pointer_positions:
            return None
        if prompt_lengths is None:
            raise ValueError("this model points at context tokens: pass prompt_lengths")
        n = min(h.shape[1], self.config.max_positions)
        valid = torch.arange(n, device=h.device)[None] < (prompt_lengths - 1)[:, None]
        return self.pointer_key(h[:, :n]), valid

    def attention_mask(self, prompt_lengths, length: int):
        """None (causal) or, with ``bidirectional_prompt``, an additive ``B x 1 x T x T`` mask
        (0 or -inf): a query sees every earlier key and the whole prompt (image prefix, context,
        ``<EDIT>``)."""
        if not self.config.bidirectional_prompt:
            return None
        if prompt_lengths is None:
            raise ValueError("this model attends both ways within the prompt: pass prompt_lengths")
        keys = torch.arange(length, device=prompt_lengths.device)
        causal = keys[None, :] <= keys[:, None]
        prompt = keys[None, :] < (self.config.prefix_tokens + prompt_lengths)[:, None]
        allowed = (causal[None] | prompt[:, None, :])[:, None]
        # An additive mask: the CPU flash kernel runs a third faster with it than with a bool one.
        return torch.zeros(allowed.shape, device=allowed.device).masked_fill_(~allowed,
                                                                              float("-inf"))

    def pointer_scores(self, h: torch.Tensor, keys) -> torch.Tensor:
        """``B x T x L`` pointer scores of states ``h`` (``B x T x d``) against the context keys
        of :meth:`context_keys`; ``-inf`` where k is not a context token."""
        key, valid = keys
        scores = torch.einsum("btd,bld->btl", self.pointer_query(h), key) * (h.shape[-1] ** -0.5)
        return scores.masked_fill(~valid[:, None, :], float("-inf"))

    def logits(self, h: torch.Tensor, pointer: torch.Tensor | None = None) -> torch.Tensor:
        """Next-token logits of final states ``h`` (``... x d``).  ``pointer`` (``... x L``, from
        :meth:`pointer_scores`) is added to the first L ``<POS k>`` logits; the others are
        ``-inf`` (no context token there)."""
        out = self.head(h)
        c, p = self.config, self.config.prefix_tokens
        if not (c.tie_positions or pointer is not None):
            return out
        pos = out[..., c.pos_offset:]
        if c.tie_positions:
            pos = pos + h @ self.position_embedding.weight[p:p + c.max_positions].T
        if pointer is not None:
            n = pointer.shape[-1]
            pos = torch.cat([pos[..., :n] + pointer.to(pos.dtype),
                             torch.full_like(pos[..., n:], float("-inf"))], dim=-1)
        return torch.cat([out[..., :c.pos_offset], pos], dim=-1)

    # ------------------------------------------------------------ decoding
    def new_cache(self, batch: int, length: int, device, dtype):
        """Zeroed key/value caches for :meth:`prefill`, one ``2 x batch x heads x length x
        head_dim`` per layer (keys, values); slices of rows and of positions keep each head's
        keys contiguous.  Decoding goes on with a :class:`DecodeCache` over them."""
        h = self.config.n_heads
        shape = (2, batch, h, length, self.config.d_model // h)
        return [torch.zeros(shape, device=device, dtype=dtype) for _ in self.blocks]

    def prefill(self, prefix, tokens, lengths, cache, footprint=None):
        """Run prompts into ``cache`` from index 0; the logits of each row's last prompt token.

        ``prefix`` is the image prefix (:meth:`ImageEncoder.forward`), ``tokens`` the right-padded
        prompts, row ``i`` holding ``lengths[i]`` real tokens.  Cache index = position, so the
        padding after a prompt is never seen: real tokens do not attend ahead of the prompt
        (causal or prefix-LM mask), and a :class:`DecodeCache` masks the padding's keys.
        ``footprint``: the prompts' :meth:`footprint_embedding`, where the model reads
        footprints.
        """
        p = prefix.shape[1]
        positions = torch.arange(p + tokens.shape[1], device=tokens.device)
        x = self.token_embedding(tokens)
        if footprint is not None:
            x = x + footprint[:, :tokens.shape[1]].to(x.dtype)
        elif self.config.footprints:
            raise ValueError("this model reads footprints: pass footprint")
        x = torch.cat([prefix, x], dim=1) + self.position_embedding(positions)
        mask = self.attention_mask(lengths, len(positions))
        for block, layer_cache in zip(self.blocks, cache):
            x = block(x, mask, layer_cache, 0)
        if self.config.pointer_positions:  # the <POS k> choice is made from these logits
            h = self.norm(x[:, p:])
            last = h[torch.arange(len(x), device=x.device), lengths - 1]
            pointer = self.pointer_scores(last[:, None], self.context_keys(h, lengths))[:, 0]
            return self.logits(last, pointer)
        last = x[torch.arange(len(x), device=x.device), p + lengths - 1]
        return self.logits(self.norm(last))

    def step(self, tokens, at, cache: DecodeCache, span: int | None = None):
        """One new token per row, at its own output index ``at[i]``; its logits.
        ``span`` = ``max(at) + 1`` when the caller knows it (spares a device sync)."""
        span = int(at.max()) + 1 if span is None else span
        return self.extend(tokens[:, None], torch.ones_like(at), at, cache, span)

    def extend(self, tokens, lengths, at, cache: DecodeCache, span: int):
        """Feed row ``i`` its ``lengths[i]`` tokens ``tokens[i, :lengths[i]]`` (right-padded,
        ``B x m``) at output indices ``at[i]``, ``at[i] + 1``, ... (0: the first token after its
        prompt); the logits after each row's last fed token (rows fed nothing: undefined).
        ``span`` = ``max(at + lengths)``.  No pointer term: an edit's ``<POS k>`` is chosen from
        the logits of :meth:`prefill`.
        """
        if span > cache.spare:
            raise ValueError(f"decoding to output index {span - 1} overruns the cache's "
                             f"{cache.spare} slots")
        b, m = tokens.shape
        offsets = torch.arange(m, device=at.device)
        index = at[:, None] + offsets  # B x m
        real = offsets[None] < lengths[:, None]
        positions = cache.starts[:, None] + index
        # Padding may run past the context; it reads position 0 (a real one past it still raises).
        x = self.token_embedding(tokens) + self.position_embedding(torch.where(real, positions, 0))
        where = torch.where(real, index, cache.spare)
        # One additive bias for every layer: each query sees the decoded keys up to its own.
        ahead = torch.arange(span, device=at.device)[None, None] > index[:, :, None]
        mask = torch.zeros(ahead.shape, device=at.device).masked_fill_(ahead, float("-inf"))
        mask = mask[:, None]
        for layer, block in enumerate(self.blocks):
            x = block(x, mask, cache, where, layer)
        last = x[torch.arange(b, device=x.device), (lengths - 1).clamp(min=0)]
        return self.logits(self.norm(last))


class ValueModel(nn.Module):
    """v(x_A, x_B): the predicted number of edits from the program drawn as A to the one drawn as B."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        d = config.d_model
        spatial = config.value_layers > 0
        self.encoder = ImageEncoder(config, config.prefix_tokens if spatial else 1, d)
        if spatial:
            self.summary = nn.Parameter(torch.zeros(1, 1, d))
            self.position_embedding = nn.Parameter(torch.zeros(1, config.prefix_tokens + 1, d))
            self.blocks = nn.ModuleList(Block(d, config.n_heads)
                                        for _ in range(config.value_layers))
        outputs = config.value_bins or 1
        self.head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d), nn.SiLU(),
                                  nn.Linear(d, outputs))
        self.apply(_init_weights)
        if spatial:
            nn.init.normal_(self.position_embedding, std=0.02)

    def forward(self, current, target, logits: bool = False) -> torch.Tensor:
        """The predicted distance, ``B`` (with ``value_bins``: the mean of the distribution, or
        with ``logits=True`` its ``B x bins`` logits)."""
        x = self.encoder(current, target)
        if self.config.value_layers:
            x = torch.cat([self.summary.expand(len(x), -1, -1), x], dim=1) + self.position_embedding
            mask = torch.ones(x.shape[1], x.shape[1], dtype=torch.bool, device=x.device)
            for block in self.blocks:
                x = block(x, mask)  # every token sees every other: no causal order here
        out = self.head(x[:, 0])
        if not self.config.value_bins:
            return out.squeeze(-1)
        if logits:
            return out
        bins = torch.arange(self.config.value_bins, device=out.device, dtype=torch.float32)
        return torch.softmax(out.float(), dim=-1) @ bins


def build_model(config: ModelConfig) -> nn.Module:
    return ValueModel(config) if config.kind == "value" else EditModel(config)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _init_weights(module: nn.Module) -> None:
    # The NF-ResNet backbone has only (scaled) convolutions and keeps timm's own initialisation.
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
