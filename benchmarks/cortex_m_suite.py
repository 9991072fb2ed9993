"""Cortex-M suite: emulated instructions per inference and per op for ResNet-8 and GN-S on Cortex-M cores.

For the MLPerf-Tiny-architecture ResNet-8 (edgeghost's ``resnet8``, exported by edgeghost) and GN-S
(``ghostnetv3_small``) at widths 0.25 / 0.5 / 1.0 — int8 exports with untrained weights (cost does not depend on
the weight values) — build the bare-metal firmware with reference and CMSIS-NN kernels, run it under
``qemu-system-arm -icount shift=0`` (checked bit-identical to the TFLite-Micro Python interpreter) and record,
through :func:`edgeghost.export.firmware.measure_cortex_m`: instructions per inference (per image, spread),
instructions per MAC, the per-op table, flash, RAM and arena. These are emulated instructions, not cycles.

    nice -n 15 .venv/bin/python benchmarks/cortex_m_suite.py [--targets cortex-m4,cortex-m55] [--kernels ...] [--quick]

Writes ``benchmarks/results/cortex_m_suite.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

from edgeghost.export import export_model
from edgeghost.export import firmware as fw
from edgeghost.fileio import atomic_write_json, atomic_write_text
from edgeghost.models import create_model, model_info
from edgeghost.sysinfo import machine_info

RESULTS = Path(__file__).resolve().parent / "results"
MODELS = [("resnet8", 1.0), ("ghostnetv3_small", 0.25), ("ghostnetv3_small", 0.5), ("ghostnetv3_small", 1.0)]
KERNELS = ("reference", "cmsis-nn")
# Published anchors for ResNet-8 (MLPerf Tiny v1.x IC, int8): board, core, clock, ms per inference.
ANCHORS = [
    ("TFLM reference submission", "STM32L4R5 (Cortex-M4)", 120, 704.0),
    ("STM X-CUBE-AI", "STM32L4R5 (Cortex-M4)", 120, 165.0),
    ("Plumerai", "STM32L4R5 (Cortex-M4)", 120, 168.0),
    ("STM X-CUBE-AI", "STM32H7A3 (Cortex-M7)", 280, 40.8),
    ("STM X-CUBE-AI", "STM32U575 (Cortex-M33)", 160, 109.0),
    ("Cortex-M85 submission", "Cortex-M85", 480, 8.48),
]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--targets", default="cortex-m4,cortex-m55", help="comma-separated Cortex-M targets")
    p.add_argument("--kernels", default=",".join(KERNELS), help="comma-separated kernels (default: %(default)s)")
    p.add_argument("--images", type=int, default=2, help="test images per build (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="GN-S w0.25 only (a smoke run)")
    p.add_argument("--out", type=Path, default=RESULTS / "cortex_m_suite.json")
    args = p.parse_args(argv)
    targets = args.targets.split(",")
    models = MODELS[1:2] if args.quick else MODELS
    rows, started = [], time.time()
    with tempfile.TemporaryDirectory() as work:
        jobs = [(m, w, t, k) for m, w in models for t in targets for k in args.kernels.split(",")]
        exports: dict[tuple[str, float], Path] = {}
        for model, width, target, kernels in tqdm(jobs, desc="cortex-m suite", file=sys.stderr):
            if (model, width) not in exports:
                out = Path(work) / f"{model}_w{width}"
                export_model(model=model, width=width, out=out, int8=True, calib_samples=64, eval_samples=16,
                             verbose=False)
                exports[(model, width)] = out
            macs = model_info(create_model(model, width=width, num_classes=10), model).macs
            res = fw.measure_cortex_m(exports[(model, width)], target=target, kernels=kernels, images=args.images)
            n = res["instructions"]
            rows.append({"model": model, "width": width, "macs": macs, "instructions_per_mac": n["mean"] / macs,
                         **res})
    record = {
        "what": "emulated instructions per inference on Cortex-M cores (QEMU -icount shift=0), not cycles",
        "command": "nice -n 15 .venv/bin/python benchmarks/cortex_m_suite.py " + " ".join(argv or sys.argv[1:]),
        "machine": machine_info(),
        "seconds": round(time.time() - started, 1),
        "anchors_resnet8_ms": [dict(zip(("who", "board", "mhz", "ms"), a)) for a in ANCHORS],
        "rows": rows,
    }
    atomic_write_json(args.out, record)
    atomic_write_text(args.out.with_suffix(".md"), _markdown(record))
    print(_markdown(record))
    return 0


def _markdown(record: dict) -> str:
    lines = [
        "# Cortex-M suite: emulated instructions per inference",
        "",
        f"`{record['command']}` ({record['seconds']:.0f} s). Instructions executed by QEMU's emulated core under "
        "`-icount shift=0`, read from SysTick (calibrated on every run against a loop of known length); "
        "**not cycles** — see firmware_examples/README.md for how they relate.",
        "",
        "| model | width | MACs | target | kernels | instructions / inference | spread | instr / MAC | flash B | RAM B"
        " | arena B |",
        "|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in record["rows"]:
        n = r["instructions"]
        lines.append(f"| {r['model']} | {r['width']} | {r['macs']:,} | {r['target']} | {r['kernels']} | "
                     f"{n['mean']:,.0f} | {n['spread']:.3%} | {r['instructions_per_mac']:.2f} | "
                     f"{r['flash_bytes']:,} | {r['ram_bytes']:,} | {r['arena_bytes']:,} |")
    lines += ["", "## Per-op breakdown (share of the profiled inference)", ""]
    for r in record["rows"]:
        n = r["instructions"]
        top = ", ".join(f"{o['op']} ×{o['count']} {o['share']:.1%}" for o in n["ops"][:6])
        lines.append(f"- {r['model']} w{r['width']} {r['target']} {r['kernels']}: {top} "
                     f"(ops sum {n['ops_total_vs_profiled']:.2%} of the inference)")
    lines += ["", "## Published ResNet-8 anchors (cycles = ms × MHz × 1000)", "",
              "| who | board | MHz | ms | ≈ M cycles |", "|---|---|---:|---:|---:|"]
    for a in record["anchors_resnet8_ms"]:
        lines.append(f"| {a['who']} | {a['board']} | {a['mhz']} | {a['ms']} | {a['ms'] * a['mhz'] / 1000:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
