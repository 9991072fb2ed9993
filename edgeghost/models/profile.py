"""Model facts for ``edgeghost info`` and the benchmark tables: parameters, MACs, layer count."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..errors import EdgeGhostError
from .reparam import reparameterize


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, int]:
    """(multiply-accumulates, number of conv/linear layers) of one forward pass at ``input_shape``.

    Counts conv and linear layers only, the convention of MCU model zoos; element-wise ops (SE multiply,
    gates, adds) are a few percent on these nets and differ by runtime anyway.
    """
    macs, layers = 0, 0

    def hook(module: nn.Module, _inp, out: torch.Tensor) -> None:
        nonlocal macs, layers
        layers += 1
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            macs += out.numel() * (module.in_channels // module.groups) * kh * kw
        else:
            macs += out.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    model.eval()
    try:
        model(torch.zeros(input_shape))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return macs, layers


@dataclass(frozen=True)
class ModelInfo:
    model: str
    width: float
    num_classes: int
    input_shape: list[int]
    params_train: int
    params_deploy: int
    macs: int
    layers: int
    deploy_form: bool  # False for teachers, which have no fused form (deploy counts are then train-form)

    def to_dict(self) -> dict:
        return asdict(self)


def model_info(model: nn.Module, name: str) -> ModelInfo:
    """Facts about a train-form model: parameters in both forms, MACs and layers of its deploy form."""
    shape = (1, getattr(model, "in_chans", 3), getattr(model, "img_size", 32), getattr(model, "img_size", 32))
    try:
        deployed, deploy_form = reparameterize(model), True
    except EdgeGhostError:
        deployed, deploy_form = model, False
    macs, layers = count_macs(deployed, shape)
    return ModelInfo(
        model=name,
        width=float(getattr(model, "width", 1.0)),
        num_classes=int(getattr(model, "num_classes", 0)),
        input_shape=list(shape),
        params_train=count_params(model),
        params_deploy=count_params(deployed),
        macs=macs,
        layers=layers,
        deploy_form=deploy_form,
    )
