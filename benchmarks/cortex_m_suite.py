"""Cortex-M suite: emulated instructions per inference and per op for the zoo's models on Cortex-M cores.

For every shipped zoo model (the MLPerf-Tiny-architecture ResNet-8, GN-S at its widths, the lean GN-S and
GN-S-MCU, trained on Fashion-MNIST; their int8 exports are the model cards' own, in ``exports/zoo/NAME``,
reused when present), build the bare-metal firmware with reference and CMSIS-NN kernels, run it under
``qemu-system-arm -icount shift=0`` (checked bit-identical to the TFLite-Micro Python interpreter) and record,
through :func:`edgeghost.export.firmware.measure_cortex_m`: instructions per inference (per image, spread),
instructions per MAC, the per-op table, flash, RAM and arena. These are emulated instructions, not cycles.

    nice -n 5 .venv/bin/python benchmarks/cortex_m_suite.py [--targets cortex-m4,cortex-m55] [--kernels ...]
        [--models NAME,...] [--quick]

Writes ``benchmarks/results/cortex_m_suite.json`` and ``.md`` after every row; a rerun keeps the rows already
there for the same model weights (SHA-256), target and kernels and measures only the rest.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tqdm import tqdm

from edgeghost.export import firmware as fw
from edgeghost.fileio import atomic_write_json, atomic_write_text
from edgeghost.models import model_info
from edgeghost.sysinfo import file_digest, machine_info
from edgeghost.training.checkpoint import load_checkpoint, model_from_checkpoint
from edgeghost.zoo import ZOO, pretrained_checkpoint, shipped
from edgeghost.zoo.cards import pretrained_export

RESULTS = Path(__file__).resolve().parent / "results"
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
    p.add_argument("--models", help="comma-separated zoo names (default: every shipped zoo model)")
    p.add_argument("--images", type=int, default=2, help="test images per build (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="the first shipped model on the first target only")
    p.add_argument("--exports", type=Path, default=Path("exports/zoo"), help="where the int8 exports are/go")
    p.add_argument("--out", type=Path, default=RESULTS / "cortex_m_suite.json")
    args = p.parse_args(argv)
    targets = args.targets.split(",")
    names = args.models.split(",") if args.models else shipped()
    if args.quick:
        names, targets = names[:1], targets[:1]
    old = json.loads(args.out.read_text()).get("rows", []) if args.out.is_file() else []
    rows, started = [], time.time()
    jobs = [(n, t, k) for n in names for t in targets for k in args.kernels.split(",")]
    record = {
        "what": "emulated instructions per inference on Cortex-M cores (QEMU -icount shift=0), not cycles",
        "command": "nice -n 3 .venv/bin/python benchmarks/cortex_m_suite.py " + " ".join(argv or sys.argv[1:]),
        "machine": machine_info(),
        "anchors_resnet8_ms": [dict(zip(("who", "board", "mhz", "ms"), a)) for a in ANCHORS],
        "rows": rows,
    }
    shas = {name: file_digest(pretrained_checkpoint(name)) for name in names}
    macs: dict[str, int] = {}
    for name, target, kernels in tqdm(jobs, desc="cortex-m suite", file=sys.stderr):
        sha = shas[name]
        done = next((r for r in old if (r.get("zoo"), r.get("weights_sha256"), r["target"], r["kernels"])
                     == (name, sha, target, kernels)), None)
        if done is None:
            export = pretrained_export(name, args.exports / name)
            if name not in macs:
                ckpt = load_checkpoint(pretrained_checkpoint(name))
                macs[name] = model_info(model_from_checkpoint(ckpt), ckpt["model"]).macs
            res = fw.measure_cortex_m(export, target=target, kernels=kernels, images=args.images)
            done = {"zoo": name, "model": ZOO[name].model, "width": ZOO[name].width, "weights_sha256": sha,
                    "macs": macs[name], "instructions_per_mac": res["instructions"]["mean"] / macs[name], **res}
        rows.append(done)
        record["seconds"] = round(time.time() - started, 1)
        atomic_write_json(args.out, record)
        atomic_write_text(args.out.with_suffix(".md"), _markdown(record))
    print(_markdown(record))
    return 0


def _markdown(record: dict) -> str:
    lines = [
        "# Cortex-M suite: emulated instructions per inference",
        "",
        f"`{record['command']}` ({record['seconds']:.0f} s on this run; rows kept from earlier runs are not re-timed). Instructions executed by QEMU's emulated core under "
        "`-icount shift=0`, read from SysTick (calibrated on every run against a loop of known length); "
        "**not cycles** — see firmware_examples/README.md for how they relate.",
        "",
        "| zoo model | width | MACs | target | kernels | instructions / inference | spread | instr / MAC | flash B | RAM B"
        " | arena B |",
        "|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in record["rows"]:
        n = r["instructions"]
        lines.append(f"| {r['zoo']} | {r['width']} | {r['macs']:,} | {r['target']} | {r['kernels']} | "
                     f"{n['mean']:,.0f} | {n['spread']:.3%} | {r['instructions_per_mac']:.2f} | "
                     f"{r['flash_bytes']:,} | {r['ram_bytes']:,} | {r['arena_bytes']:,} |")
    lines += ["", "## Per-op breakdown (share of the profiled inference)", ""]
    for r in record["rows"]:
        n = r["instructions"]
        top = ", ".join(f"{o['op']} ×{o['count']} {o['share']:.1%}" for o in n["ops"][:6])
        lines.append(f"- {r['zoo']} {r['target']} {r['kernels']}: {top} "
                     f"(ops sum {n['ops_total_vs_profiled']:.2%} of the inference)")
    lines += ["", "## Published ResNet-8 anchors (cycles = ms × MHz × 1000)", "",
              "| who | board | MHz | ms | ≈ M cycles |", "|---|---|---:|---:|---:|"]
    for a in record["anchors_resnet8_ms"]:
        lines.append(f"| {a['who']} | {a['board']} | {a['mhz']} | {a['ms']} | {a['ms'] * a['mhz'] / 1000:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
