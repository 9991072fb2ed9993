"""``edgeghost bench``: accuracy, size and latency of every model × format on one device, in one table.

Devices: ``host`` (this CPU: torch, onnxruntime, LiteRT), ``tflm`` (the int8 model in the TFLite-Micro
interpreter, arena measured, outputs checked against LiteRT's reference kernels) and ``rpi4`` (a Raspberry Pi
over SSH running ``remote_runner.py``; int8 outputs checked against the host's LiteRT). Every latency comes
from the one loop in :func:`edgeghost.runtime.measure_latency`. A format that fails marks its row with the
reason and the other rows still run. Results: a console table in the Ultralytics layout, ``results.json``,
``results.csv`` and ``results.png`` (accuracy vs latency).
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EdgeGhostError
from . import load_runner
from .remote_runner import dequantize, measure_latency

SCHEMA = "edgeghost-bench-v1"
DEVICES = ("host", "tflm", "rpi4")
DEFAULT_MODEL = ("ghostnetv3_small", 1.0)  # what `edgeghost bench` measures when given nothing


@dataclass(frozen=True)
class Format:
    name: str
    source: str  # "checkpoint" or the file name inside an export folder
    devices: tuple[str, ...]
    description: str


# One row per format: drives validation, defaults and docs.
FORMATS = {f.name: f for f in (
    #      name            source               devices                    description
    Format("torch",        "checkpoint",        ("host",),                 "PyTorch checkpoint, train form"),
    Format("torch_deploy", "checkpoint",        ("host",),                 "PyTorch, deploy form (reparameterized)"),
    Format("onnx",         "model.onnx",        ("host", "rpi4"),          "ONNX, onnxruntime"),
    Format("tflite_fp32",  "model_fp32.tflite", ("host", "rpi4"),          "TFLite fp32, LiteRT"),
    Format("tflite_int8",  "model_int8.tflite", ("host", "tflm", "rpi4"),  "TFLite full-integer int8 (LiteRT / TFLM)"),
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


def _model_facts(name: str, width: float, num_classes: int) -> tuple[int, int]:
    from ..models import create_model, model_info

    info = model_info(create_model(name, width=width, num_classes=num_classes), name)
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
    from ..export.pipeline import export_model

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
    subject = Subject(label or folder.name, trained=trained, dataset=manifest.get("dataset"))
    try:
        subject.params, subject.macs = _model_facts(manifest["model"], float(manifest["width"]),
                                                    len(manifest.get("labels") or []) or 10)
    except (EdgeGhostError, KeyError, ValueError):
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
                            data_dir: str | None = None, calib_samples: int | None = None) -> Subject:
    """A checkpoint: torch rows from the file itself, the others from its export (made now, or reused when
    ``exports_dir/<label>`` already holds an export of this very checkpoint that is newer than it)."""
    from ..training.checkpoint import load_checkpoint

    path = Path(path)
    ckpt = load_checkpoint(path)
    label = f"{path.parent.name}-{path.stem}" if path.parent.name else path.stem
    folder = Path(exports_dir) / label
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
        subject.params, subject.macs = _model_facts(ckpt["model"], float(ckpt["width"]), int(ckpt["num_classes"]))
    for fmt in formats:
        if FORMATS[fmt].source == "checkpoint":
            subject.files[fmt] = path
            subject.missing.pop(fmt, None)
    # A checkpoint that never trained (epoch 0, no metrics) is flagged like an untrained export.
    subject.trained = int(ckpt.get("epoch", 0)) > 0 or bool(ckpt.get("metrics"))
    subject.dataset = ckpt["dataset"]
    return subject


def subject_from_file(path: str | Path, formats: tuple[str, ...]) -> Subject:
    """A model file a user brings (``.tflite`` or ``.onnx``, from edgeghost or any other tool)."""
    path = Path(path)
    if path.suffix not in (".tflite", ".onnx"):
        raise EdgeGhostError(f"--model takes .tflite or .onnx files, got {path}")
    fmt = load_runner(path).info.format  # tflite_int8 vs tflite_fp32 from the model's own input type
    if fmt not in formats:
        raise EdgeGhostError(f"{path} is a {fmt} model; this run covers {', '.join(formats)}")
    return Subject(path.name, files={fmt: path})


def default_subject(formats: tuple[str, ...], *, exports_dir: str | Path, data_dir: str | None,
                    calib_samples: int | None) -> Subject:
    """``exports/ghostnetv3_small_w1`` (exported now with untrained weights if it is not there)."""
    name, width = DEFAULT_MODEL
    folder = Path(exports_dir) / f"{name}_w{width:g}"
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


# --- results -----------------------------------------------------------------------------------------------------


@dataclass
class BenchRow:
    model: str
    format: str
    device: str
    status: str  # ok, export failed, run failed, skipped, missing
    error: str | None = None
    file: str | None = None
    size_mb: float | None = None
    params: int | None = None
    macs: int | None = None
    top1: float | None = None  # fraction 0..1
    eval_samples: int = 0
    latency: dict[str, Any] | None = None
    arena_kib: float | None = None
    backend: str | None = None
    kernels: str | None = None
    threads: int | None = None
    trained: bool | None = None
    checks: dict[str, Any] = field(default_factory=dict)

    @property
    def ms(self) -> float | None:
        return self.latency["median_ms"] if self.latency else None

    @property
    def fps(self) -> float | None:
        return self.latency["fps"] if self.latency else None


@dataclass(frozen=True)
class EvalSet:
    dataset: str
    images: np.ndarray
    labels: np.ndarray


def load_eval_set(dataset: str, *, samples: int, data_dir: str | None) -> EvalSet:
    """The first ``samples`` test images of ``dataset`` (real files, via edgeghost.data)."""
    from ..data import load_split

    split = load_split(dataset, "test", data_dir).subset(samples)
    if len(split) == 0:
        raise EdgeGhostError(f"{dataset} test split is empty")
    return EvalSet(dataset, split.images, split.labels)


def _top1(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((np.asarray(logits).argmax(axis=1) == labels).mean())


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
    if info.arena_bytes is not None:
        row.arena_kib = info.arena_bytes / 1024


def _latency_image(evalset: EvalSet | None) -> np.ndarray:
    if evalset is not None:
        return evalset.images[:1]
    return np.random.default_rng(0).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)


def _bench_local(subject: Subject, fmt: str, device: str, evalset: EvalSet | None, *, threads: int,
                 reference_kernels: bool, latency: dict[str, Any]) -> BenchRow:
    path = subject.files[fmt]
    row = _row(subject, fmt, device, path)
    images = evalset.images if evalset is not None else _latency_image(None)
    if device == "tflm":
        runner = load_runner(path, backend="tflm")
        x = runner.prepare(images)
        raw, stats = runner.benchmark(x, **latency)
        # TFLM is expected to equal LiteRT's reference kernels; their int8 MUL / FULLY_CONNECTED can round 1 LSB
        # apart (export/README.md), so the largest difference is recorded next to the verdict.
        ref = load_runner(path, reference_kernels=True).run_raw(x)
        row.checks["tflm_equals_litert_reference"] = bool(np.array_equal(raw, ref))
        row.checks["max_abs_diff_vs_litert_reference"] = int(np.abs(raw.astype(np.int32) - ref.astype(np.int32)).max())
    else:
        form = "deploy" if fmt == "torch_deploy" else "train"
        runner = load_runner(path, threads=threads, reference_kernels=reference_kernels, form=form)
        x = runner.prepare(images)
        raw = runner.run_raw(x)
        one = x[:1]
        stats = measure_latency(lambda: runner.run_raw(one), **latency)
    _fill_info(row, runner.info)
    row.latency = stats.to_dict()
    if evalset is not None:
        row.top1 = _top1(runner.finish(raw), evalset.labels)
        row.eval_samples = len(evalset.labels)
    return row


def _bench_rpi4(jobs: list[tuple[Subject, str]], evalsets: dict[str, EvalSet | None], *, target: Any,
                python: str | None, threads: int, reference_kernels: bool, latency: dict[str, Any],
                max_temp_c: float | None) -> tuple[list[BenchRow], dict[str, Any]]:
    from .rpi4 import run_on_device

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
        row.latency = entry["latency"]
        row.checks["throttled_during_run"] = entry.get("throttled", False)
        row.checks["throttle_samples"] = entry.get("throttle_samples", [])
        row.checks["cooldown_s"] = round(entry.get("cooldown_s", 0.0), 1)
        if "raw_outputs" in entry and batch is not None:
            raw = np.asarray(entry["raw_outputs"], dtype=np.dtype(entry["raw_dtype"]))
            quant = info.get("output_quant")
            logits = dequantize(raw, *quant) if quant else raw.astype(np.float32)
            if evalsets.get(subject.label) is batch:
                row.top1 = _top1(logits, batch.labels)
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
    progress: bool = True,
) -> dict[str, Any]:
    """Benchmark every subject × format on ``device``; ``evalsets`` maps a subject label to its eval images
    (None: latency only). Returns the results document (``rows`` plus machine, device and settings)."""
    from tqdm import tqdm

    from ..sysinfo import machine_info

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


# --- output --------------------------------------------------------------------------------------------------------


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(doc: dict[str, Any]) -> str:
    """The console table (Ultralytics layout plus model and arena columns) and the reasons for failed rows."""
    header = ("Model", "Format", "Status", "Size (MB)", "top-1", "ms/im", "FPS", "arena KiB")
    lines = []
    for r in doc["rows"]:
        lat = r["latency"] or {}
        lines.append((
            r["model"], r["format"], {"ok": "✅", "skipped": "➖ skipped"}.get(r["status"], f"❌ {r['status']}"),
            _fmt(r["size_mb"], ".3f"), _fmt(r["top1"], ".4f"), _fmt(lat.get("median_ms"), ".3f"),
            _fmt(lat.get("fps"), ".1f"), _fmt(r["arena_kib"], ".1f"),
        ))
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]
    out = io.StringIO()
    out.write("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip() + "\n")
    for line in lines:
        out.write("  ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip() + "\n")
    for r in doc["rows"]:
        if r["status"] != "ok" and r["error"]:
            out.write(f"{r['model']} {r['format']}: {r['status']}: {r['error']}\n")
        for check, ok in r["checks"].items():
            if "equals" in check:
                out.write(f"{r['model']} {r['format']}: {check} = {ok}\n")
        if r["checks"].get("throttled_during_run"):
            out.write(f"{r['model']} {r['format']}: THROTTLED during the run {r['checks']['throttle_samples']}\n")
    if doc.get("untrained"):
        out.write(f"WARNING: untrained weights ({', '.join(doc['untrained'])}): top-1 is meaningless; size and "
                  "latency are real. Pass --checkpoints to bench trained models.\n")
    return out.getvalue()


CSV_FIELDS = ("model", "format", "device", "status", "size_mb", "params", "macs", "top1", "eval_samples",
              "median_ms", "p90_ms", "std_ms", "fps", "runs", "arena_kib", "backend", "kernels", "threads",
              "trained", "file", "error")


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    points = [r for r in doc["rows"] if r["status"] == "ok" and r["latency"] and r["top1"] is not None]
    for r in points:
        ax.scatter(r["latency"]["median_ms"], 100 * r["top1"], marker=markers.get(r["format"], "o"), s=36)
        ax.annotate(f"{r['model']} {r['format']}", (r["latency"]["median_ms"], 100 * r["top1"]), fontsize=6,
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
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    _atomic_write(path, buf.getvalue())


def write_results(doc: dict[str, Any], out_dir: str | Path, *, json_path: str | Path | None = None) -> dict[str, Path]:
    """``results.json``, ``results.csv`` and ``results.png`` in ``out_dir`` (and the JSON at ``json_path``)."""
    out_dir = Path(out_dir)
    paths = {"json": out_dir / "results.json", "csv": out_dir / "results.csv", "png": out_dir / "results.png"}
    text = json.dumps(doc, indent=2, default=str) + "\n"
    _atomic_write(paths["json"], text.encode())
    _atomic_write(paths["csv"], to_csv(doc).encode())
    plot(doc, paths["png"])
    if json_path is not None:
        _atomic_write(Path(json_path), text.encode())
        paths["json_copy"] = Path(json_path)
    return paths


__all__ = [
    "BenchRow", "DEVICES", "EvalSet", "FORMATS", "Format", "Subject", "default_formats",
    "default_subject", "format_table", "load_eval_set", "parse_formats", "run_bench", "subject_from_checkpoint",
    "subject_from_export", "subject_from_file", "plot", "to_csv", "write_results",
]
