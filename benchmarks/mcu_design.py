"""GN-S-MCU design study: where TFLite-Micro's arena, the flash and the work go, per candidate layout.

Every candidate is built untrained at the input it is designed for ([1, 32, 32, 1], Fashion-MNIST), fused with
``reparameterize`` and taken through edgeghost's own export stages (ONNX → onnx2tf → full-int8 TFLite calibrated on
real training images). Arena, sizes and instruction counts do not depend on the weight values. Per candidate:

- params (deploy), MACs, conv channels Σ (every conv/linear output channel: each costs ~24 B of per-channel
  quantization parameters in the .tflite and 8 B of requantization multipliers in the arena), op counts;
- ``arena``: TFLite-Micro's measured minimum (``find_min_arena``, the number the export writes), split by the
  RecordingMicroAllocator into ``head`` (planned activations + scratch) and ``tail`` (persistent: node structs,
  eval tensors, per-channel multipliers); ``live_peak``: the largest sum of activation tensors alive at one op;
- with ``--firmware``: flash / RAM of the Cortex-M4 reference and CMSIS-NN builds (``edgeghost firmware --build``)
  for the rows marked ``firmware``.

    TFLM_DIR=/work/shared/third_party/tflm nice -n 15 .venv/bin/python benchmarks/mcu_design.py [--firmware] \\
        [--only KEY ...] [--work DIR] [--data-dir DIR] [--out DIR]

Results are cached per candidate under ``--work`` (reruns measure only what is missing). Writes
``benchmarks/results/mcu_design.json`` and ``.md`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

RESULTS = Path(__file__).resolve().parent / "results"
IN_CHANS, IMG = 1, 32
MEAN, STD = (0.2190,), (0.3318,)  # Fashion-MNIST, as training uses them
CALIB_IMAGES = 32


@dataclass(frozen=True)
class Candidate:
    key: str
    model: str
    what: str  # the lever this row measures
    width: float = 1.0
    cfg: tuple | None = None  # GN-S-MCU stage table override
    kwargs: dict[str, Any] = field(default_factory=dict)
    firmware: bool = False


def _candidates() -> list[Candidate]:
    from edgeghost.models.ghostnet import McuLayout, _rows

    v0 = _rows([(3, 16, 24, 0, 2)], [(3, 48, 24, 0, 1), (3, 64, 32, 0, 1)], [(3, 96, 48, 0, 2)],
               [(3, 128, 48, 1, 1), (3, 160, 64, 1, 1)])
    narrow = _rows([(3, 16, 24, 0, 2)], [(3, 48, 24, 0, 1), (3, 48, 32, 0, 1)], [(3, 96, 48, 0, 2)],
                   [(3, 128, 48, 1, 1), (3, 160, 64, 1, 1)])
    narrow_nose = _rows([(3, 16, 24, 0, 2)], [(3, 48, 24, 0, 1), (3, 48, 32, 0, 1)], [(3, 96, 48, 0, 2)],
                        [(3, 128, 48, 0, 1), (3, 160, 64, 0, 1)])
    exp64 = _rows([(3, 16, 24, 0, 2)], [(3, 64, 32, 0, 1)], [(3, 96, 64, 0, 2)], [(3, 256, 96, 0, 1)])
    return [
        Candidate("resnet8", "resnet8", "the baseline (MLPerf Tiny IC ResNet-8)", firmware=True),
        Candidate("v0_torchpad", "ghostnetv3_small_mcu", "first MCU table (6 blocks, SE at 8×8, final 1×1 conv), "
                  "PyTorch padding: onnx2tf adds PAD ops", cfg=v0,
                  kwargs={"mcu": McuLayout(same_pad=False), "final_conv": True}),
        Candidate("v0", "ghostnetv3_small_mcu", "same, SAME-padded stride-2 depthwise convs (no PAD)", cfg=v0,
                  kwargs={"final_conv": True}),
        Candidate("v0_narrow16", "ghostnetv3_small_mcu", "v0 with expansion ≤ 48 at 16×16", cfg=narrow,
                  kwargs={"final_conv": True}),
        Candidate("v0_narrow16_nose", "ghostnetv3_small_mcu", "v0_narrow16 without SE", cfg=narrow_nose,
                  kwargs={"final_conv": True}),
        Candidate("mcu_exp64", "ghostnetv3_small_mcu", "GN-S-MCU with expansion 64 (not 48) at 16×16", cfg=exp64),
        Candidate("mcu", "ghostnetv3_small_mcu", "GN-S-MCU as registered", firmware=True),
        Candidate("mcu_nosplit", "ghostnetv3_small_mcu", "GN-S-MCU, stride-2 depthwise over the concatenation",
                  kwargs={"mcu": McuLayout(split_downsample=False)}),
        Candidate("mcu_dwshortcut", "ghostnetv3_small_mcu", "GN-S-MCU, GN-S's depthwise + 1×1 shortcut",
                  kwargs={"mcu": McuLayout(shortcut_1x1=False)}),
        Candidate("mcu_finalconv", "ghostnetv3_small_mcu", "GN-S-MCU plus GN-S's final 1×1 ConvBnAct",
                  kwargs={"final_conv": True}),
    ]


def _build(c: Candidate):
    from edgeghost.models import create_model

    kwargs = dict(c.kwargs)
    if c.cfg is not None:
        kwargs["cfg"] = c.cfg
    return create_model(c.model, width=c.width, in_chans=IN_CHANS, **kwargs)


def _allocations(tflite: Path, arena: int) -> dict[str, int]:
    """head/tail bytes from TFLite-Micro's RecordingMicroAllocator (it prints; run it in a child process)."""
    code = ("import sys; from tflite_micro import runtime; "
            "runtime.Interpreter.from_file(sys.argv[1], arena_size=int(sys.argv[2])).print_allocations()")
    out = subprocess.run([sys.executable, "-c", code, str(tflite), str(arena + 4096)], capture_output=True,
                         text=True, check=True)
    text = out.stdout + out.stderr
    facts = {k: int(v) for k, v in re.findall(r"Arena allocation (head|tail) (\d+) bytes", text)}
    for label, used in re.findall(r"'([^']+)' used (\d+) bytes", text):
        facts[label] = int(used)
    return facts


