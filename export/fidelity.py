"""The fidelity ladder: how far each export stage moves the logits, measured on real test images.

For each stage (train-form torch → deploy-form torch → ONNX → TFLite fp32 → TFLite int8 → TFLite-Micro int8):
max abs logit difference to the previous stage, top-1 agreement with it, and top-1 accuracy on the labels.
Written as ``fidelity.json`` and ``fidelity.md`` and printed at the end of every export.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..fileio import atomic_write_json, atomic_write_text

@dataclass(frozen=True)
class Rung:
    """One stage of the ladder, compared with the stage before it (the first rung has no predecessor)."""

    stage: str
    artifact: str
    max_abs_diff: float | None  # max |logits − previous stage's logits| (dequantized for integer models)
    rel_diff: float | None  # max_abs_diff / max |previous logits|
    top1_agreement: float | None  # fraction of images with the same arg-max as the previous stage
    top1_accuracy: float  # against the labels
    samples: int


def build_ladder(stages: list[tuple[str, str, np.ndarray]], labels: np.ndarray) -> list[Rung]:
    """``stages``: (name, artifact file or "-", float logits N×classes) in pipeline order. A stage may have run
    fewer images (the first ones, e.g. TFLite-Micro): it is compared and scored on those."""
    rungs: list[Rung] = []
    prev: np.ndarray | None = None
    for name, artifact, logits in stages:
        logits = np.asarray(logits, dtype=np.float64)
        n = len(logits)
        top1 = logits.argmax(1)
        if prev is None:
            diff = rel = agree = None
        else:
            diff = float(np.abs(logits - prev[:n]).max())
            rel = diff / max(float(np.abs(prev[:n]).max()), 1e-12)
            agree = float((top1 == prev[:n].argmax(1)).mean())
        rungs.append(Rung(name, artifact, diff, rel, agree, float((top1 == labels[:n]).mean()), n))
        prev = logits
    return rungs


def _fmt(value: float | None, spec: str, unit: str = "") -> str:
    return "—" if value is None else format(value, spec) + unit


def ladder_table(rungs: list[Rung]) -> str:
    """The ladder as a Markdown table (also readable in a terminal)."""
    lines = [
        "| stage | artifact | images | max abs Δ logits | rel Δ | top-1 agree | top-1 acc |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rungs:
        lines.append(
            f"| {r.stage} | {r.artifact} | {r.samples} | {_fmt(r.max_abs_diff, '.3g')} | {_fmt(r.rel_diff, '.2e')} | "
            f"{_fmt(None if r.top1_agreement is None else 100 * r.top1_agreement, '.2f', ' %')} | "
            f"{100 * r.top1_accuracy:.2f} % |"
        )
    return "\n".join(lines)


def write_fidelity(rungs: list[Rung], out_dir: str | Path, *, meta: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``fidelity.json`` (rungs + ``meta``: eval set, weights, notes) and ``fidelity.md``."""
    out_dir = Path(out_dir)
    json_path, md_path = out_dir / "fidelity.json", out_dir / "fidelity.md"
    atomic_write_json(json_path, {**meta, "ladder": [asdict(r) for r in rungs]})
    notes = "".join(f"- {line}\n" for line in meta.get("notes", []))
    atomic_write_text(md_path, 
        f"# Fidelity ladder: {meta.get('model', '')}\n\n"
        f"Eval set: {meta.get('eval', {}).get('description', '')}\n\n"
        f"{ladder_table(rungs)}\n\n{notes}"
    )
    return json_path, md_path


# --- per-layer int8 error report ---------------------------------------------------------------------------

@dataclass(frozen=True)
class LayerError:
    """One activation tensor of the int8 model next to the same tensor of the fp32 model (same names: both
    come from one converted graph). ``rel_rmse`` is the error accumulated up to this tensor; ``growth`` is what
    this op adds to the worst of its inputs; ``steps_per_rms`` says how many int8 steps the signal's RMS spans
    (low: the range is spent on rare outliers)."""

    index: int  # execution order of the op producing the tensor
    op: str
    tensor: str
    rel_rmse: float
    growth: float
    steps_per_rms: float
    range: tuple[float, float]  # representable float range of the int8 tensor
    absmax_over_p999: float  # float tensor's max |x| over its 99.9th percentile |x| (outlier measure)


