"""Training, evaluation, checkpoints and distillation (one loop: :func:`fit`, with a loss hook)."""

from .checkpoint import atomic_torch_save, load_checkpoint, make_checkpoint, model_from_checkpoint
from .config import TrainConfig, add_config_arguments, config_from_args, parse_config
from .distill import DistillConfig, DistillLoss, distill, kd_loss, load_teacher
from .qat import train
from .train import LossHook, evaluate, evaluate_checkpoint, fit, fit_or_skip, train_one_epoch, warmup_cosine

__all__ = [
    "DistillConfig",
    "DistillLoss",
    "LossHook",
    "TrainConfig",
    "add_config_arguments",
    "atomic_torch_save",
    "config_from_args",
    "parse_config",
    "distill",
    "evaluate",
    "evaluate_checkpoint",
    "fit",
    "fit_or_skip",
    "kd_loss",
    "load_teacher",
    "load_checkpoint",
    "make_checkpoint",
    "model_from_checkpoint",
    "train",
    "train_one_epoch",
    "warmup_cosine",
]
