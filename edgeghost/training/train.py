"""The training loop, in the shape of torchvision's reference script: ``train_one_epoch``, ``evaluate``,
``fit``.

``fit(config, loss_hook=...)`` is the only loop: distillation passes a loss hook instead of forking it, so
progress bars, metrics, checkpoints, resume, AMP, channels_last, ``torch.compile`` and DDP apply to every run.

Resume is exact: data order and augmentation are functions of (seed, epoch, rank) (see
:mod:`edgeghost.data.loader`) and the checkpoint holds model, optimizer, scheduler, scaler and RNG state,
so on CPU ``--epochs 2`` equals ``--epochs 2 --stop-epoch 1`` followed by ``--resume`` bit for bit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ..data import DatasetSpec, Preprocess, open_dataset, split_for_checkpoint
from ..data.loader import augment, make_loader, normalize, set_epoch
from ..errors import EdgeGhostError
from ..fileio import atomic_path, atomic_write_json, check_writable, ensure_dir
from ..models import fused_branches
from .checkpoint import atomic_torch_save, build_model, load_checkpoint, make_checkpoint
from .config import TrainConfig

# loss_hook(student_logits, labels, raw_images) -> scalar loss; raw_images is the augmented uint8 NHWC batch
# on the device, so a teacher can apply its own normalization and resize to exactly the student's batch.
LossHook = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Runtime:
    """Where and how a run executes (derived from the config and the environment, never stored)."""

    device: torch.device
    amp_dtype: torch.dtype | None
    channels_last: bool
    rank: int = 0
    world_size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)


def make_runtime(cfg: TrainConfig) -> Runtime:
    """Resolve device/AMP/channels_last and join the process group when started by ``torchrun``."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    want = cfg.device
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    if want.startswith("cuda") and not torch.cuda.is_available():
        raise EdgeGhostError(f"--device {cfg.device}: CUDA is not available on this machine")
    if want == "cuda":
        want = f"cuda:{local_rank}"
    device = torch.device(want)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    amp = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}
    if cfg.amp == "auto":
        if device.type != "cuda":
            amp_dtype = None
        else:
            amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    elif cfg.amp in amp:
        amp_dtype = amp[cfg.amp]
    else:
        raise EdgeGhostError(f"--amp must be auto, bf16, fp16 or off, not {cfg.amp!r}")
    # None: a run made before channels_last became the default; it resumes with the layout it was trained in.
    channels_last = cfg.channels_last if cfg.channels_last is not None else device.type == "cuda"
    return Runtime(device, amp_dtype, channels_last, rank, world_size)


