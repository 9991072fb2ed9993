"""Model registry: ``create_model(name, *, width=..., num_classes=..., in_chans=...)``."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ..errors import EdgeGhostError

WIDTH_RANGE = (0.25, 4.0)

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register a builder under its function name."""
    _MODELS[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    return sorted(_MODELS)


def check_width(width: float) -> float:
    lo, hi = WIDTH_RANGE
    if not lo <= float(width) <= hi:
        raise EdgeGhostError(f"width {width} is out of range: edgeghost models build at widths {lo}–{hi}")
    return float(width)


def parse_model_spec(spec: str, role: str = "model") -> tuple[str, float]:
    """``NAME`` or ``NAME:WIDTH`` (width 1.0 when not given), as the command lines write a model."""
    name, _, width = spec.partition(":")
    try:
        return name, float(width) if width else 1.0
    except ValueError:
        raise EdgeGhostError(f"{role} {spec!r}: expected NAME or NAME:WIDTH (or a checkpoint path)") from None


def create_model(
    name: str, *, width: float = 1.0, num_classes: int = 10, in_chans: int = 3, **kwargs
) -> nn.Module:
    """Build a registered model in train form; raises :class:`EdgeGhostError` for an unknown name or bad width."""
    if name not in _MODELS:
        raise EdgeGhostError(f"unknown model {name!r}; choose one of: {', '.join(list_models())}")
    if int(num_classes) < 1:
        raise EdgeGhostError(f"num_classes must be >= 1, got {num_classes}")
    model = _MODELS[name](width=check_width(width), num_classes=int(num_classes), in_chans=int(in_chans), **kwargs)
    model.model_name = name  # type: ignore[assignment]
    return model
