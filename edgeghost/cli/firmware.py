"""edgeghost firmware: generate (and build, run, check) TFLite-Micro firmware for an int8 model."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

HELP = "generate TFLite-Micro firmware (host, Cortex-M4/M55, ESP32-S3, Arduino, MLPerf Tiny) for an int8 model"
# Spelled out so `edgeghost --help` imports nothing heavy; tests check them against edgeghost.export.firmware.
TARGETS = ("host", "mlperf-tiny", "cortex-m4", "cortex-m55", "esp32s3", "arduino")
KERNELS = ("reference", "cmsis-nn")


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--export", type=Path, help="export folder from `edgeghost export --int8`")
    src.add_argument("--tflite", type=Path, help="any int8 .tflite (TFLM files are generated, arena measured)")
    p.add_argument("--target", required=True, choices=TARGETS, help="firmware target")
    p.add_argument("--out", type=Path, required=True, help="project folder to write (replaced)")
    p.add_argument("--kernels", choices=KERNELS, default="reference",
                   help="TFLM kernels: reference, or cmsis-nn for Cortex-M (default: %(default)s)")
    p.add_argument("--labels", help="comma-separated class names for --tflite (default class_0, class_1, ...)")
    p.add_argument("--num-images", type=int, default=4, help="test images embedded/run (default: %(default)s)")
    p.add_argument("--dataset", help="dataset for the test images (default: the export's; random pixels otherwise)")
    p.add_argument("--data-dir", type=Path, help="dataset folder (see `edgeghost.data.load_split`)")
    p.add_argument("--build", action="store_true", help="compile the project (host, mlperf-tiny, cortex-m*)")
    p.add_argument("--run", action="store_true", help="build, run (host or QEMU) and compare with TFLM in Python")
    p.add_argument("--tflm-dir", type=Path, help="TFLite-Micro source tree (default: $TFLM_DIR)")
    p.add_argument("--cache-dir", type=Path,
                   default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "edgeghost" / "tflm-obj",
                   help="shared TFLM object files (default: %(default)s)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel compile jobs")


def run(args: argparse.Namespace) -> int:
    import tempfile

    from ..errors import EdgeGhostError
    from ..export import firmware as fw

    if args.num_images < 1:
        raise EdgeGhostError("--num-images must be >= 1")
    spec = fw.get_target(args.target)
    if (args.build or args.run) and spec.runner != "board":
        fw.check_toolchain(args.target)  # fail before the (slow) generation when the compiler is missing
        fw.resolve_tflm_dir(args.tflm_dir, kernels=args.kernels)
    with tempfile.TemporaryDirectory() as work:
        if args.export:
            model = fw.model_from_export(args.export)
        else:
            labels = args.labels.split(",") if args.labels else None
            model = fw.model_from_tflite(args.tflite, Path(work) / "tflm", labels=labels)
        images, origin = fw.sample_images(model, num=args.num_images, dataset=args.dataset, data_dir=args.data_dir)
        project = fw.generate_firmware(model, args.out, target=args.target, kernels=args.kernels, test_images=images)
        print(f"wrote {spec.name} project to {project} ({len(model.info['ops'])} ops, "
              f"arena {model.info['arena_bytes']} B, test inputs: {origin})")
        if spec.runner == "board":
            if args.build or args.run:
                fw.check_toolchain(args.target)  # raises: built with the board's own tools
            return 0
        if not (args.build or args.run):
            return 0
        binary = fw.build_firmware(project, tflm_dir=args.tflm_dir, cache_dir=args.cache_dir, jobs=args.jobs)
        size = fw.firmware_size(binary, arena_bytes=model.info["arena_bytes"])
        print(f"built {binary}: flash {size['flash']:,} B (text+rodata+data), RAM {size['ram']:,} B "
              f"(data+bss, arena {size['arena']:,} B included)")
        if not args.run:
            return 0
        if spec.name == "mlperf-tiny":
            raise EdgeGhostError("run the MLPerf Tiny harness with the EEMBC runner or by piping commands "
                                 "(see its README); --run checks host and cortex-m targets")
        check = fw.check_firmware(project, model, images)
    print(f"{'image':>5}  {'class':>5}  identical to TFLite-Micro (Python)")
    for i, (out, ref) in enumerate(zip(check.outputs, check.expected)):
        print(f"{i:>5}  {int(out.argmax()):>5}  {'yes' if (out == ref).all() else 'NO'}")
    verdict = "identical" if check.identical else "DIFFERENT"
    print(f"{spec.name} ({args.kernels}): int8 outputs {verdict} on {len(check.outputs)} inputs")
    return 0 if check.identical and check.run.passed is not False else 1
