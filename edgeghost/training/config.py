"""Training configuration: one frozen dataclass whose every field is a command-line flag."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any


def _f(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class TrainConfig:
    """The authors' GN-S CIFAR-10 recipe as defaults (paper + their public training code)."""

    model: str = _f("ghostnetv3_small", "registered model name")
    width: float = _f(1.0, "width multiplier")
    dataset: str = _f("cifar10", "cifar10, cifar100, fashion_mnist, or folder (your images: --data-dir DIR/train/<class>/)")
    data_dir: str | None = _f(None, "dataset folder (default: ./data for CIFAR, Debian's path for Fashion-MNIST)")
    img_size: int | None = _f(None, "square input size N; images are padded/resized to N×N (default: 32)")
    in_chans: int | None = _f(None, "input channels: 1 (greyscale) or 3 (RGB) (default: 3)")
    val_fraction: float = _f(0.1, "folder without val/ or test/: stratified fraction of train/ held out")
    split_seed: int = _f(0, "seed of that stratified split")
    skip_corrupt: bool = _f(False, "skip unreadable images in a folder (counted) instead of stopping")
    out: str | None = _f(None, "run folder (default: runs/<model>_w<width>_<dataset>)")
    epochs: int = _f(200, "epochs of the schedule")
    batch_size: int = _f(256, "global batch size (split across DDP processes)")
    lr: float = _f(0.01, "peak learning rate")
    momentum: float = _f(0.9, "SGD momentum")
    nesterov: bool = _f(True, "Nesterov momentum")
    weight_decay: float = _f(0.01, "SGD weight decay")
    warmup: float = _f(0.3, "fraction of all steps with linear warm-up before the cosine decay to 0")
    label_smoothing: float = _f(0.0, "cross-entropy label smoothing")
    crop_pad: int = _f(4, "random-crop padding in pixels (0: no crop)")
    hflip: bool | None = _f(None, "horizontal-flip augmentation (default: the dataset's choice)")
    seed: int = _f(0, "seed of init, data order and augmentation")
    train_samples: int | None = _f(None, "use only the first N training images (short runs)")
    test_samples: int | None = _f(None, "use only the first N test images")
    workers: int | None = _f(None, "DataLoader worker processes (default: 0 in RAM, up to 4 for image folders)")
    threads: int | None = _f(None, "torch CPU threads (default: torch's choice; 1 is often fastest on a busy machine)")
    device: str = _f("auto", "auto, cpu, cuda or cuda:N")
    amp: str = _f("auto", "auto (CUDA: bf16 where supported, else fp16; CPU: off), bf16, fp16 or off")
    # True since channels_last measured 1.30-1.77x faster CPU training (benchmarks/results/train_speed_cpu.json);
    # None is what runs made before store, and means what it meant then: on for CUDA only.
    channels_last: bool | None = _f(True, "channels_last (NHWC) memory format for training and evaluation")
    # True since the one-conv forward of 1×1 re-parameterizable blocks measured faster (train_speed_cpu.json);
    # runs stored without this field resume with the per-branch forward they were trained with.
    fused_branches: bool = _f(True, "train 1×1 multi-branch blocks as one conv (same function, faster)")
    compile: bool = _f(False, "torch.compile the model")
    verify: bool = _f(True, "check CIFAR files against the official MD5s")
    download: bool = _f(True, "download CIFAR with torchvision when absent (needs internet)")
    resume: str | None = _f(None, "continue the run in this folder (or this last.pt); its stored recipe wins over flags")
    stop_epoch: int | None = _f(None, "stop after this epoch (the schedule still spans --epochs; resume later)")
    progress: bool = _f(True, "show progress bars")
    init_from: str | None = _f(None, "start from this checkpoint's weights (fine-tuning; a new schedule)")
    qat: bool = _f(False, "quantization-aware fine-tuning of --from CKPT (emulates the int8 TFLite export)")

    def run_dir(self) -> str:
        return self.out or f"runs/{self.model}_w{self.width:g}_{self.dataset}{'_qat' if self.qat else ''}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        values = {"fused_branches": False, **values}  # runs made before the field: the per-branch forward
        return cls(**{k: v for k, v in values.items() if k in known})


def _base_type(annotation: Any) -> type:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation


def add_config_arguments(
    parser: argparse.ArgumentParser, cls: type = TrainConfig, *, rename: dict[str, str] | None = None,
    skip: tuple[str, ...] = (),
) -> None:
    """One flag per dataclass field (``--batch-size`` for ``batch_size``; booleans get ``--no-...``)."""
    hints = typing.get_type_hints(cls)
    rename = {"init_from": "from", **(rename or {})}
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        flag = "--" + rename.get(f.name, f.name).replace("_", "-")
        kind = _base_type(hints[f.name])
        text = f.metadata.get("help", "")
        help_text = text if "(default" in text or f.default is None else f"{text} (default: {f.default})"
        if kind is bool:
            parser.add_argument(
                flag, dest=f.name, action=argparse.BooleanOptionalAction, default=f.default, help=help_text
            )
        else:
            parser.add_argument(flag, dest=f.name, type=kind, default=f.default, help=help_text)


def config_from_args(args: argparse.Namespace, cls: type = TrainConfig, **overrides: Any) -> Any:
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
    values.update(overrides)
    return cls(**values)


def parse_config(argv: list[str], cls: type = TrainConfig) -> Any:
    """The config that ``edgeghost train ARGV`` would run (the same flags, parsed by the same rules)."""
    parser = argparse.ArgumentParser(prog="edgeghost train", add_help=False)
    add_config_arguments(parser, cls)
    return config_from_args(parser.parse_args(argv), cls)