def warmup_cosine(total_steps: int, warmup: float) -> Callable[[int], float]:
    """Per-step LR factor: linear warm-up over ``warmup`` of all steps, then cosine to 0 at the last step."""
    warm = max(1, round(total_steps * warmup)) if warmup > 0 else 0

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = (step - warm) / max(1, total_steps - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _cross_entropy(label_smoothing: float) -> LossHook:
    loss = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    return lambda logits, labels, raw: loss(logits, labels)


def _to_input(raw: torch.Tensor, spec: DatasetSpec, rt: Runtime) -> torch.Tensor:
    x = normalize(raw, spec)
    return x.contiguous(memory_format=torch.channels_last) if rt.channels_last else x


def train_one_epoch(
    model: nn.Module,
    loader: torch.utils.data.DataLoader,
    *,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    loss_hook: LossHook,
    spec: DatasetSpec,
    rt: Runtime,
    generator: torch.Generator,
    crop_pad: int,
    hflip: bool,
    desc: str = "train",
    progress: bool = True,
) -> dict[str, float]:
    """One pass over ``loader``; returns mean loss, top-1 accuracy (on augmented images) and images/s."""
    model.train()
    loss_sum = torch.zeros((), device=rt.device, dtype=torch.float64)
    correct = torch.zeros((), device=rt.device, dtype=torch.int64)
    seen, start = 0, time.perf_counter()
    bar = tqdm(loader, desc=desc, leave=False, disable=not (progress and rt.main), dynamic_ncols=True)
    for step, (raw, labels) in enumerate(bar):
        raw = raw.to(rt.device, non_blocking=True)
        labels = labels.to(rt.device, non_blocking=True)
        if crop_pad > 0 or hflip:
            raw = augment(raw, generator=generator, pad=crop_pad, hflip=hflip)
        with rt.autocast():
            logits = model(_to_input(raw, spec, rt))
            loss = loss_hook(logits, labels, raw)
        # Checked every 10 steps: each check waits for the GPU.
        if step % 10 == 0 and not torch.isfinite(loss):
            raise EdgeGhostError(f"{desc}: loss became {loss.item()} at step {step}; lower --lr or check the data")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        n = labels.numel()
        loss_sum += loss.detach().double() * n
        correct += (logits.detach().argmax(1) == labels).sum()
        seen += n
        if progress and rt.main and (step % 10 == 0 or step == len(loader) - 1):
            elapsed = time.perf_counter() - start
            bar.set_postfix(
                loss=f"{loss_sum.item() / seen:.3f}", acc=f"{100 * correct.item() / seen:.1f}%",
                img_s=f"{seen * rt.world_size / elapsed:.0f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}",
            )
    elapsed = time.perf_counter() - start
    if not math.isfinite(loss_sum.item()):
        raise EdgeGhostError(f"{desc}: the loss became non-finite; lower --lr or check the data")
    return {
        "train_loss": loss_sum.item() / max(1, seen),
        "train_acc": 100.0 * correct.item() / max(1, seen),
        "images_per_s": seen * rt.world_size / elapsed,
        "lr": optimizer.param_groups[0]["lr"],
    }


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: torch.utils.data.DataLoader,
    *,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    device: torch.device | str = "cpu",
    rt: Runtime | None = None,
    desc: str = "test",
    progress: bool = True,
    keep_logits: bool = False,
) -> dict[str, Any]:
    """Top-1 accuracy and mean cross-entropy of ``model`` on ``loader`` (un-augmented), plus predictions
    (and all logits with ``keep_logits``)."""
    model.eval()
    device = rt.device if rt is not None else torch.device(device)
    loss_sum, correct, seen, preds, all_logits = 0.0, 0, 0, [], []
    bar = tqdm(loader, desc=desc, leave=False, disable=not (progress and (rt is None or rt.main)), dynamic_ncols=True)
    for raw, labels in bar:
        raw, labels = raw.to(device), labels.to(device)
        x = normalize(raw, mean=mean, std=std)
        if rt is not None and rt.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with rt.autocast() if rt is not None else contextlib.nullcontext():
            logits = model(x)
        logits = logits.float()
        loss_sum += nn.functional.cross_entropy(logits, labels, reduction="sum").item()
        pred = logits.argmax(1)
        correct += (pred == labels).sum().item()
        seen += labels.numel()
        preds.append(pred.cpu())
        if keep_logits:
            all_logits.append(logits.cpu())
    return {
        "logits": torch.cat(all_logits) if all_logits else None,
        "test_loss": loss_sum / max(1, seen),
        "test_acc": 100.0 * correct / max(1, seen),
        "correct": correct,
        "total": seen,
        "predictions": torch.cat(preds) if preds else torch.empty(0, dtype=torch.int64),
    }


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resume_checkpoint(path: str | Path) -> dict[str, Any]:
    """The ``last.pt`` of a run folder (or the file itself), validated, with its stored config."""
    path = Path(path)
    ckpt = load_checkpoint(path / "last.pt" if path.is_dir() else path)
    if "config" not in ckpt or "optimizer" not in ckpt:
        raise EdgeGhostError(f"{ckpt['path']} is not a resumable training checkpoint (no config/optimizer state)")
    return ckpt


