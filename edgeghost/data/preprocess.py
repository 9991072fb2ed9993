"""What turns a stored image into the model's input: size, channels, the resize rule and the normalization.

A :class:`Preprocess` is decided once, when a run starts (mean/std measured on its training split), stored in the
checkpoint (``ckpt["preprocess"]``) and reproduced by everything downstream — export calibration, ``eval``,
``bench`` evaluation images and the firmware's test images — so they all see the pixels training saw.

Resize rules (``resize``):

- ``none``: the stored images already have the model's size.
- ``pad``: zero-pad (centred) to the model's size, e.g. Fashion-MNIST 28×28 → 32×32 (2 px each side; the
  background is 0, so no content is invented). Used when the target is larger by an even margin.
- ``resize``: plain bilinear resize of the whole image to N×N (built-in datasets at another size).
- ``shorter-side-crop``: resize the shorter side to N (bilinear, PIL), then centre-crop N×N — aspect ratio kept,
  the borders of the longer side dropped. The rule for image folders (torchvision's ``Resize(N)`` +
  ``CenterCrop(N)``).

Channels: 1 = greyscale, 3 = RGB; conversion is PIL's (``Image.convert("L")`` uses ITU-R 601-2 luma weights;
``"RGB"`` replicates a grey channel).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from ..errors import EdgeGhostError

RESIZE_RULES = ("none", "pad", "resize", "shorter-side-crop")
MIN_IMG_SIZE = 8


def check_shape(img_size: int, in_chans: int) -> None:
    """The input shapes edgeghost builds for; anything else is one clear error."""
    if int(img_size) < MIN_IMG_SIZE:
        raise EdgeGhostError(f"--img-size must be >= {MIN_IMG_SIZE} (got {img_size}): the models downsample 4×")
    if int(in_chans) not in (1, 3):
        raise EdgeGhostError(f"--in-chans must be 1 (greyscale) or 3 (RGB), got {in_chans}")


@dataclass(frozen=True)
class Preprocess:
    """Input contract of a model: ``img_size``×``img_size``×``in_chans`` uint8 pixels after ``resize``, then
    ``(x/255 − mean)/std`` per channel (inside the exported graph, so deployed models take raw pixels)."""

    img_size: int = 32
    in_chans: int = 3
    resize: str = "none"
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        check_shape(self.img_size, self.in_chans)
        if self.resize not in RESIZE_RULES:
            raise EdgeGhostError(f"unknown resize rule {self.resize!r}; one of {', '.join(RESIZE_RULES)}")
        for name in ("mean", "std"):
            values = getattr(self, name)
            if values and len(values) != self.in_chans:
                raise EdgeGhostError(f"preprocess {name} has {len(values)} values for {self.in_chans} channels")
        if self.std and min(self.std) <= 0:
            raise EdgeGhostError(f"preprocess std must be > 0, got {self.std}")

    @property
    def hwc(self) -> tuple[int, int, int]:
        return (self.img_size, self.img_size, self.in_chans)

    def with_stats(self, mean: tuple[float, ...], std: tuple[float, ...]) -> "Preprocess":
        return replace(self, mean=tuple(float(v) for v in mean), std=tuple(float(v) for v in std))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Preprocess":
        return cls(int(d["img_size"]), int(d["in_chans"]), str(d.get("resize", "none")),
                   tuple(float(v) for v in d.get("mean", ())), tuple(float(v) for v in d.get("std", ())))

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any]) -> "Preprocess":
        """The checkpoint's preprocessing; checkpoints from before it was stored were 32×32 (Fashion-MNIST padded)."""
        if "preprocess" in ckpt:
            return cls.from_dict(ckpt["preprocess"])
        resize = "pad" if ckpt.get("dataset") == "fashion_mnist" else "none"
        return cls(32, int(ckpt.get("in_chans", 3)), resize, tuple(ckpt["mean"]), tuple(ckpt["std"]))


def convert_channels(images: np.ndarray, in_chans: int) -> np.ndarray:
    """uint8 NHWC (or NHW) → NHW×``in_chans`` with PIL's conversion rules (bit-identical to ``Image.convert``)."""
    if images.ndim == 3:
        images = images[..., None]
    have = images.shape[-1]
    if have == in_chans:
        return images
    if have == 1 and in_chans == 3:
        return np.repeat(images, 3, axis=-1)
    if have == 3 and in_chans == 1:
        # PIL's "L" conversion in integer arithmetic: L = (R·19595 + G·38470 + B·7471 + 0x8000) >> 16.
        rgb = images.astype(np.uint32)
        grey = (rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000) >> 16
        return grey.astype(np.uint8)[..., None]
    raise EdgeGhostError(f"cannot convert {have}-channel images to {in_chans} channels")


def fit_size(images: np.ndarray, pp: Preprocess) -> np.ndarray:
    """Apply ``pp.resize`` to a uint8 NHWC batch of equal-sized images (built-in datasets)."""
    n, h, w, c = images.shape
    size = pp.img_size
    if pp.resize == "none":
        if (h, w) != (size, size):
            raise EdgeGhostError(f"images are {h}×{w}, the model takes {size}×{size} (resize rule 'none')")
        return images
    if pp.resize == "pad":
        if size < h or size < w:
            raise EdgeGhostError(f"cannot pad {h}×{w} images to {size}×{size}")
        top, left = (size - h) // 2, (size - w) // 2
        out = np.zeros((n, size, size, c), np.uint8)
        out[:, top : top + h, left : left + w] = images
        return out
    from PIL import Image

    out = np.empty((n, size, size, c), np.uint8)
    for i in range(n):
        out[i] = pil_to_array(resize_pil(Image.fromarray(images[i].squeeze(-1) if c == 1 else images[i]), pp), c)
    return out


def resize_pil(img: Any, pp: Preprocess) -> Any:
    """One PIL image → ``pp.img_size`` square by ``pp.resize`` (bilinear)."""
    from PIL import Image

    size = pp.img_size
    if pp.resize in ("resize", "none", "pad"):
        return img if img.size == (size, size) else img.resize((size, size), Image.BILINEAR)
    w, h = img.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), Image.BILINEAR)
    left, top = (nw - size) // 2, (nh - size) // 2
    return img.crop((left, top, left + size, top + size))


def pil_to_array(img: Any, in_chans: int) -> np.ndarray:
    arr = np.array(img.convert("L" if in_chans == 1 else "RGB"), dtype=np.uint8)  # a writable copy
    return arr[..., None] if arr.ndim == 2 else arr


def measure_stats(images: Any, *, limit: int = 10_000, seed: int = 0) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean/std of pixels/255 over (a seeded sample of at most ``limit``) images.

    ``images`` is a uint8 NHWC array or a lazy :class:`~edgeghost.data.folder.FolderImages`.
    """
    n = len(images)
    if n == 0:
        raise EdgeGhostError("cannot measure mean/std of an empty training split")
    idx = np.sort(np.random.default_rng(seed).choice(n, size=min(n, limit), replace=False))
    total = np.zeros(images.shape[-1], np.float64)
    total_sq = np.zeros_like(total)
    count = 0
    for start in range(0, len(idx), 1024):
        x = np.asarray(images[idx[start : start + 1024]], dtype=np.float64) / 255.0
        total += x.sum(axis=(0, 1, 2))
        total_sq += (x * x).sum(axis=(0, 1, 2))
        count += x.shape[0] * x.shape[1] * x.shape[2]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean * mean, 1e-12))
    return tuple(round(float(v), 4) for v in mean), tuple(round(max(float(v), 1e-3), 4) for v in std)
