"""edgeghost bench: accuracy, size and latency of models × formats on host, TFLite-Micro or a Raspberry Pi."""

from __future__ import annotations

import argparse
import sys

from .device import add_ssh_arguments, ssh_target

HELP = "benchmark formats (torch, onnx, tflite fp32/int8) on --device host|tflm|rpi4: top-1, size, latency"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", choices=("host", "tflm", "rpi4"), default="host", help="where to run (default: host)")
    p.add_argument("--checkpoints", nargs="+", default=[], metavar="CKPT", help="edgeghost checkpoints (.pt)")
    p.add_argument("--exports", nargs="+", default=[], metavar="DIR", help="export folders (edgeghost export)")
    p.add_argument("--model", nargs="+", default=[], metavar="FILE",
                   help="any .tflite/.onnx model file (raw-pixel input); accuracy with --eval-data")
    p.add_argument("--formats", default=None,
                   help="comma list of torch, torch_deploy, onnx, tflite_fp32, tflite_int8 "
                        "(default: all that run on the device)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: 1; 4 on rpi4)")
    p.add_argument("--reference-kernels", action="store_true",
                   help="LiteRT reference kernels instead of XNNPACK (bit-exact with TFLite-Micro)")
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
    p.add_argument("--out", default=None, help="results folder (default: bench/<device>)")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the results JSON here")
    add_ssh_arguments(p, required=False)


def run(args: argparse.Namespace) -> int:
    from ..errors import EdgeGhostError
    from ..runtime import bench

    formats = bench.parse_formats(args.formats, args.device)
    if args.device == "rpi4" and not args.host:
        raise EdgeGhostError("--device rpi4 needs --host USER@HOST")
    threads = args.threads or (4 if args.device == "rpi4" else 1)
    if threads < 1 or args.eval_samples < 1:
        raise EdgeGhostError("--threads and --eval-samples must be >= 1")
    subjects = [bench.subject_from_checkpoint(c, formats, exports_dir=args.exports_dir, data_dir=args.data_dir,
                                              calib_samples=args.calib_samples) for c in args.checkpoints]
    subjects += [bench.subject_from_export(d, formats) for d in args.exports]
    subjects += [bench.subject_from_file(m, formats) for m in args.model]
    if not subjects:
        subjects = [bench.default_subject(formats, exports_dir=args.exports_dir, data_dir=args.data_dir,
                                          calib_samples=args.calib_samples)]
    labels = [s.label for s in subjects]
    if len(set(labels)) != len(labels):
        raise EdgeGhostError(f"two models share a name in the table: {', '.join(labels)}; rename one file")
    cache: dict[str, bench.EvalSet] = {}
    evalsets = {}
    for s in subjects:
        dataset = args.eval_data or s.dataset
        if dataset and dataset not in cache:
            cache[dataset] = bench.load_eval_set(dataset, samples=args.eval_samples, data_dir=args.data_dir)
        evalsets[s.label] = cache.get(dataset) if dataset else None
    if args.device == "rpi4" and len(cache) > 1:
        raise EdgeGhostError(f"rpi4 runs ship one eval set; the models use {', '.join(cache)} (pass --eval-data)")
    doc = bench.run_bench(
        subjects, device=args.device, formats=formats, evalsets=evalsets, threads=threads,
        reference_kernels=args.reference_kernels, warmup=args.warmup, min_time_s=args.min_time,
        min_runs=args.min_runs, target=ssh_target(args) if args.device == "rpi4" else None,
        remote_python=args.remote_python, max_temp_c=args.max_temp,
    )
    if args.device == "rpi4":
        _print_device(doc["remote"])
    print(bench.format_table(doc), end="")
    paths = bench.write_results(doc, args.out or f"bench/{args.device}", json_path=args.json)
    print(f"results: {', '.join(str(p) for p in paths.values())}", file=sys.stderr)
    return 0 if all(r["status"] in ("ok", "skipped") for r in doc["rows"]) else 1


def _print_device(remote: dict) -> None:
    before, after = remote.get("device_before") or {}, remote.get("device_after") or {}
    check = remote.get("check") or {}
    print(f"device {remote['target']}: {before.get('board') or 'unknown board'} ({before.get('machine')}), "
          f"Python {check.get('python')}, runtimes "
          + ", ".join(f"{k} {v}" for k, v in (check.get("runtimes") or {}).items() if v))
    for name, facts in (("before", before), ("after", after)):
        temp = facts.get("temperature_c")
        print(f"  {name}: governor {facts.get('governor') or 'unknown'}, "
              f"{'unknown' if temp is None else f'{temp:.1f} °C'}, throttled {facts.get('throttled') or 'unknown'}")
    if before.get("governor") not in (None, "performance"):
        print("  note: governor is not 'performance'; clock ramp-up can inflate latency")
