"""Checkpoints: one self-describing file per model state, written atomically.

A checkpoint holds everything a later stage needs to rebuild the model and its preprocessing without the
command line that trained it: model name, width, num_classes, in_chans, dataset with classes and
normalization, its preprocessing (``preprocess``: input size, channels, resize rule, mean/std — see
:mod:`edgeghost.data.preprocess`), plus the training state (epoch, optimizer/scheduler/scaler/RNG) and metrics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import __version__
from ..data.preprocess import Preprocess
from ..errors import EdgeGhostError
from ..fileio import atomic_path

FORMAT = "edgeghost-checkpoint-v1"
REQUIRED_KEYS = ("format", "model", "width", "num_classes", "in_chans", "dataset", "mean", "std", "state_dict")
RANGE_SUFFIXES = (".qat_lo", ".qat_hi")  # a QAT checkpoint's int8 ranges, stored beside the deploy weights


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` through :func:`edgeghost.fileio.atomic_path`: a crash never leaves half a file."""
    with atomic_path(path, suffix=".tmp") as tmp:
        torch.save(obj, tmp)
    return Path(path)


def build_model(name: str, *, width: float, num_classes: int, preprocess: Preprocess) -> nn.Module:
    """A registered model (train form) built for ``preprocess``'s input: ``in_chans`` always, ``img_size`` for
    models whose layers depend on it (GhostNet's DFC gates upsample to static sizes); size-agnostic models
    (global pooling only, e.g. ResNet-8) take any size."""
    import inspect

    from ..models import create_model
    from ..models.registry import _MODELS

    params = inspect.signature(_MODELS[name]).parameters.values() if name in _MODELS else ()
    takes_size = any(p.name == "img_size" or p.kind is p.VAR_KEYWORD for p in params)
    kwargs = {"img_size": preprocess.img_size} if takes_size else {}
    return create_model(name, width=width, num_classes=num_classes, in_chans=preprocess.in_chans, **kwargs)


def make_checkpoint(
    model: nn.Module,
    *,
    model_name: str,
    dataset: str,
    classes: list[str] | tuple[str, ...],
    mean: tuple[float, ...],
    std: tuple[float, ...],
    epoch: int = 0,
    metrics: dict[str, Any] | None = None,
    preprocess: Preprocess | None = None,
    **state: Any,
) -> dict[str, Any]:
    """Checkpoint dict for ``model`` (train form); extra keyword ``state`` (optimizer, scheduler, rng, args,
    ...) is stored as given. ``preprocess`` (input size, channels, resize rule, mean/std) defaults to the
    model's 32-px input with ``mean``/``std``."""
    module = getattr(model, "module", model)  # unwrap DistributedDataParallel
    in_chans = int(getattr(module, "in_chans", 3))
    if preprocess is None:
        preprocess = Preprocess(int(getattr(module, "img_size", 32)), in_chans,
                                "pad" if dataset == "fashion_mnist" and getattr(module, "img_size", 32) == 32 else "none",
                                tuple(mean), tuple(std))
    return {
        "format": FORMAT,
        "edgeghost_version": __version__,
        "model": model_name,
        "width": float(getattr(module, "width", 1.0)),
        "num_classes": int(getattr(module, "num_classes", len(classes))),
        "in_chans": int(getattr(module, "in_chans", 3)),
        "dataset": dataset,
        "classes": list(classes),
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "preprocess": preprocess.to_dict(),
        "epoch": int(epoch),
        "metrics": dict(metrics or {}),
        "state_dict": {k: v.detach().cpu() for k, v in module.state_dict().items()},
        **state,
    }


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and validate a checkpoint; any problem is one :class:`EdgeGhostError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise EdgeGhostError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises many types for a damaged file
        raise EdgeGhostError(f"checkpoint {path} is corrupt or not a torch file ({type(err).__name__}: {err})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise EdgeGhostError(f"{path} is not an edgeghost checkpoint (format {FORMAT} expected)")
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise EdgeGhostError(f"checkpoint {path} lacks {', '.join(missing)}")
    ckpt["path"] = str(path)
    return ckpt


def deploy_state_dict(state_dict: dict[str, Any]) -> dict[str, Any]:
    """The plain deploy-form state dict inside a QAT checkpoint's (its int8 ranges dropped)."""
    return {k: v for k, v in state_dict.items() if not k.endswith(RANGE_SUFFIXES)}


def model_from_checkpoint(ckpt: dict[str, Any] | str | Path, *, width: float | None = None) -> nn.Module:
    """Build the checkpoint's model (train form, eval mode) and load its weights.

    ``width``, when given, must match the checkpoint's: a mismatch is an error, not a silent rebuild.
    """
    if not isinstance(ckpt, dict):
        ckpt = load_checkpoint(ckpt)
    where = ckpt.get("path", "checkpoint")
    if width is not None and abs(float(width) - float(ckpt["width"])) > 1e-9:
        raise EdgeGhostError(f"{where} holds {ckpt['model']} at width {ckpt['width']:g}, not width {width:g}")
    model = build_model(ckpt["model"], width=ckpt["width"], num_classes=ckpt["num_classes"],
                        preprocess=Preprocess.from_checkpoint(ckpt))
    state = ckpt["state_dict"]
    if ckpt.get("form", "train") == "deploy":  # a QAT checkpoint: fused deploy-form weights + int8 ranges
        from ..models import reparameterize

        model, state = reparameterize(model), deploy_state_dict(state)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise EdgeGhostError(f"{where} does not fit {ckpt['model']} w{ckpt['width']:g}: {first}") from None
    return model.eval()
