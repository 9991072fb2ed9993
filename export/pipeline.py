"""The export chain's one entry point: :func:`export_model`.

train-form torch → reparameterize (verified) → ONNX (verified with onnxruntime) → TFLite fp32 (verified with
LiteRT) → full-integer int8 TFLite (calibrated on real training images) → TFLite-Micro artefacts (arena measured
in the real interpreter) → fidelity ladder on real test images → manifest. Everything is written into a temp
folder next to the destination and renamed into place at the end, so a failed export leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EdgeGhostError
from ..fileio import atomic_write_json, check_writable, current_umask
from ..sysinfo import file_digest, tool_versions

DEFAULT_MODEL = "ghostnetv3_small"
DEFAULT_DATASET = "fashion_mnist"
DEFAULT_CALIB_SAMPLES = 500
DEFAULT_EVAL_SAMPLES = 500
REPARAM_RTOL = 1e-5  # deploy form vs train form, relative to the largest logit
PARITY_TOL = 1e-4  # ONNX vs torch and TFLite fp32 vs ONNX: max abs logit diff, scaled up for logits beyond ±1
PARITY_IMAGES = 64  # real test images used for the stage checks (the ladder uses all eval images)
# TFLite-Micro vs LiteRT reference kernels, int8 output LSB. Not always bit-exact: comparing every intermediate
# tensor, the first difference is always a 1-LSB rounding difference in an int8 MUL (SE/DFC gates) or
# FULLY_CONNECTED kernel; a MUL difference can grow to 3 LSB by the output (GN-S w1.0, 8 of 50 images). A real
# conversion or kernel fault is far larger, so more than 4 LSB stops the export; the counts go to fidelity.json.
TFLM_TOLERANCE_LSB = 4
# The same for int16x8's int16 outputs, whose step is ~256× finer: the kernels' 1-step rounding differences reach
# the output as a few int16 steps (GN-S w0.25: at most 6 on 74 of 100 images); 64 steps is still ~1/4 of an int8 step.
TFLM_TOLERANCE_LSB_INT16 = 64
# Test images TFLite-Micro runs (the first ones of the eval set; 0 = all). Its reference kernels are the slowest
# runtime (85 ms per w2.8 image against LiteRT's 67 ms on the same reference kernels), and they reproduce LiteRT's
# reference kernels, which the int8 row runs on every eval image; 100 images prove that, the rest would repeat it.
DEFAULT_TFLM_SAMPLES = 100
LAYER_REPORT_IMAGES = 32  # test images for the per-layer int8 report (it keeps every tensor of both models)
BN_STAT_IMAGES = 64  # untrained models only: real images that set the BatchNorm statistics

TOOLS = ("torch", "onnx", "onnxruntime", "onnxsim", "onnx2tf", "tensorflow", "tf_keras", "ai-edge-litert",
         "tflite-micro", "numpy")
UNTRAINED_WARNING = (
    "WARNING: no checkpoint given: exporting {model} w{width:g} with UNTRAINED random weights. The files are "
    "good for size, memory and latency measurements only; accuracy numbers are meaningless. "
    "Pass --checkpoint runs/<name>/best.pt to export trained weights."
)


@dataclass
class ExportResult:
    """What :func:`export_model` produced: the folder, its files, the ladder and the stage timings."""

    out_dir: Path
    files: dict[str, Path]
    ladder: list[Any]
    manifest: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    trained: bool = True


# --- small helpers ---------------------------------------------------------------------------------------

def _say(message: str, verbose: bool) -> None:
    if verbose:
        print(message, file=sys.stderr, flush=True)


def _cpu_seconds() -> float:
    t = os.times()  # includes finished child processes (TFLite-Micro runs in children)
    return t.user + t.system + t.children_user + t.children_system


@contextlib.contextmanager
def _timed(timings: dict[str, float], name: str, verbose: bool) -> Iterator[None]:
    """Wall time of a stage into ``timings``; CPU time (all threads and children) into ``timings['cpu_s']``,
    because on a shared machine the wall time alone says little."""
    _say(f"[export] {name} ...", verbose)
    start, cpu = time.perf_counter(), _cpu_seconds()
    yield
    timings[name] = round(time.perf_counter() - start, 3)
    timings.setdefault("cpu_s", {})[name] = round(_cpu_seconds() - cpu, 2)  # type: ignore[index]
    _say(f"[export] {name} done in {timings[name]:.1f} s (CPU {timings['cpu_s'][name]:.1f} s)", verbose)


def _tool_versions() -> dict[str, str]:
    return {"python": platform.python_version(), **tool_versions(("edgeghost", *TOOLS))}


def _check_parity(name: str, got: np.ndarray, ref: np.ndarray, ref_name: str) -> float:
    diff = float(np.abs(got - ref).max())
    limit = PARITY_TOL * max(1.0, float(np.abs(ref).max()))
    if not np.isfinite(diff) or diff > limit:
        raise EdgeGhostError(
            f"{name} does not match {ref_name}: max abs logit diff {diff:.3g} > {limit:.3g} "
            f"(tolerance {PARITY_TOL:g} × max(1, max |logit| = {np.abs(ref).max():.3g})); export stopped"
        )
    return diff


# --- model and data ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Source:
    model: Any  # train-form torch model, eval mode
    name: str
    width: float
    dataset: str
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    checkpoint: str | None
    trained: bool
    preprocess: Any  # edgeghost.data.Preprocess: input size, channels, resize rule, mean/std
    ckpt: dict[str, Any] | None = None  # the loaded checkpoint (its data split is reproduced exactly)


def _load_source(
    *, model: str | None, width: float | None, checkpoint: str | Path | None, dataset: str | None, seed: int,
    data_dir: str | Path | None = None, img_size: int | None = None, in_chans: int | None = None,
) -> _Source:
    import torch

    from ..data import Preprocess, get_spec, load_split
    from ..models import check_width
    from ..training.checkpoint import build_model

    if checkpoint is not None:
        from ..training.checkpoint import load_checkpoint, model_from_checkpoint

        ckpt = load_checkpoint(checkpoint)
        if model is not None and model != ckpt["model"]:
            raise EdgeGhostError(f"checkpoint {checkpoint} holds {ckpt['model']}, not {model}")
        if dataset is not None and dataset != ckpt["dataset"]:
            raise EdgeGhostError(f"checkpoint {checkpoint} was trained on {ckpt['dataset']}, not {dataset}")
        pp = Preprocess.from_checkpoint(ckpt)
        for flag, value, have in (("--img-size", img_size, pp.img_size), ("--in-chans", in_chans, pp.in_chans)):
            if value is not None and int(value) != have:
                raise EdgeGhostError(f"checkpoint {checkpoint} takes {pp.img_size}×{pp.img_size}×{pp.in_chans} "
                                     f"input; {flag} {value} contradicts it")
        net = model_from_checkpoint(ckpt, width=width)
        classes = tuple(ckpt.get("classes") or get_spec(ckpt["dataset"]).classes)
        return _Source(net, ckpt["model"], float(ckpt["width"]), ckpt["dataset"], classes,
                       tuple(pp.mean), tuple(pp.std), str(checkpoint), True, pp, ckpt)
    name = model or DEFAULT_MODEL
    dataset = dataset or DEFAULT_DATASET
    if dataset == "folder":
        raise EdgeGhostError("export an image-folder model from its checkpoint (--checkpoint runs/NAME/best.pt)")
    spec = get_spec(dataset)
    width = check_width(1.0 if width is None else width)
    # The input contract an untrained model is built for (mean/std measured or known for the dataset).
    pp = load_split(dataset, "test", data_dir, img_size=img_size, in_chans=in_chans).preprocess
    torch.manual_seed(seed)
    net = build_model(name, width=width, num_classes=spec.num_classes, preprocess=pp).eval()
    return _Source(net, name, width, spec.name, spec.classes, tuple(pp.mean), tuple(pp.std), None, False, pp)


def _split(src: _Source, split: str, data_dir: str | Path | None) -> Any:
    """A split preprocessed exactly as the model's training data (the checkpoint's rule, or the defaults)."""
    from ..data import load_split, split_for_checkpoint

    if src.ckpt is not None:
        return split_for_checkpoint(src.ckpt, split, data_dir)
    return load_split(src.dataset, split, data_dir, preprocess=src.preprocess)


def _pick(n_total: int, n: int, seed: int) -> np.ndarray:
    """A fixed, seeded sample of indices (a permutation prefix: a bigger n includes the smaller n's images)."""
    return np.random.default_rng(seed).permutation(n_total)[: min(n, n_total)]


def torch_logits(model: Any, images: np.ndarray, *, mean: tuple[float, ...] | None = None,
                  std: tuple[float, ...] | None = None) -> np.ndarray:
    """Float logits of a torch model for uint8 NHWC images; normalizes first when ``mean``/``std`` are given
    (train form), otherwise feeds raw pixels (the export form normalizes inside)."""
    import torch

    from ..data.loader import normalize

    outs = []
    with torch.no_grad():
        for start in range(0, len(images), 250):
            raw = torch.from_numpy(images[start : start + 250])
            x = normalize(raw, mean=mean, std=std) if mean is not None else raw.permute(0, 3, 1, 2).float()
            outs.append(model(x).double().numpy())
    return np.concatenate(outs)


def _folder_source(src: _Source) -> dict[str, Any]:
    """Where an image-folder model's data lives and how it was split, so bench/firmware find the same test images."""
    if src.dataset != "folder" or src.ckpt is None:
        return {}
    cfg = src.ckpt.get("config") or {}
    return {"data_dir": src.ckpt.get("data_dir") or cfg.get("data_dir"), "val_fraction": cfg.get("val_fraction", 0.1),
            "split_seed": cfg.get("split_seed", 0)}


def _span_pixel_range(images: np.ndarray) -> np.ndarray:
    """The int8 input contract is ``q = pixel − 128`` (scale 1), so calibration must see pixels 0 and 255. Real
    image sets often do not (a dim camera, a resized folder): then one pixel of the first calibration image is
    set to 0 and one to 255 — two pixels of the whole set, which moves no inner activation range measurably."""
    if images.size == 0 or (images.min() == 0 and images.max() == 255):
        return images
    images = images.copy()
    images[0, 0, 0, :] = 0
    images[0, 0, -1, :] = 255
    return images


@dataclass(frozen=True)
class _Data:
    eval_images: np.ndarray  # uint8 NHWC test images for the checks and the ladder
    eval_labels: np.ndarray
    calib_images: np.ndarray | None  # uint8 NHWC calibration images (None without quantization)
    calib: dict[str, Any]  # how the calibration set was made, for the manifest

    @property
    def check_images(self) -> np.ndarray:
        return self.eval_images[:PARITY_IMAGES]


def _load_data(src: _Source, *, data_dir: str | Path | None, quantize: bool, calib_samples: int,
               calib_random_noise: bool, eval_samples: int, seed: int) -> _Data:
    """Eval images from the test split, calibration images from the training split (same preprocessing as
    training: raw pixels, normalized inside the model). Untrained models also get BatchNorm statistics."""
    from ..models import estimate_bn_statistics

    test = _split(src, "test", data_dir)
    if len(test) == 0:
        raise EdgeGhostError(f"no evaluation data: the {src.dataset} test split is empty")
    eval_idx = _pick(len(test), eval_samples, seed)
    train = None
    if (quantize and not calib_random_noise) or not src.trained:
        train = _split(src, "train", data_dir)
        if len(train) == 0:
            raise EdgeGhostError(f"no calibration data: the {src.dataset} training split is empty")
    if not src.trained:
        estimate_bn_statistics(src.model, train.array(_pick(len(train), BN_STAT_IMAGES, seed + 2)),
                               mean=src.mean, std=src.std)
    calib_images, calib = None, {}
    if quantize and calib_random_noise:
        calib_images = np.random.default_rng(seed).integers(0, 256, (calib_samples, *src.preprocess.hwc),
                                                            dtype=np.uint8)
        calib = {"source": "UNIFORM RANDOM PIXELS (--calib-random-noise), not real images",
                 "samples": calib_samples, "seed": seed}
    elif quantize:
        picked = train.array(_pick(len(train), calib_samples, seed + 1))
        calib_images = _span_pixel_range(picked)
        calib = {"source": f"{src.dataset} training split (real images)", "samples": len(calib_images),
                 "pixel_range_forced": calib_images is not picked,
                 "seed": seed + 1, "preprocessing": "raw pixels; the normalization is the model's first op"}
    return _Data(test.array(eval_idx), test.labels[eval_idx], calib_images, calib)


# --- runtimes (all artefact invocation goes through edgeghost.runtime) -----------------------------------

def _runner(path: Path, **kwargs: Any) -> Any:
    """A runner for an exported file (onnxruntime, LiteRT or TFLite-Micro), 1 thread."""
    from ..runtime import load_runner

    return load_runner(path, threads=1, **kwargs)


def _predict(path: Path, images: np.ndarray, **kwargs: Any) -> np.ndarray:
    """Float logits of an exported file for uint8 NHWC images."""
    return np.asarray(_runner(path, **kwargs).predict(images), dtype=np.float64)


# --- output folder -----------------------------------------------------------------------------------------

def _prepare_out(out: Path) -> Path:
    """Check the destination before any work and return a fresh temp folder beside it."""
    if out.exists() and not out.is_dir():
        raise EdgeGhostError(f"output {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "manifest.json").is_file():
        raise EdgeGhostError(f"output folder {out} is not empty and is not an edgeghost export; refusing to replace it")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        # Absolute: the converters change directories while background evaluations read the artefacts.
        return Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent)).resolve()
    except OSError as err:
        raise EdgeGhostError(f"cannot write the export to {out}: {err.strerror or err}") from None


