"""int8 post-training quantization measured on trained checkpoints: top-1 fp32 vs int8, top-1 drop and top-1
agreement with fp32, per calibration method (minmax, percentile at several percentiles, and mse: the per-tensor
least-error clip), on the test split.

Per checkpoint: one verified export with the public API (:func:`edgeghost.export.export_model`: ONNX, TFLite fp32,
int8 minmax, optionally the per-layer report), then the export's own converter
(:func:`edgeghost.export.tflite.convert_quantized`) quantizes the exported ONNX again for each percentile, on the
export's calibration images. fp32 runs on LiteRT, int8 on LiteRT's reference kernels (what TFLite-Micro computes).
``--layer-report`` adds, per method, the int8 error each op adds (``edgeghost.export.fidelity.layer_report``)
grouped by what the op is in the network: DFC sigmoid gates, SE hard-sigmoid, residual adds, the ghost concats,
the head.

A QAT checkpoint (``edgeghost train --qat`` / ``edgeghost distill --qat``) is measured with minmax only (what its
fine-tuning emulated) and also against the float model it was fine-tuned from (``qat`` in its row).

``--methods`` picks the rows instead of the sweep, and two more say where the error comes from: ``weights-int8``,
the deploy form with the export's per-channel int8 weights on float activations (QAT's weight quantizer,
:meth:`QATNet.float_mode`), so int8 weights alone; ``int16x8``, the export's 16-bit-activation model (the same
8-bit weights, activation rounding 256 times finer).

    .venv/bin/python benchmarks/int8_ptq.py runs/zoo/*/best.pt [--percentiles 99.9,99.99,99.999]
        [--test-samples N] [--layer-report] [--methods minmax,weights-int8,int16x8] [--threads 1] [--work-dir exports/int8_ptq]
        [--out benchmarks/results/int8_ptq]

Resumable: every (checkpoint, method) result goes into the JSON the moment it is measured; a rerun skips the
pairs already there for the same checkpoint file (sha256) and test-set size, and reuses exports and int8 files
in ``--work-dir``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from edgeghost.errors import EdgeGhostError
from edgeghost.fileio import atomic_write_json, atomic_write_text, ensure_dir
from edgeghost.sysinfo import file_digest, machine_info

RESULTS = Path(__file__).parent / "results"
LAYER_IMAGES = 32  # test images for the per-layer report (it keeps every tensor of both models)
TRACE_IMAGES = 8  # test images for the fake-quant trace


def _label(ckpt: Path) -> str:
    return f"{ckpt.parent.name}-{ckpt.stem}"


def _methods(percentiles: list[float], bias_correction: bool = False) -> list[str]:
    methods = ["minmax"] + [f"percentile:{p:g}" for p in percentiles] + ["mse"]
    return methods + [f"{m}+bc" for m in methods] if bias_correction else methods


EXTRA_METHODS = ("weights-int8", "int16x8")  # rows that are not an int8 calibration (see the module docstring)


def _parse_methods(text: str) -> list[str]:
    """``--methods``: each a calibration (minmax, percentile:P, mse, each optionally +bc) or an extra row."""
    methods = [m.strip() for m in text.split(",") if m.strip()]
    for m in methods:
        name, _, pct = m.removesuffix("+bc").partition(":")
        ok = (m in EXTRA_METHODS or (name in ("minmax", "mse") and not pct)
              or (name == "percentile" and pct.replace(".", "", 1).isdigit() and 0 < float(pct) <= 100))
        if not ok:
            raise EdgeGhostError(f"--methods: unknown method {m!r} (minmax, percentile:P, mse, each optionally "
                                 f"+bc, or {', '.join(EXTRA_METHODS)})")
    return methods


def _export(ckpt: Path, folder: Path, *, data_dir: str | None, layer_report: bool) -> dict[str, Any]:
    """The verified export (minmax int8 without bias correction: the plain row, and what QAT emulates), made once
    and reused."""
    import json

    from edgeghost.export import export_model

    manifest = folder / "manifest.json"
    if manifest.is_file() and (not layer_report or (folder / "int8_layers.json").is_file()):
        doc = json.loads(manifest.read_text())
        calib = doc.get("quantization", {}).get("calibration", {})
        if (doc.get("weights", {}).get("checkpoint") == str(ckpt) and calib.get("method") == "minmax"
                and not calib.get("bias_correction")):
            return doc
    result = export_model(checkpoint=ckpt, out=folder, int8=True, calib_method="minmax", bias_correction=False,
                          data_dir=data_dir, layer_report=layer_report, eval_samples=200, verbose=True)
    return result.manifest


class _Checkpoint:
    """One checkpoint's export, test set and fp32 logits, with lazily made int8 files per method."""

    def __init__(self, path: Path, work: Path, args: argparse.Namespace) -> None:
        from edgeghost.data import split_for_checkpoint
        from edgeghost.training.checkpoint import load_checkpoint

        self.path, self.args = path, args
        self.ckpt = load_checkpoint(path)
        self.folder = work / _label(path)
        self.export_dir = self.folder / "export"
        self.manifest = _export(path, self.export_dir, data_dir=args.data_dir, layer_report=args.layer_report)
        test = split_for_checkpoint(self.ckpt, "test", args.data_dir).subset(args.test_samples)
        self.images, self.labels = test.array(), np.asarray(test.labels)
        self._keras = None
        fp32_cache = self.folder / f"fp32_logits_{len(self.labels)}.npy"
        if fp32_cache.is_file():
            self.fp32 = np.load(fp32_cache)
        else:
            self.fp32 = self._predict(self.export_dir / "model_fp32.tflite", reference=False, desc="fp32")
            np.save(fp32_cache, self.fp32)
        self.source_fp32 = self._source_logits() if self.ckpt.get("qat") else None

    def _source_logits(self) -> np.ndarray:
        """A QAT checkpoint's reference: the float model it was fine-tuned from (what the user validated), run in
        torch (the export ladder shows torch and TFLite fp32 agree to ~1e-5)."""
        from edgeghost.export.pipeline import torch_logits
        from edgeghost.training.checkpoint import load_checkpoint, model_from_checkpoint

        cache = self.folder / f"source_logits_{len(self.labels)}.npy"
        if cache.is_file():
            return np.load(cache)
        source = load_checkpoint(self.ckpt["qat"]["from"])
        logits = torch_logits(model_from_checkpoint(source).eval(), self.images, mean=source["mean"], std=source["std"])
        np.save(cache, logits)
        return logits

    def _predict(self, path: Path, *, reference: bool, desc: str) -> np.ndarray:
        from edgeghost.runtime import load_runner

        runner = load_runner(path, threads=self.args.threads, reference_kernels=reference)
        chunks = []
        for start in tqdm(range(0, len(self.images), 500), desc=f"{_label(self.path)} {desc}", leave=False):
            chunks.append(np.asarray(runner.predict(self.images[start : start + 500]), np.float64))
        return np.concatenate(chunks)

    def int8_file(self, method: str) -> Path:
        from edgeghost.export.tflite import DEFAULT_PERCENTILE

        if method == "minmax":
            return self.export_dir / "model_int8.tflite"
        if method == "int16x8":
            return self._convert(self.folder / "model_int16x8.tflite", mode="int16x8")
        bc = method.endswith("+bc")
        name, _, pct = method.removesuffix("+bc").partition(":")  # "percentile:99.99" / "minmax" / "mse"
        percentile = float(pct) if pct else DEFAULT_PERCENTILE
        path = self.folder / ((f"model_int8_p{percentile:g}" if pct else f"model_int8_{name}")
                              + ("_bc" if bc else "") + ".tflite")
        return self._convert(path, method=name, percentile=percentile, bias_correction=bc)

    def _convert(self, path: Path, **options: Any) -> Path:
        """``path`` quantized by the export's converter from the export's ONNX and calibration images (reused)."""
        if path.is_file():
            return path
        from edgeghost.data import split_for_checkpoint
        from edgeghost.export.tflite import check_full_integer, convert_quantized, inspect_tflite, onnx_to_keras
        from edgeghost.training.qat import calibration_images

        calib = self.manifest["quantization"]["calibration"]
        train = split_for_checkpoint(self.ckpt, "train", self.args.data_dir)
        images = calibration_images(train.images, int(calib["samples"]), seed=int(calib["seed"]))
        if self._keras is None:
            self._keras = onnx_to_keras(self.export_dir / "model.onnx", sample_images=self.images[:20],
                                        work_dir=self.folder / ".work")
        tmp = path.with_name(f".{path.name}.tmp")
        convert_quantized(self._keras, tmp, calib_images=images, **options)
        check_full_integer(inspect_tflite(tmp), mode=options.get("mode", "int8"))
        tmp.rename(path)
        return path


