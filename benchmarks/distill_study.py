"""The distillation study on Fashion-MNIST, recorded under benchmarks/results/: GN-S as student, every strategy of
``edgeghost study`` over several seeds, mean ± std, paired Δ vs the baseline and a verdict against the paper.

Converged study (issue 15): teachers trained to convergence first, clearly better than the student, e.g.

    edgeghost train --model resnet8 --width 4.0 --dataset fashion_mnist --epochs 30 --batch-size 128 --lr 0.05 \
        --weight-decay 5e-4 --warmup 0.05 --threads 1 --no-progress --out runs/teachers/resnet8_w4
    edgeghost train --model resnet18 --dataset fashion_mnist ... --out runs/teachers/resnet18

then (resumable: re-run the same command after an interruption; ``--stop-epoch 1`` first gives the measured
s/epoch of every run and the projected total in the Markdown's budget table):

    .venv/bin/python benchmarks/distill_study.py --stem distill_fashion_mnist_converged --seeds 0,1,2 \
        --epochs 30 --teachers runs/teachers/resnet18/best.pt runs/teachers/resnet8_w4/best.pt \
        --role resnet18_w1=resnet50 --assistants resnet8:1.0 [--compare-arch macs] [--ray]

Full Fashion-MNIST by default (60,000 / 10,000 images; ``--train-samples``/``--test-samples`` shrink it).
Runs land in ``--out`` (default runs/distill_study_<stem>/); the study's Markdown/JSON/PNG are copied to
benchmarks/results/<stem>.{md,json,png} (``--results DIR``) with the machine, the command and the wall time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from edgeghost.fileio import atomic_path, atomic_write_json, atomic_write_text
from edgeghost.sysinfo import machine_info
from edgeghost.training import TrainConfig
from edgeghost.training.study import DEFAULT_STRATEGIES, StudyConfig, run_study

RESULTS = Path(__file__).resolve().parent / "results"


def _pair(text: str) -> tuple[str, str]:
    teacher, _, authors = text.partition("=")
    return teacher, authors


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stem", default="distill_fashion_mnist_converged", help="results file name")
    p.add_argument("--student-width", type=float, default=0.5)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--stop-epoch", type=int, default=None, help="first pass: measure s/epoch, resume later")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--warmup", type=float, default=0.05)
    p.add_argument("--train-samples", type=int, default=None)
    p.add_argument("--test-samples", type=int, default=None)
    p.add_argument("--in-chans", type=int, default=None,
                   help="input channels (default: those of the teacher checkpoints; with teachers to train, 1: "
                        "Fashion-MNIST as it is, the zoo's recipe)")
    p.add_argument("--teachers", nargs="+", required=True)
    p.add_argument("--assistants", nargs="*", default=["resnet8:1.0"])
    p.add_argument("--role", dest="roles", type=_pair, action="append", default=[])
    p.add_argument("--strategies", nargs="+", default=list(DEFAULT_STRATEGIES))
    p.add_argument("--compare-arch", choices=("macs", "params"), default=None)
    p.add_argument("--ray", nargs="?", const="local", default=None)
    p.add_argument("--cpus-per-run", type=float, default=1.0)
    p.add_argument("--report-only", action="store_true",
                   help="write the tables from the finished runs and train nothing (unfinished runs: pending)")
    p.add_argument("--out", default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data-dir", default=None, help="Fashion-MNIST folder (default: the library's lookup)")
    p.add_argument("--results", type=Path, default=RESULTS, help="folder for the study's copy (default: %(default)s)")
    args = p.parse_args()
    if args.in_chans is None:  # student and baseline see what checkpoint teachers saw (KD needs the same input)
        from edgeghost.training.checkpoint import load_checkpoint

        given = [load_checkpoint(t) for t in args.teachers if Path(t).is_file()]
        args.in_chans = int(given[0].get("in_chans", 3)) if given else 1
    base = TrainConfig(
        model="ghostnetv3_small", width=args.student_width, dataset="fashion_mnist", in_chans=args.in_chans, img_size=32,
        out=args.out or f"runs/distill_study_{args.stem}", epochs=args.epochs, stop_epoch=args.stop_epoch,
        batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay, warmup=args.warmup,
        train_samples=args.train_samples, test_samples=args.test_samples, threads=args.threads, progress=True,
        data_dir=args.data_dir,
    )
    study = StudyConfig(
        teachers=tuple(args.teachers), assistants=tuple(args.assistants), strategies=tuple(args.strategies),
        seeds=tuple(int(s) for s in args.seeds.split(",")), roles=tuple(args.roles), compare_arch=args.compare_arch,
        ray_address=args.ray, cpus_per_run=args.cpus_per_run, report_only=args.report_only,
    )
    start = time.perf_counter()
    report = run_study(base, study)
    wall = round(time.perf_counter() - start, 1)
    stem = args.results / args.stem
    machine = {**machine_info(), "torch_threads": args.threads, "load_average_1m": round(os.getloadavg()[0], 2)}
    command = ("python benchmarks/distill_study.py " + " ".join(sys.argv[1:])).strip()
    data = {k: v for k, v in report.items() if k not in ("markdown", "json", "png")}
    data.update(machine=machine, command=command, wall_s=wall)
    atomic_write_json(stem.with_suffix(".json"), data)
    md = Path(report["markdown"]).read_text()
    md += (f"\nMachine: {machine['cpu']} ({machine['cores']} cores, shared; 1-min load {machine['load_average_1m']}), "
           f"torch {machine['tools'].get('torch')}, {args.threads} thread(s) per run; this invocation's wall "
           f"{wall} s (finished runs are skipped).\nCommand: `{command}`\n")
    atomic_write_text(stem.with_suffix(".md"), md)
    with atomic_path(stem.with_suffix(".png")) as tmp:
        shutil.copyfile(report["png"], tmp)
    print(md)
    return 1 if report["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
