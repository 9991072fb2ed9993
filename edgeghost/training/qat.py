"""Quantization-aware fine-tuning that emulates the int8 TFLite model edgeghost's export chain writes.

The fake-quantized network is the *deploy form* (:func:`edgeghost.models.reparameterize`: plain convs, no
BatchNorm) with int8 rounding exactly where the full-integer TFLite graph has it. Read off a real
``model_int8.tflite`` of GN-S (``benchmarks/results/qat.md`` lists the op sequence):

- weights: per-channel symmetric int8 (``[-127, 127]``, scale ``max|w|/127``) on every conv and the classifier;
  conv + bias + ReLU/ReLU6 is one op, so an activation is quantized once, after the fused activation;
- activations: per-tensor asymmetric int8 at every op output: the input normalization (the graph's first op, a
  1×1 depthwise conv on ``q = pixel − 128``), each conv, ADD, MUL, MEAN and the logits;
- CONCATENATION shares one scale between both inputs and its output (the ghost module's primary and cheap
  convs are quantized on the concat's range), AVERAGE_POOL_2D, RESIZE_NEAREST_NEIGHBOR and PAD keep their
  input's scale, LOGISTIC has the fixed output scale 1/256 (zero-point −128);
- SE's hard-sigmoid ``relu6(s + 3) / 6`` is a conv with fused RELU6 then a MUL by the constant 1/6, then the MUL
  with the features; ResNet-8's residual ADD carries the fused ReLU.

Ranges: the converter calibrates the *float* model with min/max over its calibration images, so the fake-quant
ranges are exactly that: min/max of the float forward over calibration images (by default the 500 training
images the export itself picks), re-run every ``recalibrate_every`` training steps and whenever the model goes
from training to evaluation, so every evaluation and every checkpoint carries the ranges the converter will
choose for those weights. Rounding uses torch's fake-quantize kernels: straight-through gradients inside the
range, zero outside. Int32 bias rounding is not emulated: its error is ≤ s_in·s_w/2, orders of magnitude below
one output step.

Why own modules and not torch.ao: in torch 2.14 PT2E lives in ``torchao`` (not a dependency), FX tracing fails on
the deploy form (the ghost module's channel check is Python control flow), and eager-mode torch.ao needs the
model rewritten with stubs and ``FloatFunctional`` anyway — and none of them knows TFLite's boundaries (shared
concat scale, fixed LOGISTIC scale, hard-sigmoid split into RELU6-conv + MUL). The measured comparison is in
``benchmarks/results/qat.md``.

A QAT checkpoint is an ordinary edgeghost checkpoint with ``form: "deploy"`` and a ``qat`` entry; its
``state_dict`` is the deploy model's plus the ranges (keys ending in ``checkpoint.RANGE_SUFFIXES``), so
:func:`edgeghost.training.checkpoint.deploy_state_dict` gives the plain deploy weights and the unchanged export chain quantizes them.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import EdgeGhostError
from .checkpoint import RANGE_SUFFIXES

QMIN, QMAX = -128, 127
WEIGHT_QMAX = 127  # symmetric weights use [-127, 127], as TFLite's quantizer does
LOGISTIC_SCALE, LOGISTIC_ZERO_POINT = 1.0 / 256.0, -128  # TFLite's fixed int8 sigmoid output
CALIB_SAMPLES = 500  # the export's default calibration set size
RECALIBRATE_EVERY = 100  # training steps between range updates
QAT_FORMAT = "edgeghost-qat-v1"


# --- fake quantizers -------------------------------------------------------------------------------------

class ActQuant(nn.Module):
    """Per-tensor asymmetric int8 fake quantization with a min/max observer.

    While observing (calibration: a float forward) it records the running min/max and passes ``x`` through;
    otherwise it rounds ``x`` to TFLite's int8 grid for the recorded range (nudged to contain 0).
    ``fixed`` pins (scale, zero_point), as for TFLite's LOGISTIC output.
    """

    def __init__(self, *, fixed: tuple[float, int] | None = None) -> None:
        super().__init__()
        self.fixed = fixed
        self.observing = False
        self.register_buffer("qat_lo", torch.tensor(float("inf")))
        self.register_buffer("qat_hi", torch.tensor(float("-inf")))

    def reset(self) -> None:
        self.qat_lo.fill_(float("inf"))
        self.qat_hi.fill_(float("-inf"))

    def qparams(self) -> tuple[torch.Tensor, torch.Tensor]:
        """TFLite's (scale, zero_point) for the recorded range: the range is widened to contain 0, the scale is
        (max − min)/255 and the zero-point is rounded (so 0.0 is exactly representable)."""
        if self.fixed is not None:
            scale, zp = self.fixed
            return (torch.tensor(scale, device=self.qat_lo.device),
                    torch.tensor(zp, dtype=torch.int32, device=self.qat_lo.device))
        if not torch.isfinite(self.qat_lo):
            raise EdgeGhostError("a QAT range was never calibrated; build the model with prepare_qat()")
        lo, hi = self.qat_lo.clamp(max=0.0), self.qat_hi.clamp(min=0.0)
        scale = ((hi - lo) / (QMAX - QMIN)).clamp_min(1e-12)
        zp = (QMIN - lo / scale).round().clamp(QMIN, QMAX).to(torch.int32)
        return scale.float(), zp

    def observe(self, x: torch.Tensor) -> None:
        """Record ``x`` into the range while observing (no effect otherwise)."""
        if self.observing:
            self(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.observing:
            with torch.no_grad():
                self.qat_lo.copy_(torch.minimum(self.qat_lo, x.min().float()))
                self.qat_hi.copy_(torch.maximum(self.qat_hi, x.max().float()))
            return x
        return quantize_like(x, self)


def quantize_like(x: torch.Tensor, quant: ActQuant) -> torch.Tensor:
    """``x`` rounded to ``quant``'s int8 grid (straight-through gradient inside the range); ``x`` itself while
    ``quant`` observes. For ops whose output keeps the input's scale (AVERAGE_POOL_2D)."""
    if quant.observing:
        return x
    scale, zp = quant.qparams()
    return torch.fake_quantize_per_tensor_affine(x, scale, zp, QMIN, QMAX)