def plot_metrics(metrics_path: str | Path, png_path: str | Path) -> Path:
    """Loss and accuracy curves of a metrics JSONL file as one PNG (written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in Path(metrics_path).read_text().splitlines() if line.strip()]
    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [r["train_loss"] for r in rows], label="train")
    ax_loss.plot(epochs, [r["test_loss"] for r in rows], label="test")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.plot(epochs, [r["train_acc"] for r in rows], label="train (augmented)")
    ax_acc.plot(epochs, [r["test_acc"] for r in rows], label="test")
    ax_acc.set(xlabel="epoch", ylabel="top-1 %", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    return save_figure(fig, png_path)


def save_figure(fig: Any, path: str | Path) -> Path:
    """Save a matplotlib figure as PNG through :func:`edgeghost.fileio.atomic_path`, then close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return Path(path)


# torch 2.14.1 on x86 CPUs: oneDNN's backward of a dense conv with fewer than 8 input channels (the stem of a
# narrow model, e.g. resnet8 --width 0.25) corrupted the heap ("free(): invalid next size", then abort) in
# 1-thread training on this project's CI machine; on an AMD EPYC (AVX512-BF16) its strided 1×1 weight gradient
# (jit_avx2_1x1_convolution_bwd_weights: ResNet-8 w0.25's 4→8 shortcut) segfaults, NCHW or channels_last. Such
# convs avoid oneDNN while training on the CPU: a 1×1 one is computed as a matrix product over the channels (its
# backward is a matrix product too), a larger one on PyTorch's native kernel. Every other conv keeps oneDNN. The
# numbers are the same convolution, computed by another kernel.
_ONEDNN_MIN_IN_CHANNELS = 8


def _native_small_convs(model: nn.Module) -> int:
    """Route dense convs with < 8 input channels around oneDNN (see above); returns how many."""
    count = 0
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and m.groups == 1 and m.in_channels < _ONEDNN_MIN_IN_CHANNELS:
            pointwise = m.kernel_size == (1, 1) and m.padding == (0, 0) and m.dilation == (1, 1)
            m.forward = _pointwise_as_matmul(m) if pointwise else _without_onednn(m.forward)  # type: ignore
            count += 1
    return count


def _pointwise_as_matmul(conv: nn.Conv2d) -> Callable[[torch.Tensor], torch.Tensor]:
    def forward(x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: conv.stride[0], :: conv.stride[1]]
        y = F.linear(x.permute(0, 2, 3, 1), conv.weight.flatten(1), conv.bias)  # (N, H, W, C_out)
        return y.permute(0, 3, 1, 2)  # NCHW shape, channels_last memory

    return forward


