"""``edgeghost bench``: accuracy, size and latency of every model × format on one device, in one table.

An application on top of the pipeline (it may export checkpoints first), so it lives above ``edgeghost.export``
and ``edgeghost.runtime``; neither of those imports it.

Devices: ``host`` (this CPU: torch, onnxruntime, LiteRT), ``tflm`` (the int8 model in the TFLite-Micro
interpreter, arena measured, outputs compared with LiteRT's reference kernels) and ``rpi4`` (a Raspberry Pi
over SSH running the self-contained remote runner; int8 outputs checked against the host's LiteRT). Every
latency comes from the one loop, :func:`edgeghost.runtime.measure_latency`. A format that fails marks its row
with the reason and the other rows still run. Any model TFLite-Micro runs is accepted on ``tflm``: its facts are
read from the flatbuffer (never LiteRT first), and a model that is not an image classifier for the eval set gets
latency and arena without accuracy, with the reason in its row.

Results: a console table in the Ultralytics layout (top-1 in percent, as ``export`` and ``eval`` print it),
``results.json``, ``results.csv`` and ``results.png`` (accuracy vs latency) in a results folder that is never
silently replaced: the default folder is new for every run (``bench/<device>-<date>-<time>``) and an explicit
``--out`` that already holds results is refused unless ``force``.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import EdgeGhostError
from .export.firmware import CORTEX_M_TARGETS
from .export.pipeline import STAGES
from .fileio import atomic_path, atomic_write_bytes, atomic_write_text, ensure_dir
from .runtime import dequantize, load_runner, measure_latency, read_tflite
from .runtime.tflm import TFLM_VS_REFERENCE_TOLERANCE_LSB

SCHEMA = "edgeghost-bench-v2"  # v2: top-1 in percent (top1_pct), TFLM check as LSB counts, note per row
CORTEX_M = CORTEX_M_TARGETS  # firmware built per model and run under QEMU: instructions, flash, RAM, arena
DEVICES = ("host", "tflm", "rpi4", *CORTEX_M)
MCU_KERNELS = ("cmsis-nn", "reference")
DEFAULT_MODEL = ("ghostnetv3_small", 1.0)  # what `edgeghost bench` measures when given nothing
RESULT_FILES = ("results.json", "results.csv", "results.png")
CHECK_INPUTS_WITHOUT_DATA = 4  # seeded example inputs for the TFLM vs LiteRT check of a model without eval data


@dataclass(frozen=True)
class Format:
    name: str
    source: str  # "checkpoint" or the file name inside an export folder
    devices: tuple[str, ...]
    description: str


# One row per format: drives validation, defaults and docs. An export's file names come from its stage table.
FORMATS = {f.name: f for f in (
    #      name            source               devices                    description
    Format("torch",        "checkpoint",        ("host",),                 "PyTorch checkpoint, train form"),
    Format("torch_deploy", "checkpoint",        ("host",),                 "PyTorch, deploy form (reparameterized)"),
    Format("onnx",         STAGES["onnx"].artifact,        ("host", "rpi4"),   "ONNX, onnxruntime"),
    Format("tflite_fp32",  STAGES["tflite_fp32"].artifact, ("host", "rpi4"),   "TFLite fp32, LiteRT"),
    Format("tflite_int8",  STAGES["tflite_int8"].artifact, ("host", "tflm", "rpi4", *CORTEX_M),
           "TFLite full-integer int8 (LiteRT / TFLM / Cortex-M firmware)"),
)}


def default_formats(device: str) -> tuple[str, ...]:
    return tuple(name for name, f in FORMATS.items() if device in f.devices)


def parse_formats(text: str | None, device: str) -> tuple[str, ...]:
    """Comma-separated format names, checked against the device."""
    if device not in DEVICES:
        raise EdgeGhostError(f"unknown device {device!r}; choose one of: {', '.join(DEVICES)}")
    if not text:
        return default_formats(device)
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    for name in names:
        if name not in FORMATS:
            raise EdgeGhostError(f"unknown format {name!r}; choose from: {', '.join(FORMATS)}")
        if device not in FORMATS[name].devices:
            raise EdgeGhostError(f"format {name} does not run on device {device} (it runs on: "
                                 f"{', '.join(FORMATS[name].devices)})")
    return names


# --- what gets benchmarked ------------------------------------------------------------------------------------


@dataclass
class Subject:
    """One model: its file per format (or why there is none), and what is known about it."""

    label: str
    files: dict[str, Path] = field(default_factory=dict)
    missing: dict[str, tuple[str, str]] = field(default_factory=dict)  # format -> (status, reason)
    trained: bool | None = None  # None: unknown (a user's file)
    dataset: str | None = None
    params: int | None = None
    macs: int | None = None
    preprocess: dict[str, Any] | None = None  # the checkpoint's / export's input preprocessing, when known


def _model_facts(name: str, width: float, num_classes: int, in_chans: int = 3) -> tuple[int, int]:
    from .models import create_model, model_info

    info = model_info(create_model(name, width=width, num_classes=num_classes, in_chans=in_chans), name)
    return info.params_deploy, info.macs


def _export_usable(folder: Path, formats: tuple[str, ...], checkpoint: Path | None) -> bool:
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return False
    needed = [FORMATS[f].source for f in formats if FORMATS[f].source != "checkpoint"]
    if not all((folder / n).is_file() for n in needed):
        return False
    if checkpoint is None:
        return True
    weights = json.loads(manifest.read_text()).get("weights", {})
    same = weights.get("checkpoint") and Path(weights["checkpoint"]).resolve() == checkpoint.resolve()
    return bool(same) and manifest.stat().st_mtime >= checkpoint.stat().st_mtime


def _export(folder: Path, formats: tuple[str, ...], *, checkpoint: Path | None, model: str | None = None,
            width: float | None = None, data_dir: str | None, calib_samples: int | None) -> None:
    from .export.pipeline import export_model

    kwargs: dict[str, Any] = {} if calib_samples is None else {"calib_samples": calib_samples}
    export_model(model=model, width=width, checkpoint=checkpoint, out=folder.resolve(),
                 int8="tflite_int8" in formats, data_dir=data_dir, verbose=False, **kwargs)


def _failed_export(label: str, formats: tuple[str, ...], err: Exception, **facts: Any) -> Subject:
    """A subject whose export failed: every export-based row says why; checkpoint rows are filled by the caller."""
    reason = f"{type(err).__name__}: {err}".splitlines()[0]
    subject = Subject(label, **facts)
    for fmt in formats:
        if FORMATS[fmt].source != "checkpoint":
            subject.missing[fmt] = ("export failed", reason)
    return subject


def subject_from_export(folder: str | Path, formats: tuple[str, ...], *, label: str | None = None,
                        checkpoint: Path | None = None) -> Subject:
    """An export folder (``model.onnx``, ``model_fp32.tflite``, ``model_int8.tflite``, ``manifest.json``)."""
    folder = Path(folder)
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise EdgeGhostError(f"{folder} is not an edgeghost export folder (no manifest.json)")
    manifest = json.loads(manifest_path.read_text())
    trained = bool(manifest.get("weights", {}).get("trained", False))
    subject = Subject(label or folder.name, trained=trained, dataset=manifest.get("dataset"),
                      preprocess=manifest.get("preprocess"))
    try:
        shape = (manifest.get("input") or {}).get("shape")  # NHWC
        subject.params, subject.macs = _model_facts(manifest["model"], float(manifest["width"]),
                                                    len(manifest.get("labels") or []) or 10,
                                                    int(shape[3]) if shape else 3)
    except (EdgeGhostError, KeyError, ValueError, TypeError):
        pass  # a model this version does not know: size and latency are still measured
    ckpt = checkpoint or (Path(manifest["weights"]["checkpoint"]) if manifest.get("weights", {}).get("checkpoint")
                          else None)
    for fmt in formats:
        source = FORMATS[fmt].source
        if source == "checkpoint":
            if ckpt is not None and ckpt.is_file():
                subject.files[fmt] = ckpt
            else:
                subject.missing[fmt] = ("skipped", "no checkpoint (untrained export)")
        elif (folder / source).is_file():
            subject.files[fmt] = folder / source
        else:
            subject.missing[fmt] = ("missing", f"{folder / source} not in the export")
    return subject


def subject_from_checkpoint(path: str | Path, formats: tuple[str, ...], *, exports_dir: str | Path,
                            data_dir: str | None = None, calib_samples: int | None = None,
                            label: str | None = None) -> Subject:
    """A checkpoint: torch rows from the file itself, the others from its export (made now, or reused when
    ``exports_dir/<label>`` already holds an export of this very checkpoint that is newer than it)."""
    from .runtime.torch_runner import checkpoint_preprocess
    from .training.checkpoint import load_checkpoint

    path = Path(path)
    ckpt = load_checkpoint(path)
    label = label or (f"{path.parent.name}-{path.stem}" if path.parent.name else path.stem)
    folder = Path(exports_dir) / label.replace("/", "-")
    needs_export = any(FORMATS[f].source != "checkpoint" for f in formats)
    subject = None
    if needs_export:
        try:
            if not _export_usable(folder, formats, path):
                print(f"[bench] exporting {path} -> {folder}/ ...", file=sys.stderr, flush=True)
                _export(folder, formats, checkpoint=path, data_dir=data_dir, calib_samples=calib_samples)
            subject = subject_from_export(folder, formats, label=label, checkpoint=path)
        except Exception as err:  # the torch rows still run; each export row says why it is missing
            subject = _failed_export(label, formats, err)
    if subject is None or not subject.params:
        subject = subject or Subject(label)
        subject.params, subject.macs = _model_facts(ckpt["model"], float(ckpt["width"]), int(ckpt["num_classes"]),
                                                    int(ckpt["in_chans"]))
    for fmt in formats:
        if FORMATS[fmt].source == "checkpoint":
            subject.files[fmt] = path
            subject.missing.pop(fmt, None)
    # A checkpoint that never trained (epoch 0, no metrics) is flagged like an untrained export.
    subject.trained = int(ckpt.get("epoch", 0)) > 0 or bool(ckpt.get("metrics"))
    subject.dataset = ckpt["dataset"]
    subject.preprocess = checkpoint_preprocess(ckpt)
    return subject


def subject_from_file(path: str | Path, formats: tuple[str, ...]) -> Subject:
    """A model file a user brings (``.tflite`` or ``.onnx``, from edgeghost or any other tool). A ``.tflite``'s
    format is read from its flatbuffer (integer input: ``tflite_int8``), not by loading it in LiteRT, whose
    loader refuses some models TFLite-Micro runs."""
    from .runtime.core import tflite_format

    path = Path(path)
    if path.suffix not in (".tflite", ".onnx"):
        raise EdgeGhostError(f"--model takes .tflite or .onnx files, got {path}")
    if not path.is_file():
        raise EdgeGhostError(f"model file {path} does not exist")
    fmt = tflite_format(read_tflite(path).input.dtype) if path.suffix == ".tflite" else "onnx"
    if fmt not in formats:
        raise EdgeGhostError(f"{path} is a {fmt} model; this run covers {', '.join(formats)}")
    return Subject(path.name, files={fmt: path})


def _study_label(strategy: str, teachers: Any, seed: Any) -> str:
    names = ", ".join(teachers) if isinstance(teachers, (list, tuple)) else str(teachers or "")
    return " ".join(p for p in (strategy, f"({names})" if names else "",
                                f"seed {seed}" if seed is not None else "") if p)


def study_checkpoints(study_dir: str | Path) -> list[tuple[str, Path]]:
    """(label, best checkpoint) of the baseline and every distilled variant of a study folder.

    The study's report (``*.json`` beside the runs) names and orders the runs: ``runs`` entries (``label``,
    ``teachers``, ``seed``, ``best_checkpoint`` or ``run_dir``; failed and unfinished runs left out) or, in older reports,
    ``rows`` (``strategy``, ``teachers``, ``run``; teacher rows, in parentheses, are not variants). Without a
    report, every ``**/best.pt`` under the folder is taken, labelled by its folder.
    """
    root = Path(study_dir)
    if not root.is_dir():
        raise EdgeGhostError(f"study folder {root} does not exist")

    def locate(path: Any, run: Any) -> Path | None:
        for candidate in (path, Path(run) / "best.pt" if run else None):
            if not candidate:
                continue
            p = Path(candidate)
            for option in (p, root / p, root / Path(run or "").name / "best.pt"):
                if option.is_file():
                    return option
        return None

    found: dict[Path, str] = {}
    for report in sorted(root.glob("*.json")):
        try:
            doc = json.loads(report.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        entries = doc.get("runs") if isinstance(doc, dict) else None
        for run in entries if isinstance(entries, list) else []:
            if not isinstance(run, dict) or run.get("status") in ("failed", "pending", "partial"):
                continue
            best = locate(run.get("best_checkpoint"), run.get("run_dir"))
            if best is not None and best.resolve() not in found:
                found[best.resolve()] = _study_label(run.get("label") or run.get("strategy") or run.get("key", "run"),
                                                     run.get("teachers"), run.get("seed"))
        rows = doc.get("rows") if isinstance(doc, dict) and not entries else None
        for row in rows if isinstance(rows, list) else []:
            if not isinstance(row, dict) or str(row.get("strategy", "")).startswith("("):
                continue
            best = locate(None, row.get("run"))
            if best is not None and best.resolve() not in found:
                found[best.resolve()] = _study_label(row.get("strategy", "run"), row.get("teachers"), row.get("seed"))
    if not found:
        for best in sorted(root.glob("**/best.pt")):
            found[best.resolve()] = best.parent.relative_to(root).as_posix() or root.name
    if not found:
        raise EdgeGhostError(f"no runs in {root}: neither a study report (*.json with runs) nor */best.pt")
    labels = list(found.values())
    if len(set(labels)) != len(labels):  # two runs of one strategy the report does not tell apart
        top = root.resolve()
        return [(f"{lab} [{p.parent.relative_to(top) if p.is_relative_to(top) else p.parent.name}]", p)
                for p, lab in found.items()]
    return [(lab, p) for p, lab in found.items()]


def default_subject(formats: tuple[str, ...], *, exports_dir: str | Path, data_dir: str | None,
                    calib_samples: int | None) -> Subject:
    """``exports/ghostnetv3_small_w1.0_untrained`` (exported now with untrained weights if it is not there): the
    name ``edgeghost export`` gives an untrained export, never a trained export's folder."""
    from .export.pipeline import default_export_dir

    name, width = DEFAULT_MODEL
    folder = Path(exports_dir) / default_export_dir(name, width, None).name
    try:
        if not _export_usable(folder, formats, None):
            print(f"[bench] exporting {name} w{width:g} (untrained) -> {folder}/ ...", file=sys.stderr, flush=True)
            _export(folder, formats, checkpoint=None, model=name, width=width, data_dir=data_dir,
                    calib_samples=calib_samples)
        return subject_from_export(folder, formats)
    except Exception as err:  # the table says why, like any failed export
        subject = _failed_export(folder.name, formats, err, trained=False)
        for fmt in formats:
            if FORMATS[fmt].source == "checkpoint":
                subject.missing[fmt] = ("skipped", "no checkpoint (untrained export)")
        return subject