def _weights_int8_logits(src: _Checkpoint) -> np.ndarray:
    """The deploy form with per-channel int8 weights on float activations (no calibration involved)."""
    from edgeghost.export.pipeline import torch_logits
    from edgeghost.training.checkpoint import model_from_checkpoint
    from edgeghost.training.qat import prepare_qat

    net = prepare_qat(model_from_checkpoint(src.ckpt), None, mean=src.ckpt["mean"], std=src.ckpt["std"])
    with net.float_mode(int8_weights=True):
        return torch_logits(net, src.images, mean=src.ckpt["mean"], std=src.ckpt["std"])


def _measure(src: _Checkpoint, method: str, *, layer_report: bool) -> dict[str, Any]:
    start = time.perf_counter()
    path = None if method == "weights-int8" else src.int8_file(method)
    int8 = _weights_int8_logits(src) if path is None else src._predict(path, reference=True, desc=method)
    fp32, labels = src.fp32, src.labels
    top1_fp32 = 100.0 * float((fp32.argmax(1) == labels).mean())
    top1_int8 = 100.0 * float((int8.argmax(1) == labels).mean())
    row = {
        "checkpoint": str(src.path), "sha256": file_digest(src.path), "model": src.ckpt["model"],
        "width": src.ckpt["width"], "dataset": src.ckpt["dataset"], "method": method,
        "test_samples": int(len(labels)), "top1_fp32": round(top1_fp32, 3), "top1_int8": round(top1_int8, 3),
        "top1_drop_pp": round(top1_fp32 - top1_int8, 3),
        "agreement_pct": round(100.0 * float((fp32.argmax(1) == int8.argmax(1)).mean()), 3),
        "flips": int((fp32.argmax(1) != int8.argmax(1)).sum()),
        "max_logit_diff": round(float(np.abs(fp32 - int8).max()), 4),
        "mean_logit_diff": round(float(np.abs(fp32 - int8).mean()), 5),
        "int8_file": str(path) if path else None, "int8_bytes": path.stat().st_size if path else None,
        "eval_s": round(time.perf_counter() - start, 1),
    }
    if method == "minmax":
        row["fake_quant"] = _fake_quant_vs_int8(src, int8)
        if src.args.fake_quant_trace:
            row["fake_quant"]["trace"] = _fake_quant_trace(src, path, src.images[:TRACE_IMAGES])
    if src.source_fp32 is not None:
        ref = src.source_fp32.argmax(1)
        distilled = src.ckpt.get("distill")
        row["qat"] = {
            "from": str(src.ckpt["qat"]["from"]),
            "loss": (f"KD from {', '.join(distilled['teachers'])} (alpha {distilled['alpha']:g}, "
                     f"T {distilled['temperature']:g})") if distilled else "cross-entropy on labels",
            "top1_source_fp32": round(100.0 * float((ref == labels).mean()), 3),
            "agreement_vs_source_pct": round(100.0 * float((ref == int8.argmax(1)).mean()), 3),
            "flips_vs_source": int((ref != int8.argmax(1)).sum()),
            "drop_vs_source_pp": round(100.0 * float((ref == labels).mean()) - top1_int8, 3),
        }
    if layer_report and method not in EXTRA_METHODS:
        row["layers"] = _layer_groups(src.export_dir / "model_fp32.tflite", path, src.images[:LAYER_IMAGES])
    return row