def layer_report(fp32_path: str | Path, int8_path: str | Path, images: np.ndarray) -> list[LayerError]:
    """Run the fp32 and int8 TFLite models on uint8 images keeping every intermediate tensor and compare them
    tensor by tensor (LiteRT's reference kernels for int8, as TFLite-Micro). Slow-ish: a few dozen images."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from ..runtime import quantize

    def run(path: str | Path, reference: bool) -> tuple[Any, list[dict[str, np.ndarray]]]:
        interp = Interpreter(
            model_path=str(path), experimental_preserve_all_tensors=True,
            experimental_op_resolver_type=OpResolverType.BUILTIN_REF if reference else OpResolverType.AUTO,
        )
        interp.allocate_tensors()
        inp = interp.get_input_details()[0]
        outs = []
        for image in images:
            x = image[None].astype(np.float32)
            if np.issubdtype(inp["dtype"], np.integer):
                scale, zp = inp["quantization"]
                x = quantize(x, scale, zp, inp["dtype"])
            interp.set_tensor(inp["index"], x)
            interp.invoke()
            outs.append({t["name"]: interp.get_tensor(t["index"]).copy() for t in _op_outputs(interp)})
        return interp, outs

    f_interp, f_runs = run(fp32_path, False)
    q_interp, q_runs = run(int8_path, True)
    f_by_name = {t["name"]: t for t in f_interp.get_tensor_details()}
    q_details = {t["index"]: t for t in q_interp.get_tensor_details()}
    rows: list[LayerError] = []
    err_of: dict[int, float] = {}
    for op in q_interp._get_ops_details():
        for out_idx in op["outputs"]:
            t = q_details[out_idx]
            name = t["name"]
            if name not in f_by_name or not t["quantization_parameters"]["scales"].size:
                continue
            scale = float(t["quantization_parameters"]["scales"][0])
            zp = int(t["quantization_parameters"]["zero_points"][0])
            ref = np.concatenate([r[name].ravel() for r in f_runs]).astype(np.float64)
            deq = (np.concatenate([r[name].ravel() for r in q_runs]).astype(np.float64) - zp) * scale
            rms = float(np.sqrt(np.mean(ref**2))) or 1e-12
            rel = float(np.sqrt(np.mean((deq - ref) ** 2))) / rms
            err_of[out_idx] = rel
            worst_in = max((err_of.get(i, 0.0) for i in op["inputs"]), default=0.0)
            info = np.iinfo(t["dtype"])
            p999 = float(np.quantile(np.abs(ref), 0.999)) or 1e-12
            rows.append(LayerError(
                op["index"], op["op_name"], name, rel, rel - worst_in, rms / scale,
                ((info.min - zp) * scale, (info.max - zp) * scale), float(np.abs(ref).max()) / p999,
            ))
    return rows


def _op_outputs(interp: Any) -> list[dict[str, Any]]:
    details = {t["index"]: t for t in interp.get_tensor_details()}
    return [details[i] for op in interp._get_ops_details() for i in op["outputs"] if i in details]


def layer_report_table(rows: list[LayerError], *, top: int = 15) -> str:
    """The ops that add the most error, worst first."""
    lines = ["| op # | op | adds rel. error | accumulated | int8 steps per RMS | range | max/p99.9 | tensor |",
             "|---:|---|---:|---:|---:|---|---:|---|"]
    for r in sorted(rows, key=lambda r: -r.growth)[:top]:
        lines.append(f"| {r.index} | {r.op} | {r.growth:.4f} | {r.rel_rmse:.4f} | {r.steps_per_rms:.1f} | "
                     f"{r.range[0]:.2f}..{r.range[1]:.2f} | {r.absmax_over_p999:.1f} | {r.tensor[:60]} |")
    return "\n".join(lines)
