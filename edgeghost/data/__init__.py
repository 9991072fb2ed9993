"""Datasets (real on-disk formats) and preprocessing shared by training, export, benchmarks and firmware.

``load_split`` is the one reader entry point (numpy only). The torch side (Dataset, loaders, augmentation,
normalization) is in :mod:`edgeghost.data.loader`; writers of tiny datasets in the real formats for tests
are in :mod:`edgeghost.data.synthetic`.
"""

from .datasets import SPECS, DatasetSpec, Split, get_spec, load_split, read_cifar_batch, read_idx

__all__ = ["SPECS", "DatasetSpec", "Split", "get_spec", "load_split", "read_cifar_batch", "read_idx"]
