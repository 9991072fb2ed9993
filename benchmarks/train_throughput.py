"""Training throughput (images/s through the real training loop) and short-schedule accuracy.

    .venv/bin/python benchmarks/train_throughput.py throughput --models ghostnetv3_small:1.0 ghostnetv3_small:2.8
    .venv/bin/python benchmarks/train_throughput.py accuracy --models ghostnetv3_small:1.0 resnet8:1.0
    .venv/bin/python benchmarks/train_throughput.py speed --threads 1     # old path vs new, with "speedup"

Both go through ``edgeghost.training.fit`` (augmentation, optimizer, schedule, checkpoints included) on
Fashion-MNIST, whose 32×32×3 padded images cost exactly what CIFAR images cost. ``throughput`` also
projects the paper's full run: 200 epochs × 50,000 CIFAR-10 images at the measured rate. Results go to
benchmarks/results/train_{throughput,accuracy}_<device>.json with the machine, load and command.
"""

from __future__ import annotations

import argparse
import os
import sys
import shutil
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


# The training paths compared by `speed`: the TrainConfig fields each sets (the rest are the defaults).
PATHS = {"old": {"channels_last": False, "fused_branches": False},
         "new": {"channels_last": True, "fused_branches": True}}


def _short_run(spec: str, tmp: str, args: argparse.Namespace, *, images: int, epochs: int, seed: int,
               path: str) -> dict:
    name, width = parse_model_spec(spec)
    cfg = TrainConfig(model=name, width=width, dataset="fashion_mnist", out=f"{tmp}/{path}-{seed}", epochs=epochs,
                      batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay, warmup=args.warmup,
                      train_samples=images, test_samples=args.test_images, seed=seed, threads=args.threads,
                      progress=False, data_dir=args.data_dir, **PATHS[path])
    return fit(cfg)


def speed(args: argparse.Namespace) -> dict:
    """Old path vs new path in one run: img/s interleaved (old, new, old, new, ...; the median per path), then
    the test top-1 of the same short schedule on both paths for each seed (seed-to-seed spread = the noise)."""
    import statistics

    rows, speedup = [], {}
    for spec in args.models:
        rates: dict[str, list[float]] = {p: [] for p in PATHS}
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(args.rounds):
                for path in PATHS:
                    rates[path].append(_short_run(spec, tmp, args, images=args.images, epochs=1, seed=0,
                                                  path=path)["final"]["images_per_s"])
                    shutil.rmtree(f"{tmp}/{path}-0")
        median = {p: statistics.median(r) for p, r in rates.items()}
        speedup[spec] = round(median["new"] / median["old"], 3)
        rows.append({"model": spec, "images_per_s": {p: [round(x, 1) for x in r] for p, r in rates.items()},
                     "median_images_per_s": {p: round(v, 1) for p, v in median.items()}, "speedup": speedup[spec]})
        print(f"{spec}: old {median['old']:.1f} img/s, new {median['new']:.1f} img/s, speedup {speedup[spec]:.2f}x",
              flush=True)
    accuracy_rows = []
    for spec in args.accuracy_models:
        with tempfile.TemporaryDirectory() as tmp:
            for seed in args.seeds:
                row = {"model": spec, "seed": seed}
                for path in PATHS:
                    result = _short_run(spec, tmp, args, images=args.accuracy_images, epochs=args.accuracy_epochs,
                                        seed=seed, path=path)
                    row[f"{path}_top1"] = round(result["final"]["test_acc"], 2)
                accuracy_rows.append(row)
                print(f"{spec} seed {seed}: top-1 old {row['old_top1']:.2f} %, new {row['new_top1']:.2f} %", flush=True)
    return {"paths": PATHS, "speedup": speedup, "rows": rows, "accuracy": accuracy_rows,
            "accuracy_schedule": {"epochs": args.accuracy_epochs, "train_images": args.accuracy_images,
                                  "test_images": args.test_images, "batch_size": args.batch_size, "lr": args.lr,
                                  "weight_decay": args.weight_decay, "warmup": args.warmup}}


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
    sp_ = sub.add_parser("speed", help="old training path vs new, side by side, with a top-1 check")
    sp_.add_argument("--models", nargs="+", default=["ghostnetv3_small:0.5", "ghostnetv3_small:1.0", "resnet8:1.0"])
    sp_.add_argument("--images", type=int, default=512, help="images per throughput epoch")
    sp_.add_argument("--rounds", type=int, default=2, help="interleaved old/new rounds per model")
    sp_.add_argument("--batch-size", type=int, default=64)
    sp_.add_argument("--test-images", type=int, default=1000)
    sp_.add_argument("--accuracy-models", nargs="*", default=["ghostnetv3_small:0.5"])
    sp_.add_argument("--accuracy-images", type=int, default=5000)
    sp_.add_argument("--accuracy-epochs", type=int, default=2)
    sp_.add_argument("--lr", type=float, default=0.05, help="the zoo's recipe (default: %(default)s)")
    sp_.add_argument("--weight-decay", type=float, default=5e-4)
    sp_.add_argument("--warmup", type=float, default=0.1)
    sp_.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    for sp in (t, a, sp_):
        sp.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
        sp.add_argument("--data-dir", help="Fashion-MNIST folder (default: the dataset's standard place)")
        sp.add_argument("--results", type=Path, default=RESULTS, help="folder for the JSON (default: %(default)s)")
    args = p.parse_args()
    machine = _machine(args.threads)
    report = {"throughput": throughput, "accuracy": accuracy, "speed": speed}[args.mode](args)
    report.update(machine=machine, command="python benchmarks/train_throughput.py " + " ".join(sys.argv[1:]),
                  dataset="fashion_mnist (28×28 padded to 32×32×3)")
    path = atomic_write_json(args.results / f"train_{args.mode}_{machine['device']}.json", report)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
