"""Datasets in their real on-disk formats, as uint8 NHWC images at the model's input shape.

- ``cifar10`` / ``cifar100``: the python-pickle batches (``cifar-10-batches-py/``, ``cifar-100-python/``).
- ``fashion_mnist``: IDX files (gzipped or not), e.g. Debian's ``dataset-fashion-mnist`` package. By default
  the 28×28 grey images are zero-padded to 32×32 (2 px each side; the background is 0) and replicated to 3
  channels so the paper's 32×32×3 models apply unchanged; ``in_chans=1`` keeps the one grey channel.
- ``folder``: your own images in class folders (:mod:`edgeghost.data.folder`), decoded lazily from disk.

One reader per format; everything else (training, calibration, evaluation, benchmarks, firmware test images)
goes through :func:`open_dataset` / :func:`load_split` / :func:`split_for_checkpoint` with a
:class:`~edgeghost.data.preprocess.Preprocess`.
"""

from __future__ import annotations

import gzip
import pickle
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EdgeGhostError
from ..sysinfo import file_digest
from .folder import FolderImages, open_folder
from .preprocess import Preprocess, check_shape, convert_channels, fit_size, measure_stats

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
    images: Any  # uint8 (N, H, W, C) NHWC: an ndarray, or a lazy FolderImages for image folders
    labels: np.ndarray  # int64, (N,)
    spec: DatasetSpec
    preprocess: Preprocess

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, n: int | None) -> "Split":
        """The first ``n`` samples (all when ``n`` is None); stays lazy for image folders."""
        if n is None or n >= len(self):
            return self
        images = self.images.view(slice(0, n)) if isinstance(self.images, FolderImages) else self.images[:n]
        return Split(images, self.labels[:n], self.spec, self.preprocess)

    def array(self, index: Any = slice(None)) -> np.ndarray:
        """Decoded uint8 NHWC images (all, a slice or an index array)."""
        return np.ascontiguousarray(self.images[index])


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
    """Native 28×28×1 uint8 images and labels."""
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
    return images[..., None], labels.astype(np.int64)


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


# --- one entry point -----------------------------------------------------------------------------------

NATIVE_HWC = {"cifar10": (32, 32, 3), "cifar100": (32, 32, 3), "fashion_mnist": (28, 28, 1)}
FOLDER = "folder"
DATASETS = (*sorted(SPECS), FOLDER)


def default_preprocess(name: str, img_size: int | None = None, in_chans: int | None = None) -> Preprocess:
    """The resize rule (and defaults) for a dataset at a model input size; mean/std not yet filled in.

    Built-in datasets default to 32×32×3 (Fashion-MNIST zero-padded 28→32 and replicated to 3 channels, so the
    paper's models apply unchanged; ``in_chans=1`` uses its one grey channel natively). Image folders default
    to 32×32×3 with the shorter-side + centre-crop rule.
    """
    size = 32 if img_size is None else int(img_size)
    chans = 3 if in_chans is None else int(in_chans)
    check_shape(size, chans)
    if name == FOLDER:
        return Preprocess(size, chans, "shorter-side-crop")
    h, w, _ = NATIVE_HWC[name]
    if size == h:
        rule = "none"
    elif size > h and (size - h) % 2 == 0:
        rule = "pad"
    else:
        rule = "resize"
    return Preprocess(size, chans, rule)