def _fake_quant_net(src: _Checkpoint) -> Any:
    """QAT's fake-quant model of these weights, its ranges from the export's own calibration images."""
    from edgeghost.data import split_for_checkpoint
    from edgeghost.training.checkpoint import model_from_checkpoint
    from edgeghost.training.qat import calibration_images, prepare_qat

    calib = src.manifest["quantization"]["calibration"]
    train = split_for_checkpoint(src.ckpt, "train", src.args.data_dir)
    return prepare_qat(model_from_checkpoint(src.ckpt), calibration_images(
        train.images, int(calib["samples"]), seed=int(calib["seed"])), mean=src.ckpt["mean"], std=src.ckpt["std"])


def _fake_quant_vs_int8(src: _Checkpoint, int8: np.ndarray) -> dict[str, Any]:
    """How well QAT's fake-quant forward (:mod:`edgeghost.training.qat`, ranges from the same calibration images)
    predicts this minmax int8 model, next to how well the float model does (PTQ's assumption)."""
    from edgeghost.export.pipeline import torch_logits

    fq = torch_logits(_fake_quant_net(src), src.images, mean=src.ckpt["mean"], std=src.ckpt["std"])
    return {
        "agreement_with_int8_pct": round(100.0 * float((fq.argmax(1) == int8.argmax(1)).mean()), 3),
        "mean_logit_diff_vs_int8": round(float(np.abs(fq - int8).mean()), 5),
        "max_logit_diff_vs_int8": round(float(np.abs(fq - int8).max()), 4),
        "top1_fake_quant": round(100.0 * float((fq.argmax(1) == src.labels).mean()), 3),
    }


