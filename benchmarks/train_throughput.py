"""Training throughput (images/s through the real training loop) and short-schedule accuracy.

    .venv/bin/python benchmarks/train_throughput.py throughput --models ghostnetv3_small:1.0 ghostnetv3_small:2.8
    .venv/bin/python benchmarks/train_throughput.py accuracy --models ghostnetv3_small:1.0 resnet8:1.0

Both go through ``edgeghost.training.fit`` (augmentation, optimizer, schedule, checkpoints included) on
Fashion-MNIST, whose 32×32×3 padded images cost exactly what CIFAR images cost. ``throughput`` also
projects the paper's full run: 200 epochs × 50,000 CIFAR-10 images at the measured rate. Results go to
benchmarks/results/train_{throughput,accuracy}_<device>.json with the machine, load and command.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from edgeghost.fileio import atomic_write_json
from edgeghost.models import parse_model_spec
from edgeghost.sysinfo import machine_info
from edgeghost.training import TrainConfig, fit

RESULTS = Path(__file__).resolve().parent / "results"


def _machine(threads: int | None) -> dict:
    """The shared machine description plus what decides CPU training speed here: threads and load."""
    info = machine_info()
    info.update(
        device="cuda" if torch.cuda.is_available() else "cpu",
        gpu=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        torch_threads=threads or torch.get_num_threads(), load_average_1m=round(os.getloadavg()[0], 2),
    )
    return info


def throughput(args: argparse.Namespace) -> dict:
    rows = []
    for spec in args.models:
        name, width = parse_model_spec(spec)
        with tempfile.TemporaryDirectory() as tmp:
            cfg = TrainConfig(
                model=name, width=width, dataset="fashion_mnist", out=f"{tmp}/run", epochs=1,
                batch_size=args.batch_size, train_samples=args.images, test_samples=args.batch_size,
                threads=args.threads, progress=False, data_dir=args.data_dir,
            )
            result = fit(cfg)
        rate = result["final"]["images_per_s"]
        full_s = 200 * 50_000 / rate
        rows.append({
            "model": name, "width": width, "params": result["params"], "batch_size": args.batch_size,
            "images": args.images, "images_per_s": round(rate, 2),
            "projected_cifar10_200_epochs_h": round(full_s / 3600, 2),
        })
        print(f"{name} w{width:g}: {rate:.1f} img/s; 200 CIFAR-10 epochs ≈ {full_s / 3600:.1f} h")
    return {"rows": rows}


def accuracy(args: argparse.Namespace) -> dict:
    rows = []
    for spec in args.models:
        name, width = parse_model_spec(spec)
        out = Path(args.out) / f"{name}_w{width:g}"
        cfg = TrainConfig(
            model=name, width=width, dataset="fashion_mnist", out=str(out), epochs=args.epochs,
            batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay, warmup=args.warmup,
            train_samples=args.images, test_samples=args.test_images, threads=args.threads, progress=False,
            data_dir=args.data_dir,
        )
        start = time.perf_counter()
        result = fit(cfg)
        rows.append({
            "model": name, "width": width, "params": result["params"], "best_top1": round(result["best_acc"], 2),
            "final_top1": round(result["final"]["test_acc"], 2), "epochs": args.epochs, "train_images": args.images,
            "test_images": args.test_images, "wall_s": round(time.perf_counter() - start, 1), "run": str(out),
        })
        print(f"{name} w{width:g}: best top-1 {result['best_acc']:.2f}% ({rows[-1]['wall_s']} s)")
    schedule = {k: getattr(args, k) for k in ("epochs", "batch_size", "lr", "weight_decay", "warmup", "images")}
    return {"schedule": schedule, "rows": rows}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="mode", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--models", nargs="+", default=["ghostnetv3_small:1.0", "ghostnetv3_small:2.8"])
    t.add_argument("--images", type=int, default=512)
    t.add_argument("--batch-size", type=int, default=64)
    a = sub.add_parser("accuracy")
    a.add_argument("--models", nargs="+", default=["ghostnetv3_small:1.0", "resnet8:1.0"])
    a.add_argument("--images", type=int, default=5000, help="training images (the first N)")
    a.add_argument("--test-images", type=int, default=2000)
    a.add_argument("--epochs", type=int, default=2)
    a.add_argument("--batch-size", type=int, default=64)
    a.add_argument("--lr", type=float, default=0.05)
    a.add_argument("--weight-decay", type=float, default=5e-4)
    a.add_argument("--warmup", type=float, default=0.1)
    a.add_argument("--out", default="runs/bench_accuracy")
    for sp in (t, a):
        sp.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
        sp.add_argument("--data-dir", help="Fashion-MNIST folder (default: the dataset's standard place)")
        sp.add_argument("--results", type=Path, default=RESULTS, help="folder for the JSON (default: %(default)s)")
    args = p.parse_args()
    machine = _machine(args.threads)
    report = throughput(args) if args.mode == "throughput" else accuracy(args)
    report.update(machine=machine, command="python benchmarks/train_throughput.py " + " ".join(sys.argv[1:]),
                  dataset="fashion_mnist (28×28 padded to 32×32×3)")
    path = atomic_write_json(args.results / f"train_{args.mode}_{machine['device']}.json", report)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