def _known_stats(name: str, pp: Preprocess) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The published/recorded statistics where they apply (built-in dataset at its 32×32 default)."""
    spec = SPECS.get(name)
    if spec is None or pp.img_size != 32 or pp.resize == "resize":
        return None
    if pp.in_chans == 3:
        return spec.mean, spec.std
    if name == "fashion_mnist":  # grey replicated: every channel has the same statistics
        return spec.mean[:1], spec.std[:1]
    return None


def _builtin(name: str, split: str, root: Path | None, pp: Preprocess, *, verify: bool, download: bool):
    if name == "fashion_mnist":
        images, labels = _load_fashion_mnist(split, root)
    else:
        images, labels = _load_cifar(name, split, root, verify=verify, download=download)
    spec = SPECS[name]
    if labels.size and (labels.min() < 0 or labels.max() >= spec.num_classes):
        raise EdgeGhostError(f"{name} {split}: labels outside 0..{spec.num_classes - 1}")
    images = fit_size(convert_channels(images, pp.in_chans), pp)
    return np.ascontiguousarray(images), labels


def _folder_splits(root: Path | None, pp: Preprocess, *, val_fraction: float, split_seed: int, skip_corrupt: bool):
    if root is None:
        raise EdgeGhostError("--dataset folder needs --data-dir DIR (DIR/train/<class>/*.png|jpg|bmp)")
    classes, train, test, origin = open_folder(root, val_fraction=val_fraction, seed=split_seed,
                                               skip_corrupt=skip_corrupt)
    out = []
    for files, labels in (train, test):
        # A fixed shuffle, so that "the first N" (--train-samples, calibration, eval subsets) spans all classes.
        order = np.random.default_rng(1234).permutation(len(files))
        out.append((FolderImages([files[i] for i in order], pp), labels[order]))
    return classes, out[0], out[1], origin


def _spec(name: str, classes: tuple[str, ...], pp: Preprocess) -> DatasetSpec:
    hflip = SPECS[name].hflip if name in SPECS else True
    return DatasetSpec(name, tuple(classes), tuple(pp.mean), tuple(pp.std), hflip)


def open_dataset(
    name: str,
    data_dir: str | Path | None = None,
    *,
    img_size: int | None = None,
    in_chans: int | None = None,
    preprocess: Preprocess | None = None,
    verify: bool = True,
    download: bool = True,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    skip_corrupt: bool = False,
) -> tuple[Split, Split]:
    """The train and test (or val) splits of a dataset at the model's input shape, with the run's
    :class:`Preprocess` (mean/std measured on the training split unless ``preprocess`` carries them)."""
    if name not in DATASETS:
        raise EdgeGhostError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    root = Path(data_dir) if data_dir is not None else None
    if root is not None and not root.is_dir():
        raise EdgeGhostError(f"data directory {root} does not exist")
    pp = preprocess or default_preprocess(name, img_size, in_chans)
    if name == FOLDER:
        classes, (tr_x, tr_y), (te_x, te_y), _ = _folder_splits(
            root, pp, val_fraction=val_fraction, split_seed=split_seed, skip_corrupt=skip_corrupt)
    else:
        classes = SPECS[name].classes
        tr_x, tr_y = _builtin(name, "train", root, pp, verify=verify, download=download)
        te_x, te_y = _builtin(name, "test", root, pp, verify=verify, download=download)
    if not pp.mean:
        stats = _known_stats(name, pp) or measure_stats(tr_x)
        pp = pp.with_stats(*stats)
        if isinstance(tr_x, FolderImages):
            tr_x, te_x = FolderImages(tr_x.files, pp), FolderImages(te_x.files, pp)
    spec = _spec(name, classes, pp)
    return Split(tr_x, tr_y, spec, pp), Split(te_x, te_y, spec, pp)


def load_split(
    name: str,
    split: str,
    data_dir: str | Path | None = None,
    *,
    preprocess: Preprocess | None = None,
    img_size: int | None = None,
    in_chans: int | None = None,
    verify: bool = True,
    download: bool = True,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    skip_corrupt: bool = False,
) -> Split:
    """One split (``train`` or ``test``) of :func:`open_dataset`; ``preprocess`` (e.g. a checkpoint's)
    reproduces a run's input exactly. Built-in datasets read only the split asked for."""
    if split not in ("train", "test"):
        raise EdgeGhostError(f"split must be 'train' or 'test', got {split!r}")
    if name in SPECS:
        root = Path(data_dir) if data_dir is not None else None
        if root is not None and not root.is_dir():
            raise EdgeGhostError(f"data directory {root} does not exist")
        pp = preprocess or default_preprocess(name, img_size, in_chans)
        images, labels = _builtin(name, split, root, pp, verify=verify, download=download)
        if not pp.mean:
            stats = _known_stats(name, pp)
            if stats is None:
                train = images if split == "train" else _builtin(name, "train", root, pp, verify=verify,
                                                                   download=download)[0]
                stats = measure_stats(train)
            pp = pp.with_stats(*stats)
        return Split(images, labels, _spec(name, SPECS[name].classes, pp), pp)
    train, test = open_dataset(name, data_dir, img_size=img_size, in_chans=in_chans, preprocess=preprocess,
                               verify=verify, download=download, val_fraction=val_fraction, split_seed=split_seed,
                               skip_corrupt=skip_corrupt)
    return train if split == "train" else test


def split_for_export(
    name: str, preprocess: dict | None, split: str = "test", data_dir: str | Path | None = None
) -> Split:
    """The ``split`` of dataset ``name`` as an export's recorded preprocessing makes it (``manifest.json``'s
    ``preprocess``: size, channels, resize rule, mean/std, and for an image folder its ``data_dir``,
    ``val_fraction`` and ``split_seed``); bench's eval images and the firmware's test images both come from here.
    Without ``preprocess`` (a plain ``.tflite``) the dataset's default preprocessing."""
    pp = Preprocess.from_dict(preprocess) if preprocess and "img_size" in preprocess else None
    if data_dir is None and preprocess:
        data_dir = preprocess.get("data_dir")  # an image-folder model's own folder (recorded by the export)
    extra = {k: preprocess[k] for k in ("val_fraction", "split_seed") if preprocess and k in preprocess}
    return load_split(name, split, data_dir, preprocess=pp, **extra)


def split_for_checkpoint(
    ckpt: dict, split: str, data_dir: str | Path | None = None, *, verify: bool = True, download: bool = True
) -> Split:
    """The ``split`` of the data a checkpoint was trained on, preprocessed exactly as in training (size,
    channels, resize rule, mean/std from the checkpoint); the folder and its split come from the run's config
    unless ``data_dir`` is given. Checks that the classes still match."""
    cfg = ckpt.get("config") or {}
    pp = Preprocess.from_checkpoint(ckpt)
    name = ckpt["dataset"]
    where = data_dir if data_dir is not None else (ckpt.get("data_dir") or cfg.get("data_dir"))
    out = load_split(name, split, where, preprocess=pp, verify=verify, download=download,
                     val_fraction=float(cfg.get("val_fraction", 0.1)), split_seed=int(cfg.get("split_seed", 0)),
                     skip_corrupt=bool(cfg.get("skip_corrupt", False)))
    classes = list(ckpt.get("classes") or [])
    if classes and list(out.spec.classes) != classes:
        raise EdgeGhostError(
            f"{ckpt.get('path', 'checkpoint')} was trained on classes {classes}, {where or name} has "
            f"{list(out.spec.classes)}"
        )
    return out
