"""Building blocks shared by the edgeghost models.

Every block with BatchNorm or parallel branches has a ``reparameterize()`` method that returns one plain
``nn.Conv2d`` computing the same function in eval mode; :func:`edgeghost.models.reparameterize` swaps them in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def make_divisible(value: float, divisor: int = 4, min_value: int | None = None) -> int:
    """Round ``value`` to a multiple of ``divisor``, never more than 10 % below it (MobileNet rule)."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def _pair(value: int | tuple[int, int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)  # type: ignore[return-value]


def _fold_bn(kernel: torch.Tensor, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Kernel and bias of ``bn(conv(x))`` for a bias-free conv with ``kernel`` (eval-mode statistics).

    Computed in float64 so that the fused model's error is only the float32 rounding of its own forward.
    """
    std = (bn.running_var.double() + bn.eps).sqrt()
    scale = bn.weight.double() / std
    bias = bn.bias.double() - bn.running_mean.double() * scale
    return kernel.double() * scale.reshape(-1, 1, 1, 1), bias


def _conv_like(template: nn.Conv2d, kernel: torch.Tensor, bias: torch.Tensor) -> nn.Conv2d:
    """A biased conv with ``template``'s geometry holding the fused ``kernel`` and ``bias``."""
    conv = nn.Conv2d(
        template.in_channels,
        template.out_channels,
        template.kernel_size,
        stride=template.stride,
        padding=template.padding,
        groups=template.groups,
        bias=True,
        dtype=template.weight.dtype,
        device=template.weight.device,
    )
    conv.weight.data.copy_(kernel)
    conv.bias.data.copy_(bias)
    return conv


class ConvBn(nn.Module):
    """Bias-free conv followed by BatchNorm; fuses into one biased conv."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int | tuple[int, int] = 1,
        *,
        stride: int = 1,
        groups: int = 1,
        padding: int | None = None,
    ) -> None:
        super().__init__()
        kh, kw = _pair(kernel_size)
        pad = (kh // 2, kw // 2) if padding is None else (padding, padding)
        self.conv = nn.Conv2d(in_chs, out_chs, (kh, kw), stride, pad, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_chs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))

    @torch.no_grad()
    def fused_kernel_bias(self) -> tuple[torch.Tensor, torch.Tensor]:
        return _fold_bn(self.conv.weight, self.bn)

    @torch.no_grad()
    def reparameterize(self) -> nn.Conv2d:
        return _conv_like(self.conv, *self.fused_kernel_bias())


class SamePad(nn.Module):
    """TensorFlow's "SAME" zero padding for a k×k, stride-s conv: the extra row/column goes bottom/right.

    PyTorch pads k//2 on every side; for a stride-2 3×3 conv on an even-sized map that differs from SAME, and
    onnx2tf then puts an explicit PAD op (plus its padded copy of the map) before the conv. With SAME padding
    in the model the converter emits one SAME conv instead.
    """

    def __init__(self, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride

    def pads(self, size: int) -> tuple[int, int]:
        total = max(self.kernel_size - (self.stride if size % self.stride == 0 else size % self.stride), 0)
        return total // 2, total - total // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = self.pads(int(x.shape[-2]))
        left, right = self.pads(int(x.shape[-1]))
        return F.pad(x, (left, right, top, bottom))


class RepConv(nn.Module):
    """GhostNetV3's re-parameterizable conv: ``num_branches`` k×k ConvBn branches, summed with an optional
    1×1 ConvBn "scale" branch and an optional BatchNorm identity branch.

    Each branch is linear in eval mode, so the sum is one k×k conv. The scale kernel is zero-padded to k×k
    and the identity becomes a k×k kernel with a single 1 at the centre; both are built with *this* block's
    kernel size, so a 1×1 block with an identity branch fuses to a 1×1 kernel (a reference implementation
    used the 3×3 size of the depthwise branch there and broke).
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int,
        *,
        stride: int = 1,
        groups: int = 1,
        num_branches: int = 3,
        scale: bool = True,
        identity: bool = True,
        same_pad: bool = False,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        # same_pad: TensorFlow SAME padding (see SamePad) instead of k//2 on every side.
        self.pad = SamePad(kernel_size, stride) if same_pad else None
        padding = 0 if same_pad else None
        self.branches = nn.ModuleList(
            ConvBn(in_chs, out_chs, kernel_size, stride=stride, groups=groups, padding=padding)
            for _ in range(num_branches)
        )
        # A 1×1 scale branch only adds something when the main kernel is larger than 1×1.
        self.scale = ConvBn(in_chs, out_chs, 1, stride=stride, groups=groups) if scale and kernel_size > 1 else None
        # The identity branch needs the output grid and channels to match the input's.
        self.identity = (
            nn.BatchNorm2d(out_chs) if identity and in_chs == out_chs and stride == 1 and not same_pad else None
        )

    def _scale_input(self, x: torch.Tensor) -> torch.Tensor:
        """The pixels under the k×k kernel's centre: with SAME padding the windows start ``top`` rows up, so
        the centres sit ``k//2 - top`` rows (and columns) into the unpadded map."""
        if self.pad is None:
            return x
        dy = self.kernel_size // 2 - self.pad.pads(int(x.shape[-2]))[0]
        dx = self.kernel_size // 2 - self.pad.pads(int(x.shape[-1]))[0]
        return x[:, :, dy:, dx:]

    # One-conv training forward of a 1×1 block (set by :func:`edgeghost.models.fused_branches`). Every branch
    # is BN_i(W_i x): in training BatchNorm normalizes branch i with the batch mean and variance of W_i x, and
    # those follow from the mean μ and covariance Σ of the input channels (W_i μ, diag(W_i Σ W_iᵀ)). The sum
    # of the branches is then ONE 1×1 conv with kernel Σ_i γ_i/σ_i · W_i and bias Σ_i (β_i − γ_i/σ_i · W_i μ):
    # the same function of x and of the parameters as the per-branch forward, gradients included, up to
    # float rounding, with one conv and one C_in×C_in covariance (a matrix product) instead of three or four
    # convs and BatchNorms. Parameters and buffers stay the per-branch ones and the running statistics are
    # updated as each BatchNorm would, so checkpoints are unchanged. Depthwise k×k blocks keep the per-branch
    # forward: their k²×k² patch covariance measured slower on CPU than the BatchNorms it would replace.
    fused: bool = False

    def _fusable(self) -> bool:
        conv = self.branches[0].conv
        bns = [b.bn for b in self.branches] + ([self.identity] if self.identity is not None else [])
        return (self.training and self.kernel_size == 1 and conv.groups == 1 and self.pad is None
                and all(bn.track_running_stats and bn.momentum is not None for bn in bns))

    def _fused_forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.branches[0].conv
        x = x[:, :, :: conv.stride[0], :: conv.stride[1]]
        pixels = x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])
        with torch.autocast(x.device.type, enabled=False):  # batch statistics in float32 at least, even under AMP
            kernel, bias = self._fused_kernel_bias(pixels.to(torch.promote_types(pixels.dtype, torch.float32)))
        return F.conv2d(x, kernel[:, :, None, None], bias)

    def _fused_kernel_bias(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Kernel (C_out, C_in) and bias of the fused 1×1 conv from the input pixels (M, C_in); updates the
        BatchNorms' running statistics."""
        rows = pixels.shape[0]
        mu = pixels.mean(0)
        centred = pixels - mu
        sigma = centred.T @ centred / rows
        parts = [(b.conv.weight.flatten(1), b.bn) for b in self.branches]
        if self.identity is not None:
            parts.append((torch.eye(pixels.shape[1], dtype=pixels.dtype, device=pixels.device), self.identity))
        kernel = bias = None
        for w, bn in parts:
            mean, var = w @ mu, ((w @ sigma) * w).sum(1)
            scale = bn.weight / torch.sqrt(var + bn.eps)
            k, b = w * scale[:, None], bn.bias - mean * scale
            kernel, bias = (k, b) if kernel is None else (kernel + k, bias + b)
            with torch.no_grad():  # running statistics as BatchNorm keeps them (unbiased variance)
                bn.num_batches_tracked.add_(1)
                bn.running_mean.lerp_(mean.detach(), bn.momentum)
                bn.running_var.lerp_(var.detach() * rows / max(rows - 1, 1), bn.momentum)
        return kernel, bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xp = x if self.pad is None else self.pad(x)
        if self.fused and self._fusable():
            return self._fused_forward(x)
        out = self.branches[0](xp)
        for branch in self.branches[1:]:
            out = out + branch(xp)
        if self.scale is not None:
            out = out + self.scale(self._scale_input(x))
        if self.identity is not None:
            out = out + self.identity(x)
        return out

    @torch.no_grad()
    def reparameterize(self) -> nn.Module:
        """One conv (preceded by its :class:`SamePad` when built with ``same_pad``)."""
        template = self.branches[0].conv
        kernel, bias = self.branches[0].fused_kernel_bias()
        for branch in self.branches[1:]:
            k, b = branch.fused_kernel_bias()
            kernel, bias = kernel + k, bias + b
        pad = self.kernel_size // 2
        if self.scale is not None:
            k, b = self.scale.fused_kernel_bias()
            kernel, bias = kernel + F.pad(k, [pad, pad, pad, pad]), bias + b
        if self.identity is not None:
            eye = torch.zeros_like(kernel)
            in_per_group = kernel.shape[1]
            for c in range(kernel.shape[0]):
                eye[c, c % in_per_group, pad, pad] = 1.0
            k, b = _fold_bn(eye, self.identity)
            kernel, bias = kernel + k, bias + b
        conv = _conv_like(template, kernel, bias)
        return conv if self.pad is None else nn.Sequential(self.pad, conv)


def fused_branches(model: nn.Module, enabled: bool = True) -> nn.Module:
    """Switch every :class:`RepConv` in ``model`` to the one-conv training forward (or back); returns ``model``."""
    for m in model.modules():
        if isinstance(m, RepConv):
            m.fused = enabled
    return model


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation with a hard-sigmoid gate (MobileNetV3 / GhostNet style)."""

    def __init__(self, chs: int, *, se_ratio: float = 0.25, divisor: int = 4) -> None:
        super().__init__()
        reduced = make_divisible(chs * se_ratio, divisor)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv_reduce = nn.Conv2d(chs, reduced, 1, bias=True)
        self.act = nn.ReLU(inplace=True)
        self.conv_expand = nn.Conv2d(reduced, chs, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.conv_expand(self.act(self.conv_reduce(self.pool(x))))
        # Hard-sigmoid written as relu6(s + 3) / 6, not nn.Hardsigmoid: ONNX's HardSigmoid becomes TFLite's
        # RELU_0_TO_1, which TFLite-Micro lacks; this form lowers to a conv with fused RELU6 and a MUL.
        return x * (F.relu6(s + 3.0) * (1.0 / 6.0))


class DFCGate(nn.Module):
    """GhostNetV2/V3 decoupled fully connected attention: a sigmoid gate from a cheap long-range branch.

    avg-pool 2×2 → 1×1 ConvBn → depthwise 1×5 ConvBn → depthwise 5×1 ConvBn → sigmoid → nearest upsample.
    The feature size is fixed at construction, so the upsample has a static output size (exporters and
    TFLite-Micro need one) and the 2×2 pool is left out when the map is already smaller than 2×2.
    """

    def __init__(self, in_chs: int, out_chs: int, *, feature_size: tuple[int, int]) -> None:
        super().__init__()
        h, w = feature_size
        self.feature_size = (h, w)
        self.pool = nn.AvgPool2d(2, 2) if h >= 2 and w >= 2 else nn.Identity()
        self.conv = ConvBn(in_chs, out_chs, 1)
        self.conv_h = ConvBn(out_chs, out_chs, (1, 5), groups=out_chs)
        self.conv_v = ConvBn(out_chs, out_chs, (5, 1), groups=out_chs)
        self.gate = nn.Sigmoid()
        pooled = (h // 2, w // 2) if isinstance(self.pool, nn.AvgPool2d) else (h, w)
        self.upsample = nn.Upsample(size=(h, w), mode="nearest") if pooled != (h, w) else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.conv_v(self.conv_h(self.conv(self.pool(x))))
        return self.upsample(self.gate(g))
