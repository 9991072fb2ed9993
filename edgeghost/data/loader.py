"""Torch side of the data: a Dataset over a :class:`Split`, the loaders, augmentation and normalization.

Augmentation runs on whole uint8 batches on the training device (random 32×32 crop from the 4-pixel
zero-padded image + horizontal flip, as in the paper) with a generator seeded from (seed, epoch, rank).
Data order and augmentation are therefore a pure function of the epoch, which is what makes
``--resume`` bit-identical to an uninterrupted run without replaying RNG streams.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler, SequentialSampler
from torch.utils.data._utils.collate import default_collate

from ..errors import EdgeGhostError
from .datasets import DatasetSpec, Split
from .folder import FolderImages


class SplitDataset(Dataset):
    """``(uint8 HWC image tensor, int64 label)`` pairs of a :class:`Split`.

    In-RAM splits are fetched a whole batch at a time (``__getitems__``: one index gather, no per-sample Python);
    image folders decode one file per item (in DataLoader workers when ``workers`` > 0).
    """

    def __init__(self, split: Split) -> None:
        self.lazy = isinstance(split.images, FolderImages)
        self.images = split.images if self.lazy else torch.from_numpy(np.ascontiguousarray(split.images))
        self.labels = torch.from_numpy(split.labels)
        self.spec = split.spec

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.lazy:
            return torch.from_numpy(self.images.load(int(index))), self.labels[index]
        return self.images[index], self.labels[index]

    def __getitems__(self, indices: list[int]) -> Any:
        if self.lazy:
            return [self[i] for i in indices]
        idx = torch.as_tensor(indices, dtype=torch.int64)
        return _Batch((self.images[idx], self.labels[idx]))


class _Batch(tuple):
    """A batch that is already collated (from ``SplitDataset.__getitems__``)."""


def _collate(batch: Any) -> Any:
    if isinstance(batch, _Batch):
        return tuple(batch)
    return default_collate(batch)


class _Loader(DataLoader):
    """A DataLoader whose worker errors surface as the original one-line :class:`EdgeGhostError` (a corrupt image
    found mid-epoch names the file instead of printing a worker traceback)."""

    def __iter__(self):  # type: ignore[override]
        it = super().__iter__()
        while True:
            try:
                yield next(it)
            except StopIteration:
                return
            except EdgeGhostError:
                raise
            except Exception as err:
                text = str(err)
                if "EdgeGhostError" in text:
                    last = next((ln for ln in reversed(text.strip().splitlines()) if ln.strip()), text)
                    raise EdgeGhostError(last.split("EdgeGhostError:", 1)[-1].strip()) from None
                raise


def default_workers(split: Split) -> int:
    """0 for in-RAM splits (augmentation runs on whole batches on the device); up to 4 decoding workers for
    image folders."""
    return min(4, os.cpu_count() or 1) if isinstance(split.images, FolderImages) else 0


def make_loader(
    split: Split,
    *,
    batch_size: int,
    train: bool,
    seed: int = 0,
    workers: int | None = None,
    distributed: bool = False,
    drop_last: bool = False,
) -> DataLoader:
    """Loader of uint8 NHWC batches. Training order is reshuffled per epoch by :func:`set_epoch`."""
    dataset = SplitDataset(split)
    workers = default_workers(split) if workers is None else workers
    if distributed:
        sampler = DistributedSampler(dataset, shuffle=train, seed=seed, drop_last=drop_last)
    elif train:
        sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
    else:
        sampler = SequentialSampler(dataset)
    return _Loader(
        dataset,
        collate_fn=_collate,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        drop_last=drop_last,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=workers > 0,
    )


def set_epoch(loader: DataLoader, *, epoch: int, seed: int) -> None:
    """Make the shuffle of ``epoch`` depend only on (seed, epoch), also after a resume."""
    sampler = loader.sampler
    if isinstance(sampler, DistributedSampler):
        sampler.set_epoch(epoch)
    elif isinstance(sampler, RandomSampler) and sampler.generator is not None:
        sampler.generator.manual_seed(seed * 100_003 + epoch)


def augment(images: torch.Tensor, *, generator: torch.Generator, pad: int = 4, hflip: bool = True) -> torch.Tensor:
    """Random crop (zero padding ``pad``) and horizontal flip of a uint8 NHWC batch, in one gather.

    ``generator`` must live on ``images.device``.
    """
    n, h, w, _ = images.shape
    padded = torch.nn.functional.pad(images, (0, 0, pad, pad, pad, pad))
    dev = images.device
    dy = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator, device=dev)
    dx = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator, device=dev)
    cols = torch.arange(w, device=dev).expand(n, w)
    if hflip:
        flip = torch.rand(n, 1, generator=generator, device=dev) < 0.5
        cols = torch.where(flip, cols.flip(1), cols)
    rows = torch.arange(h, device=dev) + dy
    cols = cols + dx
    batch = torch.arange(n, device=dev)[:, None, None]
    return padded[batch, rows[:, :, None], cols[:, None, :]]


def normalize(images: torch.Tensor, spec: DatasetSpec | None = None, *, mean=None, std=None) -> torch.Tensor:
    """uint8 NHWC batch → float32 NCHW ``(x/255 − mean)/std``; mean/std from ``spec`` unless given."""
    mean = torch.tensor(mean if mean is not None else spec.mean, device=images.device).view(1, -1, 1, 1)
    std = torch.tensor(std if std is not None else spec.std, device=images.device).view(1, -1, 1, 1)
    x = images.permute(0, 3, 1, 2).float().div_(255)
    return (x - mean) / std
