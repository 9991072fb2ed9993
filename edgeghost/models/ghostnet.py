"""GhostNetV3 for 32×32 inputs: GhostNetV3-Small (GN-S), the unmodified GhostNetV3 (GN-D) and an MCU-lean GN-S.

Papers:
- GhostNetV3: Exploring the Training Strategies for Compact Models, https://arxiv.org/abs/2404.11202
- GhostNetV3-Small: A Tiny Variant of GhostNetV3 for CIFAR-10 (and similar), https://arxiv.org/abs/2509.12380

Written for edgeghost from the papers and the facts of the public reference code (Huawei's ``ghostnetv3.py``
and the GN-S authors' ``ghostnetv3_small.py``). Train form: every conv is a sum of re-parameterizable
branches; :func:`edgeghost.models.reparameterize` turns it into plain convs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .layers import ConvBn, DFCGate, RepConv, SqueezeExcite, make_divisible
from .registry import register_model


@dataclass(frozen=True)
class BlockCfg:
    """One ghost bottleneck: kernel, expansion channels, output channels, SE, stride (at width 1.0)."""

    k: int
    exp: int
    out: int
    se: bool
    stride: int


@dataclass(frozen=True)
class McuLayout:
    """How :class:`GhostBottleneckMCU` lays a block out for TFLite-Micro (switches for the design study)."""

    same_pad: bool = True  # TensorFlow SAME padding on stride-2 depthwise convs (no PAD op)
    split_downsample: bool = True  # stride-2 depthwise conv per ghost half (no full-resolution concatenation)
    shortcut_1x1: bool = True  # projection shortcut: strided 1×1 ConvBn instead of depthwise k×k + 1×1


def _rows(*stages: list[tuple[int, int, int, int, int]]) -> tuple[tuple[BlockCfg, ...], ...]:
    return tuple(tuple(BlockCfg(k, e, c, bool(se), s) for k, e, c, se, s in stage) for stage in stages)


# GhostNetV3-Small, the authors' CIFAR-10 table (stride-1 stem; downsampling only at 32→16 and 16→8).
GNS_CFG = _rows(
    # k, exp, out, SE, s
    [(3, 16, 16, 0, 1)],  # stage 1 @32×32
    [(3, 32, 20, 0, 2)],  # stage 2: 32→16
    [(3, 40, 20, 0, 1)],
    [(3, 48, 32, 1, 1)],  # stage 3 @16×16, no downsampling (keeps detail for small images)
    [(3, 64, 32, 1, 1)],
    [(3, 80, 48, 0, 2), (3, 96, 48, 0, 1), (3, 120, 64, 1, 1)],  # stage 4: 16→8
    [(3, 128, 80, 1, 1), (3, 160, 80, 1, 1)],  # stage 5 @8×8
)

# GN-S-MCU (edgeghost, not a paper model): GN-S's ghost bottlenecks sized for TFLite-Micro on Cortex-M. One block at
# 32×32 whose expansion equals the stem width (the 32×32 tensors stay as narrow as ResNet-8's), expansions ≤ 96 at
# 16×16, the width at 8×8 where tensors are small, no SE, channels multiples of 8, four blocks (every op costs
# arena and flash of its own). Each change vs GN-S and its measurement: edgeghost/models/README.md.
GNS_MCU_CFG = _rows(
    # k, exp, out, SE, s
    [(3, 16, 24, 0, 2)],  # 32→16: the only block at 32×32
    [(3, 48, 32, 0, 1)],  # @16×16
    [(3, 96, 64, 0, 2)],  # 16→8
    [(3, 256, 96, 0, 1)],  # @8×8: most of the parameters
)

# GhostNetV3 as published for ImageNet (16 blocks up to 160 channels), used unchanged as the GN-D baseline.
GND_CFG = _rows(
    # k, exp, out, SE, s
    [(3, 16, 16, 0, 1)],
    [(3, 48, 24, 0, 2)],
    [(3, 72, 24, 0, 1)],
    [(5, 72, 40, 1, 2)],
    [(5, 120, 40, 1, 1)],
    [(3, 240, 80, 0, 2)],
    [(3, 200, 80, 0, 1), (3, 184, 80, 0, 1), (3, 184, 80, 0, 1), (3, 480, 112, 1, 1), (3, 672, 112, 1, 1)],
    [(5, 672, 160, 1, 2)],
    [(5, 960, 160, 0, 1), (5, 960, 160, 1, 1), (5, 960, 160, 0, 1), (5, 960, 160, 1, 1)],
)


class GhostModule(nn.Module):
    """GhostNetV3 ghost module: a 1×1 "primary" conv makes half the channels, a cheap depthwise 3×3 makes the
    other half from them; both are re-parameterizable (3 branches + scale + identity). An optional DFC
    attention gate multiplies the output."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        *,
        relu: bool,
        dfc_size: tuple[int, int] | None = None,
        num_branches: int = 3,
    ) -> None:
        super().__init__()
        self.out_chs = out_chs
        init_chs = math.ceil(out_chs / 2)
        self.primary = RepConv(in_chs, init_chs, 1, num_branches=num_branches)
        self.primary_act = nn.ReLU(inplace=True) if relu else nn.Identity()
        self.cheap = RepConv(init_chs, init_chs, 3, groups=init_chs, num_branches=num_branches)
        self.cheap_act = nn.ReLU(inplace=True) if relu else nn.Identity()
        self.dfc = DFCGate(in_chs, out_chs, feature_size=dfc_size) if dfc_size is not None else None

    def halves(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The primary and the cheap ("ghost") half, before they are concatenated (no DFC gate)."""
        x1 = self.primary_act(self.primary(x))
        return x1, self.cheap_act(self.cheap(x1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat(self.halves(x), dim=1)
        if out.shape[1] != self.out_chs:  # odd channel counts: drop the extra ghost channel
            out = out[:, : self.out_chs]
        if self.dfc is not None:
            out = out * self.dfc(x)
        return out


class GhostBottleneck(nn.Module):
    """Ghost module (expand) → [stride-2 depthwise] → [SE] → ghost module (project) + shortcut."""

    def __init__(
        self,
        in_chs: int,
        mid_chs: int,
        out_chs: int,
        *,
        kernel_size: int,
        stride: int,
        se: bool,
        dfc_size: tuple[int, int] | None,
    ) -> None:
        super().__init__()
        self.ghost1 = GhostModule(in_chs, mid_chs, relu=True, dfc_size=dfc_size)
        # Stride-2 depthwise has no identity branch (the grid changes) and, as in GhostNet, no activation.
        self.dw = (
            RepConv(mid_chs, mid_chs, kernel_size, stride=stride, groups=mid_chs, identity=False)
            if stride > 1
            else nn.Identity()
        )
        self.se = SqueezeExcite(mid_chs) if se else nn.Identity()
        self.ghost2 = GhostModule(mid_chs, out_chs, relu=False)
        if in_chs == out_chs and stride == 1:
            self.shortcut: nn.Module = nn.Identity()
        else:
            self.shortcut = nn.Sequential(
                ConvBn(in_chs, in_chs, kernel_size, stride=stride, groups=in_chs),
                ConvBn(in_chs, out_chs, 1),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.ghost2(self.se(self.dw(self.ghost1(x))))
        return y + self.shortcut(x)


class GhostBottleneckMCU(GhostBottleneck):
    """GhostBottleneck laid out for TFLite-Micro's memory planner (GN-S-MCU); the same function family.

    - Downsampling blocks apply the stride-2 depthwise conv to each ghost half and concatenate the (4× smaller)
      results: a depthwise conv acts per channel, so this equals the depthwise conv of the concatenation, but
      the full-resolution concatenation (both halves and their copy live at once) is never materialized.
    - Stride-2 depthwise convs pad TensorFlow-style (:class:`SamePad`): onnx2tf then needs no PAD op and no
      padded copy of the map.
    - The projection shortcut is one strided 1×1 ConvBn (ResNet-8's shortcut) instead of depthwise k×k + 1×1.
    """

    def __init__(
        self, in_chs: int, mid_chs: int, out_chs: int, *, kernel_size: int, stride: int, se: bool,
        layout: McuLayout = McuLayout(),
    ) -> None:
        super().__init__(in_chs, mid_chs, out_chs, kernel_size=kernel_size, stride=stride, se=se, dfc_size=None)
        self.split = stride > 1 and layout.split_downsample
        if stride > 1:
            half = self.ghost1.primary.branches[0].conv.out_channels
            if self.split and 2 * half != mid_chs:
                raise ValueError(f"GhostBottleneckMCU needs an even expansion width, got {mid_chs}")

            def dw(chs: int) -> RepConv:
                return RepConv(chs, chs, kernel_size, stride=stride, groups=chs, identity=False,
                               same_pad=layout.same_pad)

            self.dw = nn.ModuleList([dw(half), dw(half)]) if self.split else dw(mid_chs)
        if not isinstance(self.shortcut, nn.Identity) and layout.shortcut_1x1:
            self.shortcut = ConvBn(in_chs, out_chs, 1, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.split:
            x1, x2 = self.ghost1.halves(x)
            y = torch.cat([self.dw[0](x1), self.dw[1](x2)], dim=1)
        else:
            y = self.dw(self.ghost1(x))
        return self.ghost2(self.se(y)) + self.shortcut(x)


class GhostNetV3(nn.Module):
    """GhostNetV3 backbone + head for small images.

    Args:
        cfg: stage table (rows of :class:`BlockCfg`).
        width: channel multiplier; channels are ``make_divisible(c * width, 4)``.
        num_classes: classifier outputs.
        in_chans: input channels.
        img_size: input height/width the model is built for (the DFC upsample sizes are static).
        stem_stride: stride of the 3×3 stem conv.
        head_chs: channels of the 1×1 conv after global pooling (GhostNet: 1280, not scaled by width); ``None``:
            no head conv, the classifier reads the pooled features directly.
        dfc: give every block after the first two a DFC-gated first ghost module.
        dropout: dropout before the classifier (training only).
        stem_chs: stem channels at width 1.0 (scaled like the table).
        divisor: channel counts are multiples of this.
        mcu: build :class:`GhostBottleneckMCU` blocks with this layout (no DFC gates then).
        final_conv: end the body with a 1×1 ConvBnAct to the last expansion width (GhostNet); ``False``: pool
            the last block's output directly.
    """

    def __init__(
        self,
        cfg: tuple[tuple[BlockCfg, ...], ...],
        *,
        width: float = 1.0,
        num_classes: int = 10,
        in_chans: int = 3,
        img_size: int = 32,
        stem_stride: int = 1,
        head_chs: int | None = 1280,
        dfc: bool = True,
        dropout: float = 0.0,
        stem_chs: int = 16,
        divisor: int = 4,
        mcu: McuLayout | None = None,
        final_conv: bool = True,
    ) -> None:
        super().__init__()
        self.width = width
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.img_size = img_size
        stem_chs = make_divisible(stem_chs * width, divisor)
        self.stem = nn.Sequential(ConvBn(in_chans, stem_chs, 3, stride=stem_stride), nn.ReLU(inplace=True))
        size = math.ceil(img_size / stem_stride)
        in_chs, layer_id, stages = stem_chs, 0, []
        for stage in cfg:
            blocks = []
            for row in stage:
                out_chs = make_divisible(row.out * width, divisor)
                mid_chs = make_divisible(row.exp * width, divisor)
                if mcu is not None:
                    block: nn.Module = GhostBottleneckMCU(
                        in_chs, mid_chs, out_chs, kernel_size=row.k, stride=row.stride, se=row.se, layout=mcu
                    )
                else:
                    # The first two blocks use a plain ghost module (as in the reference); later ones are DFC-gated.
                    dfc_size = (size, size) if dfc and layer_id > 1 else None
                    block = GhostBottleneck(
                        in_chs, mid_chs, out_chs, kernel_size=row.k, stride=row.stride, se=row.se, dfc_size=dfc_size
                    )
                blocks.append(block)
                size = math.ceil(size / row.stride)
                in_chs, layer_id = out_chs, layer_id + 1
            stages.append(nn.Sequential(*blocks))
        if final_conv:
            last_chs = make_divisible(cfg[-1][-1].exp * width, divisor)
            stages.append(nn.Sequential(ConvBn(in_chs, last_chs, 1), nn.ReLU(inplace=True)))
        else:
            last_chs = in_chs
        self.blocks = nn.Sequential(*stages)
        self.feature_size = size
        self.pool = nn.AdaptiveAvgPool2d(1)
        if head_chs is None:
            self.conv_head, self.head_act = nn.Identity(), nn.Identity()
            head_chs = last_chs
        else:
            self.conv_head = nn.Conv2d(last_chs, head_chs, 1, bias=True)
            self.head_act = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(head_chs, num_classes)
        _kaiming_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        x = self.head_act(self.conv_head(self.pool(x)))
        # flatten, not squeeze: squeeze would also drop the batch axis at batch 1.
        return self.classifier(self.dropout(torch.flatten(x, 1)))


def _kaiming_init(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


@register_model
def ghostnetv3_small(*, width: float = 1.0, num_classes: int = 10, in_chans: int = 3, **kwargs) -> GhostNetV3:
    """GhostNetV3-Small (GN-S): stride-1 stem, 10 blocks, fixed 1280 head. 93.94 % CIFAR-10 at width 2.8."""
    return GhostNetV3(GNS_CFG, width=width, num_classes=num_classes, in_chans=in_chans, stem_stride=1, **kwargs)


@register_model
def ghostnetv3_small_lean(
    *, width: float = 1.0, num_classes: int = 10, in_chans: int = 3, **kwargs
) -> GhostNetV3:
    """MCU-lean GN-S: GN-S blocks without DFC gates and a width-scaled head (``make_divisible(320·w, 8)``
    instead of 1280), because at widths 0.25–0.5 the fixed head and per-op overhead dominate TFLite-Micro
    memory. Not a paper model."""
    kwargs.setdefault("head_chs", make_divisible(320 * width, 8))
    return GhostNetV3(
        GNS_CFG, width=width, num_classes=num_classes, in_chans=in_chans, stem_stride=1, dfc=False, **kwargs
    )


@register_model
def ghostnetv3_d(
    *, width: float = 1.0, num_classes: int = 10, in_chans: int = 3, stem_stride: int = 1, **kwargs
) -> GhostNetV3:
    """Unmodified GhostNetV3 (GN-D, the paper's 91.23 % baseline). Stem stride 1 at 32×32, so the last stage
    runs at 2×2; with ``stem_stride=2`` it runs at 1×1 and the DFC gates there skip their 2×2 pool."""
    kwargs.setdefault("dropout", 0.2)
    return GhostNetV3(
        GND_CFG, width=width, num_classes=num_classes, in_chans=in_chans, stem_stride=stem_stride, **kwargs
    )


@register_model
def ghostnetv3_small_mcu(
    *, width: float = 1.0, num_classes: int = 10, in_chans: int = 3, **kwargs
) -> GhostNetV3:
    """GN-S-MCU: GN-S's re-parameterizable ghost bottlenecks in a layout for TFLite-Micro on Cortex-M — four
    blocks, one at 32×32, no DFC gates, no SE, no final 1×1 conv and no 1280 head (the classifier reads the
    pooled last block), SAME-padded stride-2 depthwise convs per ghost half, strided 1×1 shortcuts, channels
    multiples of 8. Built for 1×32×32 Fashion-MNIST (``in_chans=1``); see edgeghost/models/README.md for each
    change and its measurement. Not a paper model."""
    kwargs.setdefault("head_chs", None)
    kwargs.setdefault("final_conv", False)
    kwargs.setdefault("divisor", 8)
    kwargs.setdefault("mcu", McuLayout())
    return GhostNetV3(
        kwargs.pop("cfg", GNS_MCU_CFG), width=width, num_classes=num_classes, in_chans=in_chans, stem_stride=1,
        dfc=False, **kwargs
    )