def _commit(tmp: Path, out: Path) -> None:
    """Move the finished temp folder into place; an older export there is replaced only after success."""
    mode = 0o777 & ~current_umask()
    for folder in (tmp, *(p for p in tmp.rglob("*") if p.is_dir())):
        folder.chmod(mode)  # mkdtemp makes 0700 folders; an export is meant to be shared
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{int(time.time() * 1000)}")
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# --- the stages -------------------------------------------------------------------------------------------

@dataclass
class _Run:
    """What the stages share: the model and data, the temp folder, and what each stage made and measured."""

    src: _Source
    data: _Data
    tmp: Path
    calib_method: str
    tflm_samples: int  # eval images TFLite-Micro runs (the first ones)
    bias_correction: bool = False
    files: dict[str, Path] = field(default_factory=dict)  # stage key → artefact in ``tmp``
    logits: dict[str, np.ndarray] = field(default_factory=dict)  # stage key → float logits on the eval images
    raw: dict[str, np.ndarray] = field(default_factory=dict)  # integer stages: raw outputs on the eval images
    checks: dict[str, Any] = field(default_factory=dict)  # the gates' measured values (manifest "checks")
    quant: dict[str, Any] = field(default_factory=dict)  # quantized models' I/O facts
    tflm: dict[str, dict[str, Any]] = field(default_factory=dict)  # tflm stage key → its tflm.json facts
    made: dict[str, Any] = field(default_factory=dict)  # in-memory products: deploy-form model, Keras model