def _without_onednn(forward: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    def wrapped(x: torch.Tensor) -> torch.Tensor:
        with torch.backends.mkldnn.flags(enabled=False):
            return forward(x)

    return wrapped


def _load_weights(model: nn.Module, ckpt: dict[str, Any], cfg: TrainConfig) -> None:
    if ckpt["model"] != cfg.model or abs(float(ckpt["width"]) - float(cfg.width)) > 1e-9:
        raise EdgeGhostError(
            f"--from {ckpt['path']} holds {ckpt['model']} w{ckpt['width']:g}, not {cfg.model} w{cfg.width:g}"
        )
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as err:
        raise EdgeGhostError(f"--from {ckpt['path']} does not fit: {str(err).strip().splitlines()[0]}") from None


def fit(
    cfg: TrainConfig,
    *,
    loss_hook: LossHook | None = None,
    extra_state: dict[str, Any] | None = None,
    model: nn.Module | None = None,
) -> dict[str, Any]:
    """Train ``cfg.model`` on ``cfg.dataset`` and return a summary (run folder, best/final top-1, throughput).

    ``loss_hook`` replaces cross-entropy (distillation; an ``nn.Module`` hook is moved to the device);
    ``extra_state`` is stored in every checkpoint (e.g. the distillation setup, so a resume can rebuild the
    hook). ``model``, when given, is trained instead of one built from ``cfg`` (QAT passes its fake-quant
    module); ``cfg.init_from`` starts a built model from a checkpoint's weights.
    Rank 0 writes ``last.pt`` every epoch, ``best.pt`` on a new best test top-1, ``metrics.jsonl`` and
    ``metrics.png`` in the run folder.
    """
    resumed = None
    if cfg.resume:
        resumed = resume_checkpoint(cfg.resume)
        stored = TrainConfig.from_dict(resumed["config"])
        # The schedule, data and everything that affects the numbers come from the stored run; only where and
        # how to execute may change (EXECUTION_FIELDS). Threads change float reduction order, so the stored
        # value is kept unless --threads is given again.
        given = {k: getattr(cfg, k) for k in EXECUTION_FIELDS}
        given["threads"] = cfg.threads if cfg.threads is not None else stored.threads
        given["data_dir"] = cfg.data_dir or stored.data_dir
        given["out"] = str(Path(cfg.resume) if Path(cfg.resume).is_dir() else Path(cfg.resume).parent)
        cfg = dataclasses.replace(stored, **given)
    run_dir = Path(cfg.run_dir())
    if resumed is None and (run_dir / "last.pt").exists():
        raise EdgeGhostError(f"{run_dir} already holds a run; pass --resume {run_dir} or choose another --out")
    if cfg.epochs < 1 or cfg.batch_size < 1:
        raise EdgeGhostError("--epochs and --batch-size must be >= 1")
    check_writable(run_dir)  # an unwritable --out fails now, in one line, not after the first epoch

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    rt = make_runtime(cfg)
    init = load_checkpoint(cfg.init_from) if cfg.init_from and resumed is None else None
    stored_pp = resumed if resumed is not None else init
    preprocess = Preprocess.from_checkpoint(stored_pp) if stored_pp is not None and "preprocess" in stored_pp else None
    train_split, test_split = open_dataset(
        cfg.dataset, cfg.data_dir, img_size=cfg.img_size, in_chans=cfg.in_chans, preprocess=preprocess,
        verify=cfg.verify, download=cfg.download, val_fraction=cfg.val_fraction, split_seed=cfg.split_seed,
        skip_corrupt=cfg.skip_corrupt,
    )
    spec, preprocess = train_split.spec, train_split.preprocess
    hflip = spec.hflip if cfg.hflip is None else cfg.hflip
    train_split, test_split = train_split.subset(cfg.train_samples), test_split.subset(cfg.test_samples)
    if len(train_split) == 0 or len(test_split) == 0:
        raise EdgeGhostError(f"{cfg.dataset}: the training or evaluation split is empty")
    if rt.world_size > 1 and cfg.batch_size % rt.world_size:
        raise EdgeGhostError(f"--batch-size {cfg.batch_size} is not divisible by {rt.world_size} processes")
    local_batch = cfg.batch_size // rt.world_size
    train_loader = make_loader(
        train_split, batch_size=local_batch, train=True, seed=cfg.seed, workers=cfg.workers,
        distributed=rt.world_size > 1,
    )
    test_loader = make_loader(test_split, batch_size=max(local_batch, 256), train=False, workers=cfg.workers)

    seed_everything(cfg.seed)
    if model is None:
        model = build_model(cfg.model, width=cfg.width, num_classes=spec.num_classes, preprocess=preprocess)
        if init is not None:
            _load_weights(model, init, cfg)
    if resumed is not None:
        try:
            model.load_state_dict(resumed["state_dict"])
        except RuntimeError as err:
            raise EdgeGhostError(f"{resumed['path']} does not fit {cfg.model}: {str(err).splitlines()[0]}") from None
    fused_branches(model, cfg.fused_branches)
    n_params = sum(p.numel() for p in model.parameters())
    if rt.device.type == "cpu":
        _native_small_convs(model)
    model.to(rt.device, memory_format=torch.channels_last if rt.channels_last else torch.preserve_format)
    if isinstance(loss_hook, nn.Module):
        loss_hook.to(rt.device)
    loss_hook = loss_hook or _cross_entropy(cfg.label_smoothing)

    optimizer = torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0,
        weight_decay=cfg.weight_decay,
    )
    total_steps = cfg.epochs * len(train_loader)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total_steps, cfg.warmup))
    scaler = torch.amp.GradScaler(rt.device.type, enabled=rt.amp_dtype == torch.float16)
    start_epoch, best_acc = 0, -1.0
    if resumed is not None:
        optimizer.load_state_dict(resumed["optimizer"])
        scheduler.load_state_dict(resumed["scheduler"])
        scaler.load_state_dict(resumed["scaler"])
        _set_rng_state(resumed["rng"])
        start_epoch, best_acc = int(resumed["epoch"]), float(resumed.get("best_acc", -1.0))

    net = model
    if rt.world_size > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[rt.device] if rt.device.type == "cuda" else None)
    if cfg.compile:
        net = torch.compile(net)

    metrics_path, summary = run_dir / "metrics.jsonl", {}
    if rt.main:
        ensure_dir(run_dir)
        atomic_write_json(run_dir / "config.json", cfg.to_dict())
    end_epoch = min(cfg.epochs, cfg.stop_epoch) if cfg.stop_epoch else cfg.epochs
    gen_device = rt.device if rt.device.type == "cuda" else "cpu"
    for epoch in range(start_epoch, end_epoch):
        set_epoch(train_loader, epoch=epoch, seed=cfg.seed)
        generator = torch.Generator(gen_device).manual_seed((cfg.seed * 1_000_003 + epoch) * 1024 + rt.rank)
        stats = train_one_epoch(
            net, train_loader, optimizer=optimizer, scheduler=scheduler, scaler=scaler, loss_hook=loss_hook,
            spec=spec, rt=rt, generator=generator, crop_pad=cfg.crop_pad, hflip=hflip,
            desc=f"epoch {epoch + 1}/{cfg.epochs}", progress=cfg.progress,
        )
        test = evaluate(model, test_loader, mean=spec.mean, std=spec.std, rt=rt, progress=cfg.progress)
        row = {"epoch": epoch + 1, **stats, "test_loss": test["test_loss"], "test_acc": test["test_acc"]}
        is_best = test["test_acc"] > best_acc
        best_acc = max(best_acc, test["test_acc"])
        if rt.main:
            ckpt = make_checkpoint(
                model, model_name=cfg.model, dataset=cfg.dataset, classes=spec.classes, mean=spec.mean, std=spec.std,
                preprocess=preprocess, data_dir=_abs(cfg.data_dir), epoch=epoch + 1, metrics=row, config=cfg.to_dict(), best_acc=best_acc, world_size=rt.world_size,
                optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(), scaler=scaler.state_dict(),
                rng=_rng_state(), params=n_params, **(extra_state or {}),
            )
            atomic_torch_save(ckpt, run_dir / "last.pt")
            if is_best:
                atomic_torch_save(ckpt, run_dir / "best.pt")
            with metrics_path.open("a") as f:
                f.write(json.dumps(row) + "\n")
            tqdm.write(
                f"{run_dir.name}: epoch {epoch + 1}/{cfg.epochs}  loss {row['train_loss']:.4f}  "
                f"train {row['train_acc']:.2f}%  test {row['test_acc']:.2f}%  best {best_acc:.2f}%  "
                f"{row['images_per_s']:.0f} img/s"
            )
        summary = row
    if rt.main and metrics_path.exists():
        plot_metrics(metrics_path, run_dir / "metrics.png")
    if rt.world_size > 1:
        dist.barrier()
    return {
        "run_dir": str(run_dir),
        "last": str(run_dir / "last.pt"),
        "best": str(run_dir / "best.pt"),
        "best_acc": best_acc,
        "final": summary,
        "epochs_done": max(start_epoch, end_epoch),
        "params": n_params,
        "world_size": rt.world_size,
    }