def _fake_quant_trace(src: _Checkpoint, int8_path: Path, images: np.ndarray) -> list[dict[str, Any]]:
    """Where the fake-quant forward and the int8 model part ways, quantizer by quantizer in forward order: each
    quantizer's int8 codes against the int8 file's tensor with the same (scale, zero-point) and shape (LiteRT
    with every tensor kept): mean |Δ| in LSB, the fraction of codes that differ, the largest difference."""
    import torch
    from ai_edge_litert.interpreter import Interpreter

    from edgeghost.data.loader import normalize
    from edgeghost.training.qat import ActQuant

    net = _fake_quant_net(src)
    outputs: dict[str, list[torch.Tensor]] = {}
    quantizers = [(n, m) for n, m in net.named_modules()
                  if isinstance(m, ActQuant) and (m.fixed is not None or bool(torch.isfinite(m.qat_lo)))]
    for name, m in quantizers:
        m.register_forward_hook(lambda _m, _i, out, name=name: outputs.setdefault(name, []).append(out.detach()))
    with torch.no_grad():
        for image in images:  # one at a time: a quantizer used twice per forward (the concat) keeps its calls apart
            net(normalize(torch.from_numpy(image[None]), mean=src.ckpt["mean"], std=src.ckpt["std"]))
    interp = Interpreter(model_path=str(int8_path), experimental_preserve_all_tensors=True)
    interp.allocate_tensors()
    tensors = [t for t in interp.get_tensor_details()
               if t["dtype"] == np.int8 and len(t["quantization_parameters"]["scales"]) == 1]
    codes: dict[int, list[np.ndarray]] = {t["index"]: [] for t in tensors}
    for image in images:
        interp.set_tensor(interp.get_input_details()[0]["index"], (image[None].astype(np.int16) - 128).astype(np.int8))
        interp.invoke()
        for t in tensors:
            codes[t["index"]].append(interp.get_tensor(t["index"]).astype(np.float64))
    rows = []
    for name, m in quantizers:
        scale, zp = (float(v) for v in m.qparams())
        calls = len(outputs[name]) // len(images)
        for c in range(calls):
            fq = torch.cat(outputs[name][c::calls]).double().numpy()
            fq = np.round((fq.transpose(0, 2, 3, 1) if fq.ndim == 4 else fq) / scale + zp)
            best = None
            for t in tensors:
                q = t["quantization_parameters"]
                if abs(q["scales"][0] - scale) > 1e-4 * scale or abs(q["zero_points"][0] - zp) > 1:
                    continue
                file_codes = np.concatenate(codes[t["index"]])
                if file_codes.shape != fq.shape:
                    continue
                diff = np.abs(file_codes - fq)
                if best is None or diff.mean() < best["mean_lsb"]:
                    best = {"quantizer": name + (f"[{c}]" if calls > 1 else ""), "tensor": t["name"],
                            "mean_lsb": round(float(diff.mean()), 4), "frac_differ": round(float((diff > 0).mean()), 4),
                            "max_lsb": int(diff.max())}
            rows.append(best or {"quantizer": name, "tensor": None})
    return rows


# --- per-layer report grouped by role -----------------------------------------------------------------------