# --- eval data -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalSet:
    dataset: str
    images: np.ndarray  # uint8 NHWC, as every edgeghost artefact takes them
    labels: np.ndarray


def load_eval_set(dataset: str, *, samples: int, data_dir: str | None,
                  preprocess: dict[str, Any] | None = None) -> EvalSet:
    """The first ``samples`` test images of ``dataset`` as the model's preprocessing makes them (``preprocess``:
    the checkpoint's or export's ``{"img_size", "in_chans", "resize", ...}``). This is the one place bench gets
    eval images; today it is ``edgeghost.data.load_split`` as training uses it (a model whose input differs
    from those images gets latency without accuracy, and its row says why)."""
    from .data import split_for_export

    split = split_for_export(dataset, preprocess, "test", data_dir).subset(samples)
    if len(split) == 0:
        raise EdgeGhostError(f"{dataset} test split is empty")
    return EvalSet(dataset, split.images, split.labels)


def _accuracy_inputs(info: Any, evalset: EvalSet | None) -> str | None:
    """None when top-1 can be measured for this model on ``evalset``; otherwise the reason it cannot."""
    if evalset is None:
        return "no eval data (pass --eval-data)"
    if not info.is_image_classifier:
        return (f"no top-1: not an image classifier (input {info.input_dtype} {list(info.input_shape)}, "
                f"output {list(info.output_shape)})")
    hwc, have = info.image_hwc, evalset.images.shape[1:]
    if tuple(have) != tuple(hwc):
        return (f"no top-1: the model takes {hwc[0]}×{hwc[1]}×{hwc[2]} images, {evalset.dataset} gives "
                f"{have[0]}×{have[1]}×{have[2]}")
    top = int(evalset.labels.max()) + 1 if len(evalset.labels) else 0
    if info.num_classes < top:
        return f"no top-1: {info.num_classes} outputs for {evalset.dataset}'s {top} classes"
    return None


