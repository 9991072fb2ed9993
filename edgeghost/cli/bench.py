"""edgeghost bench: accuracy, size and latency of models × formats on host, TFLite-Micro or a Raspberry Pi."""

from __future__ import annotations

import argparse
import sys

from .device import add_ssh_arguments, ssh_target

HELP = ("benchmark formats (torch, onnx, tflite fp32/int8) on --device host|tflm|rpi4|cortex-m*: top-1 %, size, "
        "latency, arena; Cortex-M: instructions, flash, RAM")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..bench import DEVICES

    p.add_argument("--device", choices=DEVICES, default="host", help="where to run (default: host)")
    p.add_argument("--checkpoints", nargs="+", default=[], metavar="CKPT", help="edgeghost checkpoints (.pt)")
    p.add_argument("--pretrained", nargs="+", default=[], metavar="NAME", help="shipped zoo models (`edgeghost zoo`)")
    p.add_argument("--exports", nargs="+", default=[], metavar="DIR", help="export folders (edgeghost export)")
    p.add_argument("--model", nargs="+", default=[], metavar="FILE",
                   help="any .tflite/.onnx model file; top-1 with --eval-data for raw-pixel image classifiers, "
                        "latency (and arena on tflm) for any other model")
    p.add_argument("--study", default=None, metavar="DIR",
                   help="a study folder (edgeghost study): its baseline and every distilled variant")
    p.add_argument("--formats", default=None,
                   help="comma list of torch, torch_deploy, onnx, tflite_fp32, tflite_int8 "
                        "(default: all that run on the device)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: 1; 4 on rpi4)")
    p.add_argument("--reference-kernels", action="store_true",
                   help="LiteRT reference kernels instead of XNNPACK (the kernels TFLite-Micro's are ported from)")
    p.add_argument("--eval-data", default=None,
                   help="dataset for top-1 (default: each checkpoint's/export's own dataset)")
    p.add_argument("--data-dir", default=None, help="dataset folder (default: the dataset's usual place)")
    p.add_argument("--eval-samples", type=int, default=1000, help="test images for top-1 (default: %(default)s)")
    p.add_argument("--calib-samples", type=int, default=None, help="int8 calibration images for exports made here")
    p.add_argument("--exports-dir", default="exports", help="where checkpoints are exported (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=10, help="discarded runs before timing (default: %(default)s)")
    p.add_argument("--min-time", type=float, default=2.0, help="seconds of timed runs per row (default: %(default)s)")
    p.add_argument("--min-runs", type=int, default=10, help="timed runs at least (default: %(default)s)")
    p.add_argument("--max-temp", type=float, default=70.0, help="rpi4: wait until the SoC is below this °C")
    p.add_argument("--kernels", default="cmsis-nn", help="cortex-m*: cmsis-nn or reference (default: %(default)s)")
    p.add_argument("--mcu-images", type=int, default=4,
                   help="cortex-m*: eval images run in the firmware under QEMU (default: %(default)s)")
    p.add_argument("--out", default=None,
                   help="results folder (default: a new bench/<device>-<date>-<time> for every run)")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the results JSON here")
    p.add_argument("--force", action="store_true", help="replace results already in --out / --json")
    add_ssh_arguments(p, required=False)


def run(args: argparse.Namespace) -> int:
    from .. import bench
    from ..zoo import pretrained_checkpoint

    checkpoints = tuple(args.checkpoints) + tuple(str(pretrained_checkpoint(n)) for n in args.pretrained)
    request = bench.BenchRequest(
        device=args.device, checkpoints=checkpoints, exports=tuple(args.exports),
        models=tuple(args.model), study=args.study, formats=args.formats, threads=args.threads,
        reference_kernels=args.reference_kernels, eval_data=args.eval_data, data_dir=args.data_dir,
        eval_samples=args.eval_samples, calib_samples=args.calib_samples, exports_dir=args.exports_dir,
        warmup=args.warmup, min_time_s=args.min_time, min_runs=args.min_runs, max_temp_c=args.max_temp,
        out=args.out, json_path=args.json, force=args.force, kernels=args.kernels, mcu_images=args.mcu_images,
        target=ssh_target(args) if args.device == "rpi4" and args.host else None, remote_python=args.remote_python,
    )
    doc, paths = bench.bench(request)
    if "remote" in doc:
        print(bench.format_device(doc["remote"]), end="")
    print(bench.format_table(doc), end="")
    print(f"results: {', '.join(str(p) for p in paths.values())}", file=sys.stderr)
    return 0 if all(r["status"] in ("ok", "skipped") for r in doc["rows"]) else 1