class WeightQuant(nn.Module):
    """Per-output-channel symmetric int8 fake quantization of a conv/linear weight (axis 0 in torch, the
    output-channel axis TFLite quantizes along for CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED)."""

    def __init__(self) -> None:
        super().__init__()
        self.enabled = True

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return w
        amax = w.detach().abs().flatten(1).amax(1)
        scale = torch.where(amax > 0, amax / WEIGHT_QMAX, torch.ones_like(amax)).float()
        zp = torch.zeros_like(amax, dtype=torch.int32)
        return torch.fake_quantize_per_channel_affine(w, scale, zp, 0, -WEIGHT_QMAX, WEIGHT_QMAX)


class QConv(nn.Module):
    """One TFLite CONV_2D / DEPTHWISE_CONV_2D: int8 weights, fused activation, int8 output. It holds the deploy
    conv's own ``weight``/``bias`` parameters, so state-dict keys stay those of the deploy form."""

    def __init__(self, conv: nn.Conv2d, act: str | None = None) -> None:
        super().__init__()
        self.weight, self.bias = conv.weight, conv.bias
        self.stride, self.padding, self.dilation, self.groups = conv.stride, conv.padding, conv.dilation, conv.groups
        self.act = act
        self.qat_w = WeightQuant()
        self.qat_out: nn.Module = ActQuant()

    def forward(self, x: torch.Tensor, *, add: float = 0.0) -> torch.Tensor:
        y = F.conv2d(x, self.qat_w(self.weight), self.bias, self.stride, self.padding, self.dilation, self.groups)
        if add:
            y = y + add  # a constant the converter folds into the bias (SE's "+ 3")
        if self.act == "relu":
            y = F.relu(y)
        elif self.act == "relu6":
            y = F.relu6(y)
        return self.qat_out(y)


