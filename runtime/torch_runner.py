"""A PyTorch checkpoint as a runner (train form, or deploy form through ``edgeghost.models.reparameterize``), and
the one way edgeghost runs a torch model on uint8 images: :func:`torch_logits`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import EdgeGhostError
from .core import Runner, RunnerInfo

FORMS = ("train", "deploy")
# Checkpoints written before ``ckpt["preprocess"]`` existed were all trained on 32×32 images.
LEGACY_IMG_SIZE = 32


def checkpoint_preprocess(ckpt: dict[str, Any], model: Any = None) -> dict[str, Any]:
    """``{"img_size", "in_chans", "mean", "std"}`` of a checkpoint: its ``preprocess`` entry, or for older
    checkpoints the model's own ``img_size`` (else 32), ``in_chans`` and the stored mean/std."""
    pre = dict(ckpt.get("preprocess") or {})
    pre.setdefault("img_size", int(getattr(model, "img_size", LEGACY_IMG_SIZE)))
    pre.setdefault("in_chans", int(ckpt["in_chans"]))
    pre.setdefault("mean", tuple(ckpt["mean"]))
    pre.setdefault("std", tuple(ckpt["std"]))
    return pre


def normalize_pixels(images: np.ndarray, mean: Sequence[float] | None, std: Sequence[float] | None) -> np.ndarray:
    """uint8 NHWC pixels → float32 NCHW ``(x / 255 − mean) / std`` (raw 0..255 floats without mean/std: the
    form of a model that normalizes inside, such as an export's)."""
    x = np.asarray(images).transpose(0, 3, 1, 2).astype(np.float32)
    if mean is None or std is None:
        return np.ascontiguousarray(x)
    m = np.asarray(mean, np.float32).reshape(1, -1, 1, 1)
    s = np.asarray(std, np.float32).reshape(1, -1, 1, 1)
    return np.ascontiguousarray((x / np.float32(255.0) - m) / s, dtype=np.float32)


def torch_logits(model: Any, images: np.ndarray, *, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None, batch_size: int = 250, threads: int | None = None) -> np.ndarray:
    """Float32 logits of a torch ``model`` (in eval mode) for uint8 NHWC ``images``, in batches; normalized with
    ``mean``/``std`` when given (train form), raw pixels otherwise (a model that normalizes inside)."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    outs = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            x = normalize_pixels(images[start : start + batch_size], mean, std)
            outs.append(model(torch.from_numpy(x)).float().numpy())
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


class TorchRunner(Runner):
    """The checkpoint's model on the CPU. Unlike exported artefacts it has no normalization inside, so
    ``prepare`` applies the checkpoint's ``(x / 255 − mean) / std`` and feeds float32 NCHW."""

    def __init__(self, path: str | Path, *, threads: int = 1, form: str = "train") -> None:
        import torch

        from ..models import reparameterize
        from ..training.checkpoint import load_checkpoint, model_from_checkpoint

        if form not in FORMS:
            raise EdgeGhostError(f"torch form must be one of {', '.join(FORMS)}, got {form!r}")
        path = Path(path)
        self.checkpoint = load_checkpoint(path)
        model = model_from_checkpoint(self.checkpoint).eval()
        self.model = reparameterize(model) if form == "deploy" else model
        self._threads = threads
        self.preprocess = checkpoint_preprocess(self.checkpoint, model)
        size, chans = int(self.preprocess["img_size"]), int(self.preprocess["in_chans"])
        num_classes = int(self.checkpoint["num_classes"])
        self.info = RunnerInfo(
            backend="torch",
            format="torch" if form == "train" else "torch_deploy",
            path=str(path),
            size_bytes=path.stat().st_size,
            input_shape=(1, chans, size, size),
            input_dtype="float32",
            layout="NCHW",
            input_quant=None,
            output_quant=None,
            num_classes=num_classes,
            threads=threads,
            kernels=f"torch {torch.__version__}",
            output_shape=(1, num_classes),
            extra={"model": self.checkpoint["model"], "width": self.checkpoint["width"],
                   "dataset": self.checkpoint["dataset"], "form": form},
        )

    def prepare(self, images: np.ndarray) -> np.ndarray:
        super().prepare(images)  # shape and dtype checks against the checkpoint's input
        return normalize_pixels(images, self.preprocess["mean"], self.preprocess["std"])

    def run_raw(self, x: np.ndarray) -> np.ndarray:
        import torch

        torch.set_num_threads(self._threads)
        with torch.inference_mode():
            return self.model(torch.from_numpy(np.ascontiguousarray(x))).numpy()

    def predict(self, images: np.ndarray) -> np.ndarray:
        self.prepare(images[:1])  # the same checks as every runner
        return torch_logits(self.model, images, mean=self.preprocess["mean"], std=self.preprocess["std"],
                            threads=self._threads)
