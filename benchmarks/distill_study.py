"""Real short-schedule distillation study on Fashion-MNIST (CPU-sized): GN-S at a small width as student,
small edgeghost teachers, every strategy of ``edgeghost study`` with one seed and schedule.

Teachers first (a longer schedule than the student's, so they are clearly better than it):

    edgeghost train --model resnet8 --width 1.0 --dataset fashion_mnist --epochs 4 --train-samples 20000 \
        --test-samples 2000 --batch-size 64 --lr 0.05 --weight-decay 5e-4 --warmup 0.1 --threads 1 \
        --out runs/teachers/resnet8_w1
    edgeghost train --model resnet8 --width 2.0 ... --epochs 2 ... --out runs/teachers/resnet8_w2

then the study (~30 min on 2 busy CPU cores):

    .venv/bin/python benchmarks/distill_study.py --teachers runs/teachers/resnet8_w1/best.pt \
        runs/teachers/resnet8_w2/best.pt --assistants resnet8:0.5

Teachers given as NAME[:WIDTH] are instead trained with the student's schedule. Runs land in
runs/distill_study/ (completed runs are skipped on a re-run); the table is copied to
benchmarks/results/distill_fashion_mnist.{md,json,png} with the machine description and the command.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from edgeghost.sysinfo import machine_info
from edgeghost.training import TrainConfig
from edgeghost.training.study import StudyConfig, run_study

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--student-width", type=float, default=0.5)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--train-samples", type=int, default=3000)
    p.add_argument("--test-samples", type=int, default=2000)
    p.add_argument("--teachers", nargs="+", default=["resnet8:2.0", "resnet8:1.0"])
    p.add_argument("--assistants", nargs="*", default=["resnet8:0.5"])
    p.add_argument("--out", default="runs/distill_study")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    # Short schedule: the recipe's optimizer with a larger lr, smaller batch and short warm-up, since a
    # 2-epoch run of batch 256 at lr 0.01 barely leaves the warm-up.
    base = TrainConfig(
        model="ghostnetv3_small", width=args.student_width, dataset="fashion_mnist", out=args.out,
        epochs=args.epochs, batch_size=64, lr=0.05, weight_decay=5e-4, warmup=0.1,
        train_samples=args.train_samples, test_samples=args.test_samples, threads=args.threads, progress=False,
    )
    start = time.perf_counter()
    report = run_study(base, StudyConfig(teachers=tuple(args.teachers), assistants=tuple(args.assistants)))
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / "distill_fashion_mnist"
    machine = {**machine_info(), "torch_threads": args.threads, "load_average_1m": round(os.getloadavg()[0], 2)}
    command = "python benchmarks/distill_study.py " + " ".join(sys.argv[1:])
    data = json.loads(Path(report["json"]).read_text())
    data.update(machine=machine, command=command.strip(), wall_s=round(time.perf_counter() - start, 1))
    stem.with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n")
    md = Path(report["markdown"]).read_text()
    md += f"\nMachine: {machine['cpu']} ({machine['cores']} cores, shared; 1-min load {machine['load_average_1m']}), "
    md += f"torch {machine['tools'].get('torch')}, {args.threads} thread(s) per run; wall {data['wall_s']} s.\n"
    md += f"Command: `{command.strip()}`\n"
    stem.with_suffix(".md").write_text(md)
    shutil.copyfile(report["png"], stem.with_suffix(".png"))
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