@dataclass(frozen=True)
class Stage:
    """One row of the export: what it writes, what it is made from, what it must match and how closely.

    ``build`` writes the artefact into the temp folder (and raises when a structural check fails);
    ``evaluate`` returns its float logits on the eval images; ``gate`` compares them with the ``reference``
    stage's and raises beyond ``tolerance``. ``ladder``: a rung of the fidelity ladder (int16x8 is a side branch,
    compared with TFLite fp32). ``background``: evaluated in a worker thread while the next stage builds."""

    key: str
    artifact: str  # file or folder in the export; "-" for a stage that stays in memory
    label: str
    source: str | None
    reference: str | None
    tolerance: str
    build: Callable[[_Run], None]
    evaluate: Callable[[_Run], np.ndarray]
    gate: Callable[[_Run, Stage, np.ndarray, np.ndarray], None] | None = None
    ladder: bool = True
    background: bool = False


def _parity_gate(check_name: str) -> Callable[[_Run, Stage, np.ndarray, np.ndarray], None]:
    """Max abs logit difference on the first PARITY_IMAGES eval images within PARITY_TOL (scaled); the measured
    difference goes to ``checks[check_name]``."""

    def gate(run: _Run, stage: Stage, got: np.ndarray, ref: np.ndarray) -> None:
        n = len(run.data.check_images)
        run.checks[check_name] = _check_parity(stage.label, got[:n], ref[:n], STAGES[stage.reference].label)

    return gate


