"""Datasets in their real on-disk formats, as uint8 NHWC arrays of 32×32×3 images.

- ``cifar10`` / ``cifar100``: the python-pickle batches (``cifar-10-batches-py/``, ``cifar-100-python/``).
- ``fashion_mnist``: IDX files (gzipped or not), e.g. Debian's ``dataset-fashion-mnist`` package. The 28×28
  grey images are zero-padded to 32×32 (2 px each side; the background is 0) and replicated to 3 channels
  so every model, export and firmware takes the same 32×32×3 input.

One reader per format; everything else (training, calibration, evaluation, benchmarks) goes through
:func:`load_split`.
"""

from __future__ import annotations

import gzip
import pickle
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import EdgeGhostError
from ..sysinfo import file_digest

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@dataclass(frozen=True)
class DatasetSpec:
    """What travels with a checkpoint so that export and firmware reproduce the preprocessing exactly."""

    name: str
    classes: tuple[str, ...]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    hflip: bool  # horizontal flip augmentation makes sense for the data

    @property
    def num_classes(self) -> int:
        return len(self.classes)


CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
FASHION_CLASSES = (
    "t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot",
)

SPECS: dict[str, DatasetSpec] = {
    "cifar10": DatasetSpec("cifar10", CIFAR10_CLASSES, (0.4914, 0.4822, 0.4465), (0.2471, 0.2435, 0.2616), True),
    "cifar100": DatasetSpec(
        "cifar100", tuple(f"class_{i}" for i in range(100)), (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), True
    ),
    # Statistics of the padded 32×32 training images; clothes are left/right symmetric enough to flip.
    "fashion_mnist": DatasetSpec("fashion_mnist", FASHION_CLASSES, (0.2190,) * 3, (0.3318,) * 3, True),
}


@dataclass
class Split:
    images: np.ndarray  # uint8, (N, 32, 32, 3), NHWC
    labels: np.ndarray  # int64, (N,)
    spec: DatasetSpec

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, n: int | None) -> "Split":
        """The first ``n`` samples (all when ``n`` is None)."""
        if n is None or n >= len(self):
            return self
        return Split(self.images[:n], self.labels[:n], self.spec)


def get_spec(name: str) -> DatasetSpec:
    if name not in SPECS:
        raise EdgeGhostError(f"unknown dataset {name!r}; choose one of: {', '.join(sorted(SPECS))}")
    return SPECS[name]


# --- IDX (MNIST-style) -----------------------------------------------------------------------------------