def _qconv(module: nn.Module, act: str | None = None) -> nn.Module:
    """QConv for a deploy-form conv: a plain ``nn.Conv2d``, or ``Sequential(SamePad, Conv2d)`` (TensorFlow SAME
    padding; zero padding is exact in int8, the converter folds it into the conv)."""
    if isinstance(module, nn.Conv2d):
        return QConv(module, act)
    if isinstance(module, nn.Sequential) and len(module) == 2 and isinstance(module[1], nn.Conv2d):
        return nn.Sequential(module[0], QConv(module[1], act))
    raise EdgeGhostError(f"QAT expects a plain conv in the deploy form, found {type(module).__name__}")


def _out_quant(qconv: nn.Module) -> ActQuant:
    return (qconv[1] if isinstance(qconv, nn.Sequential) else qconv).qat_out


def _set_out_quant(qconv: nn.Module, quant: nn.Module) -> None:
    (qconv[1] if isinstance(qconv, nn.Sequential) else qconv).qat_out = quant


# --- deploy-form blocks with TFLite's quantization boundaries ----------------------------------------------
# Each wrapper keeps the deploy module's attribute names so that state_dict keys stay those of the deploy form.

class _Ref:
    """A non-registered reference to another module (the quantizer of a block's input)."""

    def __init__(self, module: ActQuant) -> None:
        self.module = module


class QDFCGate(nn.Module):
    def __init__(self, dfc: nn.Module, in_quant: ActQuant | None) -> None:
        super().__init__()
        self.pooled = isinstance(dfc.pool, nn.AvgPool2d)
        self.pool = dfc.pool
        self.conv = _qconv(dfc.conv)
        self.conv_h = _qconv(dfc.conv_h)
        self.conv_v = _qconv(dfc.conv_v)
        self.qat_gate = ActQuant(fixed=(LOGISTIC_SCALE, LOGISTIC_ZERO_POINT))
        self.upsample = dfc.upsample
        self._in = _Ref(in_quant)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pooled:  # AVERAGE_POOL_2D: the output stays on the input's grid
            x = quantize_like(self.pool(x), self._in.module)
        g = self.conv_v(self.conv_h(self.conv(x)))
        return self.upsample(self.qat_gate(torch.sigmoid(g)))  # RESIZE_NEAREST keeps the 1/256 grid


