"""Session-wide fixtures shared by several test files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tflm_root() -> Path:
    """The TFLite-Micro trees (reference and CMSIS-NN), found by the library's one rule. Without them the
    firmware tests are skipped with the reason printed, and fail under ``$CI``."""
    from edgeghost.errors import EdgeGhostError
    from edgeghost.export import firmware as fw

    try:
        return fw.find_tflm_root(None, kernels="cmsis-nn")
    except EdgeGhostError as err:
        if os.environ.get("CI"):
            pytest.fail(f"CI has no TFLite-Micro tree: {err}")
        pytest.skip(f"firmware tests skipped: {err}")


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    """The shared TFLM object cache (``$EDGEGHOST_TFLM_CACHE`` or ``~/.cache/edgeghost/tflm-obj``), as users get
    it: objects are keyed by tree, compiler and flags, so a warm cache is correct and saves most of the build."""
    from edgeghost.export import firmware as fw

    return fw.default_cache_dir()


@pytest.fixture(scope="session")
def shared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Synthetic data, an (untrained, epoch 0) GN-S w0.25 checkpoint and its int8 export, made once per
    session: {data, checkpoint, exports_dir, export}. Used by the bench and Raspberry Pi tests."""
    base = tmp_path_factory.getbasetemp() / "edgeghost-bench-shared"
    paths = {"data": base / "data", "checkpoint": base / "ckpt" / "gns.pt", "exports_dir": base / "exports",
             "export": base / "exports" / "ckpt-gns"}
    if (paths["export"] / "manifest.json").is_file():
        return paths
    import torch

    from edgeghost.data import get_spec, load_split
    from edgeghost.data.synthetic import write_synthetic_fashion_mnist
    from edgeghost.export.pipeline import export_model
    from edgeghost.models import create_model, estimate_bn_statistics
    from edgeghost.training.checkpoint import atomic_torch_save, make_checkpoint

    write_synthetic_fashion_mnist(paths["data"], train=64, test=64)
    spec = get_spec("fashion_mnist")
    torch.manual_seed(0)
    model = create_model("ghostnetv3_small", width=0.25, num_classes=10)
    # BatchNorm statistics of real images, as in any trained checkpoint (the init's 0/1 let an untrained net's
    # activations explode, which no export check passes); the export pipeline's own helper does it.
    estimate_bn_statistics(model, load_split("fashion_mnist", "train", paths["data"]).images, mean=spec.mean,
                       std=spec.std)
    ckpt = make_checkpoint(model, model_name="ghostnetv3_small", dataset=spec.name, classes=spec.classes,
                           mean=spec.mean, std=spec.std)
    atomic_torch_save(ckpt, paths["checkpoint"])
    export_model(checkpoint=paths["checkpoint"], out=paths["export"], int8=True, data_dir=paths["data"],
                 calib_samples=32, eval_samples=16, verbose=False)
    return paths