def _roles(int8_path: Path) -> dict[int, str]:
    """Each op's role in the network, read from the int8 graph's wiring (not from names)."""
    from ai_edge_litert.interpreter import Interpreter

    ops = Interpreter(model_path=str(int8_path))._get_ops_details()
    producer = {o: op for op in ops for o in op["outputs"]}
    tensors = {t["index"]: t for t in Interpreter(model_path=str(int8_path)).get_tensor_details()}

    def prod(i: int) -> str | None:
        return producer[i]["op_name"] if i in producer else None

    last_mean = max((op["index"] for op in ops if op["op_name"] == "MEAN"), default=None)
    roles: dict[int, str] = {}
    for op in ops:
        name, ins = op["op_name"], [i for i in op["inputs"] if i >= 0]
        consumers = [c for c in ops if set(op["outputs"]) & set(c["inputs"])]
        if op["index"] == 0:
            role = "input normalization"
        elif last_mean is not None and op["index"] >= last_mean:
            role = "head (pool, 1x1 conv, classifier)"
        elif name in ("LOGISTIC", "RESIZE_NEAREST_NEIGHBOR") or (
                name == "MUL" and any(prod(i) == "RESIZE_NEAREST_NEIGHBOR" for i in ins)):
            role = "DFC sigmoid gate"
        elif name == "MUL" and any(i not in producer and tensors[i]["shape"].size == 0 or
                                   (i not in producer and int(np.prod(tensors[i]["shape"])) == 1) for i in ins):
            role = "SE hard-sigmoid (x 1/6)"
        elif name == "MUL":
            role = "SE scale (x * gate)"
        elif name == "CONV_2D" and any(c["op_name"] == "MUL" and any(
                i not in producer for i in c["inputs"] if i >= 0 and i not in op["outputs"]) for c in consumers):
            role = "SE hard-sigmoid (conv + relu6)"
        elif name == "MEAN" or (name == "CONV_2D" and any(prod(i) == "MEAN" for i in ins)):
            role = "SE squeeze (mean, 1x1 conv)"
        elif name == "ADD":
            role = "residual add"
        elif name == "CONCATENATION":
            role = "ghost concat"
        else:
            role = name.lower().replace("_2d", "").replace("_", " ")
        roles[op["index"]] = role
    return roles


def _layer_groups(fp32_path: Path, int8_path: Path, images: np.ndarray) -> dict[str, Any]:
    from edgeghost.export.fidelity import layer_report

    rows = layer_report(fp32_path, int8_path, images)
    roles = _roles(int8_path)
    groups: dict[str, list[Any]] = {}
    for r in rows:
        groups.setdefault(roles.get(r.index, r.op.lower()), []).append(r)
    summary = {}
    for role, rs in sorted(groups.items(), key=lambda kv: -max(r.growth for r in kv[1])):
        summary[role] = {
            "ops": len(rs),
            "growth_sum": round(sum(r.growth for r in rs), 4),
            "growth_max": round(max(r.growth for r in rs), 4),
            "steps_per_rms_median": round(float(np.median([r.steps_per_rms for r in rs])), 2),
            "outlier_ratio_max": round(max(r.absmax_over_p999 for r in rs), 2),
        }
    worst = sorted(rows, key=lambda r: -r.growth)[:10]
    final = rows[-1].rel_rmse if rows else None
    return {"images": int(len(images)), "output_rel_rmse": final, "by_role": summary,
            "worst_ops": [{"index": r.index, "op": r.op, "role": roles.get(r.index), "growth": round(r.growth, 4),
                           "rel_rmse": round(r.rel_rmse, 4), "steps_per_rms": round(r.steps_per_rms, 2),
                           "range": [round(v, 4) for v in r.range],
                           "outlier_ratio": round(r.absmax_over_p999, 2)} for r in worst]}


# --- results ---------------------------------------------------------------------------------------------