# --- results -----------------------------------------------------------------------------------------------------


@dataclass
class BenchRow:
    model: str
    format: str
    device: str
    status: str  # ok, export failed, run failed, skipped, missing
    error: str | None = None
    note: str | None = None  # why a measured row has no top-1, for instance
    file: str | None = None
    size_mb: float | None = None
    params: int | None = None
    macs: int | None = None
    top1_pct: float | None = None  # percent, 0..100 (as `edgeghost export` and `eval` print it)
    eval_samples: int = 0
    latency: dict[str, Any] | None = None
    arena_kib: float | None = None
    backend: str | None = None
    kernels: str | None = None
    threads: int | None = None
    trained: bool | None = None
    input_shape: list[int] | None = None
    # Cortex-M devices: emulated instructions (QEMU -icount), not cycles; sizes of the firmware image
    instructions: float | None = None  # mean per inference
    instructions_per_mac: float | None = None
    flash_kib: float | None = None
    ram_kib: float | None = None
    mcu: dict[str, Any] | None = None  # measure_cortex_m's whole report (per image, per op, calibration, tools)
    checks: dict[str, Any] = field(default_factory=dict)

    @property
    def ms(self) -> float | None:
        return self.latency["median_ms"] if self.latency else None

    @property
    def fps(self) -> float | None:
        return self.latency["fps"] if self.latency else None


