"""edgeghost train: train a model with the authors' GN-S recipe (every value is a flag)."""

from __future__ import annotations

import argparse
import json

HELP = ("train a model (authors' GN-S recipe by default) on a dataset or your image folder; --resume RUN "
        "continues a run; --qat --from CKPT fine-tunes for int8")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..training.config import add_config_arguments

    add_config_arguments(p)


def run(args: argparse.Namespace) -> int:
    from ..training import TrainConfig, config_from_args, train

    result = train(config_from_args(args, TrainConfig))
    print(json.dumps({k: result[k] for k in ("run_dir", "best_acc", "epochs_done", "params")}))
    return 0
