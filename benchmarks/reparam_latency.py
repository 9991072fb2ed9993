"""Train-form vs deploy-form (reparameterized) latency on the torch CPU backend.

Both forms run in this one process, alternating in rounds so that machine load affects both alike; each
measurement is edgeghost's one latency loop (warm-up, then repeated runs until a minimum time). Goal: deploy form
at width 2.8, batch 1, at most 0.45× the train-form time.

    .venv/bin/python benchmarks/reparam_latency.py [--threads 1] [--rounds 3] [--widths 1.0,2.8] [--batches 1,64]
                                                   [--out benchmarks/results/reparam.json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

from edgeghost.models import create_model, reparameterize
from edgeghost.fileio import atomic_write_json
from edgeghost.runtime import measure_latency
from edgeghost.sysinfo import machine_info

GOAL = 0.45


def bench(width: float, batch: int, *, rounds: int, min_time_s: float) -> dict:
    model = create_model("ghostnetv3_small", width=width).eval()
    forms = {"train": model, "deploy": reparameterize(model)}
    x = torch.randn(batch, model.in_chans, model.img_size, model.img_size)  # the model's own input
    medians: dict[str, list[float]] = {k: [] for k in forms}
    with torch.inference_mode():
        for _ in range(rounds):
            for name, m in forms.items():
                stats = measure_latency(lambda m=m: m(x), warmup=3, min_time_s=min_time_s, min_runs=5)
                medians[name].append(stats.median_ms)
    train_ms, deploy_ms = (statistics.median(medians[k]) for k in ("train", "deploy"))
    return {
        "model": "ghostnetv3_small",
        "width": width,
        "batch": batch,
        "train_ms": round(train_ms, 3),
        "deploy_ms": round(deploy_ms, 3),
        "ratio": round(deploy_ms / train_ms, 3),
        "round_medians_ms": {k: [round(v, 3) for v in vs] for k, vs in medians.items()},
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--min-time", type=float, default=1.0, help="seconds per measurement")
    p.add_argument("--widths", default="1.0,2.8", help="comma list of GN-S widths (default: %(default)s)")
    p.add_argument("--batches", default="1,64", help="comma list of batch sizes (default: %(default)s)")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "reparam.json")
    args = p.parse_args()
    widths = [float(w) for w in args.widths.split(",")]
    batches = [int(b) for b in args.batches.split(",")]
    torch.set_num_threads(args.threads)
    rows = []
    for width in widths:
        for batch in batches:
            row = bench(width, batch, rounds=args.rounds, min_time_s=args.min_time)
            rows.append(row)
            print(f"w{width:g} batch {batch:>2}: train {row['train_ms']:8.2f} ms  deploy {row['deploy_ms']:8.2f} ms"
                  f"  ratio {row['ratio']:.3f}")
    goal_row = next((r for r in rows if r["width"] == 2.8 and r["batch"] == 1), None)
    result = {
        "benchmark": "reparam_latency",
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "backend": "torch CPU, eval mode, torch.inference_mode",
        "threads": args.threads,
        "machine": machine_info(),
        "goal": {"deploy_over_train_w2.8_batch1_max": GOAL, "measured": goal_row and goal_row["ratio"],
                 "met": None if goal_row is None else goal_row["ratio"] <= GOAL},
        "results": rows,
    }
    atomic_write_json(args.out, result)
    if goal_row is None:
        print(f"goal not measured (w2.8 batch 1 not in this run) → {args.out}")
    else:
        print(f"goal deploy/train ≤ {GOAL} at w2.8 batch 1: {goal_row['ratio']:.3f} "
              f"({'met' if result['goal']['met'] else 'missed'}) → {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