def _build_torch(run: _Run) -> None:
    pass  # the train-form model from the checkpoint: nothing to write


def _eval_torch(run: _Run) -> np.ndarray:
    return torch_logits(run.src.model, run.data.eval_images, mean=run.src.mean, std=run.src.std)


def _build_deploy(run: _Run) -> None:
    import torch

    from ..data.loader import normalize
    from ..models import reparameterization_error, reparameterize
    from .onnx import export_form

    src = run.src
    run.made["deployed"] = export_form(reparameterize(src.model), mean=src.mean, std=src.std)
    # The gate checks the fusion itself in float64; the float32 difference is reported (it also contains rounding,
    # which an untrained net's tiny logits amplify) and shows in the fidelity ladder.
    rel = reparameterization_error(
        src.model, normalize(torch.from_numpy(run.data.check_images[:8]), mean=src.mean, std=src.std))
    if not rel <= REPARAM_RTOL:
        raise EdgeGhostError(
            f"reparameterized {src.name} differs from the train form by {rel:.3g} (relative, float64) > "
            f"{REPARAM_RTOL:g}; refusing to export an unverified model")
    run.checks["reparameterize_rel_diff_float64"] = rel


def _eval_deploy(run: _Run) -> np.ndarray:
    return torch_logits(run.made["deployed"], run.data.eval_images)


def _gate_deploy(run: _Run, stage: Stage, got: np.ndarray, ref: np.ndarray) -> None:
    run.checks["reparameterize_rel_diff_float32"] = float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-12))


def _build_onnx(run: _Run) -> None:
    from .onnx import export_onnx

    pp = run.src.preprocess
    run.files["onnx"] = export_onnx(run.made["deployed"], run.tmp / STAGES["onnx"].artifact, in_chans=pp.in_chans,
                                    img_size=pp.img_size)


def _build_fp32(run: _Run) -> None:
    from .tflite import convert_fp32, onnx_to_keras

    run.made["keras"] = onnx_to_keras(run.files["onnx"], sample_images=run.data.check_images,
                                      work_dir=run.tmp / ".work")
    shutil.rmtree(run.tmp / ".work", ignore_errors=True)
    run.files["tflite_fp32"] = convert_fp32(run.made["keras"], run.tmp / STAGES["tflite_fp32"].artifact)


def _file_eval(key: str, **kwargs: Any) -> Callable[[_Run], np.ndarray]:
    def evaluate(run: _Run) -> np.ndarray:
        return _predict(run.files[key], run.data.eval_images, **kwargs)

    return evaluate


def _build_quantized(key: str, mode: str) -> Callable[[_Run], None]:
    def build(run: _Run) -> None:
        from .tflite import (BIAS_CORRECTION_IMAGES, DEFAULT_PERCENTILE, HISTOGRAM_IMAGES, check_full_integer,
                             convert_quantized, inspect_tflite)

        calib = run.data.calib_images
        method = run.calib_method if mode == "int8" else "minmax"  # int16x8 takes TFLite's min/max ranges only
        correct = run.bias_correction and mode == "int8"
        run.files[key] = convert_quantized(run.made["keras"], run.tmp / STAGES[key].artifact, calib_images=calib,
                                           mode=mode, method=method, bias_correction=correct)
        facts = inspect_tflite(run.files[key])
        check_full_integer(facts, mode=mode)
        run.quant[mode] = facts.to_dict()
        if mode == "int8":
            run.data.calib.update(method=method, **(
                {"percentile": DEFAULT_PERCENTILE, "histogram_images": min(HISTOGRAM_IMAGES, len(calib))}
                if method in ("percentile", "mse") else {}),
                bias_correction={"images": min(BIAS_CORRECTION_IMAGES, len(calib))} if correct else False)

    return build


def _raw_outputs(make_runner: Callable[[], Any], images: np.ndarray) -> tuple[Any, np.ndarray]:
    """Raw outputs for ``images``, one runner per half on both cores (:func:`~edgeghost.export.tflite.map_halves`);
    the outputs do not depend on the split. Returns one of the runners (for ``finish``) and the outputs."""
    from .tflite import map_halves

    runners: list[Any] = []

    def run_part(part: np.ndarray) -> np.ndarray:
        runner = make_runner()
        runners.append(runner)
        return np.asarray(runner.run_raw(runner.prepare(part)))

    raw = np.concatenate(map_halves(run_part, images))
    return runners[0], raw


def _eval_integer(key: str) -> Callable[[_Run], np.ndarray]:
    """A full-integer model on LiteRT's reference kernels; its raw outputs are kept for the TFLM gate."""
    def evaluate(run: _Run) -> np.ndarray:
        ref, run.raw[key] = _raw_outputs(  # int8: q = pixel - 128
            lambda: _runner(run.files[key], reference_kernels=True), run.data.eval_images)
        return ref.finish(run.raw[key]).astype(np.float64)

    return evaluate


# The TFLite-Micro stages (``tflm``, ``tflm_int16x8``) embed the full-integer model they are made from (their
# ``source``). The gates' check names carry the int16x8 stage's suffix, so the int8 names stay what they were.
def _tflm_check(key: str, name: str) -> str:
    return f"tflm_vs_litert_reference_{name}" + key.removeprefix("tflm")


def _build_tflm(key: str) -> Callable[[_Run], None]:
    def build(run: _Run) -> None:
        from .tflm import write_tflm_artifacts

        run.tflm[key] = write_tflm_artifacts(run.files[STAGES[key].source], run.tmp / STAGES[key].artifact,
                                             labels=list(run.src.classes))
        run.files[key] = run.tmp / STAGES[key].artifact

    return build


