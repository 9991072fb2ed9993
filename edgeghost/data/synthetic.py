"""Tiny datasets written in the real on-disk formats, so tests exercise the real readers.

The images are learnable on purpose, also under the training augmentation: each class has its own coarse
(4×4 cells), left/right-symmetric brightness pattern plus pixel noise, which survives a 4-pixel shift and a
flip; a few training steps then move accuracy well above chance (tests can tell a working loop from a
broken one).
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np

from .datasets import CIFAR_LAYOUT


def _class_images(n: int, num_classes: int, shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n, dtype=np.int64) % num_classes
    rng.shuffle(labels)
    # One fixed template per class (same for every split) keeps train and test consistent.
    *lead, h, w = shape
    cells = np.random.default_rng(1234).uniform(30, 225, size=(num_classes, *lead, 4, 2))
    cells = np.concatenate([cells, cells[..., ::-1]], axis=-1)  # mirror: flip-invariant
    templates = cells.repeat(-(-h // 4), axis=-2)[..., :h, :].repeat(-(-w // 4), axis=-1)[..., :w]
    noise = rng.normal(0, 25, size=(n, *shape))
    return np.clip(templates[labels] + noise, 0, 255).astype(np.uint8), labels


def write_idx(path: str | Path, array: np.ndarray, *, compress: bool = False) -> Path:
    """Write a uint8 array as an IDX file (magic 0,0,0x08,ndim; big-endian int32 dims; raw bytes)."""
    path = Path(path)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    raw = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


def write_synthetic_fashion_mnist(
    root: str | Path, *, train: int = 200, test: int = 100, seed: int = 0, compress: bool = True
) -> Path:
    """Four Fashion-MNIST-style IDX files (28×28 grey, 10 classes) in ``root``; returns ``root``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if compress else ""
    for prefix, n, s in (("train", train, seed), ("t10k", test, seed + 1)):
        images, labels = _class_images(n, 10, (28, 28), s)
        write_idx(root / f"{prefix}-images-idx3-ubyte{suffix}", images, compress=compress)
        write_idx(root / f"{prefix}-labels-idx1-ubyte{suffix}", labels.astype(np.uint8), compress=compress)
    return root


def write_synthetic_cifar(
    root: str | Path, name: str = "cifar10", *, train: int = 100, test: int = 50, seed: int = 0
) -> Path:
    """CIFAR-10/100 python-pickle batches (``data`` N×3072 uint8 CHW, labels list) under
    ``root/<folder>/``; the train images are spread over the official number of files. Returns ``root``."""
    folder, train_files, test_files, key = CIFAR_LAYOUT[name]
    classes = 10 if name == "cifar10" else 100
    out = Path(root) / folder
    out.mkdir(parents=True, exist_ok=True)
    for files, n, s in ((train_files, train, seed), (test_files, test, seed + 1)):
        images, labels = _class_images(n, classes, (3, 32, 32), s)
        for i, chunk in enumerate(np.array_split(np.arange(n), len(files))):
            batch = {b"data": images[chunk].reshape(len(chunk), -1), key: labels[chunk].tolist()}
            with (out / files[i]).open("wb") as f:
                pickle.dump(batch, f, protocol=2)
    return Path(root)


def write_synthetic_folder(
    root: str | Path,
    *,
    classes: tuple[str, ...] = ("circle", "cross", "square"),
    train: int = 60,
    val: int = 0,
    size: int = 40,
    channels: int = 1,
    seed: int = 0,
    suffix: str = ".png",
) -> Path:
    """A class-folder image dataset (``root/train/<class>/*.png`` and, with ``val`` > 0, ``root/val/...``) of
    learnable ``size``×``size`` images written with PIL, as a user's camera folder would be. Returns ``root``."""
    from PIL import Image

    root = Path(root)
    shape = (size, size) if channels == 1 else (channels, size, size)
    for split, n, s in (("train", train, seed), ("val", val, seed + 1)):
        if n <= 0:
            continue
        images, labels = _class_images(n, len(classes), shape, s)
        for i, (img, label) in enumerate(zip(images, labels)):
            folder = root / split / classes[label]
            folder.mkdir(parents=True, exist_ok=True)
            pixels = img if channels == 1 else np.moveaxis(img, 0, -1)
            Image.fromarray(pixels).save(folder / f"{i:05d}{suffix}")
    return root
