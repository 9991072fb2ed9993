"""The model zoo: edgeghost models trained by edgeghost's own recipe, shipped as weights with generated cards.

Each :class:`ZooEntry` is a name, a model, a width and the exact ``edgeghost train`` command line that trains it
(one recipe family: SGD + Nesterov, warm-up + cosine, crop + flip, on Fashion-MNIST's 60 k / 10 k images at
1×32×32). ``python -m edgeghost.zoo train [NAME ...]`` runs those commands (resuming partial runs in
``runs/zoo/NAME``); ``python -m edgeghost.zoo ship`` copies the weights of finished runs into the package;
``edgeghost zoo`` lists what is shipped and ``edgeghost zoo --cards`` regenerates the model cards from the
shipped weights (:mod:`edgeghost.zoo.cards`). ``--pretrained NAME`` on ``eval``/``export``/``bench``/``firmware``
resolves through :func:`pretrained_checkpoint`.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import EdgeGhostError

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
CARDS_DIR = Path(__file__).resolve().parent / "cards"
RUNS_DIR = Path("runs/zoo")

# The recipe family: every zoo model is trained by exactly these flags plus its model, width and epochs.
RECIPE = ("--dataset fashion_mnist --in-chans 1 --img-size 32 --batch-size 64 --lr 0.05 --momentum 0.9 "
          "--weight-decay 5e-4 --warmup 0.1 --crop-pad 4 --seed 0 --threads 1")


@dataclass(frozen=True)
class ZooEntry:
    name: str
    model: str
    width: float
    epochs: int
    summary: str

    def train_args(self, out: str | Path) -> list[str]:
        return ["train", "--model", self.model, "--width", f"{self.width:g}", "--epochs", str(self.epochs),
                *shlex.split(RECIPE), "--out", str(out)]

    def command(self) -> str:
        return "edgeghost " + shlex.join(self.train_args(RUNS_DIR / self.name))


ZOO: dict[str, ZooEntry] = {e.name: e for e in (
    ZooEntry("resnet8-fmnist", "resnet8", 1.0, 15, "MLPerf Tiny IC ResNet-8 architecture, the MCU baseline"),
    ZooEntry("gns-w0.25-fmnist", "ghostnetv3_small", 0.25, 15, "GhostNetV3-Small at width 0.25"),
    ZooEntry("gns-w0.5-fmnist", "ghostnetv3_small", 0.5, 15, "GhostNetV3-Small at width 0.5"),
    ZooEntry("gns-w1.0-fmnist", "ghostnetv3_small", 1.0, 8, "GhostNetV3-Small at width 1.0 (8 epochs: the CPU budget)"),
    ZooEntry("gns-lean-w0.5-fmnist", "ghostnetv3_small_lean", 0.5, 8, "GN-S without DFC gates, width-scaled head"),
    ZooEntry("gns-mcu-fmnist", "ghostnetv3_small_mcu", 1.0, 15, "GN-S-MCU: GN-S laid out for TFLite-Micro"),
)}


def get_entry(name: str) -> ZooEntry:
    if name not in ZOO:
        raise EdgeGhostError(f"unknown zoo model {name!r}; choose one of: {', '.join(ZOO)}")
    return ZOO[name]


def shipped() -> list[str]:
    """Names of the zoo models whose weights ship with this package."""
    return [name for name in ZOO if (WEIGHTS_DIR / f"{name}.pt").is_file()]


def pretrained_checkpoint(name: str) -> Path:
    """The shipped checkpoint of a zoo model (an edgeghost checkpoint holding weights and preprocessing only)."""
    get_entry(name)
    path = WEIGHTS_DIR / f"{name}.pt"
    if not path.is_file():
        have = ", ".join(shipped()) or "none"
        raise EdgeGhostError(f"zoo model {name!r} has no shipped weights in this installation (shipped: {have})")
    return path


def resolve_checkpoint(checkpoint: str | Path | None, pretrained: str | None) -> str | Path | None:
    """``--checkpoint`` or ``--pretrained NAME`` (not both) as a checkpoint path."""
    if checkpoint is not None and pretrained is not None:
        raise EdgeGhostError("give --checkpoint or --pretrained, not both")
    return pretrained_checkpoint(pretrained) if pretrained is not None else checkpoint


def weights_only(ckpt: dict[str, Any], entry: ZooEntry) -> dict[str, Any]:
    """What ships: the checkpoint without optimizer/scheduler/RNG state, plus the zoo name and its command."""
    drop = {"optimizer", "scheduler", "scaler", "rng", "path"}
    out = {k: v for k, v in ckpt.items() if k not in drop}
    out["zoo"] = {"name": entry.name, "command": entry.command(), "summary": entry.summary}
    return out