def _top1_pct(logits: np.ndarray, labels: np.ndarray) -> float:
    return 100.0 * float((np.asarray(logits).argmax(axis=1) == labels).mean())


def _row(subject: Subject, fmt: str, device: str, path: Path | None = None, *, status: str = "ok",
         error: str | None = None) -> BenchRow:
    row = BenchRow(model=subject.label, format=fmt, device=device, status=status, error=error,
                   params=subject.params, macs=subject.macs, trained=subject.trained)
    if path is not None:
        row.file = str(path)
        row.size_mb = path.stat().st_size / 1e6
    return row


def _fill_info(row: BenchRow, info: Any) -> None:
    row.backend, row.kernels, row.threads = info.backend, info.kernels, info.threads
    row.input_shape = [int(d) for d in info.input_shape]
    if info.arena_bytes is not None:
        row.arena_kib = info.arena_bytes / 1024


def _tflm_vs_reference(path: Path, x: np.ndarray, raw: np.ndarray) -> dict[str, Any]:
    """TFLM's raw int8 outputs against LiteRT's reference kernels on the same inputs, as LSB counts. When
    LiteRT cannot load the model (its loader is stricter than TFLM's) the check says so instead."""
    try:
        ref = load_runner(path, reference_kernels=True).run_raw(x)
    except EdgeGhostError as err:
        return {"tflm_vs_litert_reference": f"not compared: {err}"}
    diff = np.abs(raw.astype(np.int64) - ref.astype(np.int64)).reshape(len(x), -1).max(axis=1)
    return {"tflm_vs_litert_reference_max_lsb": int(diff.max()),
            "tflm_vs_litert_reference_differing_inputs": int((diff > 0).sum()),
            "tflm_vs_litert_reference_inputs": int(len(x)),
            "tflm_vs_litert_reference_tolerance_lsb": TFLM_VS_REFERENCE_TOLERANCE_LSB}


def _bench_local(subject: Subject, fmt: str, device: str, evalset: EvalSet | None, *, threads: int,
                 reference_kernels: bool, latency: dict[str, Any]) -> BenchRow:
    path = subject.files[fmt]
    row = _row(subject, fmt, device, path)
    if device == "tflm":
        runner = load_runner(path, backend="tflm")
    else:
        form = "deploy" if fmt == "torch_deploy" else "train"
        runner = load_runner(path, threads=threads, reference_kernels=reference_kernels, form=form)
    _fill_info(row, runner.info)
    row.note = _accuracy_inputs(runner.info, evalset)
    if row.note is None:
        x = runner.prepare(evalset.images)
    else:  # the model's own input shape and dtype: latency (and the TFLM check) without accuracy
        n = CHECK_INPUTS_WITHOUT_DATA if device == "tflm" else 1
        x = np.concatenate([runner.example_input(seed) for seed in range(n)])
    if device == "tflm":
        raw, stats = runner.benchmark(x, **latency)
        row.checks.update(_tflm_vs_reference(path, x, raw))
    else:
        raw = runner.run_raw(x)
        one = x[:1]
        stats = measure_latency(lambda: runner.run_raw(one), **latency)
    row.latency = stats.to_dict()
    if row.note is None:
        row.top1_pct = _top1_pct(runner.finish(raw), evalset.labels)
        row.eval_samples = len(evalset.labels)
    return row