def _abs(path: str | None) -> str | None:
    return str(Path(path).resolve()) if path else None


FORMS_AGREE_PP = 0.1  # largest top-1 difference (pp) between train and deploy form that float rounding explains

# Config fields that say where/how a run executes: the only ones that may differ when a run is continued
# (fit's resume and fit_or_skip's "same run?" check use this one list). ``threads`` is among them, but a resume
# keeps the stored value unless it is given again (it changes float summation order).
EXECUTION_FIELDS = (
    "out", "resume", "stop_epoch", "progress", "device", "workers", "threads", "data_dir", "download", "verify",
)


def fit_or_skip(cfg: TrainConfig, **fit_kwargs: Any) -> dict[str, Any]:
    """:func:`fit`, but a run folder that already holds this run is skipped when complete and resumed when
    partial; one that holds a different run is an error (nothing is overwritten)."""
    run_dir = Path(cfg.run_dir())
    last = run_dir / "last.pt"
    if not last.exists():
        return fit(cfg, **fit_kwargs)
    ckpt = resume_checkpoint(last)
    stored = {k: v for k, v in ckpt["config"].items() if k not in EXECUTION_FIELDS}
    wanted = {k: v for k, v in cfg.to_dict().items() if k not in EXECUTION_FIELDS}
    extra = fit_kwargs.get("extra_state") or {}
    differs = [k for k in wanted if stored.get(k) != wanted[k]] + [k for k in extra if ckpt.get(k) != extra[k]]
    if differs:
        raise EdgeGhostError(f"{run_dir} holds a different run ({', '.join(differs)} differ); choose another --out")
    if ckpt["epoch"] >= ckpt["config"]["epochs"]:
        return {
            "run_dir": str(run_dir), "last": str(last), "best": str(run_dir / "best.pt"),
            "best_acc": float(ckpt["best_acc"]), "final": ckpt["metrics"], "epochs_done": ckpt["epoch"],
            "params": ckpt.get("params"),
            "world_size": ckpt.get("world_size", 1), "skipped": True,
        }
    return fit(dataclasses.replace(cfg, resume=str(run_dir)), **fit_kwargs)


