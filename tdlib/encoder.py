"""The image encoder: an NF-ResNet that reads the current and target images as one stack of planes.

:class:`ImageEncoder` reads three planes per image channel, ``[current, target, |current -
target|]`` (and, with ``coord_planes``, an x and a y plane), and gives ``n_tokens`` embeddings
pooled from the backbone's feature map: the image prefix of a sequence, or the value network's
input.
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn as nn

with warnings.catch_warnings():
    # timm's hub code imports tqdm.auto, which warns inside a notebook without ipywidgets and
    # then draws plain text bars anyway: the warning says nothing about tdlib's notebooks.
    warnings.filterwarnings("ignore", message="IProgress not found")
    import timm
    from timm.models.nfnet import NfCfg, NormFreeNet

from tdlib.model_config import ModelConfig


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
