"""Your own images: the standard class-folder layout (torchvision's ``ImageFolder``), read with PIL.

    DIR/train/<class>/*.png|jpg|jpeg|bmp
    DIR/val/<class>/...        (or DIR/test/<class>/...; without either, a seeded stratified split of train/)

Class names are the folder names (sorted); they travel in the checkpoint and become the firmware's labels.
Images stay on disk: a :class:`FolderImages` decodes on access (DataLoader workers in training), so a folder
never has to fit in RAM. Every problem with the folder — missing, empty, a class without images, a file PIL
cannot read, different classes in train/ and val/ — is one :class:`EdgeGhostError` naming the path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EdgeGhostError
from .preprocess import Preprocess, pil_to_array, resize_pil

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
EVAL_FOLDERS = ("val", "test")


@dataclass(frozen=True)
class FolderScan:
    classes: tuple[str, ...]
    files: tuple[Path, ...]
    labels: np.ndarray
    skipped: int = 0


def _check_readable(path: Path) -> bool:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.verify()  # header + structure; the pixels are decoded when used
        return True
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
        return False


def scan_class_folder(root: Path, *, skip_corrupt: bool = False, check: bool = True) -> FolderScan:
    """Classes and image files under ``root/<class>/``; each file's header is checked with PIL."""
    if not root.is_dir():
        raise EdgeGhostError(f"image folder {root} does not exist")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise EdgeGhostError(f"{root} has no class folders (expected {root}/<class>/*.png|jpg|bmp)")
    files: list[Path] = []
    labels: list[int] = []
    skipped = 0
    for label, d in enumerate(class_dirs):
        found = sorted(p for p in d.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise EdgeGhostError(f"class folder {d} has no images ({', '.join(IMAGE_SUFFIXES)})")
        for path in found:
            if check and not _check_readable(path):
                if not skip_corrupt:
                    raise EdgeGhostError(f"cannot read image {path} (corrupt or not an image; --skip-corrupt skips such files)")
                skipped += 1
                continue
            files.append(path)
            labels.append(label)
        if not any(lbl == label for lbl in labels):
            raise EdgeGhostError(f"class folder {d} has no readable images")
    return FolderScan(tuple(p.name for p in class_dirs), tuple(files), np.asarray(labels, np.int64), skipped)


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val): per class, a seeded shuffle and ``round(n·val_fraction)`` images (≥ 1 when the
    class has ≥ 2) for validation. Deterministic for (labels, val_fraction, seed)."""
    if not 0 < val_fraction < 1:
        raise EdgeGhostError(f"--val-fraction must be between 0 and 1, got {val_fraction}")
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        k = int(round(len(idx) * val_fraction))
        k = min(max(k, 1 if len(idx) >= 2 else 0), len(idx) - 1)
        val.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


class FolderImages:
    """A lazy uint8 NHWC "array" of image files: ``len``, ``shape``, indexing by int (one HWC image), slice or
    index array (a stacked NHWC ndarray), and ``view(indices)`` for a lazy subset."""

    dtype = np.uint8
    ndim = 4

    def __init__(self, files: tuple[Path, ...] | list[Path], pp: Preprocess) -> None:
        self.files = tuple(files)
        self.pp = pp

    def __len__(self) -> int:
        return len(self.files)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.files), *self.pp.hwc)

    def load(self, i: int) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        path = self.files[i]
        try:
            with Image.open(path) as img:
                img.load()
                return pil_to_array(resize_pil(img.convert("L" if self.pp.in_chans == 1 else "RGB"), self.pp),
                                    self.pp.in_chans)
        except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
            raise EdgeGhostError(f"cannot decode image {path}: {err}") from None

    def view(self, index: Any) -> "FolderImages":
        idx = np.arange(len(self.files))[index]
        return FolderImages([self.files[int(i)] for i in np.atleast_1d(idx)], self.pp)

    def __getitem__(self, index: Any) -> np.ndarray:
        if isinstance(index, (int, np.integer)):
            return self.load(int(index))
        idx = np.atleast_1d(np.arange(len(self.files))[index])
        out = np.empty((len(idx), *self.pp.hwc), np.uint8)
        for j, i in enumerate(idx):
            out[j] = self.load(int(i))
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        arr = self[:]
        return arr.astype(dtype) if dtype is not None else arr


def open_folder(
    root: str | Path, *, val_fraction: float = 0.1, seed: int = 0, skip_corrupt: bool = False
) -> tuple[tuple[str, ...], tuple[tuple[Path, ...], np.ndarray], tuple[tuple[Path, ...], np.ndarray], str]:
    """(classes, (train files, labels), (eval files, labels), where the eval split came from)."""
    root = Path(root)
    if not root.is_dir():
        raise EdgeGhostError(f"data folder {root} does not exist (expected {root}/train/<class>/*.png|jpg|bmp)")
    train_dir = root / "train"
    if not train_dir.is_dir():
        raise EdgeGhostError(f"{root} has no train/ folder (expected {root}/train/<class>/*.png|jpg|bmp)")
    train = scan_class_folder(train_dir, skip_corrupt=skip_corrupt)
    eval_dir = next((root / name for name in EVAL_FOLDERS if (root / name).is_dir()), None)
    if eval_dir is not None:
        ev = scan_class_folder(eval_dir, skip_corrupt=skip_corrupt)
        if ev.classes != train.classes:
            only_train = sorted(set(train.classes) - set(ev.classes))
            only_eval = sorted(set(ev.classes) - set(train.classes))
            raise EdgeGhostError(
                f"{train_dir} and {eval_dir} have different classes (only in train/: {only_train or '-'}; "
                f"only in {eval_dir.name}/: {only_eval or '-'})"
            )
        return (train.classes, (train.files, train.labels), (ev.files, ev.labels), f"{eval_dir.name}/")
    tr, va = stratified_split(train.labels, val_fraction, seed)
    files = np.asarray(train.files, dtype=object)
    return (
        train.classes,
        (tuple(files[tr]), train.labels[tr]),
        (tuple(files[va]), train.labels[va]),
        f"stratified {val_fraction:g} of train/ (seed {seed})",
    )