def _open_maybe_gz(path: Path) -> bytes:
    raw = path.read_bytes()
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (magic: 0, 0, dtype 0x08 = uint8, ndim; then big-endian int32 dims)."""
    try:
        data = _open_maybe_gz(path)
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise EdgeGhostError(f"cannot read IDX file {path}: {err}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise EdgeGhostError(f"{path} is not a uint8 IDX file (bad magic {data[:4].hex()})")
    ndim = data[3]
    dims = np.frombuffer(data, dtype=">i4", count=ndim, offset=4).astype(np.int64)
    expected = int(np.prod(dims))
    offset = 4 + 4 * ndim
    if len(data) - offset != expected:
        raise EdgeGhostError(f"{path} is truncated or corrupt: {len(data) - offset} bytes of data, {expected} expected")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims)


def _find(root: Path, stem: str) -> Path:
    for candidate in (root / stem, root / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise EdgeGhostError(f"missing file {root / stem}[.gz]")


def _load_fashion_mnist(split: str, data_dir: Path | None) -> tuple[np.ndarray, np.ndarray]:
    root = data_dir if data_dir is not None else DEBIAN_FASHION_MNIST
    if not root.is_dir():
        raise EdgeGhostError(
            f"Fashion-MNIST not found at {root}: install Debian's package (apt-get install dataset-fashion-mnist) "
            "or pass --data-dir with the four IDX files"
        )
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(_find(root, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_find(root, f"{prefix}-labels-idx1-ubyte"))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise EdgeGhostError(f"Fashion-MNIST files in {root} disagree: images {images.shape}, labels {labels.shape}")
    h, w = images.shape[1:]
    top, left = (32 - h) // 2, (32 - w) // 2
    padded = np.zeros((len(images), 32, 32), np.uint8)
    padded[:, top : top + h, left : left + w] = images
    return np.repeat(padded[..., None], 3, axis=-1), labels.astype(np.int64)


# --- CIFAR python pickles ----------------------------------------------------------------------------------

CIFAR_LAYOUT = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels"),
    "cifar100": ("cifar-100-python", ["train"], ["test"], b"fine_labels"),
}

# MD5s of the files in the official archives (https://www.cs.toronto.edu/~kriz/cifar.html).
CIFAR_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "train": "16019d7e3df5f24257cddd939b257f8d",
    "test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
}
CIFAR_URL = {
    "cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    "cifar100": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
}


def file_md5(path: Path) -> str:
    return file_digest(path, "md5")


def read_cifar_batch(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR pickle: ``data`` (N, 3072) uint8 in CHW order, labels under ``label_key``."""
    if not path.is_file():
        raise EdgeGhostError(f"missing file {path}")
    try:
        with path.open("rb") as f:
            batch = pickle.load(f, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[label_key], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError) as err:
        raise EdgeGhostError(f"{path} is not a valid CIFAR batch: {err!r}") from None
    if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
        raise EdgeGhostError(f"{path} has unexpected shapes: data {data.shape}, labels {labels.shape}")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _download_cifar(name: str, root: Path) -> None:
    """Fetch the archive with torchvision into a temp folder next to ``root``, then rename: an interrupted
    or offline download leaves nothing behind."""
    folder = CIFAR_LAYOUT[name][0]
    hint = (
        f"{name} not found at {root / folder}/ and the download failed ({{err}}); without internet, fetch "
        f"{CIFAR_URL[name]} elsewhere and unpack it so that {root / folder}/ holds the batches "
        "(or pass --data-dir to the folder that contains it)"
    )
    try:
        from torchvision import datasets
    except ImportError as err:
        raise EdgeGhostError(hint.format(err=f"torchvision missing: {err}")) from None
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder}.", dir=root))
    try:
        cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
        cls(root=str(tmp), train=False, download=True)
        (tmp / folder).rename(root / folder)
    except Exception as err:  # urllib, tarfile and torchvision raise many types when offline
        shutil.rmtree(tmp, ignore_errors=True)
        if created:
            shutil.rmtree(root, ignore_errors=True)
        raise EdgeGhostError(hint.format(err=f"{type(err).__name__}: {err}".strip()[:200])) from None
    shutil.rmtree(tmp, ignore_errors=True)


def _load_cifar(
    name: str, split: str, data_dir: Path | None, *, verify: bool, download: bool
) -> tuple[np.ndarray, np.ndarray]:
    folder, train_files, test_files, key = CIFAR_LAYOUT[name]
    base = data_dir or Path("data")
    root = base / folder
    if not root.is_dir():
        if not download:
            raise EdgeGhostError(
                f"{name} not found: put the python-pickle batches in {root}/ (pass --data-dir to the folder that "
                f"contains {folder}/; the archive is {CIFAR_URL[name]})"
            )
        _download_cifar(name, base)
    files = [root / f for f in (train_files if split == "train" else test_files)]
    for path in files:
        if not path.is_file():
            raise EdgeGhostError(f"missing file {path}")
        if verify and file_md5(path) != CIFAR_MD5[path.name]:
            raise EdgeGhostError(
                f"{path} is corrupt: MD5 {file_md5(path)} differs from the official {CIFAR_MD5[path.name]} "
                f"(re-download {CIFAR_URL[name]}, or pass --no-verify for files you made yourself)"
            )
    parts = [read_cifar_batch(p, key) for p in files]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def load_split(
    name: str, split: str, data_dir: str | Path | None = None, *, verify: bool = True, download: bool = True
) -> Split:
    """Load the ``train`` or ``test`` split of a dataset as uint8 NHWC 32×32×3 images and int64 labels.

    CIFAR files are checked against the official MD5s (``verify``) and, when the folder is absent,
    downloaded with torchvision (``download``; needs internet, otherwise one error says where to put them).
    """
    spec = get_spec(name)
    if split not in ("train", "test"):
        raise EdgeGhostError(f"split must be 'train' or 'test', got {split!r}")
    root = Path(data_dir) if data_dir is not None else None
    if root is not None and not root.is_dir():
        raise EdgeGhostError(f"data directory {root} does not exist")
    if name == "fashion_mnist":
        images, labels = _load_fashion_mnist(split, root)
    else:
        images, labels = _load_cifar(name, split, root, verify=verify, download=download)
    if labels.size and (labels.min() < 0 or labels.max() >= spec.num_classes):
        raise EdgeGhostError(f"{name} {split}: labels outside 0..{spec.num_classes - 1}")
    return Split(np.ascontiguousarray(images), labels, spec)
