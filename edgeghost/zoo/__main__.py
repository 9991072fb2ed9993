"""``python -m edgeghost.zoo train [NAME ...]`` trains zoo models (resumable); ``... ship [NAME ...]`` copies the
weights of finished runs into the package."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import RUNS_DIR, WEIGHTS_DIR, ZOO, get_entry, weights_only


def train(names: list[str], runs: Path) -> int:
    from ..cli import main
    from ..training.checkpoint import load_checkpoint

    for name in names or list(ZOO):
        entry = get_entry(name)
        out = runs / name
        last = out / "last.pt"
        if last.is_file():
            ckpt = load_checkpoint(last)
            if ckpt["epoch"] >= entry.epochs:
                print(f"{name}: done ({ckpt['epoch']} epochs, best {ckpt['best_acc']:.2f} %)", flush=True)
                continue
            argv = ["train", "--resume", str(out), "--no-progress"]
        else:
            argv = [*entry.train_args(out), "--no-progress"]
        print(f"{name}: edgeghost {' '.join(argv)}", flush=True)
        rc = main(argv)
        if rc:
            return rc
    return 0


def ship(names: list[str], runs: Path) -> int:
    from ..training.checkpoint import atomic_torch_save, load_checkpoint

    WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
    for name in names or list(ZOO):
        entry = get_entry(name)
        best, last = runs / name / "best.pt", runs / name / "last.pt"
        if not last.is_file() or load_checkpoint(last)["epoch"] < entry.epochs:
            print(f"{name}: not finished, skipped")
            continue
        ckpt = load_checkpoint(best)
        shipped = weights_only(ckpt, entry)
        metrics = runs / name / "metrics.jsonl"
        shipped["training_curve"] = [round(json.loads(line)["test_acc"], 2)
                                     for line in metrics.read_text().splitlines() if line.strip()]
        atomic_torch_save(shipped, WEIGHTS_DIR / f"{name}.pt")
        print(f"{name}: shipped {WEIGHTS_DIR / (name + '.pt')} (epoch {ckpt['epoch']}, {ckpt['best_acc']:.2f} %)")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m edgeghost.zoo", description=__doc__.splitlines()[0])
    p.add_argument("action", choices=["train", "ship"])
    p.add_argument("names", nargs="*")
    p.add_argument("--runs", type=Path, default=RUNS_DIR)
    args = p.parse_args()
    return (train if args.action == "train" else ship)(args.names, args.runs)


if __name__ == "__main__":
    sys.exit(main())
