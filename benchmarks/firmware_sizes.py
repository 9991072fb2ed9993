"""Firmware flash/RAM per target and instruction counts per inference on the host build.

For GN-S (ghostnetv3_small) at widths 0.25/0.5/1.0 and ResNet-8 (int8 exports, untrained weights — size and cost
do not depend on the weight values): build host, Cortex-M4 (reference, CMSIS-NN) and Cortex-M55 firmware, check
that every build reproduces the TFLite-Micro Python interpreter's int8 outputs, and record
- flash = text + rodata + data, RAM = data + bss (bss holds the tensor arena; stack/heap reservations apart),
- instructions per inference of the host build under ``valgrind --tool=callgrind`` (counted inside
  ``ClassifierInvoke`` only; deterministic run to run). Emulated Cortex-M instruction counts are in
  ``benchmarks/cortex_m_suite.py``.

    .venv/bin/python benchmarks/firmware_sizes.py [--tflm-dir DIR] [--exports DIR] [--quick]

Writes ``benchmarks/results/firmware_sizes.json``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from edgeghost.export import export_model
from edgeghost.export import firmware as fw
from edgeghost.fileio import atomic_write_json
from edgeghost.sysinfo import machine_info

RESULTS = Path(__file__).resolve().parent / "results" / "firmware_sizes.json"
MODELS = [("ghostnetv3_small", 0.25), ("ghostnetv3_small", 0.5), ("ghostnetv3_small", 1.0), ("resnet8", 1.0)]
BUILDS = [("host", "reference"), ("cortex-m4", "reference"), ("cortex-m4", "cmsis-nn"), ("cortex-m55", "reference")]
CALLGRIND_IMAGES = 2


def _version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
    except FileNotFoundError:
        return "missing"
    return out.splitlines()[0] if out else "unknown"


def instructions_per_inference(binary: Path, inputs: np.ndarray, work: Path) -> int:
    """Instructions executed inside ClassifierInvoke per input, counted by callgrind on the host program."""
    images = work / "callgrind_inputs.bin"
    np.ascontiguousarray(inputs, dtype=np.int8).tofile(images)
    out = work / "callgrind.out"
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--toggle-collect=*ClassifierInvoke*",
                    str(binary), str(images)], capture_output=True, text=True, check=True)
    total = re.search(r"^(?:summary|totals):\s+(\d+)", out.read_text(), re.M)
    return int(total.group(1)) // len(inputs)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--exports", type=Path, help="reuse/keep exports here (default: a temp folder)")
    p.add_argument("--tflm-dir", type=Path, help="TFLite-Micro trees (default: the library's lookup rule)")
    p.add_argument("--cache-dir", type=Path, default=fw.default_cache_dir())
    p.add_argument("--quick", action="store_true", help="only GN-S w0.25 (smoke run)")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind not found: sudo apt-get install valgrind")

    models = MODELS[:1] if args.quick else MODELS
    rows = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        exports = args.exports or Path(tmp) / "exports"
        for name, width in tqdm(models, desc="models"):
            export_dir = exports / f"{name}_w{width:g}"
            if not (export_dir / "tflm/tflm.json").is_file():
                export_model(model=name, width=width, out=export_dir, int8=True, verbose=False)
            model = fw.model_from_export(export_dir)
            images, origin = fw.sample_images(model, num=CALLGRIND_IMAGES)
            row = {"model": name, "width": width, "model_bytes": model.info["model_bytes"], "ops": model.info["ops"],
                   "arena_measured_bytes": model.info["arena_measured_bytes"], "arena_bytes": model.info["arena_bytes"],
                   "targets": {}}
            for target, kernels in tqdm(BUILDS, desc=f"{name} w{width:g}", leave=False):
                project = fw.generate_firmware(model, Path(tmp) / f"{name}_{width}_{target}_{kernels}", target=target,
                                               kernels=kernels, test_images=images)
                binary = fw.build_firmware(project, tflm_dir=args.tflm_dir, cache_dir=args.cache_dir)
                check = fw.check_firmware(project, model, images)
                entry = {**fw.firmware_size(binary, arena_bytes=model.info["arena_bytes"]),
                         "identical_to_tflm_python": check.identical}
                used = re.search(r"arena used (\d+) of", check.run.log)
                entry["arena_used_bytes"] = int(used.group(1)) if used else None
                if target == "host":
                    entry["instructions_per_inference"] = instructions_per_inference(
                        binary, fw.to_model_inputs(images, model.info), Path(tmp))
                row["targets"][f"{target}/{kernels}"] = entry
            row["test_inputs"] = origin
            rows.append(row)

    result = {
        "benchmark": "firmware_sizes",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "measured_s": round(time.perf_counter() - t0, 1),
        "definitions": {
            "flash": "text + rodata + data (initial values) of the linked binary",
            "ram": "data + bss; bss contains the tensor arena (arena_bytes); stack/heap reservations listed apart",
            "arena_bytes": "measured minimum in the tflite-micro Python interpreter + margin (model_settings.h)",
            "arena_used_bytes": "MicroInterpreter::arena_used_bytes() printed by the firmware",
            "instructions_per_inference": "valgrind callgrind Ir inside ClassifierInvoke, host build (g++ -O2), "
                                          "mean over the test inputs",
            "host": "x86-64 Linux program; its flash/RAM are not MCU figures (64-bit code, glibc)",
        },
        "weights": "untrained (random init): sizes and instruction counts do not depend on weight values",
        "machine": machine_info(),
        "tools": {"g++": _version(["g++", "--version"]), "arm-none-eabi-gcc": _version(["arm-none-eabi-gcc", "--version"]),
                  "valgrind": _version(["valgrind", "--version"]), "qemu": _version(["qemu-system-arm", "--version"]),
                  "tflm_commit": fw.TFLM_COMMIT},
        "results": rows,
    }
    atomic_write_json(args.out, result)

    print(f"{'model':<24} {'target':<22} {'flash B':>10} {'RAM B':>9} {'arena B':>9} {'instr/inf':>12}")
    for row in rows:
        for key, e in row["targets"].items():
            instr = f"{e['instructions_per_inference']:,}" if "instructions_per_inference" in e else ""
            print(f"{row['model'] + ' w' + format(row['width'], 'g'):<24} {key:<22} {e['flash']:>10,} {e['ram']:>9,} "
                  f"{e['arena']:>9,} {instr:>12}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