def _live_peak(tflite: Path) -> tuple[int, dict[str, int]]:
    """Largest sum of activation tensor bytes alive at one op (a lower bound of the planned arena head)."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(tflite))
    ops = interp._get_ops_details()
    details = {t["index"]: t for t in interp.get_tensor_details()}
    inputs = [d["index"] for d in interp.get_input_details()]
    outputs = [d["index"] for d in interp.get_output_details()]
    acts = {t for op in ops for t in op["outputs"]} | set(inputs)
    first: dict[int, int] = {t: 0 for t in inputs}
    last: dict[int, int] = {}
    for k, op in enumerate(ops):
        for t in [*op["inputs"], *op["outputs"]]:
            if t in acts:
                first.setdefault(t, k)
                last[t] = k
    for t in outputs:
        last[t] = len(ops)
    size = {t: int(np.prod(details[t]["shape"])) * np.dtype(details[t]["dtype"]).itemsize for t in acts}
    peak = max(sum(size[t] for t in acts if first[t] <= k <= last[t]) for k in range(len(ops)))
    counts: dict[str, int] = {}
    for op in ops:
        counts[op["op_name"]] = counts.get(op["op_name"], 0) + 1
    return peak, counts


def measure(c: Candidate, work: Path, *, firmware: bool, tflm_dir: str | None, data_dir: str | None) -> dict[str, Any]:
    import torch
    from torch import nn

    from edgeghost.data import load_split
    from edgeghost.export.onnx import export_form, export_onnx
    from edgeghost.export.tflite import convert_quantized, onnx_to_keras
    from edgeghost.models import model_info, reparameterize
    from edgeghost.runtime.tflm import find_min_arena

    t0 = time.perf_counter()
    model = _build(c).eval()
    info = model_info(model, c.model)
    deployed = reparameterize(model)
    layers = [m for m in deployed.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    channels = sum(getattr(m, "out_channels", 0) or getattr(m, "out_features", 0) for m in layers)
    out = work / c.key
    out.mkdir(parents=True, exist_ok=True)
    images = load_split("fashion_mnist", "train", data_dir).images[:CALIB_IMAGES][..., :IN_CHANS]
    with torch.no_grad():
        onnx_path = export_onnx(export_form(deployed, mean=MEAN, std=STD), out / "model.onnx", in_chans=IN_CHANS,
                                img_size=IMG)
    keras = onnx_to_keras(onnx_path, sample_images=images, work_dir=out / ".work")
    tflite = convert_quantized(keras, out / "model_int8.tflite", calib_images=images)
    arena = int(find_min_arena(tflite))
    live, ops = _live_peak(tflite)
    row: dict[str, Any] = {
        "key": c.key, "model": c.model, "width": c.width, "what": c.what,
        "cfg": [[list(asdict(r).values()) for r in stage] for stage in c.cfg] if c.cfg else None,
        "kwargs": {k: repr(v) for k, v in c.kwargs.items()},
        "input": [1, IMG, IMG, IN_CHANS], "params_train": info.params_train, "params_deploy": info.params_deploy,
        "macs": info.macs, "conv_channels": channels, "ops": ops, "n_ops": sum(ops.values()),
        "int8_bytes": tflite.stat().st_size, "arena": arena, "arena_allocations": _allocations(tflite, arena),
        "live_peak": live,
    }
    if firmware and c.firmware:
        for kernels, key in (("reference", "cortex_m4_reference"), ("cmsis-nn", "cortex_m4_cmsis_nn")):
            row[key] = _firmware(tflite, out, tflm_dir, kernels=kernels)
    row["measured_s"] = round(time.perf_counter() - t0, 1)
    return row


def _firmware(tflite: Path, out: Path, tflm_dir: str | None, *, kernels: str) -> dict[str, Any]:
    from edgeghost.export import firmware as fw

    model = fw.model_from_tflite(tflite, out / "tflm")
    images, _ = fw.sample_images(model, num=2)
    project = fw.generate_firmware(model, out / f"fw_m4_{kernels}", target="cortex-m4", kernels=kernels,
                                   test_images=images)
    binary = fw.build_firmware(project, tflm_dir=tflm_dir, cache_dir=Path.home() / ".cache/edgeghost/tflm-obj",
                               jobs=1)
    return fw.firmware_size(binary, arena_bytes=model.info["arena_bytes"])


def _markdown(result: dict[str, Any]) -> str:
    lines = [
        "# GN-S-MCU design study (untrained weights; input [1, 32, 32, 1])", "",
        f"Command: `{result['command']}`  ", f"Date: {result['date']}; machine: {result['machine']}", "",
        "| key | what | params | MACs | conv ch Σ | ops | int8 B | arena B (head + tail) | live peak B | M4 reference "
        "flash / RAM B | M4 CMSIS-NN flash / RAM B | M4 CMSIS-NN instructions |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    def n(value: Any) -> str:
        return "–" if value is None else f"{value:,}"

    for r in result["rows"]:
        a = r["arena_allocations"]
        ref, m4 = r.get("cortex_m4_reference", {}), r.get("cortex_m4_cmsis_nn", {})
        lines.append(
            f"| {r['key']} | {r['what']} | {n(r['params_deploy'])} | {r['macs'] / 1e6:.2f} M | "
            f"{n(r['conv_channels'])} | {r['n_ops']} | {n(r['int8_bytes'])} | {n(r['arena'])} "
            f"({n(a.get('head'))} + {n(a.get('tail'))}) | {n(r.get('live_peak'))} | "
            f"{n(ref.get('flash'))} / {n(ref.get('ram'))} | {n(m4.get('flash'))} / {n(m4.get('ram'))} | "
            f"{n(m4.get('instructions_per_inference'))} |")
    for r in result["rows"]:
        profile = r.get("cortex_m4_cmsis_nn", {}).get("instructions_per_op")
        if profile:
            lines += ["", f"Cortex-M4 CMSIS-NN instructions per op, {r['key']}: " + ", ".join(
                f"{o['op']} ×{o['count']} {o['instructions']:,} ({100 * o['share']:.1f} %)" for o in profile)]
    lines += ["", "Ops per candidate:", ""]
    for r in result["rows"]:
        lines.append(f"- {r['key']}: " + ", ".join(f"{k} {v}" for k, v in r["ops"].items()))
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="*", help="candidate keys to (re)measure")
    p.add_argument("--firmware", action="store_true", help="also build Cortex-M4 CMSIS-NN firmware (marked rows)")
    p.add_argument("--work", type=Path, default=Path("/tmp/edgeghost-mcu-design"), help="cache folder")
    p.add_argument("--tflm-dir", default=os.environ.get("TFLM_DIR"))
    p.add_argument("--data-dir", help="Fashion-MNIST folder (default: the library's lookup)")
    p.add_argument("--out", type=Path, default=RESULTS, help="results folder (default: %(default)s)")
    args = p.parse_args()

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    from edgeghost.fileio import atomic_write_json, atomic_write_text, ensure_dir

    torch.set_num_threads(1)
    torch.manual_seed(0)
    ensure_dir(args.work)
    rows = []
    for c in tqdm(_candidates(), desc="candidates"):
        cache = args.work / f"{c.key}.json"
        if cache.is_file() and not (args.only and c.key in args.only):
            row = json.loads(cache.read_text())
            if not (args.firmware and c.firmware and "cortex_m4_cmsis_nn" not in row):
                rows.append(row)
                continue
        if args.only and c.key not in args.only and not cache.is_file():
            continue
        row = measure(c, args.work, firmware=args.firmware, tflm_dir=args.tflm_dir, data_dir=args.data_dir)
        atomic_write_json(cache, row)
        rows.append(row)
    from edgeghost.sysinfo import machine_info

    result = {
        "benchmark": "mcu_design",
        "command": " ".join(["python", *sys.argv]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine_info(),
        "weights": "untrained (random init): arena, sizes and op counts do not depend on weight values",
        "calibration": f"{CALIB_IMAGES} Fashion-MNIST training images (channel 0)",
        "rows": rows,
    }
    atomic_write_json(args.out / "mcu_design.json", result)
    atomic_write_text(args.out / "mcu_design.md", _markdown(result))
    print(_markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
