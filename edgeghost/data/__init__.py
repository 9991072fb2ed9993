"""Datasets (real on-disk formats) and preprocessing shared by training, export, benchmarks and firmware."""

from .datasets import SPECS, DatasetSpec, Split, get_spec, load_split, read_cifar_batch, read_idx

__all__ = ["SPECS", "DatasetSpec", "Split", "get_spec", "load_split", "read_cifar_batch", "read_idx"]