def _eval_tflm(key: str) -> Callable[[_Run], np.ndarray]:
    def evaluate(run: _Run) -> np.ndarray:
        # Run in the arena size the firmware gets, so the export also proves that size works.
        tflm, run.raw[key] = _raw_outputs(
            lambda: _runner(run.files[STAGES[key].source], backend="tflm", arena_size=run.tflm[key]["arena_bytes"]),
            run.data.eval_images[: run.tflm_samples])
        return tflm.finish(run.raw[key]).astype(np.float64)

    return evaluate


def _gate_tflm(run: _Run, stage: Stage, got: np.ndarray, ref: np.ndarray) -> None:
    tflm = run.raw[stage.key]
    litert = run.raw[stage.source][: len(tflm)]
    mismatched = int((tflm != litert).any(axis=1).sum())
    max_lsb = int(np.abs(tflm.astype(np.int32) - litert).max())
    tolerance = TFLM_TOLERANCE_LSB if tflm.dtype == np.int8 else TFLM_TOLERANCE_LSB_INT16
    run.checks[_tflm_check(stage.key, "mismatched_images")] = mismatched
    run.checks[_tflm_check(stage.key, "max_lsb")] = max_lsb
    run.checks[_tflm_check(stage.key, "images")] = len(tflm)
    if max_lsb > tolerance:
        raise EdgeGhostError(
            f"TFLite-Micro {tflm.dtype} outputs differ from LiteRT's reference kernels by up to {max_lsb} LSB "
            f"(on {mismatched} of {len(tflm)} images; tolerance {tolerance} LSB)")


_PARITY = f"max abs logit Δ ≤ {PARITY_TOL:g} × max(1, max |logit|) on {PARITY_IMAGES} test images"

# The export, in order. Keys are the format names `edgeghost bench --formats` uses; a requested format brings
# the stages it is made from. The table drives the loop, the fidelity ladder and the manifest.
STAGES: dict[str, Stage] = {s.key: s for s in (
    Stage("torch", "-", "torch train form", None, None, "the reference", _build_torch, _eval_torch),
    Stage("torch_deploy", "-", "torch deploy form", "torch", "torch",
          f"float64 relative logit Δ ≤ {REPARAM_RTOL:g} (reparameterization_error)",
          _build_deploy, _eval_deploy, _gate_deploy),
    Stage("onnx", "model.onnx", "ONNX (onnxruntime)", "torch_deploy", "torch_deploy", _PARITY,
          _build_onnx, _file_eval("onnx"), _parity_gate("onnx_vs_torch_max_abs_diff"), background=True),
    Stage("tflite_fp32", "model_fp32.tflite", "TFLite fp32 (LiteRT)", "onnx", "onnx", _PARITY,
          _build_fp32, _file_eval("tflite_fp32"), _parity_gate("tflite_fp32_vs_onnx_max_abs_diff"),
          background=True),
    Stage("tflite_int8", "model_int8.tflite", "TFLite int8 (LiteRT reference kernels)", "tflite_fp32",
          "tflite_fp32", "full-integer I/O and ops (check_full_integer); accuracy drop reported, not gated",
          _build_quantized("tflite_int8", "int8"), _eval_integer("tflite_int8"), background=True),
    Stage("tflm", "tflm/", "TFLite-Micro int8", "tflite_int8", "tflite_int8",
          f"int8 outputs ≤ {TFLM_TOLERANCE_LSB} LSB from LiteRT's reference kernels on every image it runs",
          _build_tflm("tflm"), _eval_tflm("tflm"), _gate_tflm),
    Stage("tflite_int16x8", "model_int16x8.tflite", "TFLite int16x8 (LiteRT reference kernels)", "tflite_fp32",
          "tflite_fp32", "full-integer int16 activations (check_full_integer); side branch, not gated",
          _build_quantized("tflite_int16x8", "int16x8"), _eval_integer("tflite_int16x8"), ladder=False),
    Stage("tflm_int16x8", "tflm_int16x8/", "TFLite-Micro int16x8", "tflite_int16x8", "tflite_int16x8",
          f"int16 outputs ≤ {TFLM_TOLERANCE_LSB_INT16} LSB from LiteRT's reference kernels on every image it runs",
          _build_tflm("tflm_int16x8"), _eval_tflm("tflm_int16x8"), _gate_tflm, ladder=False),
)}
FORMATS = tuple(k for k, s in STAGES.items() if s.artifact != "-")  # what --formats accepts
DEFAULT_FORMATS = ("onnx", "tflite_fp32")


