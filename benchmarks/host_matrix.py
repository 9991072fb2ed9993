"""Host benchmark matrix: GN-S w0.5/1.0/2.8, GN-D w1.0 and ResNet-8 in every format, 1 thread, in one run.

Each model is a checkpoint with untrained weights (seeded init, BatchNorm statistics from 128 real
Fashion-MNIST training images, like an untrained export), exported with the real pipeline, then measured by
`edgeghost bench`'s own code on ``host`` (torch, torch_deploy, onnx, tflite_fp32, tflite_int8) and ``tflm``.
Size, MACs, latency and arena are real; accuracy of untrained weights is meaningless and is not reported.

The ratios are the point (measured side by side in this one run):
- LiteRT int8 / fp32 latency per model (goal <= 0.5x);
- TFLite-Micro ms per MMAC of each GN-S width / ResNet-8's (goal <= 1.0x).

Usage: .venv/bin/python benchmarks/host_matrix.py [--min-time 2] [--work-dir /tmp/edgeghost-matrix]
           [--models NAME:WIDTH ...] [--out DIR]
Writes benchmarks/results/host_matrix.{json,csv,md,png} (``--out``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from edgeghost.errors import EdgeGhostError
from edgeghost.fileio import atomic_path, atomic_write_json, atomic_write_text
from edgeghost.models import parse_model_spec

MODELS = [
    # name               width
    ("ghostnetv3_small", 0.5),
    ("ghostnetv3_small", 1.0),
    ("ghostnetv3_small", 2.8),
    ("ghostnetv3_d", 1.0),
    ("resnet8", 1.0),
]
DATASET = "fashion_mnist"
RESULTS = Path(__file__).resolve().parent / "results"


def make_checkpoint_file(name: str, width: float, path: Path, train_images: np.ndarray) -> Path:
    import torch

    from edgeghost.data import get_spec
    from edgeghost.models import estimate_bn_statistics
    from edgeghost.models import create_model
    from edgeghost.training.checkpoint import atomic_torch_save, make_checkpoint

    spec = get_spec(DATASET)
    torch.manual_seed(0)
    model = create_model(name, width=width, num_classes=spec.num_classes)
    estimate_bn_statistics(model, train_images, mean=spec.mean, std=spec.std)
    ckpt = make_checkpoint(model, model_name=name, dataset=spec.name, classes=spec.classes, mean=spec.mean,
                           std=spec.std, epoch=0, metrics={})
    return atomic_torch_save(ckpt, path)


def ratios(rows: list[dict]) -> dict:
    """int8/fp32 LiteRT latency per model; TFLM ms/MMAC of every model relative to ResNet-8."""
    by = {(r["model"], r["device"], r["format"]): r for r in rows if r["status"] == "ok"}
    models = list(dict.fromkeys(r["model"] for r in rows))
    out: dict = {"int8_over_fp32_litert": {}, "tflm_ms_per_mmac": {}, "tflm_ms_per_mmac_vs_resnet8": {}}
    for m in models:
        fp32, int8 = by.get((m, "host", "tflite_fp32")), by.get((m, "host", "tflite_int8"))
        if fp32 and int8:
            out["int8_over_fp32_litert"][m] = int8["latency"]["median_ms"] / fp32["latency"]["median_ms"]
        tflm = by.get((m, "tflm", "tflite_int8"))
        if tflm:
            out["tflm_ms_per_mmac"][m] = tflm["latency"]["median_ms"] / (tflm["macs"] / 1e6)
    base = out["tflm_ms_per_mmac"].get("resnet8_w1")
    if base:
        out["tflm_ms_per_mmac_vs_resnet8"] = {m: v / base for m, v in out["tflm_ms_per_mmac"].items()}
    return out


def markdown(doc: dict) -> str:
    lines = [f"# Host benchmark matrix ({doc['created']})", "",
             f"Command: `{doc['command']}`  ", f"Machine: {doc['host']['cpu']}, {doc['host']['cores']} cores, "
             f"Python {doc['host']['python']}, edgeghost {doc['host']['edgeghost']} ({doc['host']['commit']})  ",
             "Weights: untrained (latency, size and arena are real; accuracy is not reported). 1 thread, "
             "host and TFLM rows measured in the same run. Compare ratios, not absolute times, across machines; "
             "a p90 far above the median marks interference from other processes on the machine.", "",
             "| Model | Params | MMACs | Device | Format | Size (MB) | ms/im (median) | p90 | FPS | arena KiB |",
             "|---|---:|---:|---|---|---:|---:|---:|---:|---:|"]
    for r in doc["rows"]:
        lat = r["latency"] or {}
        cells = [r["model"], f"{r['params']:,}" if r["params"] else "-", f"{r['macs'] / 1e6:.2f}" if r["macs"] else "-",
                 r["device"], r["format"] if r["status"] == "ok" else f"{r['format']} ({r['status']})",
                 f"{r['size_mb']:.3f}" if r["size_mb"] else "-",
                 f"{lat['median_ms']:.3f}" if lat else "-", f"{lat['p90_ms']:.3f}" if lat else "-",
                 f"{lat['fps']:.1f}" if lat else "-", f"{r['arena_kib']:.1f}" if r["arena_kib"] else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    rat = doc["ratios"]
    failed = sorted({f"{r['model']} {r['format']}: {r['error']}" for r in doc["rows"] if r["status"] != "ok"})
    lines += ["", *(f"- {line}" for line in failed)] if failed else []
    lines += ["", "| Model | int8/fp32 LiteRT latency (goal ≤ 0.5) | TFLM ms/MMAC | "
              "TFLM ms/MMAC vs ResNet-8 (goal ≤ 1.0) |", "|---|---:|---:|---:|"]
    for m in rat["tflm_ms_per_mmac"] | rat["int8_over_fp32_litert"]:
        def f(d: dict, k: str) -> str:
            return f"{d[k]:.3f}" if k in d else "-"
        lines.append(f"| {m} | {f(rat['int8_over_fp32_litert'], m)} | {f(rat['tflm_ms_per_mmac'], m)} | "
                     f"{f(rat['tflm_ms_per_mmac_vs_resnet8'], m)} |")
    return "\n".join(lines) + "\n"


def plot(doc: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = [("host", "torch"), ("host", "torch_deploy"), ("host", "onnx"), ("host", "tflite_fp32"),
              ("host", "tflite_int8"), ("tflm", "tflite_int8")]
    models = list(dict.fromkeys(r["model"] for r in doc["rows"]))
    by = {(r["model"], r["device"], r["format"]): r for r in doc["rows"] if r["status"] == "ok"}
    fig, ax = plt.subplots(figsize=(10, 5), dpi=120)
    bar = 0.8 / len(series)
    for i, (device, fmt) in enumerate(series):
        ys = [by[(m, device, fmt)]["latency"]["median_ms"] if (m, device, fmt) in by else np.nan for m in models]
        ax.bar(np.arange(len(models)) + i * bar, ys, bar, label=f"{fmt} ({'TFLM' if device == 'tflm' else 'host'})")
    ax.set_xticks(np.arange(len(models)) + bar * (len(series) - 1) / 2, models, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("median ms per image (log), 1 thread")
    ax.set_title(f"edgeghost host matrix — {doc['host']['cpu']}", fontsize=9)
    ax.legend(fontsize=7, ncol=6, loc="upper center", bbox_to_anchor=(0.5, -0.1), frameon=False)
    ax.grid(True, axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-time", type=float, default=2.0, help="timed seconds per row (default: %(default)s)")
    parser.add_argument("--eval-samples", type=int, default=50, help="images for the TFLM/LiteRT-reference check")
    parser.add_argument("--work-dir", default="/tmp/edgeghost-matrix", help="checkpoints and exports go here")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--models", nargs="+", default=[f"{n}:{w:g}" for n, w in MODELS],
                        help="NAME:WIDTH of each model (default: %(default)s)")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()

    from edgeghost.data import load_split
    from edgeghost import bench

    work = Path(args.work_dir)
    train = load_split(DATASET, "train", args.data_dir)
    evalset = bench.load_eval_set(DATASET, samples=args.eval_samples, data_dir=args.data_dir)
    subjects = []
    for name, width in map(parse_model_spec, args.models):
        label = f"{name}_w{width:g}"
        ckpt = work / "ckpt" / f"{label}.pt"
        if not ckpt.is_file():
            make_checkpoint_file(name, width, ckpt, train.images[:128])
        subject = bench.subject_from_checkpoint(ckpt, tuple(bench.FORMATS), exports_dir=work / "exports",
                                                data_dir=args.data_dir)
        subject.label = label
        subjects.append(subject)
    evalsets = {s.label: evalset for s in subjects}
    common = {"threads": 1, "warmup": 10, "min_time_s": args.min_time, "min_runs": 10}
    host = bench.run_bench(subjects, device="host", formats=bench.default_formats("host"), evalsets=evalsets,
                           **common)
    tflm = bench.run_bench(subjects, device="tflm", formats=("tflite_int8",), evalsets=evalsets,
                           **{**common, "warmup": 3, "min_runs": 5})
    rows = host["rows"] + tflm["rows"]
    for r in rows:  # untrained: accuracy is not a result
        r["top1_pct"] = None
    doc = {"schema": "edgeghost-host-matrix-v1", "created": host["created"],
           "command": " ".join([Path(sys.executable).name, *sys.argv]), "host": host["host"],
           "settings": host["settings"] | {"devices": ["host", "tflm"], "weights": "untrained"},
           "rows": rows, "ratios": ratios(rows)}
    out = Path(args.out)
    atomic_write_json(out / "host_matrix.json", doc)
    atomic_write_text(out / "host_matrix.csv", bench.to_csv(doc))
    atomic_write_text(out / "host_matrix.md", markdown(doc))
    plot(doc, out / "host_matrix.png")
    print(markdown(doc))
    return 0


if __name__ == "__main__":
    t0 = time.time()
    try:
        rc = main()
    except EdgeGhostError as err:
        sys.exit(f"host_matrix: error: {err}")
    print(f"done in {time.time() - t0:.0f} s", file=sys.stderr)
    sys.exit(rc)
