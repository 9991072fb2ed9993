"""edgeghost distill: train a student from teacher checkpoints (KD, ensemble, Teacher-Assistant chain, DGKD)."""

from __future__ import annotations

import argparse
import json

HELP = "distill a student from teachers (KD / ensemble / Teacher-Assistant chain / DGKD) with the train loop"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..training.config import add_config_arguments

    p.add_argument("--teacher", dest="teachers", action="append", required=True,
                   help="teacher checkpoint (repeat for an ensemble), or MODEL=weights.pth for a plain state_dict")
    p.add_argument("--teacher-resize", dest="teacher_resize", type=int, action="append", default=[],
                   help="input size for the teacher (e.g. 224 for a teacher fine-tuned at 224 px); once for all "
                        "teachers or once per teacher; 0 = none")
    p.add_argument("--assistant", dest="assistants", action="append", default=[],
                   help="Teacher-Assistant chain stage, in order: NAME[:WIDTH] to train, or a trained checkpoint")
    p.add_argument("--alpha", type=float, default=None,
                   help="weight of the hard-label CE (default: the authors' value for the teacher: resnet50 0.1, "
                        "vgg13_bn/efficientnet_v2_s/ensembles 0.5, others 0.5)")
    p.add_argument("--temperature", type=float, default=None,
                   help="softmax temperature (default: the authors' value: resnet50 4, others 1)")
    p.add_argument("--ensemble", choices=("logits", "probs"), default="logits",
                   help="combine several teachers by mean logits (the authors') or mean probabilities")
    p.add_argument("--dense", action="store_true",
                   help="DGKD: the teacher and every earlier assistant teach each stage directly")
    # No --resume: re-running the same command resumes partial stages and skips finished ones.
    add_config_arguments(p, rename={"model": "student"}, skip=("resume",))
    dataset_from_teachers(p)


def dataset_from_teachers(p: argparse.ArgumentParser) -> None:
    """--dataset defaults to the teacher checkpoints' dataset (no silent cifar10 next to a Fashion-MNIST teacher)."""
    p.set_defaults(dataset=None)
    for action in p._actions:  # argparse has no public way to reword one generated help line
        if action.dest == "dataset":
            action.help = "cifar10, cifar100 or fashion_mnist (default: the teacher checkpoints' dataset)"


def run(args: argparse.Namespace) -> int:
    from ..training import TrainConfig, config_from_args
    from ..training.distill import DistillConfig, distill

    dcfg = DistillConfig(
        teachers=tuple(args.teachers), teacher_resize=tuple(args.teacher_resize), assistants=tuple(args.assistants),
        alpha=args.alpha, temperature=args.temperature, ensemble=args.ensemble, dense=args.dense,
    )
    result = distill(config_from_args(args, TrainConfig), dcfg)
    print(json.dumps({
        "run_dir": result.get("run_dir"), "best_acc": result.get("best_acc"),
        "stages": [{k: s.get(k) for k in ("run_dir", "best", "best_acc", "teachers", "alpha", "temperature")}
                   for s in result["stages"]],
    }))
    return 0
