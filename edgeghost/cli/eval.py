"""edgeghost eval: top-1 of a checkpoint on its dataset's test split, train form and deploy form."""

from __future__ import annotations

import argparse
import json

HELP = "top-1 accuracy of a checkpoint on the test split; --deploy also checks the reparameterized form"


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="a .pt written by edgeghost train/distill")
    src.add_argument("--pretrained", metavar="NAME", help="a shipped zoo model (see `edgeghost zoo`)")
    p.add_argument("--deploy", action="store_true", help="also evaluate the reparameterized (deploy) form")
    p.add_argument("--width", type=float, default=None, help="expected width (a mismatch is an error)")
    p.add_argument("--data-dir", default=None, help="dataset folder (default: the dataset's usual place)")
    p.add_argument("--test-samples", type=int, default=None, help="only the first N test images")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-verify", dest="verify", action="store_false", help="skip the CIFAR MD5 check")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    import torch

    from ..training import evaluate_checkpoint

    if args.threads:
        torch.set_num_threads(args.threads)
    from ..zoo import resolve_checkpoint

    report = evaluate_checkpoint(
        resolve_checkpoint(args.checkpoint, args.pretrained), deploy=args.deploy, width=args.width, data_dir=args.data_dir,
        test_samples=args.test_samples, batch_size=args.batch_size, verify=args.verify,
    )
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{report['model']} w{report['width']:g} on {report['dataset']} test ({report['total']} images)")
        print(f"  train form   top-1 {report['train_form_acc']:.2f} %")
        if args.deploy:
            print(
                f"  deploy form  top-1 {report['deploy_form_acc']:.2f} %  (predictions differ on "
                f"{report['disagreements']} images, max |Δlogit| {report['max_logit_diff']:.2e})"
            )
    return 0 if report.get("forms_agree", True) else 1
