"""Export benchmark: stage wall times, file sizes, TFLite-Micro arena bytes and the int8 accuracy drop.

Runs the real export chain (``edgeghost.export.export_model``) and reads its own records (timings, manifest,
fidelity ladder), so the numbers are those of the exports users get.

    .venv/bin/python benchmarks/export_suite.py                      # everything (≈15 min on 2 cores)
    .venv/bin/python benchmarks/export_suite.py --part timing --widths 2.8
    .venv/bin/python benchmarks/export_suite.py --part quality --checkpoint runs/demo/best.pt

Goals (from the export issue): the lean GN-S at w0.5 fits ResNet-8's arena (≤ 56 KB); the whole w2.8 export
takes ≤ 90 s on 2 cores; a trained GN-S loses ≤ 0.3 pp top-1 in int8.
Results: ``benchmarks/results/export_<part>.json`` (``--results DIR``).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from edgeghost.export import export_model
from edgeghost.fileio import atomic_write_json
from edgeghost.sysinfo import machine_info

RESULTS = Path(__file__).resolve().parent / "results"
ARENA_MODELS = [
    # model, widths (ResNet-8 has no width multiplier: 1.0 is the MLPerf Tiny network)
    ("ghostnetv3_small", (0.25, 0.5, 1.0)),
    ("ghostnetv3_small_lean", (0.25, 0.5, 1.0)),
    ("resnet8", (1.0,)),
]
ARENA_GOAL_BYTES = 56 * 1000
EXPORT_TIME_GOAL_S = 60.0  # `edgeghost export --width 2.8 --int8` on 2 cores
INT8_DROP_GOAL_PP = 0.3


def machine() -> dict[str, Any]:
    """The shared machine description plus the load when the suite started (the timings depend on it)."""
    return {**machine_info(), "load_avg_1m_at_start": os.getloadavg()[0]}


def _export(tmp: Path, **kwargs: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = export_model(out=tmp / f"{kwargs.get('model', 'm')}_{kwargs.get('width', 'ckpt')}", verbose=False,
                          **kwargs)
    return result, time.perf_counter() - start


def _sizes(result: Any) -> dict[str, int]:
    return {key: result.files[key].stat().st_size for key in ("onnx", "tflite_fp32", "tflite_int8")
            if key in result.files}


def part_timing(widths: list[float], tmp: Path, data_dir: str | None) -> dict[str, Any]:
    rows = []
    for width in widths:
        result, wall = _export(tmp, model="ghostnetv3_small", width=width, int8=True, data_dir=data_dir)
        rows.append({
            "model": "ghostnetv3_small", "width": width, "wall_s": round(wall, 2),
            "stages_s": result.timings, "bytes": _sizes(result),
            "arena_bytes": result.manifest["tflm"]["arena_measured_bytes"],
            "goal_s": EXPORT_TIME_GOAL_S, "meets_goal": wall <= EXPORT_TIME_GOAL_S,
            "ladder": [r.__dict__ for r in result.ladder],
        })
        print(f"ghostnetv3_small w{width:g}: {wall:.1f} s  {result.timings}", flush=True)
    return {"rows": rows, "note": "untrained weights (BatchNorm statistics from real images); defaults "
                                  "(500 calibration, 500 eval images)"}


def part_arena(tmp: Path, data_dir: str | None) -> dict[str, Any]:
    rows = []
    for model, widths in ARENA_MODELS:
        for width in widths:
            result, wall = _export(tmp, model=model, width=width, int8=True, data_dir=data_dir,
                                   calib_samples=200, eval_samples=50)
            tflm = result.manifest["tflm"]
            rows.append({
                "model": model, "width": width, "arena_measured_bytes": tflm["arena_measured_bytes"],
                "arena_firmware_bytes": tflm["arena_bytes"], "int8_bytes": result.files["tflite_int8"].stat().st_size,
                "ops": tflm["ops"], "export_s": round(wall, 1),
            })
            print(f"{model} w{width:g}: arena {tflm['arena_measured_bytes']} B (measured), int8 "
                  f"{rows[-1]['int8_bytes']} B", flush=True)
    lean = next(r for r in rows if r["model"] == "ghostnetv3_small_lean" and r["width"] == 0.5)
    resnet = next(r for r in rows if r["model"] == "resnet8")
    return {"rows": rows, "goal": f"ghostnetv3_small_lean w0.5 arena <= {ARENA_GOAL_BYTES} B (ResNet-8's)",
            "lean_w0.5_bytes": lean["arena_measured_bytes"], "resnet8_bytes": resnet["arena_measured_bytes"],
            "meets_goal": lean["arena_measured_bytes"] <= ARENA_GOAL_BYTES}


def part_quality(checkpoint: str, tmp: Path, data_dir: str | None, eval_samples: int) -> dict[str, Any]:
    """int8 vs fp32 top-1 for both calibration methods (TFLite's min/max = before, percentile = after), and
    the int16x8 model (made alongside the percentile export; always min/max ranges) against fp32."""
    runs = {}
    for method in ("minmax", "percentile"):
        result, wall = _export(tmp, checkpoint=checkpoint, int8=True, data_dir=data_dir, eval_samples=eval_samples,
                               calib_method=method, int16x8=method == "percentile")
        ladder = {r.stage: r for r in result.ladder}
        fp32 = ladder["TFLite fp32 (LiteRT)"]
        int8 = ladder["TFLite int8 (LiteRT reference kernels)"]
        drop = 100 * (fp32.top1_accuracy - int8.top1_accuracy)
        print(f"{checkpoint} [{method}]: fp32 {100 * fp32.top1_accuracy:.2f} %  int8 {100 * int8.top1_accuracy:.2f} %"
              f"  drop {drop:+.2f} pp  agreement {100 * int8.top1_agreement:.2f} %", flush=True)
        runs[method] = {"fp32_top1": fp32.top1_accuracy, "int8_top1": int8.top1_accuracy, "drop_pp": round(drop, 3),
                        "int8_top1_agreement": int8.top1_agreement, "int8_max_abs_diff": int8.max_abs_diff,
                        "meets_goal": drop <= INT8_DROP_GOAL_PP, "ladder": [r.__dict__ for r in result.ladder],
                        "checks": result.manifest["checks"], "export_s": round(wall, 1)}
        if "tflite_int16x8" in result.files:  # fidelity.json's side rung: int16x8 compared with TFLite fp32
            (r16,) = json.loads((result.out_dir / "fidelity.json").read_text())["extra"]
            runs[method]["int16x8"] = r16
            print(f"{checkpoint} [int16x8]: top-1 {100 * r16['top1_accuracy']:.2f} %  agreement with fp32 "
                  f"{100 * r16['top1_agreement']:.2f} %", flush=True)
    return {"checkpoint": checkpoint, "eval_samples": eval_samples, "goal_pp": INT8_DROP_GOAL_PP, "runs": runs}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=["timing", "arena", "quality", "all"], default="all")
    p.add_argument("--widths", type=float, nargs="+", default=[1.0, 2.8])
    p.add_argument("--checkpoint", default="runs/demo/best.pt", help="trained checkpoint for the quality part")
    p.add_argument("--eval-samples", type=int, default=10000, help="test images for the quality part")
    p.add_argument("--data-dir")
    p.add_argument("--results", type=Path, default=RESULTS, help="folder for the JSON (default: %(default)s)")
    args = p.parse_args(argv)
    parts = ["timing", "arena", "quality"] if args.part == "all" else [args.part]
    args.results.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edgeghost-export-bench-") as tmp:
        for part in parts:
            record: dict[str, Any] = {
                "benchmark": f"export_{part}",
                "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
                "machine": machine(),
                "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            }
            if part == "timing":
                record["results"] = part_timing(args.widths, Path(tmp), args.data_dir)
            elif part == "arena":
                record["results"] = part_arena(Path(tmp), args.data_dir)
            else:
                record["results"] = part_quality(args.checkpoint, Path(tmp), args.data_dir, args.eval_samples)
            name = part if part != "quality" else f"quality_{Path(args.checkpoint).parent.name}"
            path = atomic_write_json(args.results / f"export_{name}.json", record)
            print(f"wrote {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