def _bench_cortex_m(subject: Subject, fmt: str, device: str, evalset: EvalSet | None, *, kernels: str,
                    mcu_images: int) -> BenchRow:
    """Build the firmware for ``device`` around the int8 model, run it under QEMU on ``mcu_images`` eval images
    (seeded inputs without eval data) and report instructions, flash, RAM and arena."""
    from .export.firmware import measure_cortex_m

    path = subject.files[fmt]
    row = _row(subject, fmt, device, path)
    facts = read_tflite(path)
    hwc = tuple(facts.input.shape[1:])
    images: np.ndarray | int = mcu_images
    if evalset is not None and tuple(evalset.images.shape[1:]) == hwc:
        images = evalset.images[:mcu_images]
    report = measure_cortex_m(path, target=device, kernels=kernels, images=images)
    counts = report["instructions"]
    row.backend, row.kernels, row.threads = f"firmware ({report['qemu_machine']})", kernels, 1
    row.input_shape = [int(d) for d in facts.input.shape]
    row.instructions = float(counts["mean"])
    row.instructions_per_mac = row.instructions / subject.macs if subject.macs else None
    row.flash_kib, row.ram_kib = report["flash_bytes"] / 1024, report["ram_bytes"] / 1024
    row.arena_kib = (report["arena_used_bytes"] or report["arena_bytes"]) / 1024
    row.mcu = report
    row.eval_samples = int(report["num_images"])
    row.checks["firmware_equals_tflm_python"] = bool(report["identical_to_tflm_python"])
    row.checks["instructions_spread"] = counts["spread"]
    row.note = ("top-1: the firmware's outputs equal the TFLite-Micro interpreter's (see --device tflm); "
                "instructions are emulated, not cycles")
    return row


def _bench_rpi4(jobs: list[tuple[Subject, str]], evalsets: dict[str, EvalSet | None], *, target: Any,
                python: str | None, threads: int, reference_kernels: bool, latency: dict[str, Any],
                max_temp_c: float | None) -> tuple[list[BenchRow], dict[str, Any]]:
    from .runtime.rpi4 import run_on_device

    # One eval batch is shipped; models whose dataset differs get latency only.
    batch = next((e for e in evalsets.values() if e is not None), None)
    models = [(s.label, fmt, s.files[fmt]) for s, fmt in jobs]
    result = run_on_device(target, models, images=batch.images if batch is not None else None, python=python,
                           threads=threads, max_temp_c=max_temp_c, reference_kernels=reference_kernels, **latency)
    rows = []
    for (subject, fmt), entry in zip(jobs, result["models"]):
        row = _row(subject, fmt, "rpi4", subject.files[fmt])
        if entry["status"] != "ok":
            row.status, row.error = "run failed", entry.get("error")
            rows.append(row)
            continue
        info = entry["info"]
        row.backend, row.kernels, row.threads = info["backend"], info["kernels"], info["threads"]
        row.input_shape = info["input_shape"]
        row.latency = entry["latency"]
        row.checks["throttled_during_run"] = entry.get("throttled", False)
        row.checks["throttle_samples"] = entry.get("throttle_samples", [])
        row.checks["cooldown_s"] = round(entry.get("cooldown_s", 0.0), 1)
        if "raw_outputs" in entry and batch is not None:
            raw = np.asarray(entry["raw_outputs"], dtype=np.dtype(entry["raw_dtype"]))
            quant = info.get("output_quant")
            logits = dequantize(raw, *quant) if quant else raw.astype(np.float32)
            if evalsets.get(subject.label) is batch:
                row.top1_pct = _top1_pct(logits, batch.labels)
                row.eval_samples = len(batch.labels)
            # The same file on the host: float formats agree to rounding; int8 reference kernels bit for bit.
            host = load_runner(subject.files[fmt], threads=1, reference_kernels=reference_kernels)
            host_raw = host.run_raw(host.prepare(batch.images)).reshape(raw.shape)
            row.checks["max_abs_diff_vs_host"] = float(np.abs(raw.astype(np.float64) - host_raw).max())
            if quant:
                ref_raw = np.asarray(entry.get("reference_outputs", raw), dtype=raw.dtype)
                host_ref = host if reference_kernels else load_runner(subject.files[fmt], reference_kernels=True)
                ref_host = host_ref.run_raw(host_ref.prepare(batch.images)).reshape(raw.shape)
                row.checks["int8_reference_equals_host"] = bool(np.array_equal(ref_raw, ref_host))
                row.checks["int8_equals_host"] = bool(np.array_equal(raw, host_raw))
        else:
            row.note = ("no top-1: no eval data shipped" if batch is None else
                        f"no top-1: the model's input {info['input_shape']} does not take the eval images")
        rows.append(row)
    return rows, result