def select_stages(formats: Sequence[str]) -> list[Stage]:
    """The stages that make ``formats``, with every stage they are made from, in table order."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise EdgeGhostError(f"unknown export format {unknown[0]!r}; choose from: {', '.join(FORMATS)}")
    needed: set[str] = set()
    for key in formats:
        while key is not None and key not in needed:
            needed.add(key)
            key = STAGES[key].source
    return [s for k, s in STAGES.items() if k in needed]


def _run_stages(run: _Run, stages: list[Stage], *, timings: dict[str, float], verbose: bool) -> None:
    """Build each stage, evaluate it and gate it against its reference, in table order; raise on a failed gate.
    A ``background`` stage is evaluated in a worker while the next one builds, and gated once its outputs are
    there (a failure still stops the export, only later)."""

    def evaluate(stage: Stage) -> np.ndarray:
        with _timed(timings, f"{stage.key} eval", verbose):
            return stage.evaluate(run)

    pending: dict[str, Future[np.ndarray]] = {}

    def logits(key: str) -> np.ndarray:
        if key not in run.logits:
            run.logits[key] = pending.pop(key).result()
        return run.logits[key]

    def gate(stage: Stage) -> None:
        if stage.gate is not None and stage.reference is not None:
            stage.gate(run, stage, logits(stage.key), logits(stage.reference))

    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            for stage in stages:
                with _timed(timings, stage.key, verbose):
                    stage.build(run)
                if stage.background:
                    pending[stage.key] = pool.submit(evaluate, stage)
                else:
                    run.logits[stage.key] = evaluate(stage)
                    gate(stage)
            for stage in stages:
                if stage.background:
                    logits(stage.key)
                    gate(stage)
        finally:
            for job in pending.values():
                job.cancel()


def _write_layer_report(run: _Run, timings: dict[str, float], verbose: bool) -> None:
    from .fidelity import layer_report as build_layer_report, layer_report_table

    images = run.data.check_images[:LAYER_REPORT_IMAGES]
    with _timed(timings, "layer_report", verbose):
        rows = build_layer_report(run.files["tflite_fp32"], run.files["tflite_int8"], images)
        (run.tmp / "int8_layers.json").write_text(json.dumps([r.__dict__ for r in rows], indent=2) + "\n")
        (run.tmp / "int8_layers.md").write_text(
            f"# int8 error per layer ({len(images)} test images)\n\n"
            "Relative RMS error of each int8 activation against the fp32 model's, ops that add the most "
            f"first.\n\n{layer_report_table(rows, top=25)}\n")
        run.files["layer_report"] = run.tmp / "int8_layers.md"


def _write_fidelity(run: _Run, stages: list[Stage], timings: dict[str, float], verbose: bool) -> list[Any]:
    from .fidelity import build_ladder, write_fidelity

    labels, checks = run.data.eval_labels, run.checks
    with _timed(timings, "fidelity", verbose):
        ladder = build_ladder([(s.label, s.artifact, run.logits[s.key]) for s in stages if s.ladder], labels)
        acc = {r.stage: r.top1_accuracy for r in ladder}
        notes = []
        if not run.src.trained:
            notes.append("UNTRAINED random weights: accuracies are meaningless; diffs and agreement still hold.")
        if "tflite_int8" in run.logits:
            drop = 100 * (acc[STAGES["tflite_fp32"].label] - acc[STAGES["tflite_int8"].label])
            notes.append(f"int8 top-1 drop vs TFLite fp32: {drop:+.2f} pp (positive = int8 worse).")
        if "tflm" in run.logits:
            notes.append(
                "TFLite int8 runs LiteRT's reference kernels (XNNPACK's int8 kernels may differ by a few LSB). "
                f"TFLite-Micro vs them: {checks['tflm_vs_litert_reference_mismatched_images']} of "
                f"{checks['tflm_vs_litert_reference_images']} images (the first of the eval set) differ, by at most {checks['tflm_vs_litert_reference_max_lsb']} LSB "
                f"(tolerance {TFLM_TOLERANCE_LSB} LSB).")
        extra = []
        for s in stages:
            if not s.ladder and s.reference is not None:  # a side branch, compared with its reference
                ref = STAGES[s.reference]
                rung = build_ladder([(ref.label, ref.artifact, run.logits[ref.key]),
                                     (s.label, s.artifact, run.logits[s.key])], labels)[1]
                extra.append(rung)
                notes.append(f"{s.label.split(' (')[0]} (compared with {ref.label.split(' (')[0]}): max abs Δ "
                             f"{rung.max_abs_diff:.3g}, top-1 agree {100 * rung.top1_agreement:.2f} %, "
                             f"top-1 acc {100 * rung.top1_accuracy:.2f} %.")
        src = run.src
        meta = {
            "model": f"{src.name} w{src.width:g}",
            "weights": src.checkpoint or "untrained (random init)",
            "eval": {"dataset": src.dataset, "split": "test", "samples": int(len(labels)),
                     "description": f"{len(labels)} {src.dataset} test images (seeded sample)"},
            "checks": checks,
            "notes": notes,
            "extra": [r.__dict__ for r in extra],
        }
        write_fidelity(ladder, run.tmp, meta=meta)
        run.files["fidelity_json"], run.files["fidelity_md"] = run.tmp / "fidelity.json", run.tmp / "fidelity.md"
    return ladder


def _manifest(run: _Run, stages: list[Stage]) -> dict[str, Any]:
    """The export's self-description: input contract, normalization, quant params, labels, hashes, tools."""
    from .onnx import ONNX_OPSET, onnx_op_counts

    src, tmp, quant = run.src, run.tmp, run.quant
    hashes = {}
    for path in sorted(p for p in tmp.rglob("*") if p.is_file()):
        rel = str(path.relative_to(tmp))
        hashes[rel] = {"sha256": file_digest(path), "bytes": path.stat().st_size}
    mean, std = list(src.mean), list(src.std)
    h, w, c = src.preprocess.hwc
    inputs: dict[str, Any] = {"shape": [1, h, w, c], "layout": "NHWC"}  # what every TFLite model and the firmware take
    if "onnx" in run.files:
        inputs[STAGES["onnx"].artifact] = {"dtype": "float32", "shape": [1, c, h, w], "layout": "NCHW",
                                           "range": "raw pixels 0..255"}
    if "tflite_fp32" in run.files:
        inputs[STAGES["tflite_fp32"].artifact] = {"dtype": "float32", "shape": [1, h, w, c], "layout": "NHWC",
                                                  "range": "raw pixels 0..255"}
    if "int8" in quant:
        q = quant["int8"]["input"]
        inputs[STAGES["tflite_int8"].artifact] = {
            "dtype": "int8", "shape": q["shape"], "layout": "NHWC", "scale": q["scale"], "zero_point": q["zero_point"],
            "formula": "q = pixel - 128 (uint8 pixel 0..255 -> int8 -128..127)",
        }
    if "int16x8" in quant:
        q = quant["int16x8"]["input"]
        inputs[STAGES["tflite_int16x8"].artifact] = {
            "dtype": "int16", "shape": q["shape"], "layout": "NHWC", "scale": q["scale"],
            "zero_point": q["zero_point"], "formula": "q = round(pixel / scale)",
        }
    return {
        "format": "edgeghost-export-v1",
        "model": src.name,
        "width": src.width,
        "weights": {"checkpoint": src.checkpoint, "trained": src.trained,
                    **({"sha256": file_digest(src.checkpoint)} if src.checkpoint else {}),
                    **({} if src.trained else {"note": f"random init; BatchNorm statistics from {BN_STAT_IMAGES} "
                                                       f"{src.dataset} training images"})},
        "dataset": src.dataset,
        "labels": list(src.classes),
        "preprocess": {**src.preprocess.to_dict(), **_folder_source(src)},
        "normalization": {
            "mean": mean, "std": std, "inside_model": True,
            "formula": "x = (pixel / 255 - mean) / std, applied by the model's first op (1x1 depthwise conv)",
        },
        "input": inputs,
        "output": {"name": "logits", "shape": [1, len(src.classes)], "meaning": "class logits (no softmax)",
                   **({"int8": quant["int8"]["output"]} if "int8" in quant else {}),
                   **({"int16x8": quant["int16x8"]["output"]} if "int16x8" in quant else {})},
        "quantization": {**quant, **({"calibration": run.data.calib} if run.data.calib else {})},
        "tflm": run.tflm.get("tflm"),
        **({"tflm_int16x8": run.tflm["tflm_int16x8"]} if "tflm_int16x8" in run.tflm else {}),
        "onnx": {"opset": ONNX_OPSET, "ops": onnx_op_counts(run.files["onnx"])},
        "stages": [{"stage": s.key, "artifact": s.artifact, "made_from": s.source, "checked_against": s.reference,
                    "tolerance": s.tolerance} for s in stages],
        "checks": run.checks,
        "files": hashes,
        "tools": _tool_versions(),
        "platform": {"machine": platform.machine(), "system": platform.system()},
    }


