"""Rewrite the generated sections of the READMEs from the recorded results, or check that they are current.

A generated section is everything between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->`` in one
of ``DOCS``; its text is what the function registered as ``NAME`` in ``SECTIONS`` returns, built from
``benchmarks/results/*.json`` (or, for the models table, from the same library call as ``edgeghost info
--json``). Numbers in those sections are never typed by hand: re-run the benchmark, then this script.

    .venv/bin/python benchmarks/update_readme.py            # rewrite stale sections in place
    .venv/bin/python benchmarks/update_readme.py --check    # exit 1 and name the stale sections

Adding a section: write ``@section("name") def name() -> str`` returning Markdown, and put the two marker
comments where it belongs. Unknown names in a README, and registered sections no README uses, are errors.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOCS = ("README.md", "export/README.md")
MARKER = re.compile(r"(<!-- generated:(?P<name>[\w.-]+) -->\n)(?P<body>.*?)(<!-- /generated:(?P=name) -->)", re.S)

SECTIONS: dict[str, Callable[[], str]] = {}


def section(name: str) -> Callable[[Callable[[], str]], Callable[[], str]]:
    """Register the function that renders the section ``name``."""

    def register(fn: Callable[[], str]) -> Callable[[], str]:
        SECTIONS[name] = fn
        return fn

    return register


# --- formatting helpers --------------------------------------------------------------------------------------

def _results(name: str) -> dict[str, Any]:
    path = RESULTS / name
    if not path.is_file():
        raise SystemExit(f"update_readme: {path.relative_to(ROOT)} is missing (run the benchmark that writes it)")
    return json.loads(path.read_text())


def _sig(value: float, digits: int = 3) -> str:
    """``digits`` significant digits, trailing zeros kept (1.00, 0.406, 61.1); no exponent below 10**digits."""
    if value == 0:
        return "0"
    if abs(value) >= 10 ** (digits - 1):
        return f"{value:.0f}"
    return f"{value:#.{digits}g}"


def _pct(fraction: float, decimals: int = 2) -> str:
    return f"{100 * fraction:.{decimals}f} %"


def _kb(n_bytes: float) -> str:
    return f"{n_bytes / 1000:.1f} kB"


_FAMILY = {"ghostnetv3_small": "GN-S", "ghostnetv3_small_lean": "lean GN-S", "ghostnetv3_d": "GN-D",
           "resnet8": "ResNet-8"}


def _w(width: float) -> str:
    """Widths as the CLI and the export folders spell them: 0.5, 1.0, 2.8."""
    return f"{width:.1f}" if float(width).is_integer() else f"{width:g}"


def _short(model: str, width: float | None = None) -> str:
    """``ghostnetv3_small``, 0.5 → ``GN-S w0.5``; also accepts ``ghostnetv3_small_w0.5``."""
    if width is None:
        match = re.fullmatch(r"(.+)_w([\d.]+)", model)
        model, width = (match.group(1), float(match.group(2))) if match else (model, 1.0)
    if model == "resnet8":
        return "ResNet-8"
    return f"{_FAMILY.get(model, model)} w{_w(width)}"


def _source(name: str, record: dict[str, Any]) -> str:
    command = record.get("command", "")
    date = str(record.get("date") or record.get("created") or "")[:10]
    return f"*Source: `benchmarks/results/{name}`" + (f", made by `{command}`" if command else "") + \
        (f" on {date}" if date else "") + ".*"


def _table(header: list[str], align: str, rows: list[list[str]]) -> str:
    """Markdown table; ``align`` has one letter per column: l(eft) or r(ight)."""
    rule = ["---:" if a == "r" else "---" for a in align]
    return "\n".join("| " + " | ".join(r) + " |" for r in [header, rule, *rows])


# --- sections ------------------------------------------------------------------------------------------------

# (model, width) rows of the models table: the widths the paper studied plus the small ones the firmware uses.
MODEL_ROWS = [("ghostnetv3_small", 0.5), ("ghostnetv3_small", 1.0), ("ghostnetv3_small", 2.8),
              ("ghostnetv3_small", 3.4), ("ghostnetv3_d", 1.0), ("resnet8", 1.0)]


@section("models")
def models() -> str:
    """Parameters and MACs, computed by the library call behind ``edgeghost info --json`` (not a results file:
    counting is exact and takes seconds)."""
    import torch

    from edgeghost.models import create_model, model_info

    rows = []
    for name, width in MODEL_ROWS:
        torch.manual_seed(0)
        info = model_info(create_model(name, width=width, num_classes=10), name).to_dict()
        label = "resnet8 (MLPerf Tiny)" if name == "resnet8" else name
        rows.append([label, _w(width), f"{info['params_train']:,}", f"{info['params_deploy']:,}",
                     f"{info['macs'] / 1e6:.2f} M"])
    return _table(["model", "width", "params train", "params deploy", "MACs (deploy)"], "lrrrr", rows) + \
        "\n\n*Source: `edgeghost info --model NAME --width W --json` (10 classes, 32×32×3 input).*"


def _cards() -> list[dict[str, Any]]:
    from edgeghost.zoo.cards import load_cards

    return load_cards()


def _fw(card: dict[str, Any], target: str, key: str) -> Any:
    return ((card.get("firmware") or {}).get(target) or {}).get(key)


@section("zoo")
def zoo() -> str:
    """The zoo table: one row per generated model card (edgeghost/zoo/cards/*.json)."""
    rows, rows16 = [], []
    for c in _cards():
        t = c["top1"]
        ins = _fw(c, "cortex-m4-cmsis-nn", "instructions")
        flash = _fw(c, "cortex-m4-cmsis-nn", "flash_bytes")
        rows.append([f"`{c['name']}`", f"{c['params']:,}", f"{c['macs'] / 1e6:.2f} M", f"{t['fp32']:.2f} %",
                     f"{t['int8']:.2f} %", f"{t['tflm']:.2f} %", f"{100 * c['int8_agreement']:.2f} %",
                     _kb(c["arena_bytes"]), "-" if flash is None else _kb(flash),
                     "-" if ins is None else f"{ins / 1e6:.2f} M", f"{c['epochs']}"])
        q = c.get("int16x8")
        if q:
            ins16 = ((q.get("firmware") or {}).get("cortex-m4-cmsis-nn") or {}).get("instructions")
            goal = c.get("agreement_goal", 0.995)
            rows16.append([f"`{c['name']}`", f"{100 * c['int8_agreement']:.2f} %", f"{100 * q['agreement']:.2f} %",
                           "int8" if c["int8_agreement"] >= goal else ("int16x8" if q["agreement"] >= goal else
                                                                       "neither"),
                           f"{q['top1']:.2f} %", f"{_kb(c['arena_bytes'])} → {_kb(q['arena_bytes'])}",
                           "-" if ins is None or ins16 is None else
                           f"{ins / 1e6:.2f} M → {ins16 / 1e6:.2f} M ({ins16 / ins:.2f}×)"])
    if not rows:
        return "*No model cards yet (`edgeghost zoo --cards`).*"
    table = _table(["model", "params", "MACs", "fp32", "int8 (LiteRT)", "TFLM", "int8 = fp32", "TFLM arena",
                    "M4 flash (CMSIS-NN)", "M4 instructions (CMSIS-NN)", "epochs"], "lrrrrrrrrrr", rows)
    if rows16:
        table += (
            "\n\nThe same weights with 16-bit activations (`edgeghost export --int16x8`, firmware "
            "`edgeghost firmware --int16x8`): agreement with fp32 against the goal of ≥ 99.5 %, and what it costs.\n\n"
            + _table(["model", "int8 = fp32", "int16x8 = fp32", "meets 99.5 % with", "int16x8 top-1",
                      "TFLM arena int8 → int16x8", "M4 instructions int8 → int16x8 (CMSIS-NN)"], "lrrlrrr", rows16))
    return table + (
        "\n\n*Source: the model cards in `edgeghost/zoo/cards/`, made by `edgeghost zoo --cards --firmware` from the "
        "shipped weights; top-1 on all 10,000 Fashion-MNIST test images; `int8 = fp32`: share of test images whose "
        "int8 top-1 equals fp32's; instructions are emulated Cortex-M4 instructions under QEMU, not cycles.*")


@section("mcu_vs_resnet8")
def mcu_vs_resnet8() -> str:
    """GN-S-MCU against ResNet-8 on the four MCU axes, from their cards."""
    cards = {c["name"]: c for c in _cards()}
    mcu, r8 = cards.get("gns-mcu-fmnist"), cards.get("resnet8-fmnist")
    if mcu is None or r8 is None:
        return "*GN-S-MCU or ResNet-8 has no card yet.*"
    axes = [("top-1 (TFLM int8)", mcu["top1"]["tflm"], r8["top1"]["tflm"], True, lambda v: f"{v:.2f} %"),
            ("TFLM arena (measured minimum)", mcu["arena_measured_bytes"], r8["arena_measured_bytes"], False, _kb),
            ("Cortex-M4 flash (CMSIS-NN)", _fw(mcu, "cortex-m4-cmsis-nn", "flash_bytes"),
             _fw(r8, "cortex-m4-cmsis-nn", "flash_bytes"), False, _kb),
            ("Cortex-M4 flash (reference)", _fw(mcu, "cortex-m4-reference", "flash_bytes"),
             _fw(r8, "cortex-m4-reference", "flash_bytes"), False, _kb),
            ("Cortex-M4 instructions (CMSIS-NN)", _fw(mcu, "cortex-m4-cmsis-nn", "instructions"),
             _fw(r8, "cortex-m4-cmsis-nn", "instructions"), False, lambda v: f"{v / 1e6:.2f} M")]
    rows = []
    for label, a, b, higher_better, fmt in axes:
        if a is None or b is None:
            rows.append([label, "-" if a is None else fmt(a), "-" if b is None else fmt(b), "not measured", "-"])
            continue
        wins = a >= b if higher_better else a <= b
        delta = f"{a - b:+.2f} pp" if higher_better else f"{100 * (a - b) / b:+.1f} %"
        rows.append([label, fmt(a), fmt(b), delta, "yes" if wins else "**no**"])
    return _table(["axis", "GN-S-MCU", "ResNet-8", "GN-S-MCU vs ResNet-8", "target met"], "lrrrl", rows) + (
        f"\n\nGN-S-MCU's measured arena is {mcu['arena_measured_bytes']:,} B = "
        f"{mcu['arena_measured_bytes'] / 1024:.1f} KiB (the MLPerf Tiny IC01 reference ResNet-8 needs 54.7 KiB); "
        "the firmware adds a stated margin on top (the cards' `arena_bytes`)."
        "\n\n*Source: `edgeghost/zoo/cards/gns-mcu-fmnist.json` and `resnet8-fmnist.json` (same recipe, same data, "
        "same TFLite-Micro tree and QEMU).*")


@section("host_matrix")
def host_matrix() -> str:
    """Median ms per image per model × format on the host and in TFLite-Micro (benchmarks/host_matrix.py)."""
    record = _results("host_matrix.json")
    cells: dict[str, dict[str, Any]] = {}
    for row in record["rows"]:
        key = "tflm" if row["device"] == "tflm" else row["format"]
        cells.setdefault(row["model"], {"macs": row["macs"]})[key] = row
    columns = [("torch", "torch"), ("torch_deploy", "torch deploy"), ("onnx", "ONNX"), ("tflite_fp32", "TFLite fp32"),
               ("tflite_int8", "TFLite int8"), ("tflm", "TFLM int8")]
    rows = []
    for model, by_format in cells.items():
        line = [_short(model), f"{by_format['macs'] / 1e6:.2f}"]
        for key, _ in columns:
            row = by_format.get(key)
            line.append(_sig(row["latency"]["median_ms"]) if row and row["status"] == "ok" else "✗")
        tflm = by_format.get("tflm")
        line.append(f"{tflm['arena_kib']:.1f}" if tflm and tflm.get("arena_kib") else "—")
        rows.append(line)
    header = ["model", "MMACs", *(title for _, title in columns), "arena KiB"]
    return _table(header, "lrrrrrrrr", rows) + "\n\n" + _source("host_matrix.json", record)


@section("host_ratios")
def host_ratios() -> str:
    """The two ratios the host-matrix goals are stated in."""
    record = _results("host_matrix.json")
    ratios = record["ratios"]
    rows = [[_short(model), f"{ratios['int8_over_fp32_litert'][model]:.2f}×",
             f"{ratios['tflm_ms_per_mmac'][model]:.2f}", f"{ratios['tflm_ms_per_mmac_vs_resnet8'][model]:.2f}×"]
            for model in ratios["int8_over_fp32_litert"]]
    return _table(["model", "LiteRT int8 / fp32 latency", "TFLM ms per MMAC", "TFLM ms/MMAC vs ResNet-8"], "lrrr",
                  rows) + "\n\n" + _source("host_matrix.json", record)


@section("reparam")
def reparam() -> str:
    """Deploy-form over train-form torch latency (benchmarks/reparam_latency.py)."""
    record = _results("reparam.json")
    rows = [[_short(r["model"], r["width"]), str(r["batch"]), _sig(r["train_ms"]), _sig(r["deploy_ms"]),
             f"{r['ratio']:.3f}×"] for r in record["results"]]
    goal = record.get("goal", {})
    text = _table(["model", "batch", "train form ms", "deploy form ms", "deploy / train"], "lrrrr", rows)
    if goal:
        text += (f"\n\nGoal: deploy / train ≤ {goal['deploy_over_train_w2.8_batch1_max']}× at w2.8, batch 1: "
                 f"{goal['measured']}× ({'met' if goal['met'] else 'missed'}).")
    return text + "\n\n" + _source("reparam.json", record)


@section("arena")
def arena() -> str:
    """TFLite-Micro arena per model (benchmarks/export_suite.py --part arena)."""
    record = _results("export_arena.json")
    res = record["results"]
    rows = [[_short(r["model"], r["width"]), _kb(r["arena_measured_bytes"]), _kb(r["arena_firmware_bytes"]),
             _kb(r["int8_bytes"])] for r in res["rows"]]
    text = _table(["model", "arena (measured)", "arena in firmware (+ margin)", "int8 model"], "lrrr", rows)
    text += f"\n\nGoal: {res['goal']}: {'met' if res['meets_goal'] else 'missed'}."
    return text + "\n\n" + _source("export_arena.json", record)


@section("firmware_sizes")
def firmware_sizes() -> str:
    """Flash / RAM per target and host instruction counts (benchmarks/firmware_sizes.py)."""
    record = _results("firmware_sizes.json")
    targets = [t for t in record["results"][0]["targets"] if not t.startswith("host")]
    rows = []
    for r in record["results"]:
        line = [_short(r["model"], r["width"])]
        for t in targets:
            size = r["targets"].get(t)
            line.append(f"{size['flash'] / 1000:.0f} / {size['ram'] / 1000:.0f}" if size else "—")
        host = r["targets"].get("host/reference", {})
        ir = host.get("instructions_per_inference")
        line.append(f"{ir / 1e6:.0f} M" if ir else "—")
        rows.append(line)
    header = ["model", *(f"{t} flash / RAM kB" for t in targets), "instructions per inference (host)"]
    return _table(header, "l" + "r" * (len(header) - 1), rows) + "\n\n" + _source("firmware_sizes.json", record)


@section("train_throughput")
def train_throughput() -> str:
    """Training images per second on this CPU and the projected paper run (benchmarks/train_throughput.py)."""
    record = _results("train_throughput_cpu.json")
    rows = [[_short(r["model"], r["width"]), f"{r['params']:,}", str(r["batch_size"]), f"{r['images_per_s']:.1f}",
             f"{r['projected_cifar10_200_epochs_h']:.0f} h"] for r in record["rows"]]
    return _table(["model", "params", "batch", "images/s", "CIFAR-10, 200 epochs"], "lrrrr", rows) + "\n\n" + \
        _source("train_throughput_cpu.json", record)


@section("train_speed")
def train_speed() -> str:
    """Old training path vs new, side by side in one run (benchmarks/train_throughput.py speed)."""
    record = _results("train_speed_cpu.json")
    def label(spec: str) -> str:
        name, _, width = spec.partition(":")
        return _short(name, float(width or 1))

    rows = [[label(r["model"]), f"{r['median_images_per_s']['old']:.1f}", f"{r['median_images_per_s']['new']:.1f}",
             f"{r['speedup']:.2f}×"] for r in record["rows"]]
    def path(name: str) -> str:  # the TrainConfig fields the path set (records before fusion name none)
        fields = record["paths"][name]
        return ", ".join(["NCHW" if fields.get("channels_last") is False else "channels_last",
                          "fused 1×1 branches" if fields.get("fused_branches") else "per-branch"])

    out = _table(["model", f"old path img/s ({path('old')})", f"new path img/s ({path('new')})", "speedup"],
                 "lrrr", rows)
    acc = record.get("accuracy") or []
    if acc:
        sched = record["accuracy_schedule"]
        out += (f"\n\nTest top-1 after the same short schedule ({sched['epochs']} epochs on {sched['train_images']:,} "
                f"training images, {sched['test_images']:,} test images), per seed:\n\n")
        out += _table(["model", "seed", "old path", "new path"], "lrrr",
                      [[label(r["model"]), str(r["seed"]), f"{r['old_top1']:.2f} %", f"{r['new_top1']:.2f} %"] for r in acc])
    return out + "\n\n" + _source("train_speed_cpu.json", record)


STUDY = "distill_fashion_mnist_converged.json"
STUDY_CHAINS = "distill_fashion_mnist_converged_chains.json"
STUDY_STRONG = "distill_fashion_mnist_converged_strong.json"
STUDY_LONG = "distill_fashion_mnist_converged_long.json"


@section("distill_study")
def distill_study() -> str:
    """The converged distillation study: mean ± std over seeds, paired Δ vs the baseline, the verdict
    (benchmarks/distill_study.py)."""
    return _study(STUDY)


@section("distill_study_chains")
def distill_study_chains() -> str:
    """The same study's Teacher-Assistant chain and teacher ensemble, with their own baseline runs."""
    return _study(STUDY_CHAINS)


@section("distill_study_strong")
def distill_study_strong() -> str:
    """KD from a teacher clearly better than the student because it saw all the training images (the zoo's)."""
    return _study(STUDY_STRONG)


@section("distill_study_long")
def distill_study_long() -> str:
    """KD from a teacher trained longer on the student's own images."""
    return _study(STUDY_LONG)


def _study(name: str) -> str:
    from edgeghost.training.study import teacher_training

    record = _results(name)
    cfg = record["config"]
    teachers = [[f"`{t['name']}`", "—" if t.get("final_top1") is None else f"{t['final_top1']:.2f} %",
                 "—" if t.get("params") is None else f"{t['params']:,}", teacher_training(t)]
                for t in record.get("teachers", [])]
    def pm(mean: float | None, std: float | None, unit: str, sign: str = "") -> str:
        if mean is None:
            return "—"
        return f"{mean:{sign}.2f}" + ("" if std is None else f" ± {std:.2f}") + f" {unit}"

    rows = [[g["label"] + (f" ({', '.join(g['teachers'])})" if g.get("teachers") else ""), str(g["n"]),
             pm(g["final_mean"], g["final_std"], "%"),
             "—" if g["strategy"] == "baseline" else pm(g["delta_mean"], g["delta_std"], "pp", "+"),
             "—" if g.get("p") is None else f"{g['p']:.3f}", g.get("reading") or ""] for g in record["summary"]]
    table = _table(["run", "seeds", "test top-1 (final epoch)", "Δ vs baseline (paired)", "p", "reading"],
                   "lrrrrl", rows)
    teacher_table = (_table(["teacher", "test top-1 (final epoch)", "params", "trained on"], "lrrl", teachers)
                     if teachers else "")
    student = _short(cfg["model"], cfg["width"])
    train = cfg.get("train_samples") or 60000
    test = f"the first {cfg['test_samples']:,}" if cfg.get("test_samples") else "all 10,000"
    head = (f"Student {student}, {cfg['epochs']} epoch(s) on the first {train:,} Fashion-MNIST training images "
            f"({cfg.get('in_chans') or 3}×{cfg.get('img_size') or 32}×{cfg.get('img_size') or 32}, batch "
            f"{cfg['batch_size']}, lr {cfg['lr']:g}, wd {cfg['weight_decay']:g}, warm-up {cfg['warmup']:g} + cosine), "
            f"test top-1 on {test} test images.")
    verdict = "\n".join(f"- {v}" for v in record.get("verdict", []))
    return "\n\n".join(x for x in (head, table, teacher_table, verdict, _source(name, record)) if x)


STUDY_BENCH = "distill_bench_host.json"
STUDY_BENCH_CHAINS = "distill_bench_host_chains.json"
STUDY_BENCH_TFLM = "distill_bench_tflm_chains.json"


@section("distill_bench")
def distill_bench() -> str:
    """Baseline and every distilled variant of the study through the deploy chain (edgeghost bench --study)."""
    return _distill_bench(STUDY_BENCH)


@section("distill_bench_chains")
def distill_bench_chains() -> str:
    """The same for the study's Teacher-Assistant / ensemble half."""
    return _distill_bench(STUDY_BENCH_CHAINS)


@section("distill_bench_tflm")
def distill_bench_tflm() -> str:
    """The same variants through the TFLite-Micro interpreter: int8 top-1 on the full test set and the arena."""
    return _distill_bench(STUDY_BENCH_TFLM)


def _distill_bench(name: str) -> str:
    record = _results(name)
    tflm = record["device"] == "tflm"
    rows = []
    for r in record["rows"]:
        if r["status"] != "ok":
            continue
        lat = r.get("latency") or {}
        row = [r["model"], r["format"], "—" if r["top1_pct"] is None else f"{r['top1_pct']:.2f} %",
               "—" if not lat else f"{lat['median_ms']:.3f}", f"{r['size_mb'] * 1000:.0f} kB"]
        rows.append(row + ([f"{r['arena_kib']:.1f}" if r.get("arena_kib") else "—"] if tflm else []))
    samples = max((r.get("eval_samples") or 0) for r in record["rows"])
    where = "the TFLite-Micro Python interpreter" if tflm else "LiteRT (XNNPACK)"
    header = ["run", "format", "top-1", "ms / image", "size"] + (["arena KiB"] if tflm else [])
    return (f"`edgeghost bench --device {record['device']} --study DIR` on the study above: {samples:,} test images, "
            f"one thread, {where} on this CPU.\n\n"
            + _table(header, "llrrr" + ("r" if tflm else ""), rows) + "\n\n"
            + _source(name, record))


def _quality_files() -> list[tuple[str, dict[str, Any]]]:
    return [(p.name, json.loads(p.read_text())) for p in sorted(RESULTS.glob("export_quality_*.json"))]


@section("int8_quality")
def int8_quality() -> str:
    """int8 vs fp32 per checkpoint and calibration method (benchmarks/export_suite.py --part quality)."""
    rows, sources = [], []
    for name, record in _quality_files():
        res = record["results"]
        for method, run in res["runs"].items():
            rows.append([f"`{res['checkpoint']}`", str(res["eval_samples"]), method, _pct(run["fp32_top1"]),
                         _pct(run["int8_top1"]), f"{run['drop_pp']:+.2f} pp", _pct(run["int8_top1_agreement"])])
            if run.get("int16x8"):
                r16 = run["int16x8"]
                rows.append([f"`{res['checkpoint']}`", str(res["eval_samples"]), "int16x8 (min/max)",
                             _pct(run["fp32_top1"]), _pct(r16["top1_accuracy"]),
                             f"{100 * (run['fp32_top1'] - r16['top1_accuracy']):+.2f} pp",
                             _pct(r16["top1_agreement"])])
        sources.append(_source(name, record))
    header = ["checkpoint", "eval images", "calibration", "fp32 top-1", "int8 top-1", "drop", "int8/fp32 agreement"]
    return _table(header, "lrlrrrr", rows) + "\n\n" + "\n".join(sources)


def _ladder_table(ladder: list[dict[str, Any]]) -> str:
    rows = []
    for r in ladder[1:]:
        diff = r["max_abs_diff"]
        rows.append([r["stage"], f"{diff:.2g}" if diff is not None else "—", _pct(r["top1_agreement"]),
                     _pct(r["top1_accuracy"])])
    return _table(["stage", "max abs Δ to previous", "top-1 agreement", "top-1"], "lrrr", rows)


LADDER_CARD = "gns-w0.5-fmnist"


@section("export_ladder")
def export_ladder() -> str:
    """The fidelity ladder of a trained zoo model's default (percentile) export on the full test set."""
    card = next((c for c in _cards() if c["name"] == LADDER_CARD and c.get("ladder")), None)
    if card is None:
        return f"*The `{LADDER_CARD}` card has no ladder yet (`edgeghost zoo --cards {LADDER_CARD}`).*"
    return (f"`edgeghost export --pretrained {LADDER_CARD} --int8` (trained zoo weights), all "
            f"{card['top1']['test_images']:,} Fashion-MNIST test images, default percentile calibration:\n\n"
            f"{_ladder_table(card['ladder'])}\n\n*Source: `edgeghost/zoo/cards/{LADDER_CARD}.json` "
            f"(`edgeghost zoo --cards`).*")


# --- the rewrite ---------------------------------------------------------------------------------------------

def render(text: str, *, cache: dict[str, str]) -> tuple[str, list[str]]:
    """``text`` with every generated section re-rendered, and the names of the sections that changed."""
    changed: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in SECTIONS:
            raise SystemExit(f"update_readme: no generator for section {name!r} (known: {', '.join(SECTIONS)})")
        if name not in cache:
            cache[name] = SECTIONS[name]().rstrip("\n") + "\n"
        if match.group("body") != cache[name]:
            changed.append(name)
        return match.group(1) + cache[name] + match.group(4)

    return MARKER.sub(replace, text), changed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 if a section is stale")
    p.add_argument("--diff", action="store_true", help="with --check: also print the differences")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))  # the models section imports edgeghost from this checkout
    from edgeghost.fileio import atomic_write_text

    cache: dict[str, str] = {}
    stale, used = [], set()
    for doc in DOCS:
        path = ROOT / doc
        text = path.read_text()
        used |= {m.group("name") for m in MARKER.finditer(text)}
        new, changed = render(text, cache=cache)
        if not changed:
            continue
        stale += [f"{doc}: {name}" for name in changed]
        if args.check:
            if args.diff:
                sys.stdout.writelines(difflib.unified_diff(text.splitlines(True), new.splitlines(True), doc, doc))
        else:
            atomic_write_text(path, new)
    unused = sorted(set(SECTIONS) - used)
    if unused:
        print(f"update_readme: sections no README uses: {', '.join(unused)}", file=sys.stderr)
        return 1
    if args.check and stale:
        print("stale generated sections (run .venv/bin/python benchmarks/update_readme.py):\n  " + "\n  ".join(stale))
        return 1
    print(("updated: " + ", ".join(stale)) if stale else "generated sections are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