def run_bench(
    subjects: list[Subject],
    *,
    device: str,
    formats: tuple[str, ...],
    evalsets: dict[str, EvalSet | None],
    threads: int = 1,
    reference_kernels: bool = False,
    warmup: int = 10,
    min_time_s: float = 2.0,
    min_runs: int = 10,
    target: Any = None,
    remote_python: str | None = None,
    max_temp_c: float | None = 70.0,
    kernels: str = "cmsis-nn",
    mcu_images: int = 4,
    progress: bool = True,
) -> dict[str, Any]:
    """Benchmark every subject × format on ``device``; ``evalsets`` maps a subject label to its eval images
    (None: latency only). Returns the results document (``rows`` plus machine, device and settings)."""
    from tqdm import tqdm

    from .sysinfo import machine_info

    latency = {"warmup": warmup, "min_time_s": min_time_s, "min_runs": min_runs}
    rows: list[BenchRow] = []
    runnable: list[tuple[Subject, str]] = []
    for subject in subjects:
        for fmt in formats:
            if fmt in subject.files:
                runnable.append((subject, fmt))
            elif fmt in subject.missing:
                status, reason = subject.missing[fmt]
                rows.append(_row(subject, fmt, device, status=status, error=reason))
    doc: dict[str, Any] = {"schema": SCHEMA, "device": device, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                           "command": " ".join(["edgeghost", *sys.argv[1:]]) if sys.argv else None,
                           "host": machine_info(),
                           "settings": {"formats": list(formats), "threads": threads, "warmup": warmup,
                                        "min_time_s": min_time_s, "min_runs": min_runs,
                                        "reference_kernels": reference_kernels}}
    if device in CORTEX_M:
        doc["settings"].update({"kernels": kernels, "mcu_images": mcu_images})
    if device == "rpi4":
        if runnable:
            remote_rows, result = _bench_rpi4(runnable, evalsets, target=target, python=remote_python,
                                              threads=threads, reference_kernels=reference_kernels,
                                              latency=latency, max_temp_c=max_temp_c)
            rows += remote_rows
            doc["remote"] = {"target": target.where, "check": result.get("check"),
                             "device_before": result.get("device_before"), "device_after": result.get("device_after")}
    else:
        for subject, fmt in tqdm(runnable, desc=f"bench {device}", unit="row", disable=not progress,
                                 file=sys.stderr):
            try:
                if device in CORTEX_M:
                    rows.append(_bench_cortex_m(subject, fmt, device, evalsets.get(subject.label), kernels=kernels,
                                                mcu_images=mcu_images))
                else:
                    rows.append(_bench_local(subject, fmt, device, evalsets.get(subject.label), threads=threads,
                                             reference_kernels=reference_kernels, latency=latency))
            except Exception as err:  # one format failing must not stop the others
                rows.append(_row(subject, fmt, device, subject.files[fmt], status="run failed",
                                 error=f"{type(err).__name__}: {err}".splitlines()[0]))
    order = {(s.label, f): i for i, (s, f) in enumerate((s, f) for s in subjects for f in formats)}
    rows.sort(key=lambda r: order.get((r.model, r.format), len(order)))
    doc["rows"] = [asdict(r) for r in rows]
    doc["untrained"] = sorted({s.label for s in subjects if s.trained is False})
    return doc


# --- one request, as `edgeghost bench` makes it ----------------------------------------------------------------------


@dataclass(frozen=True)
class BenchRequest:
    """Everything ``edgeghost bench`` is asked; :func:`bench` does it."""

    device: str = "host"
    checkpoints: tuple[str, ...] = ()
    exports: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    study: str | None = None
    formats: str | None = None
    threads: int | None = None
    reference_kernels: bool = False
    eval_data: str | None = None
    data_dir: str | None = None
    eval_samples: int = 1000
    calib_samples: int | None = None
    exports_dir: str = "exports"
    warmup: int = 10
    min_time_s: float = 2.0
    min_runs: int = 10
    max_temp_c: float | None = 70.0
    out: str | None = None
    json_path: str | None = None
    force: bool = False
    target: Any = None  # SSHTarget for rpi4
    remote_python: str | None = None
    kernels: str = "cmsis-nn"  # Cortex-M devices: CMSIS-NN or reference kernels
    mcu_images: int = 4  # Cortex-M devices: eval images run in the firmware


def results_dir(out: str | Path | None, device: str, *, force: bool = False, root: str | Path = "bench") -> Path:
    """Where a run's results go, never over earlier results by surprise: without ``out`` a new folder
    ``<root>/<device>-<YYYYmmdd-HHMMSS>`` (``-2``, ``-3``, ... if taken); an ``out`` that already holds
    results is refused unless ``force``."""
    if out is None:
        stem = Path(root) / f"{device}-{time.strftime('%Y%m%d-%H%M%S')}"
        path, n = stem, 1
        while path.exists():
            n += 1
            path = stem.with_name(f"{stem.name}-{n}")
        return path
    path = Path(out)
    taken = [f for f in RESULT_FILES if (path / f).exists()]
    if taken and not force:
        raise EdgeGhostError(f"{path} already holds bench results ({', '.join(taken)}); pass --force to replace "
                             "them or choose another --out (without --out every run gets a new folder)")
    return path