# --- the entry point --------------------------------------------------------------------------------------

def width_tag(width: float) -> str:
    """``w0.25``, ``w0.5``, ``w1.0``, ``w2.8``: the width as written on the command line."""
    text = f"{float(width):g}"
    return f"w{text if '.' in text else text + '.0'}"


def default_export_dir(model: str, width: float, checkpoint: str | Path | None) -> Path:
    """Where an export goes without ``--out``: named after the run for a checkpoint (``runs/demo/best.pt`` →
    ``exports/demo``), ``exports/<model>_<width>_untrained`` for random weights."""
    if checkpoint is None:
        return Path("exports") / f"{model}_{width_tag(width)}_untrained"
    ckpt = Path(checkpoint)
    stem = ckpt.parent.name if ckpt.stem in ("best", "last") and ckpt.parent.name else ckpt.stem
    return Path("exports") / (stem or f"{model}_{width_tag(width)}")


def default_calibration(checkpoint: dict[str, Any] | None, *, random_noise: bool = False) -> tuple[str, bool]:
    """The int8 calibration an export uses unless told otherwise: (method, bias correction). A QAT checkpoint
    gets the min/max ranges its fake quantization emulated and no bias correction (it trained against the
    uncorrected int8 graph); random-noise calibration gets no bias correction (no data to correct on); any other
    model gets percentile ranges with bias correction (measured on the zoo: ``export/README.md``)."""
    qat = bool((checkpoint or {}).get("qat"))
    return ("minmax" if qat else "percentile"), not (qat or random_noise)


