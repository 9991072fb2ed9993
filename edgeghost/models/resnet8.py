"""ResNet-8, the MLPerf Tiny image-classification (IC01) reference network, as the external baseline.

3×3 stem, three residual stacks of 16/32/64 filters (stride 2 at stacks 2 and 3, 1×1 strided shortcut
convs without BatchNorm), global average pooling and a 10-way dense layer (~78 k parameters).
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import ConvBn
from .registry import register_model


class ResidualStack(nn.Module):
    def __init__(self, in_chs: int, out_chs: int, *, stride: int) -> None:
        super().__init__()
        self.conv1 = ConvBn(in_chs, out_chs, 3, stride=stride)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = ConvBn(out_chs, out_chs, 3)
        # MLPerf Tiny's reference uses a plain (biased) 1×1 conv as projection shortcut.
        self.shortcut = nn.Identity() if stride == 1 and in_chs == out_chs else nn.Conv2d(in_chs, out_chs, 1, stride)
        self.act2 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act2(self.conv2(self.act1(self.conv1(x))) + self.shortcut(x))


class ResNet8(nn.Module):
    def __init__(self, *, width: float = 1.0, num_classes: int = 10, in_chans: int = 3) -> None:
        super().__init__()
        self.width = width
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.img_size = 32
        c1, c2, c3 = (max(4, round(c * width)) for c in (16, 32, 64))
        self.stem = nn.Sequential(ConvBn(in_chans, c1, 3), nn.ReLU(inplace=True))
        self.stacks = nn.Sequential(
            ResidualStack(c1, c1, stride=1),  # stack 1 @32×32
            ResidualStack(c1, c2, stride=2),  # stack 2: 32→16
            ResidualStack(c2, c3, stride=2),  # stack 3: 16→8
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c3, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.stacks(self.stem(x)))
        return self.classifier(torch.flatten(x, 1))


@register_model
def resnet8(*, width: float = 1.0, num_classes: int = 10, in_chans: int = 3) -> ResNet8:
    """MLPerf Tiny IC ResNet-8 (filters scaled by ``width``; 1.0 is the reference)."""
    return ResNet8(width=width, num_classes=num_classes, in_chans=in_chans)