class QGhostModule(nn.Module):
    def __init__(self, gm: nn.Module, in_quant: ActQuant | None, *, split: bool = False) -> None:
        super().__init__()
        act = "relu" if isinstance(gm.primary_act, nn.ReLU) else None
        self.out_chs = gm.out_chs
        self.primary = _qconv(gm.primary, act)
        self.cheap = _qconv(gm.cheap, act)
        # CONCATENATION: one scale for both inputs and the output (the union of their ranges).
        self.qat_cat = ActQuant()
        _set_out_quant(self.primary, nn.Identity())
        _set_out_quant(self.cheap, nn.Identity())
        if split:
            self.qat_x1, self.qat_x2 = ActQuant(), ActQuant()
        self.dfc = QDFCGate(gm.dfc, in_quant) if gm.dfc is not None else None
        self.qat_mul = ActQuant() if gm.dfc is not None else None

    def halves(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Primary and cheap half, each on its own grid (for GN-S-MCU's downsampling blocks, which never
        concatenate them)."""
        x1 = self.qat_x1(self.primary(x))
        return x1, self.qat_x2(self.cheap(x1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.qat_cat(self.primary(x))
        x2 = self.qat_cat(self.cheap(x1))
        out = torch.cat([x1, x2], dim=1)[:, : self.out_chs]
        if self.dfc is not None:
            out = self.qat_mul(out * self.dfc(x))
        return out


class QSqueezeExcite(nn.Module):
    def __init__(self, se: nn.Module) -> None:
        super().__init__()
        self.qat_mean = ActQuant()
        self.conv_reduce = _qconv(se.conv_reduce, "relu")
        self.conv_expand = _qconv(se.conv_expand, "relu6")  # relu6(s + 3), "+3" folded into the bias
        self.qat_gate = ActQuant()  # MUL by the constant 1/6 (exact in int8: 127 · (1/6)/127)
        self.qat_out = ActQuant()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.qat_mean(x.mean((2, 3), keepdim=True))
        gate = self.qat_gate(self.conv_expand(self.conv_reduce(s), add=3.0) * (1.0 / 6.0))
        return self.qat_out(x * gate)


class QGhostBottleneck(nn.Module):
    """GhostBottleneck, and GN-S-MCU's variant (stride-2 depthwise per ghost half, concatenated after it)."""

    def __init__(self, block: nn.Module, in_quant: ActQuant) -> None:
        super().__init__()
        self.split_dw = isinstance(block.dw, nn.ModuleList)
        self.ghost1 = QGhostModule(block.ghost1, in_quant, split=self.split_dw)
        if self.split_dw:
            self.dw: nn.Module = nn.ModuleList(_qconv(m) for m in block.dw)
            self.qat_dw_cat = ActQuant()  # CONCATENATION of the two strided halves: one shared scale
            for m in self.dw:
                _set_out_quant(m, nn.Identity())
        else:
            self.dw = _qconv(block.dw) if not isinstance(block.dw, nn.Identity) else nn.Identity()
        self.se = QSqueezeExcite(block.se) if not isinstance(block.se, nn.Identity) else nn.Identity()
        self.ghost2 = QGhostModule(block.ghost2, None)  # no DFC gate in the projecting ghost module
        sc = block.shortcut
        if isinstance(sc, nn.Identity):
            self.shortcut: nn.Module = nn.Identity()
        elif isinstance(sc, nn.Sequential) and all(isinstance(m, nn.Conv2d) for m in sc):  # GN-S: dw k×k, 1×1
            self.shortcut = nn.Sequential(*(_qconv(m) for m in sc))
        else:  # GN-S-MCU: one strided 1×1 conv
            self.shortcut = _qconv(sc)
        self.qat_add = ActQuant()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.split_dw:
            x1, x2 = self.ghost1.halves(x)
            y = torch.cat([self.qat_dw_cat(self.dw[0](x1)), self.qat_dw_cat(self.dw[1](x2))], dim=1)
        else:
            y = self.dw(self.ghost1(x))
        y = self.ghost2(self.se(y))
        # Every input of the ADD keeps its own range (checked tensor by tensor against the converter's file:
        # tests/test_qat.py), so the ADD output is observed by its own quantizer only.
        return self.qat_add(y + self.shortcut(x))


class QResidualStack(nn.Module):
    def __init__(self, stack: nn.Module) -> None:
        super().__init__()
        self.conv1 = _qconv(stack.conv1, "relu")
        self.conv2 = _qconv(stack.conv2)
        self.shortcut = nn.Identity() if isinstance(stack.shortcut, nn.Identity) else _qconv(stack.shortcut)
        self.qat_add = ActQuant()  # ADD with the fused ReLU

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.qat_add(F.relu(self.conv2(self.conv1(x)) + self.shortcut(x)))


class QLinear(nn.Module):
    """FULLY_CONNECTED: per-channel int8 weights, int8 output (the logits)."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.weight, self.bias = linear.weight, linear.bias
        self.qat_w = WeightQuant()
        self.qat_out = ActQuant()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.qat_out(F.linear(x, self.qat_w(self.weight), self.bias))


# --- the whole network --------------------------------------------------------------------------------------

class QATNet(nn.Module):
    """The fake-quantized deploy form of a GhostNetV3 or ResNet-8. Takes the same normalized NCHW float input as
    the train form (the int8 graph's first op, the normalization, is emulated by quantizing that input)."""

    def __init__(self, deployed: nn.Module, *, mean: tuple[float, ...], std: tuple[float, ...],
                 calib_images: np.ndarray | None = None, recalibrate_every: int = RECALIBRATE_EVERY) -> None:
        from ..models.ghostnet import GhostBottleneck, GhostNetV3
        from ..models.resnet8 import ResidualStack, ResNet8

        super().__init__()
        for attr in ("width", "num_classes", "in_chans", "img_size", "model_name"):
            if hasattr(deployed, attr):
                setattr(self, attr, getattr(deployed, attr))
        self.deployed = True
        self.mean, self.std = tuple(float(v) for v in mean), tuple(float(v) for v in std)
        self.recalibrate_every = int(recalibrate_every)
        self.qat_in = ActQuant()  # output of the normalization DEPTHWISE_CONV_2D
        self.arch = "ghostnet" if isinstance(deployed, GhostNetV3) else "resnet8" if isinstance(deployed, ResNet8) else None
        if self.arch is None:
            raise EdgeGhostError(f"QAT supports GhostNetV3 variants and ResNet-8, not {type(deployed).__name__}")
        prev = self.qat_in
        if self.arch == "ghostnet":
            self.stem = nn.Sequential(_qconv(deployed.stem[0], "relu"))
            prev = _out_quant(self.stem[0])
            stages = []
            for stage in deployed.blocks:
                blocks = []
                for block in stage:
                    if isinstance(block, GhostBottleneck):
                        blocks.append(QGhostBottleneck(block, prev))
                        prev = blocks[-1].qat_add
                    elif isinstance(block, nn.Conv2d):  # the last stage: Sequential(conv, ReLU)
                        blocks.append(_qconv(block, "relu"))  # the ReLU is fused into the conv
                        prev = _out_quant(blocks[-1])
                stages.append(nn.Sequential(*blocks))
            self.blocks = nn.Sequential(*stages)
            self.qat_pool = ActQuant()
            # GN-S-MCU has no head conv (Identity): the classifier reads the pooled features.
            self.conv_head = nn.Identity() if isinstance(deployed.conv_head, nn.Identity) else _qconv(
                deployed.conv_head, "relu")
            self.dropout = copy.deepcopy(deployed.dropout)
        else:
            self.stem = nn.Sequential(_qconv(deployed.stem[0], "relu"))
            self.stacks = nn.Sequential(*(QResidualStack(s) for s in deployed.stacks if isinstance(s, ResidualStack)))
            self.qat_pool = ActQuant()
            self.dropout = nn.Identity()
        self.classifier = QLinear(deployed.classifier)
        self._calib = None if calib_images is None else torch.from_numpy(np.ascontiguousarray(calib_images))
        self._steps = 0
        self.calibrate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self._calib is not None and self.recalibrate_every > 0:
            if self._steps and self._steps % self.recalibrate_every == 0:
                self.calibrate()
            self._steps += 1
        x = self.stem(self.qat_in(x))
        if self.arch == "ghostnet":
            x = self.blocks(x)
            x = self.conv_head(self.qat_pool(x.mean((2, 3), keepdim=True)))
        else:
            x = self.qat_pool(self.stacks(x).mean((2, 3), keepdim=True))
        return self.classifier(self.dropout(torch.flatten(x, 1)))

    def train(self, mode: bool = True) -> QATNet:
        # Leaving training: refresh the ranges for the weights just trained, so evaluation and the checkpoint
        # saved after it use the ranges the converter will compute.
        if self.training and not mode and self._steps:
            super().train(mode)
            self.calibrate()
            return self
        return super().train(mode)

    @contextmanager
    def _float(self, *, int8_weights: bool = False) -> Iterator[list[ActQuant]]:
        """Fake quantization off: weights float (unless ``int8_weights``), every activation quantizer observing
        (and recording)."""
        weights = [] if int8_weights else [m for m in self.modules() if isinstance(m, WeightQuant)]
        acts = [m for m in self.modules() if isinstance(m, ActQuant)]
        for m in weights:
            m.enabled = False
        for m in acts:
            m.observing = True
        try:
            yield acts
        finally:
            for m in weights:
                m.enabled = True
            for m in acts:
                m.observing = False

    @contextmanager
    def float_mode(self, *, int8_weights: bool = False) -> Iterator[None]:
        """Run the plain float deploy model (no fake quantization; the ranges are left as they are), or with
        ``int8_weights`` its per-channel int8 weights on float activations (what int8 weights alone cost)."""
        saved = {k: v.clone() for k, v in self.state_dict().items() if k.endswith(RANGE_SUFFIXES)}
        try:
            with self._float(int8_weights=int8_weights):
                yield
        finally:
            self.load_state_dict(saved, strict=False)

    @torch.no_grad()
    def calibrate(self, images: np.ndarray | torch.Tensor | None = None, *, batch_size: int = 100) -> None:
        """Set every range to min/max of the float model's activations on ``images`` (uint8 NHWC; default: the
        calibration images given at construction), as the TFLite converter's calibration does."""
        from ..data.loader import normalize

        images = self._calib if images is None else torch.as_tensor(images)
        if images is None:
            return
        was_training = self.training
        super().train(False)
        device = self.qat_in.qat_lo.device
        with self._float() as acts:
            for a in acts:
                a.reset()
            for start in range(0, len(images), batch_size):
                raw = images[start : start + batch_size].to(device)
                self._forward_float(normalize(raw, mean=self.mean, std=self.std))
        super().train(was_training)

    def _forward_float(self, x: torch.Tensor) -> torch.Tensor:
        steps, self._steps = self._steps, 0
        calib, self._calib = self._calib, None
        try:
            return self.forward(x)
        finally:
            self._steps, self._calib = steps, calib

    def ranges(self) -> dict[str, list[float]]:
        """Every activation range (name → [min, max]), as stored in the state dict."""
        return {name: [float(m.qat_lo), float(m.qat_hi)] for name, m in self.named_modules()
                if isinstance(m, ActQuant) and m.fixed is None}


# --- public API ----------------------------------------------------------------------------------------------

def prepare_qat(
    model: nn.Module,
    calib_images_uint8_nhwc: np.ndarray | None,
    *,
    mean: tuple[float, ...] | list[float],
    std: tuple[float, ...] | list[float],
    recalibrate_every: int = RECALIBRATE_EVERY,
) -> QATNet:
    """The trainable fake-quant deploy form of ``model`` (train or deploy form; it is not modified).

    ``calib_images_uint8_nhwc``: training images (uint8 NHWC) whose float activations set the ranges now, every
    ``recalibrate_every`` training steps and on every switch to eval mode. ``None`` leaves the ranges
    uncalibrated (for loading stored ranges). The result takes normalized NCHW float input, like the train form.
    """
    from ..models import reparameterize
    from ..models.reparam import is_deployed

    if calib_images_uint8_nhwc is not None:
        calib = np.asarray(calib_images_uint8_nhwc)
        if calib.dtype != np.uint8 or calib.ndim != 4 or len(calib) == 0:
            raise EdgeGhostError(f"QAT calibration images must be a non-empty uint8 NHWC array, got "
                                 f"{calib.dtype} {calib.shape}")
    deployed = copy.deepcopy(model).eval() if is_deployed(model) else reparameterize(model)
    return QATNet(deployed, mean=tuple(mean), std=tuple(std), calib_images=calib_images_uint8_nhwc,
                  recalibrate_every=recalibrate_every).eval()


def qat_model_from_checkpoint(ckpt: dict[str, Any] | str | Path) -> QATNet:
    """The fake-quant model of a QAT checkpoint with its stored ranges (no recalibration), eval mode."""
    from .checkpoint import load_checkpoint, model_from_checkpoint

    if not isinstance(ckpt, dict):
        ckpt = load_checkpoint(ckpt)
    if ckpt.get("form") != "deploy" or "qat" not in ckpt:
        raise EdgeGhostError(f"{ckpt.get('path', 'checkpoint')} is not a QAT checkpoint")
    net = prepare_qat(model_from_checkpoint(ckpt), None, mean=ckpt["mean"], std=ckpt["std"])
    net.load_state_dict(ckpt["state_dict"])
    return net.eval()


def calibration_images(images: Any, n: int = CALIB_SAMPLES, *, seed: int = 1) -> np.ndarray:
    """``n`` training images chosen as the export chooses its calibration set with its default seed 0
    (``export.pipeline._pick(len, n, seed + 1)``), so QAT's ranges are the ones the converter will compute.
    ``images``: uint8 NHWC array (or a split's lazy image folder)."""
    return np.ascontiguousarray(images[np.random.default_rng(seed).permutation(len(images))[: min(n, len(images))]])


def qat_finetune(cfg: Any, from_checkpoint: str | Path | None = None, *, calib_samples: int = CALIB_SAMPLES,
                 recalibrate_every: int = RECALIBRATE_EVERY, loss_hook: Any = None,
                 extra_state: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fine-tune a trained checkpoint (``from_checkpoint``, default ``cfg.init_from``) with fake quantization
    through the one training loop, :func:`edgeghost.training.train.fit` with ``model=``. Model, width and
    dataset come from the checkpoint; the schedule from ``cfg``. The run's checkpoints are QAT checkpoints
    (``form: "deploy"``, ``qat``; ranges in the state dict; run in float32, AMP off) that the export chain turns
    into full-int8 TFLite with ``--calib-method minmax`` (the calibration QAT emulates). ``loss_hook`` and
    ``extra_state`` go to ``fit`` as given (distillation with QAT)."""
    from ..data import split_for_checkpoint
    from .checkpoint import load_checkpoint, model_from_checkpoint
    from .train import fit

    source = from_checkpoint or getattr(cfg, "init_from", None)
    if not source:
        raise EdgeGhostError("QAT fine-tunes a trained model: pass --from CKPT")
    ckpt = load_checkpoint(source)
    if ckpt.get("form") == "deploy":
        raise EdgeGhostError(f"{source} is already a deploy-form (QAT) checkpoint; start from a trained one")
    # AMP off: bf16/fp16 activations carry about as few bits as int8, so the emulation would not be int8's.
    changes = {"model": ckpt["model"], "width": float(ckpt["width"]), "dataset": ckpt["dataset"], "amp": "off"}
    changes.update({k: v for k, v in (("init_from", str(source)), ("qat", True)) if hasattr(cfg, k)})
    cfg = dataclasses.replace(cfg, **changes)
    train = split_for_checkpoint(ckpt, "train", cfg.data_dir, verify=cfg.verify, download=cfg.download)
    if len(train) == 0:
        raise EdgeGhostError(f"no calibration data: the {ckpt['dataset']} training split is empty")
    net = prepare_qat(model_from_checkpoint(ckpt), calibration_images(train.images, calib_samples),
                      mean=ckpt["mean"], std=ckpt["std"], recalibrate_every=recalibrate_every)
    qat = {"format": QAT_FORMAT, "from": str(source), "calib_samples": min(calib_samples, len(train)),
           "calib_method": "minmax", "recalibrate_every": recalibrate_every,
           "scheme": "int8: per-channel symmetric weights, per-tensor asymmetric activations at TFLite op outputs"}
    return fit(cfg, model=net, loss_hook=loss_hook, extra_state={**(extra_state or {}), "form": "deploy", "qat": qat})


def train(cfg: Any) -> dict[str, Any]:
    """What ``edgeghost train`` runs: :func:`edgeghost.training.train.fit`, or with ``cfg.qat`` the
    quantization-aware fine-tune of ``cfg.init_from`` (:func:`qat_finetune`, which trains through ``fit`` too)."""
    from .train import fit

    if cfg.qat:
        if not cfg.init_from and not cfg.resume:
            raise EdgeGhostError("--qat fine-tunes a trained model: pass --from CKPT")
        return qat_finetune(cfg, cfg.init_from)
    return fit(cfg)
