"""edgeghost info: parameters, MACs and layers of a model."""

from __future__ import annotations

import argparse
import json

HELP = "print parameters (train/deploy form), MACs and layer count of a model"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="ghostnetv3_small", help="registered model name (default: %(default)s)")
    p.add_argument("--width", type=float, default=1.0, help="width multiplier, 0.25–4.0 (default: %(default)s)")
    p.add_argument("--num-classes", type=int, default=10)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def run(args: argparse.Namespace) -> int:
    from ..models import create_model, model_info

    info = model_info(create_model(args.model, width=args.width, num_classes=args.num_classes), args.model)
    if args.json:
        print(json.dumps(info.to_dict()))
        return 0
    rows = [
        ("model", info.model),
        ("width", f"{info.width:g}"),
        ("input", "×".join(map(str, info.input_shape))),
        ("params (train form)", f"{info.params_train:,}"),
        ("params (deploy form)", f"{info.params_deploy:,}" if info.deploy_form else "n/a (teacher, not fusable)"),
        ("MACs (deploy form)", f"{info.macs:,}"),
        ("conv/linear layers", str(info.layers)),
    ]
    pad = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{pad}}  {v}")
    return 0