def bench(request: BenchRequest, *, progress: bool = True) -> tuple[dict[str, Any], dict[str, Path]]:
    """Run one ``edgeghost bench`` request: gather the models, load eval data, measure, write the results.
    Returns the results document and the files written."""
    r = request
    formats = parse_formats(r.formats, r.device)
    if r.device == "rpi4" and r.target is None:
        raise EdgeGhostError("--device rpi4 needs --host USER@HOST")
    threads = r.threads or (4 if r.device == "rpi4" else 1)
    if threads < 1 or r.eval_samples < 1 or r.mcu_images < 1:
        raise EdgeGhostError("--threads, --eval-samples and --mcu-images must be >= 1")
    if r.kernels not in MCU_KERNELS:
        raise EdgeGhostError(f"unknown kernels {r.kernels!r}; choose one of: {', '.join(MCU_KERNELS)}")
    out_dir = results_dir(r.out, r.device, force=r.force)  # refused before anything long runs
    if r.json_path and Path(r.json_path).exists() and not r.force:
        raise EdgeGhostError(f"{r.json_path} already exists; pass --force to replace it")
    ckpts = [(None, c) for c in r.checkpoints] + (study_checkpoints(r.study) if r.study else [])
    subjects = [subject_from_checkpoint(c, formats, exports_dir=r.exports_dir, data_dir=r.data_dir,
                                        calib_samples=r.calib_samples, label=label) for label, c in ckpts]
    subjects += [subject_from_export(d, formats) for d in r.exports]
    subjects += [subject_from_file(m, formats) for m in r.models]
    if not subjects:
        subjects = [default_subject(formats, exports_dir=r.exports_dir, data_dir=r.data_dir,
                                    calib_samples=r.calib_samples)]
    labels = [s.label for s in subjects]
    if len(set(labels)) != len(labels):
        raise EdgeGhostError(f"two models share a name in the table: {', '.join(labels)}; rename one file")
    cache: dict[str, EvalSet] = {}
    evalsets: dict[str, EvalSet | None] = {}
    for s in subjects:
        dataset = r.eval_data or s.dataset
        if dataset and dataset not in cache:
            cache[dataset] = load_eval_set(dataset, samples=r.eval_samples, data_dir=r.data_dir,
                                           preprocess=s.preprocess)
        evalsets[s.label] = cache.get(dataset) if dataset else None
    if r.device == "rpi4" and len(cache) > 1:
        raise EdgeGhostError(f"rpi4 runs ship one eval set; the models use {', '.join(cache)} (pass --eval-data)")
    doc = run_bench(subjects, device=r.device, formats=formats, evalsets=evalsets, threads=threads,
                    reference_kernels=r.reference_kernels, warmup=r.warmup, min_time_s=r.min_time_s,
                    min_runs=r.min_runs, target=r.target, remote_python=r.remote_python, max_temp_c=r.max_temp_c,
                    kernels=r.kernels, mcu_images=r.mcu_images, progress=progress)
    return doc, write_results(doc, out_dir, json_path=r.json_path)


# --- output --------------------------------------------------------------------------------------------------------


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def explain_checks(row: dict[str, Any]) -> list[str]:
    """The checks of one row in words (the JSON keeps the numbers)."""
    c, name = row["checks"], f"{row['model']} {row['format']}"
    lines = []
    if "tflm_vs_litert_reference" in c:
        lines.append(f"{name}: TFLM vs LiteRT reference kernels {c['tflm_vs_litert_reference']}")
    if "tflm_vs_litert_reference_max_lsb" in c:
        n, diff, lsb = (c["tflm_vs_litert_reference_inputs"], c["tflm_vs_litert_reference_differing_inputs"],
                        c["tflm_vs_litert_reference_max_lsb"])
        tol = c["tflm_vs_litert_reference_tolerance_lsb"]
        if lsb == 0:
            lines.append(f"{name}: TFLM outputs equal LiteRT's reference kernels on all {n} inputs (bit-exact)")
        else:
            verdict = "within" if lsb <= tol else "OUTSIDE"
            lines.append(
                f"{name}: TFLM outputs differ from LiteRT's reference kernels by at most {lsb} LSB on {diff} of {n} "
                f"inputs: {verdict} the expected ≤ {tol} LSB (the two round int8 MUL / FULLY_CONNECTED differently; "
                "up to 3 LSB measured, export/README.md)")
    if "int8_reference_equals_host" in c:
        same = "equal" if c["int8_reference_equals_host"] else "DIFFER FROM"
        lines.append(f"{name}: the device's int8 reference-kernel outputs {same} the host's (expected: equal)")
    if "int8_equals_host" in c and not c["int8_equals_host"]:
        lines.append(f"{name}: the device's XNNPACK int8 outputs differ from the host's by up to "
                     f"{c.get('max_abs_diff_vs_host', 0):g} LSB (ARM and x86 kernels may round 1 LSB apart)")
    if "firmware_equals_tflm_python" in c:
        same = "equal" if c["firmware_equals_tflm_python"] else "DIFFER FROM"
        lines.append(f"{name}: the firmware's int8 outputs on {row['eval_samples']} inputs {same} the TFLite-Micro "
                     f"interpreter's; instructions per inference vary by {c['instructions_spread']:.3%} across them")
    if c.get("throttled_during_run"):
        lines.append(f"{name}: THROTTLED during the run {c['throttle_samples']}")
    return lines


def _table_columns(device: str) -> list[tuple[str, Any]]:
    """(header, cell(row)) of the console table: the Ultralytics layout, plus arena; Cortex-M devices show
    instructions, flash and RAM instead of host latency."""
    def lat(key: str, spec: str) -> Any:
        return lambda r: _fmt((r["latency"] or {}).get(key), spec)

    status = {"ok": "✅", "skipped": "➖ skipped"}
    cols: list[tuple[str, Any]] = [
        ("Model", lambda r: r["model"]), ("Format", lambda r: r["format"]),
        ("Status", lambda r: status.get(r["status"], f"❌ {r['status']}")),
        ("Size (MB)", lambda r: _fmt(r["size_mb"], ".3f")),
    ]
    if device in CORTEX_M:
        return cols + [
            ("Kernels", lambda r: r["kernels"] or "-"),
            ("instr/inference", lambda r: _fmt(r["instructions"], ",.0f")),
            ("instr/MAC", lambda r: _fmt(r["instructions_per_mac"], ".2f")),
            ("flash KiB", lambda r: _fmt(r["flash_kib"], ".1f")), ("RAM KiB", lambda r: _fmt(r["ram_kib"], ".1f")),
            ("arena KiB", lambda r: _fmt(r["arena_kib"], ".1f")),
        ]
    return cols + [("top-1 %", lambda r: _fmt(r["top1_pct"], ".2f")), ("ms/im", lat("median_ms", ".3f")),
                   ("FPS", lat("fps", ".1f")), ("arena KiB", lambda r: _fmt(r["arena_kib"], ".1f"))]