def _markdown(doc: dict[str, Any]) -> str:
    lines = [
        "# int8 post-training quantization on trained checkpoints", "",
        f"Command: `{doc['command']}`  ", f"Machine: {doc['machine'].get('cpu')}, commit {doc['machine'].get('commit')}",
        "", "top-1 on the test split; fp32 = TFLite fp32 (LiteRT), int8 = full-integer TFLite on LiteRT's "
        "reference kernels; agreement = same top-1 class as fp32; drop = fp32 − int8 (positive = int8 worse). "
        "Row `weights-int8`: the deploy form (torch) with the per-channel int8 weights on float activations — what "
        "int8 weights alone cost; row `int16x8`: the 16-bit-activation TFLite model (same int8 weights, min/max "
        "ranges) in place of int8.", "",
        "| checkpoint | model | method | images | top-1 fp32 % | top-1 int8 % | drop pp | agreement % | flips | "
        "max Δlogit |", "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["results"]:
        lines.append(
            f"| {_label(Path(r['checkpoint']))} | {r['model']} w{r['width']:g} | {r['method']} | {r['test_samples']} | "
            f"{r['top1_fp32']:.2f} | {r['top1_int8']:.2f} | {r['top1_drop_pp']:+.2f} | {r['agreement_pct']:.2f} | "
            f"{r['flips']} | {r['max_logit_diff']:.3g} |")
    with_fq = [r for r in doc["results"] if "fake_quant" in r]
    if with_fq:
        lines += ["", "## QAT's fake-quant forward vs the minmax int8 model", "",
                  "`edgeghost.training.qat.prepare_qat` on the same weights and calibration images, before any "
                  "fine-tuning: how closely it predicts the int8 model, next to the float model (what PTQ assumes).",
                  "", "| checkpoint | agreement fake-quant↔int8 % | agreement fp32↔int8 % | mean Δlogit fake-quant | "
                  "mean Δlogit fp32 | max Δlogit fake-quant | max Δlogit fp32 |", "|---|---|---|---|---|---|---|"]
        for r in with_fq:
            f = r["fake_quant"]
            lines.append(f"| {_label(Path(r['checkpoint']))} | {f['agreement_with_int8_pct']:.2f} | "
                         f"{r['agreement_pct']:.2f} | {f['mean_logit_diff_vs_int8']:.4f} | {r['mean_logit_diff']:.4f} | "
                         f"{f['max_logit_diff_vs_int8']:.3g} | {r['max_logit_diff']:.3g} |")
    with_qat = [r for r in doc["results"] if "qat" in r]
    if with_qat:
        lines += ["", "## QAT checkpoints against the float model they were fine-tuned from", "",
                  "What a user validated is the float model before QAT: agreement and drop here are int8 (QAT "
                  "weights, minmax: the calibration QAT emulates) against that model's fp32 (torch) on the same "
                  "images; compare with the PTQ rows of the source checkpoint above.", "",
                  "| checkpoint | from | QAT loss | top-1 source fp32 % | top-1 int8 % | drop pp | agreement % | "
                  "flips |", "|---|---|---|---|---|---|---|---|"]
        for r in with_qat:
            q = r["qat"]
            lines.append(f"| {_label(Path(r['checkpoint']))} | {Path(q['from']).name} | {q['loss']} | "
                         f"{q['top1_source_fp32']:.2f} | {r['top1_int8']:.2f} | {q['drop_vs_source_pp']:+.2f} | "
                         f"{q['agreement_vs_source_pct']:.2f} | {q['flips_vs_source']} |")
    traced = [r for r in doc["results"] if r.get("fake_quant", {}).get("trace")]
    for r in traced:
        lines += ["", f"### Fake-quant vs int8, tensor by tensor: {_label(Path(r['checkpoint']))} "
                  f"(`--fake-quant-trace`, {TRACE_IMAGES} test images)", "",
                  "Each QAT quantizer in forward order against the int8 file's tensor with its (scale, zero-point) "
                  "and shape: how many int8 codes differ and by how much.", "",
                  "| quantizer | mean \\|Δ\\| LSB | codes that differ | max \\|Δ\\| LSB |", "|---|---|---|---|"]
        for t in r["fake_quant"]["trace"]:
            if t.get("tensor") is None:
                lines.append(f"| {t['quantizer']} | no tensor with its range | | |")
            else:
                lines.append(f"| {t['quantizer']} | {t['mean_lsb']:.3f} | {100 * t['frac_differ']:.1f} % | "
                             f"{t['max_lsb']} |")
    with_layers = [r for r in doc["results"] if "layers" in r]
    if with_layers:
        lines += ["", "## Where int8 loses precision (`--layer-report`)", "",
                  f"Per op role: `growth` = relative RMS error an op adds to the worst of its inputs "
                  f"({LAYER_IMAGES} test images, int8 vs fp32 tensor by tensor); `steps/RMS` = int8 steps the "
                  "signal's RMS spans (few: the range is spent on outliers or the grid is coarse); `outlier` = "
                  "max |x| / 99.9th-percentile |x|.", ""]
        for r in with_layers:
            lay = r["layers"]
            lines += [f"### {_label(Path(r['checkpoint']))}, {r['method']} (output rel. RMS error "
                      f"{lay['output_rel_rmse']:.3g})", "",
                      "| role | ops | growth sum | growth max | steps/RMS (median) | outlier max |",
                      "|---|---|---|---|---|---|"]
            for role, g in lay["by_role"].items():
                lines.append(f"| {role} | {g['ops']} | {g['growth_sum']:.4f} | {g['growth_max']:.4f} | "
                             f"{g['steps_per_rms_median']:.1f} | {g['outlier_ratio_max']:.1f} |")
            lines.append("")
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoints", nargs="+", type=Path)
    p.add_argument("--percentiles", default="99.9,99.99,99.999", help="comma list (default: %(default)s)")
    p.add_argument("--test-samples", type=int, default=None, help="first N test images (default: all)")
    p.add_argument("--layer-report", action="store_true", help="also group the int8 error per op role")
    p.add_argument("--fake-quant-trace", action="store_true",
                   help="minmax: compare QAT's fake-quant forward with the int8 file tensor by tensor")
    p.add_argument("--bias-correction", action="store_true",
                   help="also measure every method with empirical bias correction (METHOD+bc)")
    p.add_argument("--methods", default=None,
                   help="comma list of rows instead of the sweep: minmax, percentile:P, mse (each optionally +bc), "
                        "weights-int8 (int8 weights on float activations), int16x8")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--work-dir", type=Path, default=Path("exports") / "int8_ptq",
                   help="exports and int8 files, reused by a rerun (default: %(default)s)")
    p.add_argument("--out", type=Path, default=RESULTS / "int8_ptq", help="writes OUT.json and OUT.md")
    args = p.parse_args()
    try:
        percentiles = [float(v) for v in args.percentiles.split(",") if v.strip()]
        if not all(0 < v <= 100 for v in percentiles):
            raise ValueError
    except ValueError:
        raise EdgeGhostError(f"--percentiles must be a comma list of numbers in (0, 100], got {args.percentiles!r}") from None
    chosen = _parse_methods(args.methods) if args.methods else None
    missing = [str(c) for c in args.checkpoints if not c.is_file()]
    if missing:
        raise EdgeGhostError(f"checkpoint(s) not found: {', '.join(missing)}")
    ensure_dir(args.out.parent)
    work = ensure_dir(args.work_dir)
    json_path, md_path = args.out.with_suffix(".json"), args.out.with_suffix(".md")
    import json

    from edgeghost.training.checkpoint import load_checkpoint

    doc = json.loads(json_path.read_text()) if json_path.is_file() else {"results": []}
    doc.update(command=" ".join(["python", *sys.argv]), machine=machine_info())
    for ckpt in args.checkpoints:
        digest = file_digest(ckpt)
        src = None
        # A QAT checkpoint carries the ranges of minmax calibration, the one method its fine-tuning emulated.
        methods = ["minmax"] if load_checkpoint(ckpt).get("qat") else (
            chosen or _methods(percentiles, args.bias_correction))
        for method in methods:
            done = [r for r in doc["results"] if r["sha256"] == digest and r["method"] == method
                    and (args.test_samples is None or r["test_samples"] == args.test_samples)
                    and (not args.layer_report or "layers" in r or method in EXTRA_METHODS)
                    and (not args.fake_quant_trace or method != "minmax" or r.get("fake_quant", {}).get("trace"))]
            if done:
                print(f"{_label(ckpt)} {method}: done before, skipped", file=sys.stderr)
                continue
            src = src or _Checkpoint(ckpt, work, args)
            row = _measure(src, method, layer_report=args.layer_report)
            doc["results"] = [r for r in doc["results"] if not (r["sha256"] == digest and r["method"] == method)]
            doc["results"].append(row)
            atomic_write_json(json_path, doc)
            atomic_write_text(md_path, _markdown(doc))
            print(f"{_label(ckpt)} {method}: top-1 fp32 {row['top1_fp32']:.2f} % int8 {row['top1_int8']:.2f} % "
                  f"agreement {row['agreement_pct']:.2f} %", file=sys.stderr)
    atomic_write_text(md_path, _markdown(doc))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except EdgeGhostError as err:
        print(f"int8_ptq: error: {err}", file=sys.stderr)
        sys.exit(2)
