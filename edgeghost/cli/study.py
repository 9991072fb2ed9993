"""edgeghost study: the paper's distillation table over seeds (baseline, KD, TA, ensemble, DGKD; GN-S vs GN-D),
locally or on Ray, or an α/T sweep."""

from __future__ import annotations

import argparse
import json

HELP = "run baseline/KD/TA/ensemble/DGKD over seeds (locally or on Ray) and write the comparison with statistics"


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _role(text: str) -> tuple[str, str]:
    teacher, sep, authors = text.partition("=")
    if not sep or not teacher or not authors:
        raise argparse.ArgumentTypeError(f"expected TEACHER=AUTHORS_MODEL (e.g. resnet18_w1=resnet50), got {text!r}")
    return teacher, authors


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..training.config import add_config_arguments
    from ..training.study import DEFAULT_STRATEGIES, STRATEGIES
    from .distill import dataset_from_teachers

    p.add_argument("--teachers", nargs="+", default=["resnet8:2.0"],
                   help="teacher checkpoints or NAME[:WIDTH] models trained first (default: %(default)s)")
    p.add_argument("--assistants", nargs="*", default=[],
                   help="assistants for TA/DGKD: checkpoints or NAME[:WIDTH], teacher side first")
    p.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=list(DEFAULT_STRATEGIES))
    p.add_argument("--seeds", type=_ints, default=None,
                   help="comma-separated seeds, one run per strategy and seed (default: --seed only)")
    p.add_argument("--role", dest="roles", type=_role, action="append", default=[],
                   help="give a teacher the authors' α/T of one of their teachers, e.g. resnet18_w1=resnet50 "
                        "(α 0.1, T 4); repeatable. Without it: α 0.5, T 1")
    p.add_argument("--alpha", type=float, default=None, help="override the authors' per-teacher α for every run")
    p.add_argument("--temperature", type=float, default=None, help="override the authors' per-teacher T")
    p.add_argument("--compare-arch", choices=("macs", "params"), default=None,
                   help="also train GN-D at the width matching the student's deploy MACs or parameters")
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="run each (strategy, seed) as a Ray task: without ADDRESS Ray starts on this machine, "
                        "with HOST:PORT it joins that cluster (the study folder must be on a shared filesystem)")
    p.add_argument("--cpus-per-run", type=float, default=1.0, help="Ray: CPUs per run, also its torch threads")
    p.add_argument("--gpus-per-run", type=float, default=0.0, help="Ray: GPUs per run (fractions share a GPU)")
    p.add_argument("--max-retries", type=int, default=1,
                   help="Ray: retries of a run whose worker crashed or raised (it resumes from last.pt)")
    p.add_argument("--report-only", action="store_true",
                   help="write the report from the runs that have finished and train nothing (a study still running "
                        "elsewhere); unfinished runs are listed as pending")
    p.add_argument("--sweep-alpha", type=_floats, default=None, help="α grid, e.g. 0.1,0.5,0.9 (sweep mode)")
    p.add_argument("--sweep-temperature", type=_floats, default=None, help="T grid, e.g. 1,4 (sweep mode)")
    add_config_arguments(p, rename={"model": "student", "width": "student_width"}, skip=("resume",))
    dataset_from_teachers(p)


def run(args: argparse.Namespace) -> int:
    from ..training import TrainConfig, config_from_args
    from ..training.study import StudyConfig, run_study, run_sweep

    base = config_from_args(args, TrainConfig)
    study = StudyConfig(
        teachers=tuple(args.teachers), assistants=tuple(args.assistants), alpha=args.alpha,
        temperature=args.temperature, strategies=tuple(args.strategies), seeds=args.seeds, roles=tuple(args.roles),
        compare_arch=args.compare_arch, ray_address=args.ray, cpus_per_run=args.cpus_per_run,
        gpus_per_run=args.gpus_per_run, max_retries=args.max_retries, report_only=args.report_only,
    )
    if args.sweep_alpha or args.sweep_temperature:
        alphas, temperatures = args.sweep_alpha or [0.5], args.sweep_temperature or [1.0]
        report = run_sweep(base, teacher=args.teachers[0], alphas=alphas, temperatures=temperatures, study=study)
    else:
        report = run_study(base, study)
    print(open(report["markdown"]).read())
    print(json.dumps({k: report[k] for k in ("markdown", "json", "png", "failed")}))
    return 1 if report["failed"] else 0