def export_model(
    *,
    model: str | None = None,
    width: float | None = None,
    checkpoint: str | Path | None = None,
    out: str | Path | None = None,
    formats: Sequence[str] | None = None,
    int8: bool = False,
    int16x8: bool = False,
    dataset: str | None = None,
    data_dir: str | Path | None = None,
    calib_samples: int = DEFAULT_CALIB_SAMPLES,
    calib_random_noise: bool = False,
    calib_method: str | None = None,
    bias_correction: bool | None = None,
    eval_samples: int = DEFAULT_EVAL_SAMPLES,
    tflm_samples: int = DEFAULT_TFLM_SAMPLES,
    layer_report: bool = False,
    img_size: int | None = None,
    in_chans: int | None = None,
    seed: int = 0,
    verbose: bool = True,
) -> ExportResult:
    """Export a model to ONNX, TFLite fp32 and (with ``int8``) full-integer int8 TFLite + TFLite-Micro files.

    Args:
        model: registered model name (default ``ghostnetv3_small``; with a checkpoint it must match it).
        width: width multiplier (default 1.0; with a checkpoint it must match it).
        checkpoint: an edgeghost checkpoint; model, width, dataset, classes and normalization come from it.
            Without one the model has untrained random weights (seeded), and a loud warning says so.
        out: destination folder (default: ``exports/<run>`` for a checkpoint ``runs/<run>/*.pt``,
            ``exports/<model>_w<width>_untrained`` without one, so an untrained export never replaces a
            trained one); replaced atomically.
        formats: the artefacts to make, from :data:`FORMATS` (``onnx``, ``tflite_fp32``, ``tflite_int8``,
            ``tflm``, ``tflite_int16x8``, ``tflm_int16x8``); each brings the stages it is made from (``tflm`` →
            ONNX, fp32, int8).
            Default ``onnx`` + ``tflite_fp32``.
        int8: also make ``tflite_int8`` (calibrated on real training images) and ``tflm`` (the ``tflm/`` folder).
        int16x8: also make ``tflite_int16x8``, a 16-bit-activation / 8-bit-weight model, and its TFLite-Micro
            files ``tflm_int16x8/``.
        dataset: dataset for calibration/evaluation without a checkpoint (default ``fashion_mnist``).
        data_dir: where the dataset files are (see :func:`edgeghost.data.load_split`).
        calib_samples: number of training images for int8 calibration.
        calib_random_noise: calibrate on uniform random pixels instead of real images (explicit opt-in only).
        calib_method: ``percentile`` (inner activation ranges cut at the 99.99th percentile of |x|),
            ``minmax`` (TFLite's default ranges) or ``mse`` (per-tensor least-error clip); see :func:`edgeghost.export.tflite.convert_quantized`.
            Default: ``minmax`` for a QAT checkpoint (the ranges its fake quantization emulated), else
            ``percentile``.
        bias_correction: shift every int8 conv/FC bias by the mean error its output still has against the
            float model on calibration images (:func:`edgeghost.export.tflite.correct_biases`). Default: on,
            except for a QAT checkpoint (its fake quantization trained against the uncorrected int8 graph) and
            for random-noise calibration (there is no data whose error it could correct).
        layer_report: also write ``int8_layers.json``/``.md``, the per-layer int8 error report.
        eval_samples: number of test images for the parity checks and the fidelity ladder.
        tflm_samples: how many of them (the first) TFLite-Micro runs, 0 = all; its rung of the ladder and the
            bit-exactness check against LiteRT's reference kernels use those.
        img_size, in_chans: input size and channels of an untrained model (default 32 and 3); with a
            checkpoint they come from it (and must agree when given).
        seed: seed for the untrained weights and the image samples.
        verbose: print stage progress to stderr (the untrained-weights warning is printed regardless).
    """
    from .tflite import CALIB_METHODS

    requested = [*(DEFAULT_FORMATS if formats is None else formats), *(("tflite_int8", "tflm") if int8 else ()),
                 *(("tflite_int16x8", "tflm_int16x8") if int16x8 else ())]
    if not requested:
        raise EdgeGhostError(f"no export format given; choose from: {', '.join(FORMATS)}")
    stages = select_stages(requested)
    keys = {s.key for s in stages}
    int8, int16x8 = "tflite_int8" in keys, "tflite_int16x8" in keys
    if calib_method is not None and calib_method not in CALIB_METHODS:
        raise EdgeGhostError(f"unknown calibration method {calib_method!r}; choose one of: {', '.join(CALIB_METHODS)}")
    if layer_report and not int8:
        raise EdgeGhostError("the per-layer int8 report needs --int8")
    if calib_samples < 1 and (int8 or int16x8):
        raise EdgeGhostError(f"calib_samples must be >= 1, got {calib_samples}")
    if eval_samples < 1:
        raise EdgeGhostError(f"eval_samples must be >= 1, got {eval_samples}")
    if tflm_samples < 0:
        raise EdgeGhostError(f"tflm_samples must be >= 0 (0 = every eval image), got {tflm_samples}")
    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    src = _load_source(model=model, width=width, checkpoint=checkpoint, dataset=dataset, seed=seed,
                       data_dir=data_dir, img_size=img_size, in_chans=in_chans)
    if not src.trained:
        _say(UNTRAINED_WARNING.format(model=src.name, width=src.width), True)
    default_method, default_correction = default_calibration(src.ckpt, random_noise=calib_random_noise)
    calib_method = calib_method or default_method
    bias_correction = default_correction if bias_correction is None else bias_correction
    out_dir = Path(out) if out is not None else default_export_dir(src.name, src.width, src.checkpoint)
    check_writable(out_dir)  # an unwritable destination fails in one line before the data is read
    # Data before the output folder: a missing dataset fails before anything is written.
    with _timed(timings, "load data", verbose):
        data = _load_data(src, data_dir=data_dir, quantize=int8 or int16x8, calib_samples=calib_samples,
                          calib_random_noise=calib_random_noise, eval_samples=eval_samples, seed=seed)

    parent_existed = out_dir.parent.exists()
    tmp = _prepare_out(out_dir)
    try:
        run = _Run(src, data, tmp, calib_method, tflm_samples or len(data.eval_labels), bias_correction)
        _run_stages(run, stages, timings=timings, verbose=verbose)
        if layer_report:
            _write_layer_report(run, timings, verbose)
        ladder = _write_fidelity(run, stages, timings, verbose)
        files, manifest = run.files, _manifest(run, stages)
        timings["total"] = round(time.perf_counter() - t_start, 3)
        manifest["timings_s"] = timings
        atomic_write_json(tmp / "manifest.json", manifest)
        _commit(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if not parent_existed:  # e.g. exports/ made for this export: leave no trace at all
            with contextlib.suppress(OSError):
                out_dir.parent.rmdir()
        raise
    files = {k: out_dir / p.relative_to(tmp) for k, p in files.items()}
    files["manifest"] = out_dir / "manifest.json"
    if not src.trained:  # repeated at the end, where it cannot be missed
        _say(UNTRAINED_WARNING.format(model=src.name, width=src.width), True)
    return ExportResult(out_dir, files, ladder, manifest, timings, src.trained)
