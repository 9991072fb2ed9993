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
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EdgeGhostError
from ..fileio import atomic_write_json, current_umask
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
LAYER_REPORT_IMAGES = 32  # test images for the per-layer int8 report (it keeps every tensor of both models)
BN_STAT_IMAGES = 64  # untrained models only: real images that set the BatchNorm statistics

# One row per artefact of the export folder (the folder layout is a cross-team contract).
ARTIFACTS = {
    # key: (file name, stage, when written)
    "onnx": ("model.onnx", "ONNX (onnxruntime)", "always"),
    "fp32": ("model_fp32.tflite", "TFLite fp32 (LiteRT)", "always"),
    "int8": ("model_int8.tflite", "TFLite int8 (LiteRT reference kernels)", "--int8"),
    "int16x8": ("model_int16x8.tflite", "TFLite int16x8 (LiteRT reference kernels)", "--int16x8"),
    "tflm": ("tflm/", "TFLite-Micro int8", "--int8"),
}
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


def _torch_logits(model: Any, images: np.ndarray, *, mean: tuple[float, ...] | None = None,
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


def _write_tflm(int8_path: Path, out_dir: Path, classes: tuple[str, ...]) -> dict[str, Any]:
    from .tflm import write_tflm_artifacts

    return write_tflm_artifacts(int8_path, out_dir, labels=list(classes))


# --- output folder -----------------------------------------------------------------------------------------

def _prepare_out(out: Path) -> Path:
    """Check the destination before any work and return a fresh temp folder beside it."""
    if out.exists() and not out.is_dir():
        raise EdgeGhostError(f"output {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "manifest.json").is_file():
        raise EdgeGhostError(f"output folder {out} is not empty and is not an edgeghost export; refusing to replace it")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
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

def _run_stages(
    src: _Source, tmp: Path, data: _Data, *, int8: bool, int16x8: bool, calib_method: str, layer_report: bool,
    timings: dict[str, float], verbose: bool,
) -> tuple[dict[str, Path], list[Any], dict[str, Any]]:
    """Run every stage into ``tmp``; each stage checks itself against the one before and raises on failure."""
    import torch

    from ..data.loader import normalize
    from ..models import reparameterization_error, reparameterize
    from .fidelity import build_ladder, write_fidelity
    from .onnx import ONNX_OPSET, export_form, export_onnx, onnx_op_counts
    from .tflite import (
        DEFAULT_PERCENTILE,
        HISTOGRAM_IMAGES,
        check_full_integer,
        convert_fp32,
        convert_quantized,
        inspect_tflite,
        onnx_to_keras,
    )

    eval_images, eval_labels, check_images = data.eval_images, data.eval_labels, data.check_images
    files: dict[str, Path] = {}
    stages: list[tuple[str, str, np.ndarray]] = []  # (stage, artifact, logits on the eval images)
    checks: dict[str, Any] = {}
    norm = {"mean": list(src.mean), "std": list(src.std)}

    with _timed(timings, "reparameterize", verbose):
        deployed = export_form(reparameterize(src.model), mean=src.mean, std=src.std)
        train_logits = _torch_logits(src.model, eval_images, **norm)
        deploy_logits = _torch_logits(deployed, eval_images)
        # The gate checks the fusion itself in float64; the float32 difference is reported (it also contains
        # rounding, which an untrained net's tiny logits amplify) and shows in the fidelity ladder.
        rel = reparameterization_error(
            src.model, normalize(torch.from_numpy(check_images[:8]), mean=src.mean, std=src.std)
        )
        if not rel <= REPARAM_RTOL:
            raise EdgeGhostError(
                f"reparameterized {src.name} differs from the train form by {rel:.3g} (relative, float64) > "
                f"{REPARAM_RTOL:g}; refusing to export an unverified model"
            )
        checks["reparameterize_rel_diff_float64"] = rel
        checks["reparameterize_rel_diff_float32"] = float(
            np.abs(deploy_logits - train_logits).max() / max(np.abs(train_logits).max(), 1e-12)
        )
        stages += [("torch train form", "-", train_logits), ("torch deploy form", "-", deploy_logits)]

    with _timed(timings, "onnx", verbose):
        files["onnx"] = export_onnx(deployed, tmp / ARTIFACTS["onnx"][0], in_chans=src.preprocess.in_chans,
                                    img_size=src.preprocess.img_size)
        onnx_logits = _predict(files["onnx"], eval_images)
        checks["onnx_vs_torch_max_abs_diff"] = _check_parity(
            "ONNX (onnxruntime)", onnx_logits[: len(check_images)], deploy_logits[: len(check_images)],
            "torch deploy form")
        stages.append((ARTIFACTS["onnx"][1], ARTIFACTS["onnx"][0], onnx_logits))

    with _timed(timings, "tflite_fp32", verbose):
        keras_model = onnx_to_keras(files["onnx"], sample_images=check_images, work_dir=tmp / ".work")
        files["fp32"] = convert_fp32(keras_model, tmp / ARTIFACTS["fp32"][0])
        fp32_logits = _predict(files["fp32"], eval_images)
        checks["tflite_fp32_vs_onnx_max_abs_diff"] = _check_parity(
            "TFLite fp32 (LiteRT)", fp32_logits[: len(check_images)], onnx_logits[: len(check_images)],
            "ONNX (onnxruntime)")
        stages.append((ARTIFACTS["fp32"][1], ARTIFACTS["fp32"][0], fp32_logits))

    quant: dict[str, Any] = {}
    tflm_facts: dict[str, Any] | None = None
    if int8:
        with _timed(timings, "tflite_int8", verbose):
            files["int8"] = convert_quantized(keras_model, tmp / ARTIFACTS["int8"][0], calib_images=data.calib_images,
                                              method=calib_method)
            data.calib.update(method=calib_method, **(
                {"percentile": DEFAULT_PERCENTILE, "histogram_images": min(HISTOGRAM_IMAGES, len(data.calib_images))}
                if calib_method == "percentile" else {}))
            facts = inspect_tflite(files["int8"])
            check_full_integer(facts, mode="int8")
            quant["int8"] = facts.to_dict()
        with _timed(timings, "int8 eval + tflm", verbose):
            litert_ref = _runner(files["int8"], reference_kernels=True)
            raw_in = litert_ref.prepare(eval_images)  # q = pixel - 128 (checked above)

            def tflm_stage() -> tuple[dict[str, Any], np.ndarray]:
                facts_ = _write_tflm(files["int8"], tmp / "tflm", src.classes)
                # Run in the arena size the firmware gets, so the export also proves that size works.
                tflm = _runner(files["int8"], backend="tflm", arena_size=facts_["arena_bytes"])
                return facts_, np.asarray(tflm.run_raw(raw_in))

            # TFLite-Micro runs in child processes: let it use the second core while LiteRT runs here.
            with ThreadPoolExecutor(max_workers=1) as pool:
                tflm_job = pool.submit(tflm_stage)
                ref_raw = np.asarray(litert_ref.run_raw(raw_in))
                tflm_facts, tflm_raw = tflm_job.result()
            files["tflm"] = tmp / "tflm"
            int8_logits = litert_ref.finish(ref_raw).astype(np.float64)
            stages.append((ARTIFACTS["int8"][1], ARTIFACTS["int8"][0], int8_logits))
            mismatched = int((tflm_raw != ref_raw).any(axis=1).sum())
            max_lsb = int(np.abs(tflm_raw.astype(np.int32) - ref_raw).max())
            checks["tflm_vs_litert_reference_mismatched_images"] = mismatched
            checks["tflm_vs_litert_reference_max_lsb"] = max_lsb
            if max_lsb > TFLM_TOLERANCE_LSB:
                raise EdgeGhostError(
                    f"TFLite-Micro int8 outputs differ from LiteRT's reference kernels by up to {max_lsb} LSB "
                    f"(on {mismatched} of {len(eval_images)} images; tolerance {TFLM_TOLERANCE_LSB} LSB)"
                )
            tflm_logits = litert_ref.finish(tflm_raw).astype(np.float64)  # same output quantization
            stages.append((ARTIFACTS["tflm"][1], ARTIFACTS["tflm"][0], tflm_logits))
    if layer_report:
        from .fidelity import layer_report as build_layer_report, layer_report_table

        with _timed(timings, "layer_report", verbose):
            rows = build_layer_report(files["fp32"], files["int8"], check_images[:LAYER_REPORT_IMAGES])
            (tmp / "int8_layers.json").write_text(json.dumps([r.__dict__ for r in rows], indent=2) + "\n")
            (tmp / "int8_layers.md").write_text(
                f"# int8 error per layer ({min(LAYER_REPORT_IMAGES, len(check_images))} test images)\n\n"
                "Relative RMS error of each int8 activation against the fp32 model's, ops that add the most "
                f"first.\n\n{layer_report_table(rows, top=25)}\n")
            files["layer_report"] = tmp / "int8_layers.md"
    if int16x8:
        with _timed(timings, "tflite_int16x8", verbose):
            files["int16x8"] = convert_quantized(
                keras_model, tmp / ARTIFACTS["int16x8"][0], calib_images=data.calib_images, mode="int16x8")
            facts16 = inspect_tflite(files["int16x8"])
            check_full_integer(facts16, mode="int16x8")
            quant["int16x8"] = facts16.to_dict()
            logits16 = _predict(files["int16x8"], eval_images, reference_kernels=True)
    shutil.rmtree(tmp / ".work", ignore_errors=True)

    with _timed(timings, "fidelity", verbose):
        ladder = build_ladder(stages, eval_labels)
        acc = {r.stage: r.top1_accuracy for r in ladder}
        notes = []
        if not src.trained:
            notes.append("UNTRAINED random weights: accuracies are meaningless; diffs and agreement still hold.")
        if int8:
            drop = 100 * (acc[ARTIFACTS["fp32"][1]] - acc[ARTIFACTS["int8"][1]])
            notes.append(f"int8 top-1 drop vs TFLite fp32: {drop:+.2f} pp (positive = int8 worse).")
            notes.append(
                "TFLite int8 runs LiteRT's reference kernels (XNNPACK's int8 kernels may differ by a few LSB). "
                f"TFLite-Micro vs them: {checks['tflm_vs_litert_reference_mismatched_images']} of {len(eval_labels)} "
                f"images differ, by at most {checks['tflm_vs_litert_reference_max_lsb']} LSB "
                f"(tolerance {TFLM_TOLERANCE_LSB} LSB).")
        extra = []
        if int16x8:
            # A side branch of the ladder: int16x8 is compared with TFLite fp32, the model it is made from.
            fp32_stage = (ARTIFACTS["fp32"][1], ARTIFACTS["fp32"][0], fp32_logits)
            int16_stage = (ARTIFACTS["int16x8"][1], ARTIFACTS["int16x8"][0], logits16)
            r16 = build_ladder([fp32_stage, int16_stage], eval_labels)[1]
            extra.append(r16)
            notes.append(f"int16x8 (compared with TFLite fp32): max abs Δ {r16.max_abs_diff:.3g}, top-1 agree "
                         f"{100 * r16.top1_agreement:.2f} %, top-1 acc {100 * r16.top1_accuracy:.2f} %.")
        meta = {
            "model": f"{src.name} w{src.width:g}",
            "weights": src.checkpoint or "untrained (random init)",
            "eval": {"dataset": src.dataset, "split": "test", "samples": int(len(eval_labels)),
                     "description": f"{len(eval_labels)} {src.dataset} test images (seeded sample)"},
            "checks": checks,
            "notes": notes,
            "extra": [r.__dict__ for r in extra],
        }
        write_fidelity(ladder, tmp, meta=meta)
        files["fidelity_json"], files["fidelity_md"] = tmp / "fidelity.json", tmp / "fidelity.md"

    manifest = _manifest(src, tmp, files=files, quant=quant, tflm=tflm_facts, calib=data.calib, checks=checks,
                         onnx_ops=onnx_op_counts(files["onnx"]), opset=ONNX_OPSET)
    return files, ladder, manifest


def _manifest(src: _Source, tmp: Path, *, files: dict[str, Path], quant: dict[str, Any],
              tflm: dict[str, Any] | None, calib: dict[str, Any], checks: dict[str, Any],
              onnx_ops: dict[str, int], opset: int) -> dict[str, Any]:
    """The export's self-description: input contract, normalization, quant params, labels, hashes, tools."""
    hashes = {}
    for path in sorted(p for p in tmp.rglob("*") if p.is_file()):
        rel = str(path.relative_to(tmp))
        hashes[rel] = {"sha256": file_digest(path), "bytes": path.stat().st_size}
    mean, std = list(src.mean), list(src.std)
    h, w, c = src.preprocess.hwc
    inputs = {
        "shape": [1, h, w, c], "layout": "NHWC",  # what every TFLite model and the firmware take
        "model.onnx": {"dtype": "float32", "shape": [1, c, h, w], "layout": "NCHW", "range": "raw pixels 0..255"},
        "model_fp32.tflite": {"dtype": "float32", "shape": [1, h, w, c], "layout": "NHWC",
                              "range": "raw pixels 0..255"},
    }
    if "int8" in quant:
        q = quant["int8"]["input"]
        inputs["model_int8.tflite"] = {
            "dtype": "int8", "shape": q["shape"], "layout": "NHWC", "scale": q["scale"], "zero_point": q["zero_point"],
            "formula": "q = pixel - 128 (uint8 pixel 0..255 -> int8 -128..127)",
        }
    if "int16x8" in quant:
        q = quant["int16x8"]["input"]
        inputs["model_int16x8.tflite"] = {
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
        "quantization": {**quant, **({"calibration": calib} if calib else {})},
        "tflm": tflm,
        "onnx": {"opset": opset, "ops": onnx_ops},
        "checks": checks,
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


def export_model(
    *,
    model: str | None = None,
    width: float | None = None,
    checkpoint: str | Path | None = None,
    out: str | Path | None = None,
    int8: bool = False,
    int16x8: bool = False,
    dataset: str | None = None,
    data_dir: str | Path | None = None,
    calib_samples: int = DEFAULT_CALIB_SAMPLES,
    calib_random_noise: bool = False,
    calib_method: str | None = None,
    eval_samples: int = DEFAULT_EVAL_SAMPLES,
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
        int8: also write the int8 model (calibrated on real training images) and the ``tflm/`` folder.
        int16x8: also write a 16-bit-activation / 8-bit-weight model.
        dataset: dataset for calibration/evaluation without a checkpoint (default ``fashion_mnist``).
        data_dir: where the dataset files are (see :func:`edgeghost.data.load_split`).
        calib_samples: number of training images for int8 calibration.
        calib_random_noise: calibrate on uniform random pixels instead of real images (explicit opt-in only).
        calib_method: ``percentile`` (inner activation ranges cut at the 99.99th percentile of |x|) or
            ``minmax`` (TFLite's default ranges); see :func:`edgeghost.export.tflite.convert_quantized`.
            Default: ``minmax`` for a QAT checkpoint (the ranges its fake quantization emulated), else
            ``percentile``.
        layer_report: also write ``int8_layers.json``/``.md``, the per-layer int8 error report.
        eval_samples: number of test images for the parity checks and the fidelity ladder.
        img_size, in_chans: input size and channels of an untrained model (default 32 and 3); with a
            checkpoint they come from it (and must agree when given).
        seed: seed for the untrained weights and the image samples.
        verbose: print stage progress to stderr (the untrained-weights warning is printed regardless).
    """
    from .tflite import CALIB_METHODS

    if calib_method is not None and calib_method not in CALIB_METHODS:
        raise EdgeGhostError(f"unknown calibration method {calib_method!r}; choose one of: {', '.join(CALIB_METHODS)}")
    if layer_report and not int8:
        raise EdgeGhostError("the per-layer int8 report needs --int8")
    if calib_samples < 1 and (int8 or int16x8):
        raise EdgeGhostError(f"calib_samples must be >= 1, got {calib_samples}")
    if eval_samples < 1:
        raise EdgeGhostError(f"eval_samples must be >= 1, got {eval_samples}")
    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    src = _load_source(model=model, width=width, checkpoint=checkpoint, dataset=dataset, seed=seed,
                       data_dir=data_dir, img_size=img_size, in_chans=in_chans)
    if not src.trained:
        _say(UNTRAINED_WARNING.format(model=src.name, width=src.width), True)
    if calib_method is None:
        calib_method = "minmax" if (src.ckpt or {}).get("qat") else "percentile"
    out_dir = Path(out) if out is not None else default_export_dir(src.name, src.width, src.checkpoint)
    # Data before the output folder: a missing dataset fails before anything is written.
    with _timed(timings, "load data", verbose):
        data = _load_data(src, data_dir=data_dir, quantize=int8 or int16x8, calib_samples=calib_samples,
                          calib_random_noise=calib_random_noise, eval_samples=eval_samples, seed=seed)

    parent_existed = out_dir.parent.exists()
    tmp = _prepare_out(out_dir)
    try:
        files, ladder, manifest = _run_stages(
            src, tmp, data, int8=int8, int16x8=int16x8, calib_method=calib_method, layer_report=layer_report,
            timings=timings, verbose=verbose)
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
