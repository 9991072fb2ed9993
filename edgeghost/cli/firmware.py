"""edgeghost firmware: generate (and build, run, check, count instructions of) TFLite-Micro firmware."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = ("generate TFLite-Micro firmware (host, Cortex-M4/M7/M33/M55, STM32 NUCLEO, ESP32-S3, Arduino, MLPerf Tiny) "
        "for an int8 (or int16x8) model")


def add_arguments(p: argparse.ArgumentParser) -> None:
    # Targets and kernels are validated by the library (edgeghost.export.firmware.TARGETS), which names the
    # choices on a wrong one; importing it here would make `edgeghost --help` load TensorFlow.
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--export", type=Path, help="export folder from `edgeghost export --int8`")
    src.add_argument("--tflite", type=Path,
                     help="any int8 or int16x8 .tflite (TFLM files are generated, arena measured)")
    src.add_argument("--pretrained", metavar="NAME",
                     help="a shipped zoo model (`edgeghost zoo`): its export in exports/NAME, made now if missing")
    p.add_argument("--target", required=True,
                   help="host, mlperf-tiny, cortex-m4, cortex-m7, cortex-m33, cortex-m55, netduinoplus2 (QEMU), "
                        "nucleo-f446re, nucleo-l4r5zi (flashed with `edgeghost flash`), esp32s3, arduino")
    p.add_argument("--out", type=Path, required=True, help="project folder to write (replaced)")
    p.add_argument("--int16x8", action="store_true",
                   help="with --export: its 16-bit-activation model (tflm_int16x8/, from `edgeghost export --int16x8`)")
    p.add_argument("--kernels", default="reference",
                   help="TFLM kernels: reference, or cmsis-nn for Cortex-M (default: %(default)s)")
    p.add_argument("--app", default="classifier",
                   help="classifier (self-checking test program) or mlperf-tiny (the MLPerf Tiny harness over the "
                        "UART of an STM32 target; the host harness is --target mlperf-tiny) (default: %(default)s)")
    p.add_argument("--labels", help="comma-separated class names for --tflite (default class_0, class_1, ...)")
    p.add_argument("--num-images", type=int, default=4, help="test images embedded/run (default: %(default)s)")
    p.add_argument("--dataset", help="dataset for the test images (default: the export's; random pixels otherwise)")
    p.add_argument("--data-dir", type=Path, help="dataset folder (see `edgeghost.data.load_split`)")
    p.add_argument("--build", action="store_true", help="compile the project (host, mlperf-tiny, cortex-m*)")
    p.add_argument("--run", action="store_true",
                   help="build, run (host or QEMU) and compare with TFLM in Python; Cortex-M: count instructions")
    p.add_argument("--tflm-dir", type=Path,
                   help="TFLite-Micro source tree (default: $TFLM_DIR, ../shared/third_party/tflm, user cache)")
    p.add_argument("--cache-dir", type=Path, help="shared TFLM object files (default: ~/.cache/edgeghost/tflm-obj)")
    p.add_argument("--jobs", type=int, help="parallel compile jobs (default: all cores)")


def run(args: argparse.Namespace) -> int:
    from ..export import firmware as fw

    from ..fileio import check_writable

    check_writable(args.out)  # before a --pretrained export is made
    source = args.export or args.tflite
    if args.pretrained:
        from ..zoo.cards import pretrained_export

        source = pretrained_export(args.pretrained)
    res = fw.make_firmware(
        source, args.out, target=args.target, kernels=args.kernels, num_images=args.num_images,
        dataset=args.dataset, data_dir=args.data_dir, labels=args.labels.split(",") if args.labels else None,
        build=args.build, run=args.run, tflm_dir=args.tflm_dir, app=args.app,
        cache_dir=args.cache_dir or fw.default_cache_dir(), jobs=args.jobs,
        precision="int16x8" if args.int16x8 else "int8",
    )
    info = res.model.info
    print(f"wrote {res.target} project to {res.project} ({len(info['ops'])} ops, arena {info['arena_bytes']} B, "
          f"test inputs: {res.images_origin})")
    if res.size is not None:
        print(f"built {res.binary}: flash {res.size['flash']:,} B (text+rodata+data), RAM {res.size['ram']:,} B "
              f"(data+bss, arena {res.size['arena']:,} B included)")
    if res.check is None:
        return 0
    check, counts = res.check, res.instructions
    print(f"{'image':>5}  {'class':>5}  {'instructions':>13}  identical to TFLite-Micro (Python)")
    shown = 8
    for i, (out, ref) in enumerate(zip(check.outputs, check.expected)):
        same = bool((out == ref).all())
        if i >= shown and same:
            continue  # a long run lists its first inputs and every mismatch
        n = f"{counts['per_image'][i]:,}" if counts else "-"
        print(f"{i:>5}  {int(out.argmax()):>5}  {n:>13}  {'yes' if same else 'NO'}")
    if len(check.outputs) > shown:
        print(f"  ... {len(check.outputs) - shown} more inputs (listed above only where they differ)")
    if counts:
        print(fw.format_instructions(counts))
        print(f"instructions written to {res.report}")
    verdict = "identical" if check.identical else "DIFFERENT"
    print(f"{res.target} ({res.kernels}): {info.get('dtype', 'int8')} outputs {verdict} on {len(check.outputs)} inputs")
    if res.top1 is not None:
        print(f"top-1 of the firmware's answers: {res.top1:.2f} % on the {res.images_origin}")
    return 0 if check.identical and check.run.passed is not False else 1
