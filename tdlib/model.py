"""The networks: the tree-diffusion policy (and its baselines) and the value network.

:class:`EditModel` is the paper's Figure 3.  The image encoder (:mod:`tdlib.encoder`) reads three
planes per channel, ``[current, target, |current - target|]``, and gives ``prefix_tokens``
embeddings that open the sequence; then come the current program's tokens and the edit ``<EDIT>
<POS k> replacement <EOS>``, read by a decoder-only transformer (:mod:`tdlib.transformer`).  The
same class, with ``kind`` set, is the autoregressive baseline (blank current image, no context,
the whole program as the "replacement") and the REPL Flow baseline (current image = the render of
the shapes so far, context = those shapes, output = the next shape and its operator).

:class:`ValueModel` maps the same three planes of two images to the predicted edit-path distance.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from tdlib.encoder import ImageEncoder
from tdlib.model_config import ModelConfig
from tdlib.transformer import Block, DecodeCache

# Per part (drawn and visible pixels): its share of the image, the mean current, target and
# difference under it, and its share of the whole difference.
FOOTPRINT_STATS = 2 * 5


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
