"""``python -m edgeghost.zoo train [NAME ...]`` trains zoo models (resumable); ``... ship [NAME ...]`` copies the
weights of finished runs into the package."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import EdgeGhostError
from . import RUNS_DIR, WEIGHTS_DIR, ZOO, get_entry, weights_only


def train(names: list[str], runs: Path) -> int:
    """Train (or resume) each zoo run with the recipe's flags through the library, as ``edgeghost train`` would."""
    import dataclasses

    from ..training import train as run_training
    from ..training.checkpoint import load_checkpoint
    from ..training.config import TrainConfig, parse_config

    for name in names or list(ZOO):
        entry = get_entry(name)
        out = runs / name
        last = out / "last.pt"
        if last.is_file():
            ckpt = load_checkpoint(last)
            if ckpt["epoch"] >= entry.epochs:
                print(f"{name}: done ({ckpt['epoch']} epochs, best {ckpt['best_acc']:.2f} %)", flush=True)
                continue
            cfg = TrainConfig(resume=str(out), progress=False)
            print(f"{name}: edgeghost train --resume {out} --no-progress", flush=True)
        else:
            args = entry.train_args(out)[1:]  # without the "train" subcommand
            cfg = dataclasses.replace(parse_config(args), progress=False)
            print(f"{name}: edgeghost train {' '.join(args)} --no-progress", flush=True)
        run_training(cfg)
    return 0


def ship(names: list[str], runs: Path) -> int:
    from ..training.checkpoint import atomic_torch_save, load_checkpoint

    WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
    for name in names or list(ZOO):
        entry = get_entry(name)
        last = runs / name / "last.pt"
        if not last.is_file() or load_checkpoint(last)["epoch"] < entry.epochs:
            print(f"{name}: not finished, skipped")
            continue
        # The final weights, not the best-on-test epoch: choosing by test accuracy would select on the test set.
        ckpt = load_checkpoint(last)
        shipped = weights_only(ckpt, entry)
        metrics = runs / name / "metrics.jsonl"
        shipped["training_curve"] = [round(json.loads(line)["test_acc"], 2)
                                     for line in metrics.read_text().splitlines() if line.strip()]
        target = WEIGHTS_DIR / f"{name}.pt"
        if target.is_file() and _same_checkpoint({k: v for k, v in load_checkpoint(target).items() if k != "path"},
                                                 shipped):
            # torch.save is not byte-reproducible (a random serialization id per file): keeping the file keeps the
            # cards' weights_sha256 valid.
            print(f"{name}: unchanged, kept {target}")
            continue
        atomic_torch_save(shipped, target)
        print(f"{name}: shipped {target} (epoch {ckpt['epoch']}, final test {shipped['training_curve'][-1]:.2f} %)")
    return 0


def _same_checkpoint(a: Any, b: Any) -> bool:
    """Equal values, tensors compared exactly (dicts, lists and scalars recursively)."""
    import torch

    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype \
            and a.shape == b.shape and bool(torch.equal(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_checkpoint(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_checkpoint(x, y) for x, y in zip(a, b))
    return a == b


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m edgeghost.zoo", description=__doc__.splitlines()[0])
    p.add_argument("action", choices=["train", "ship"])
    p.add_argument("names", nargs="*")
    p.add_argument("--runs", type=Path, default=RUNS_DIR)
    args = p.parse_args()
    try:
        return (train if args.action == "train" else ship)(args.names, args.runs)
    except EdgeGhostError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