def format_table(doc: dict[str, Any]) -> str:
    """The console table and, below it, the reasons for failed rows and the checks in words."""
    cols = _table_columns(doc["device"])
    header = [h for h, _ in cols]
    lines = [[str(cell(r)) for _, cell in cols] for r in doc["rows"]]
    widths = [max(len(x) for x in col) for col in zip(header, *lines)]
    out = io.StringIO()
    out.write("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip() + "\n")
    for line in lines:
        out.write("  ".join(x.ljust(w) for x, w in zip(line, widths)).rstrip() + "\n")
    for r in doc["rows"]:
        if r["status"] != "ok" and r["error"]:
            out.write(f"{r['model']} {r['format']}: {r['status']}: {r['error']}\n")
        if r["status"] == "ok" and r.get("note") and r["note"].startswith("no top-1:"):
            out.write(f"{r['model']} {r['format']}: {r['note']}\n")
        for line in explain_checks(r):
            out.write(line + "\n")
    if doc["device"] in CORTEX_M and any(r["status"] == "ok" for r in doc["rows"]):
        out.write("Instructions are emulated instructions (QEMU -icount shift=0, timer-calibrated), not cycles: a real "
                  "core adds cycles for multi-cycle loads, multiplies, taken branches and flash wait states.\n")
    if doc.get("untrained"):
        out.write(f"WARNING: untrained weights ({', '.join(doc['untrained'])}): top-1 is meaningless; size and "
                  "latency are real. Pass --checkpoints to bench trained models.\n")
    return out.getvalue()


def format_device(remote: dict[str, Any]) -> str:
    """The device block printed before an rpi4 table: board, Python, runtimes, governor, temperature."""
    before, after = remote.get("device_before") or {}, remote.get("device_after") or {}
    check = remote.get("check") or {}
    lines = [f"device {remote['target']}: {before.get('board') or 'unknown board'} ({before.get('machine')}), "
             f"Python {check.get('python')}, runtimes "
             + ", ".join(f"{k} {v}" for k, v in (check.get("runtimes") or {}).items() if v)]
    for name, facts in (("before", before), ("after", after)):
        temp = facts.get("temperature_c")
        lines.append(f"  {name}: governor {facts.get('governor') or 'unknown'}, "
                     f"{'unknown' if temp is None else f'{temp:.1f} °C'}, throttled {facts.get('throttled') or 'unknown'}")
    if before.get("governor") not in (None, "performance"):
        lines.append("  note: governor is not 'performance'; clock ramp-up can inflate latency")
    return "\n".join(lines) + "\n"


CSV_FIELDS = ("model", "format", "device", "status", "size_mb", "params", "macs", "top1_pct", "eval_samples",
              "median_ms", "p90_ms", "std_ms", "fps", "runs", "arena_kib", "instructions", "instructions_per_mac",
              "flash_kib", "ram_kib", "backend", "kernels", "threads", "trained", "file", "error", "note")


def to_csv(doc: dict[str, Any]) -> str:
    """One line per row: the table plus p90, std, runs, backend and file."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in doc["rows"]:
        lat = r["latency"] or {}
        writer.writerow({**{k: r.get(k) for k in CSV_FIELDS}, **{k: lat.get(k) for k in
                                                                 ("median_ms", "p90_ms", "std_ms", "fps", "runs")}})
    return buf.getvalue()


def plot(doc: dict[str, Any], path: Path) -> None:
    """Accuracy vs latency, one point per model × format (rows without accuracy are left out)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    markers = dict(zip(FORMATS, "osD^v"))
    points = [r for r in doc["rows"] if r["status"] == "ok" and r["latency"] and r["top1_pct"] is not None]
    for r in points:
        ax.scatter(r["latency"]["median_ms"], r["top1_pct"], marker=markers.get(r["format"], "o"), s=36)
        ax.annotate(f"{r['model']} {r['format']}", (r["latency"]["median_ms"], r["top1_pct"]), fontsize=6,
                    xytext=(3, 3), textcoords="offset points")
    if not points:
        ax.text(0.5, 0.5, "no accuracy measured (pass --eval-data)", ha="center", transform=ax.transAxes)
    ax.set_xscale("log")
    ax.set_xlabel("latency, median ms per image (log scale)")
    ax.set_ylabel("top-1 (%)")
    title = f"edgeghost bench: {doc['device']}"
    if doc.get("untrained"):
        title += " (untrained weights: accuracy meaningless)"
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def write_results(doc: dict[str, Any], out_dir: str | Path, *, json_path: str | Path | None = None) -> dict[str, Path]:
    """``results.json``, ``results.csv`` and ``results.png`` in ``out_dir`` (and the JSON at ``json_path``)."""
    out_dir = ensure_dir(out_dir)
    paths = {"json": out_dir / "results.json", "csv": out_dir / "results.csv", "png": out_dir / "results.png"}
    text = json.dumps(doc, indent=2, default=str) + "\n"
    atomic_write_text(paths["json"], text)
    atomic_write_text(paths["csv"], to_csv(doc))
    plot(doc, paths["png"])
    if json_path is not None:
        atomic_write_bytes(Path(json_path), text.encode())
        paths["json_copy"] = Path(json_path)
    return paths


__all__ = [
    "BenchRequest", "BenchRow", "DEVICES", "EvalSet", "FORMATS", "Format", "Subject", "bench", "default_formats",
    "default_subject", "explain_checks", "format_device", "format_table", "load_eval_set", "parse_formats",
    "results_dir", "run_bench", "study_checkpoints", "subject_from_checkpoint", "subject_from_export",
    "subject_from_file", "plot", "to_csv", "write_results",
]
