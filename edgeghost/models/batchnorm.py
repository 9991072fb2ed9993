"""BatchNorm statistics for untrained models."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn


@torch.no_grad()
def estimate_bn_statistics(
    model: nn.Module, images: np.ndarray, *, mean: Sequence[float], std: Sequence[float], batch_size: int = 64
) -> nn.Module:
    """Set every BatchNorm's running statistics to those of ``images`` (uint8 NHWC, normalized with
    ``mean``/``std``); weights are not touched. Returns ``model`` in eval mode.

    At initialization every BatchNorm holds mean 0 / variance 1, so an untrained net's activations grow block
    after block (logits ~1e5 at w0.5): float32 rounding alone then moves outputs by ~1e-3 relative and int8
    ranges look nothing like a trained model's. Measured statistics keep activations at the scale of a trained
    network, which makes untrained exports and benchmarks meaningful for size, latency and arena.
    """
    for bn in model.modules():
        if isinstance(bn, nn.modules.batchnorm._BatchNorm):
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average over all batches
    from ..data.loader import normalize

    model.train()
    for start in range(0, len(images), batch_size):
        model(normalize(torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size])), mean=mean, std=std))
    for bn in model.modules():
        if isinstance(bn, nn.modules.batchnorm._BatchNorm):
            bn.momentum = 0.1  # back to torch's default for any later training
    return model.eval()
