"""Training, evaluation and checkpoints."""

from .checkpoint import atomic_torch_save, load_checkpoint, make_checkpoint, model_from_checkpoint

__all__ = ["atomic_torch_save", "load_checkpoint", "make_checkpoint", "model_from_checkpoint"]
