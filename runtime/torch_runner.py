"""A PyTorch checkpoint as a runner: train form, or deploy form through ``edgeghost.models.reparameterize``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import EdgeGhostError
from .remote_runner import Runner, RunnerInfo

FORMS = ("train", "deploy")


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
        model = model_from_checkpoint(self.checkpoint)
        self.model = reparameterize(model) if form == "deploy" else model
        self._threads = threads
        size = getattr(self.model, "img_size", 32)
        chans = int(self.checkpoint["in_chans"])
        self._mean = np.asarray(self.checkpoint["mean"], np.float32).reshape(1, -1, 1, 1)
        self._std = np.asarray(self.checkpoint["std"], np.float32).reshape(1, -1, 1, 1)
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
            num_classes=int(self.checkpoint["num_classes"]),
            threads=threads,
            kernels=f"torch {torch.__version__}",
            extra={"model": self.checkpoint["model"], "width": self.checkpoint["width"],
                   "dataset": self.checkpoint["dataset"], "form": form},
        )

    def prepare(self, images: np.ndarray) -> np.ndarray:
        x = super().prepare(images)  # float32 NCHW pixels 0..255
        return np.ascontiguousarray((x / np.float32(255.0) - self._mean) / self._std, dtype=np.float32)

    def run_raw(self, x: np.ndarray) -> np.ndarray:
        import torch

        torch.set_num_threads(self._threads)
        with torch.inference_mode():
            return self.model(torch.from_numpy(np.ascontiguousarray(x))).numpy()
