"""What determines a network's shape: :class:`ModelConfig`, stored in every checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

KINDS = ("policy", "value", "ar", "repl")


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
    # Value network only: 0 pools the image features to one vector; k > 0
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