def evaluate_checkpoint(
    checkpoint: str | Path,
    *,
    deploy: bool = False,
    width: float | None = None,
    data_dir: str | Path | None = None,
    test_samples: int | None = None,
    batch_size: int = 256,
    verify: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Top-1 of a checkpoint on its dataset's test split with the checkpoint's own normalization; with
    ``deploy`` also of ``reparameterize(model)``, and how far the two forms' logits and predictions differ."""
    from ..models import reparameterize
    from .checkpoint import model_from_checkpoint

    ckpt = load_checkpoint(checkpoint)
    model = model_from_checkpoint(ckpt, width=width)
    split = split_for_checkpoint(ckpt, "test", data_dir, verify=verify).subset(test_samples)
    if split.spec.num_classes != ckpt["num_classes"]:
        raise EdgeGhostError(
            f"{checkpoint} has {ckpt['num_classes']} classes but {ckpt['dataset']} has {split.spec.num_classes}"
        )
    loader = make_loader(split, batch_size=batch_size, train=False)
    norm = {"mean": tuple(ckpt["mean"]), "std": tuple(ckpt["std"])}
    train_form = evaluate(model, loader, **norm, keep_logits=deploy, progress=progress, desc="train form")
    report = {
        "checkpoint": str(checkpoint), "model": ckpt["model"], "width": ckpt["width"], "dataset": ckpt["dataset"],
        "epoch": ckpt["epoch"], "total": train_form["total"], "train_form_acc": train_form["test_acc"],
    }
    if deploy:
        try:
            deployed = reparameterize(model)
        except RuntimeError as err:  # e.g. a torchvision teacher: plain conv + BatchNorm, no deploy form
            raise EdgeGhostError(f"{ckpt['model']} has no deploy form: {err}") from None
        deploy_form = evaluate(deployed, loader, **norm, keep_logits=True, progress=progress, desc="deploy form")
        report.update(
            deploy_form_acc=deploy_form["test_acc"],
            disagreements=int((train_form["predictions"] != deploy_form["predictions"]).sum()),
            max_logit_diff=float((train_form["logits"] - deploy_form["logits"]).abs().max()) if len(split) else 0.0,
        )
        # Reparameterization is exact up to float rounding: the two forms must score the same.
        report["forms_agree"] = abs(report["train_form_acc"] - report["deploy_form_acc"]) <= FORMS_AGREE_PP
    return report
