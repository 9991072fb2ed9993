"""The one deploy conversion: ``reparameterize(model) -> model``."""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..errors import EdgeGhostError


def _fuse_children(module: nn.Module) -> None:
    for name, child in module.named_children():
        fuse = getattr(child, "reparameterize", None)
        if callable(fuse):
            setattr(module, name, fuse())
        else:
            _fuse_children(child)


@torch.no_grad()
def reparameterize(model: nn.Module) -> nn.Module:
    """Return the deploy form of ``model`` (the input is left untouched).

    Every multi-branch conv block becomes one conv and every BatchNorm is folded into the conv before it,
    using the eval-mode running statistics; afterwards the graph holds only plain conv, depthwise conv,
    activations, SE, pooling and linear layers. The result is in eval mode and is marked ``deployed``.
    """
    deployed = copy.deepcopy(model).eval()
    _fuse_children(deployed)
    leftover = [n for n, m in deployed.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if leftover:
        name = getattr(model, "model_name", type(model).__name__)
        raise EdgeGhostError(
            f"{name} has no deploy form: BatchNorm layers {', '.join(leftover[:3])}... do not follow a fusable "
            "edgeghost block (teacher networks are for distillation only)"
        )
    deployed.deployed = True  # type: ignore[assignment]
    return deployed


@torch.no_grad()
def reparameterization_error(model: nn.Module, x: torch.Tensor) -> float:
    """max|Δ|/max|y| between ``model`` and its deploy form on ``x``, both run entirely in float64.

    This checks the fusion algebra itself (an exact fusion gives ~1e-13); a float32 comparison also measures
    rounding, which an untrained network with tiny logits amplifies past 1e-5 although nothing is wrong.
    """
    reference = copy.deepcopy(model).double().eval()
    y = reference(x.double())
    y_deploy = reparameterize(reference)(x.double())
    return ((y_deploy - y).abs().max() / y.abs().max().clamp_min(1e-300)).item()


def is_deployed(model: nn.Module) -> bool:
    return bool(getattr(model, "deployed", False))
