"""Datasets (real on-disk formats, image folders) and the preprocessing shared by training, export, benchmarks
and firmware.

``open_dataset`` / ``load_split`` / ``split_for_checkpoint`` are the one reader entry point (numpy + PIL). The
torch side (Dataset, loaders, augmentation, normalization) is in :mod:`edgeghost.data.loader`; writers of tiny
datasets in the real formats for tests are in :mod:`edgeghost.data.synthetic`.
"""

from .datasets import (
    DATASETS, FOLDER, SPECS, DatasetSpec, Split, default_preprocess, get_spec, load_split, open_dataset,
    read_cifar_batch, read_idx, split_for_checkpoint, split_for_export,
)
from .preprocess import Preprocess

__all__ = [
    "DATASETS", "FOLDER", "SPECS", "DatasetSpec", "Preprocess", "Split", "default_preprocess", "get_spec",
    "load_split", "open_dataset", "read_cifar_batch", "read_idx", "split_for_checkpoint", "split_for_export",
]
