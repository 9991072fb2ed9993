"""edgeghost study: the paper's distillation table (baseline, KD, TA, ensemble, DGKD) or an α/T sweep."""

from __future__ import annotations

import argparse
import json

HELP = "run baseline/KD/TA/ensemble/DGKD with one seed and schedule and write the comparison table"


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..training.config import add_config_arguments

    p.add_argument("--teachers", nargs="+", default=["resnet8:2.0"],
                   help="teacher checkpoints or NAME[:WIDTH] models trained first (default: %(default)s)")
    p.add_argument("--assistants", nargs="*", default=[],
                   help="assistants for TA/DGKD: checkpoints or NAME[:WIDTH], teacher side first")
    p.add_argument("--strategies", nargs="+", default=["baseline", "kd", "ta", "ensemble", "dgkd"])
    p.add_argument("--alpha", type=float, default=None, help="override the authors' per-teacher α")
    p.add_argument("--temperature", type=float, default=None, help="override the authors' per-teacher T")
    p.add_argument("--sweep-alpha", type=_floats, default=None, help="α grid, e.g. 0.1,0.5,0.9 (sweep mode)")
    p.add_argument("--sweep-temperature", type=_floats, default=None, help="T grid, e.g. 1,4 (sweep mode)")
    add_config_arguments(p, rename={"model": "student", "width": "student_width"}, skip=("resume", "stop_epoch"))


def run(args: argparse.Namespace) -> int:
    from ..training import TrainConfig, config_from_args
    from ..training.study import StudyConfig, run_study, run_sweep

    base = config_from_args(args, TrainConfig)
    if args.sweep_alpha or args.sweep_temperature:
        alphas, temperatures = args.sweep_alpha or [0.5], args.sweep_temperature or [1.0]
        report = run_sweep(base, teacher=args.teachers[0], alphas=alphas, temperatures=temperatures)
    else:
        study = StudyConfig(
            teachers=tuple(args.teachers), assistants=tuple(args.assistants), alpha=args.alpha,
            temperature=args.temperature, strategies=tuple(args.strategies),
        )
        report = run_study(base, study)
    print(open(report["markdown"]).read())
    print(json.dumps({k: report[k] for k in ("markdown", "json", "png")}))
    return 0
