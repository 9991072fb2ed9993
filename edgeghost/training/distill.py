"""Knowledge distillation as a loss hook for :func:`edgeghost.training.fit`: standard KD, ensembles of
teachers, Teacher-Assistant chains and densely guided KD (DGKD).

Loss (Hinton et al., with the authors' α convention)::

    α · CE(s, y) + (1 − α) · T² · KL(softmax(t/T) ‖ softmax(s/T))

The T² factor keeps the soft-target gradients at the same scale as T changes. Teachers run in eval mode
under ``no_grad`` on exactly the student's augmented batch, each with its own checkpoint's normalization
and optional input resize (a teacher fine-tuned at 224 px sees the batch upsampled to 224 px).

With ``--qat --from CKPT`` the student is CKPT's fake-quantized deploy form (:mod:`edgeghost.training.qat`);
``--teacher CKPT --alpha 0`` then fine-tunes the int8 emulation towards the float model's own answers
(self-distillation), the loss that targets int8↔fp32 agreement directly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..data.loader import normalize
from ..errors import EdgeGhostError
from ..models import parse_model_spec
from .checkpoint import load_checkpoint, model_from_checkpoint
from .config import TrainConfig
from .qat import qat_finetune
from .train import fit_or_skip

# The authors' values per teacher (from their public code); anything else falls back to DEFAULT_KD.
AUTHORS_KD: dict[str, tuple[float, float]] = {  # model: (alpha, temperature)
    "resnet50": (0.1, 4.0),
    "vgg13_bn": (0.5, 1.0),
    "efficientnet_v2_s": (0.5, 1.0),
}
DEFAULT_KD = (0.5, 1.0)  # the authors' ensemble setting
COMBINE = ("logits", "probs", "dense")


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor | list[torch.Tensor],
    labels: torch.Tensor,
    *,
    alpha: float,
    temperature: float,
    combine: str = "logits",
) -> torch.Tensor:
    """α·CE + (1−α)·T²·KL(teacher ‖ student) on temperature-softened distributions.

    With several teachers, ``combine`` picks the ensemble: ``logits`` = KL to the softmax of the mean
    logits (the authors' choice), ``probs`` = KL to the mean of the teachers' softened probabilities,
    ``dense`` = mean of the per-teacher KL terms (DGKD: every guide teaches directly).
    """
    if combine not in COMBINE:
        raise EdgeGhostError(f"ensemble combine must be one of {', '.join(COMBINE)}, not {combine!r}")
    teachers = teacher_logits if isinstance(teacher_logits, (list, tuple)) else [teacher_logits]
    student_logits = student_logits.float()
    ce = F.cross_entropy(student_logits, labels)
    log_p_s = F.log_softmax(student_logits / temperature, dim=1)
    if combine == "logits":
        targets = [F.softmax(torch.stack(teachers).float().mean(0) / temperature, dim=1)]
    elif combine == "probs":
        targets = [torch.stack([F.softmax(t.float() / temperature, dim=1) for t in teachers]).mean(0)]
    else:
        targets = [F.softmax(t.float() / temperature, dim=1) for t in teachers]
    kl = torch.stack([F.kl_div(log_p_s, p_t, reduction="batchmean") for p_t in targets]).mean()
    return alpha * ce + (1.0 - alpha) * temperature**2 * kl


class Teacher(nn.Module):
    """A frozen model that maps the raw augmented uint8 NHWC batch to logits with its own preprocessing."""

    def __init__(
        self, model: nn.Module, *, mean: tuple[float, ...], std: tuple[float, ...], resize: int | None = None,
        name: str = "teacher",
    ) -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.mean, self.std, self.resize, self.name = tuple(mean), tuple(std), resize, name

    def train(self, mode: bool = True) -> "Teacher":
        return super().train(False)  # a teacher never updates BatchNorm statistics

    @torch.no_grad()
    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        x = normalize(raw, mean=self.mean, std=self.std)
        if self.resize:
            x = F.interpolate(x, size=(self.resize, self.resize), mode="bilinear", align_corners=False)
        return self.model(x).float()


def load_teacher(spec: str | Path, *, resize: int | None = None, num_classes: int | None = None) -> Teacher:
    """A teacher from an edgeghost checkpoint (``runs/r50/best.pt``, normalization from the checkpoint) or
    from a user's plain state_dict for a registered model (``resnet50=weights.pth``, ImageNet normalization,
    as for torchvision-style fine-tuned weights)."""
    from ..models import create_model

    text = str(spec)
    if "=" in text and not Path(text).exists():
        name, path = text.split("=", 1)
        if num_classes is None:
            raise EdgeGhostError(f"teacher {text}: the number of classes is needed for a plain weights file")
        if not Path(path).is_file():
            raise EdgeGhostError(f"teacher weights {path} do not exist")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises many types for a damaged file
            raise EdgeGhostError(f"teacher weights {path} are corrupt ({type(err).__name__}: {err})") from None
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        model = create_model(name, num_classes=num_classes)
        try:
            model.load_state_dict(state)
        except (RuntimeError, TypeError) as err:
            raise EdgeGhostError(f"teacher weights {path} do not fit {name}: {str(err).splitlines()[0]}") from None
        return Teacher(model, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), resize=resize, name=name)
    ckpt = load_checkpoint(text)
    if num_classes is not None and ckpt["num_classes"] != num_classes:
        raise EdgeGhostError(f"teacher {text} predicts {ckpt['num_classes']} classes, the student {num_classes}")
    model = model_from_checkpoint(ckpt)
    return Teacher(model, mean=ckpt["mean"], std=ckpt["std"], resize=resize, name=f"{ckpt['model']}_w{ckpt['width']:g}")


class DistillLoss(nn.Module):
    """Loss hook for :func:`fit`: KD from one teacher or an ensemble (see :func:`kd_loss`)."""

    def __init__(self, teachers: list[Teacher], *, alpha: float, temperature: float, combine: str = "logits") -> None:
        super().__init__()
        if not teachers:
            raise EdgeGhostError("distillation needs at least one teacher")
        if not 0.0 <= alpha <= 1.0 or temperature <= 0:
            raise EdgeGhostError(f"need 0 <= alpha <= 1 and temperature > 0 (got {alpha}, {temperature})")
        self.teachers = nn.ModuleList(teachers)
        self.alpha, self.temperature, self.combine = alpha, temperature, combine

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        teacher_logits = [t(raw) for t in self.teachers]
        return kd_loss(
            logits, teacher_logits, labels, alpha=self.alpha, temperature=self.temperature, combine=self.combine
        )


@dataclass(frozen=True)
class DistillConfig:
    """Who teaches whom. Teachers are checkpoints (or ``model=weights.pth``); assistants are models to train
    in a chain (``NAME`` or ``NAME:WIDTH``) or already-trained checkpoints."""

    teachers: tuple[str, ...] = ()
    teacher_resize: tuple[int, ...] = ()  # per teacher, 0 = none; one value applies to all
    assistants: tuple[str, ...] = ()
    alpha: float | None = None  # None: the authors' value for the (first) teacher's model
    temperature: float | None = None
    ensemble: str = "logits"  # logits | probs (how several teachers combine)
    dense: bool = False  # DGKD: teacher and every earlier assistant teach each stage directly

    def kd_params(self, teacher_model: str, *, several: bool) -> tuple[float, float]:
        model = teacher_model.rsplit("_w", 1)[0]
        alpha, temperature = DEFAULT_KD if several else AUTHORS_KD.get(model, DEFAULT_KD)
        return (self.alpha if self.alpha is not None else alpha,
                self.temperature if self.temperature is not None else temperature)


def _resize_for(dcfg: DistillConfig, i: int) -> int | None:
    if not dcfg.teacher_resize:
        return None
    size = dcfg.teacher_resize[i] if len(dcfg.teacher_resize) > 1 else dcfg.teacher_resize[0]
    return size or None


# TrainConfig fields that describe the input; taken from a teacher checkpoint's ``preprocess`` when unset.
_PREPROCESS_FIELDS = ("img_size", "in_chans", "resize")


def data_from_checkpoints(cfg: TrainConfig, checkpoints: list[str] | tuple[str, ...]) -> TrainConfig:
    """``cfg`` with its dataset (when None), unset input fields (``img_size``, ``in_chans``) and, with no dataset
    and no data folder given, the data folder taken from the edgeghost checkpoints among ``checkpoints``
    (plain ``model=weights.pth`` specs carry no dataset and are ignored).

    A student must learn on the data its teachers saw: checkpoints that disagree with each other or with an
    explicit ``cfg.dataset`` are an error, not a silent default.
    """
    seen: list[tuple[str, str]] = []
    preprocess: dict[str, Any] = {}
    data_dirs: list[str] = []
    for spec in checkpoints:
        text = str(spec)
        if "=" in text and not Path(text).exists():
            continue
        ckpt = load_checkpoint(text)
        seen.append((text, ckpt["dataset"]))
        for key, value in (ckpt.get("preprocess") or {}).items():
            preprocess.setdefault(key, value)
        if ckpt.get("data_dir"):
            data_dirs.append(str(ckpt["data_dir"]))
    datasets = {d for _, d in seen}
    if len(datasets) > 1:
        listed = ", ".join(f"{p} ({d})" for p, d in seen)
        raise EdgeGhostError(f"the teachers were trained on different datasets: {listed}")
    if not seen:
        return cfg
    dataset = seen[0][1]
    if cfg.dataset is not None and cfg.dataset != dataset:
        raise EdgeGhostError(
            f"--dataset {cfg.dataset}, but teacher {seen[0][0]} was trained on {dataset}; "
            f"leave --dataset out to use the teacher's"
        )
    fields = {f.name for f in dataclasses.fields(cfg)}
    updates = {k: preprocess[k] for k in _PREPROCESS_FIELDS if k in fields and k in preprocess
               and getattr(cfg, k) is None}
    # The teacher's data folder too (a class-folder dataset has no standard place), when the user named none.
    if cfg.dataset is None and cfg.data_dir is None and data_dirs and Path(data_dirs[0]).is_dir():
        updates["data_dir"] = data_dirs[0]
    return dataclasses.replace(cfg, dataset=dataset, **updates)


def distill(cfg: TrainConfig, dcfg: DistillConfig) -> dict[str, Any]:
    """Train ``cfg.model`` from ``dcfg.teachers`` (through the assistant chain, if any) with :func:`fit`.

    Each chain stage is its own run folder under ``cfg.run_dir()`` (``assistant1_<model>/`` ...; the
    student in ``student/`` when there are assistants), skipped when complete and resumed when partial,
    so re-running the same command continues an interrupted chain.
    Returns the student's summary with ``stages`` (one summary per stage). ``cfg.dataset`` may be None: the
    teachers' checkpoints then say which dataset (and input preprocessing) to use.
    """
    from ..data import SPECS, get_spec

    if not dcfg.teachers:
        raise EdgeGhostError("distill needs at least one --teacher")
    if dcfg.ensemble not in ("logits", "probs"):
        raise EdgeGhostError(f"--ensemble must be logits or probs, not {dcfg.ensemble!r}")
    if cfg.qat and (dcfg.assistants or not cfg.init_from):
        raise EdgeGhostError("--qat distills into the fine-tuned model itself: give --from CKPT and no --assistant")
    trained_assistants = [a for a in dcfg.assistants if Path(a).is_file()]
    cfg = data_from_checkpoints(cfg, [*dcfg.teachers, *trained_assistants])
    if cfg.dataset is None:
        raise EdgeGhostError("no --dataset given and no teacher checkpoint says which (plain weight files don't)")
    # Built-in datasets know their classes; a class-folder dataset's come from its folder (fit checks the data).
    num_classes = get_spec(cfg.dataset).num_classes if cfg.dataset in SPECS else None
    guides = [
        load_teacher(t, resize=_resize_for(dcfg, i), num_classes=num_classes) for i, t in enumerate(dcfg.teachers)
    ]
    run_dir = Path(cfg.run_dir())
    stages: list[dict[str, Any]] = []
    chain = list(dcfg.assistants) + [None]  # None = the student
    for k, assistant in enumerate(chain):
        if assistant is not None and Path(assistant).is_file():  # an already-trained assistant
            stage_result = {"best": assistant, "skipped": True}
        else:
            if assistant is None:
                stage_cfg = cfg if not dcfg.assistants else dataclasses.replace(cfg, out=str(run_dir / "student"))
            else:
                name, width = parse_model_spec(assistant, "assistant")
                stage_cfg = dataclasses.replace(
                    cfg, model=name, width=width, out=str(run_dir / f"assistant{k + 1}_{name}_w{width:g}"), resume=None
                )
            # A chain step learns from its predecessor only; DGKD lets every earlier guide teach directly.
            teachers = guides if (dcfg.dense or k == 0) else guides[-1:]
            several = len(teachers) > 1
            alpha, temperature = dcfg.kd_params(teachers[0].name, several=several)
            combine = "dense" if dcfg.dense and several else dcfg.ensemble
            hook = DistillLoss(teachers, alpha=alpha, temperature=temperature, combine=combine)
            record = {
                "teachers": [t.name for t in teachers], "alpha": alpha, "temperature": temperature, "combine": combine,
            }
            if cfg.qat:  # quantization-aware fine-tuning of --from CKPT with the KD loss (e.g. the float model's own)
                stage_result = qat_finetune(stage_cfg, loss_hook=hook, extra_state={"distill": record})
            else:
                stage_result = fit_or_skip(stage_cfg, loss_hook=hook, extra_state={"distill": record})
            stage_result.update(record)
        stages.append(stage_result)
        if not stage_result.get("skipped") and stage_result["epochs_done"] < stage_cfg.epochs:
            break  # --stop-epoch: this stage is partial; the next stage must wait for it
        if assistant is not None:
            guide = load_teacher(stage_result["best"], num_classes=num_classes)
            guides = guides + [guide] if dcfg.dense else [guide]
    return {**stages[-1], "stages": stages}

