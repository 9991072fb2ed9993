"""Runtimes: one small interface over every backend (``edgeghost.runtime``).

``load_runner(path)`` opens a PyTorch checkpoint (train or deploy form), an ONNX model (onnxruntime), a
TFLite model (LiteRT with XNNPACK, or its reference kernels) or an int8 TFLite model in TFLite-Micro, and
returns a :class:`Runner`: ``.info`` says what it is, ``.predict(uint8 NHWC images)`` returns float32 logits
(layout and int8 (de)quantization are done from the model's own parameters), ``.run_raw(x)`` runs the
model's own input. ``measure_latency`` is the one latency loop of every device; ``read_tflite`` the one
``.tflite`` reader.

Layer: this package imports only the models and the checkpoint format below it (for torch runners), never
``edgeghost.export`` or an application; ``core.py`` imports nothing from edgeghost at all (it ships to devices).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import EdgeGhostError
from .core import LatencyStats, Runner, RunnerInfo, dequantize, measure_latency, quantize
from .tflite_file import TensorFacts, TFLiteFacts, read_tflite

BACKENDS = ("torch", "onnxruntime", "litert", "tflm")

__all__ = [
    "BACKENDS",
    "LatencyStats",
    "Runner",
    "RunnerInfo",
    "TFLiteFacts",
    "TensorFacts",
    "dequantize",
    "load_runner",
    "measure_latency",
    "quantize",
    "read_tflite",
]


def load_runner(
    path: str | Path,
    *,
    threads: int = 1,
    reference_kernels: bool = False,
    backend: str | None = None,
    form: str = "train",
    arena_size: int | None = None,
) -> Runner:
    """Open ``path`` with the backend its suffix implies (``.pt``/``.pth`` torch, ``.onnx`` onnxruntime,
    ``.tflite`` LiteRT); ``backend="tflm"`` runs a ``.tflite`` in TFLite-Micro instead.

    ``threads``: CPU threads (torch, onnxruntime, LiteRT). ``reference_kernels``: LiteRT's BUILTIN_REF op
    resolver instead of XNNPACK (the kernels TFLite-Micro's are ported from; see ``edgeghost bench --device tflm``
    for how far apart they are). ``form``: ``train`` or ``deploy``
    (reparameterized) for checkpoints. ``arena_size``: TFLite-Micro arena in bytes (default: measured minimum).
    """
    path = Path(path)
    if not path.is_file():
        raise EdgeGhostError(f"model file {path} does not exist")
    if threads < 1:
        raise EdgeGhostError(f"threads must be >= 1, got {threads}")
    implied = {".pt": "torch", ".pth": "torch", ".onnx": "onnxruntime", ".tflite": "litert"}.get(path.suffix)
    if implied is None:
        raise EdgeGhostError(f"{path}: unknown model type {path.suffix!r} (.pt, .pth, .onnx or .tflite)")
    backend = backend or implied
    if backend not in BACKENDS:
        raise EdgeGhostError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    if backend != implied and not (backend == "tflm" and implied == "litert"):
        raise EdgeGhostError(f"backend {backend} cannot open {path.suffix} files")
    if backend == "torch":
        from .torch_runner import TorchRunner

        return TorchRunner(path, threads=threads, form=form)
    if backend == "tflm":
        from .tflm import TFLMRunner

        return TFLMRunner(path, arena_size=arena_size)
    from .core import open_model

    return open_model(path, threads=threads, reference_kernels=reference_kernels)
