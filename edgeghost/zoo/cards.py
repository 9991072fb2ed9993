"""Model cards, generated from the shipped weights by one command — never typed.

``edgeghost zoo --cards`` exports every shipped model through the real chain (:func:`edgeghost.export.export_model`:
reparameterize → ONNX → TFLite fp32 → full-integer int8 → TFLite-Micro, each stage checked, and the int16x8 side
branch) and reads the card from what the chain measured: top-1 of every stage on the same test images, int8 top-1
agreement with fp32, the TFLite-Micro arena, parameters and MACs, and the same for the 16-bit-activation model
(``int16x8``: what a model whose int8 flips too many answers can ship instead). Firmware flash/RAM and Cortex-M
instruction counts come from :func:`edgeghost.export.firmware.measure_cortex_m` with ``--firmware`` (they need the Arm toolchain, QEMU and a
TFLite-Micro tree); a field that was not measured is ``null`` with the reason in ``not_measured``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import EdgeGhostError
from ..fileio import atomic_write_json, atomic_write_text
from ..sysinfo import file_digest, machine_info
from . import CARDS_DIR, ZOO, pretrained_checkpoint, shipped

FIRMWARE_TARGETS = (("cortex-m4", "reference"), ("cortex-m4", "cmsis-nn"), ("cortex-m55", "reference"))
INT16X8_FIRMWARE_TARGET = ("cortex-m4", "cmsis-nn")  # the int16x8 model's cost, next to the int8 row of that target
AGREEMENT_GOAL = 0.995  # int8 (or int16x8) top-1 agreement with fp32 a card should reach (issue: int8 that keeps fp32)
STAGES = {"torch deploy form": "fp32_torch", "TFLite fp32 (LiteRT)": "fp32", "TFLite int8 (LiteRT)": "int8",
          "TFLite-Micro int8": "tflm"}


def _stage_rows(ladder: list[Any]) -> dict[str, Any]:
    rows = {}
    for r in ladder:
        key = next((v for k, v in STAGES.items() if r.stage.startswith(k.split(" (")[0]) and k.split(" (")[0] in r.stage), None)
        if key is not None:
            rows[key] = r
    return rows


def _reusable_export(out: Path, weights: Path, eval_samples: int | None) -> tuple[dict[str, Any], list[Any]] | None:
    """The manifest and fidelity ladder of an earlier card export of exactly these weights, evaluated on as many
    images (so adding firmware numbers to a card does not redo a 10,000-image export); None if there is none."""
    from types import SimpleNamespace

    from ..export.pipeline import STAGES, default_calibration
    from ..export.tflm import EMBEDDED_MODEL
    from ..training.checkpoint import load_checkpoint

    manifest_path, fidelity_path = out / "manifest.json", out / "fidelity.json"
    if not (manifest_path.is_file() and fidelity_path.is_file() and (out / STAGES["tflite_int8"].artifact).is_file()):
        return None
    if not (out / "tflm" / EMBEDDED_MODEL).is_file():
        return None  # made before the firmware flatbuffer lost its tensor names: its flash numbers are not today's
    if not (out / STAGES["tflm_int16x8"].artifact / EMBEDDED_MODEL).is_file():
        return None  # made before cards carried the int16x8 model
    manifest, fidelity = json.loads(manifest_path.read_text()), json.loads(fidelity_path.read_text())
    recorded = manifest.get("weights") or {}
    if recorded.get("sha256") is not None:
        same = recorded["sha256"] == file_digest(weights)
    else:  # exports made before the manifest recorded the checkpoint's digest
        same = (recorded.get("checkpoint") == str(weights)
                and manifest_path.stat().st_mtime > weights.stat().st_mtime)
    if not same or (eval_samples is not None and (fidelity.get("eval") or {}).get("samples") != eval_samples):
        return None
    calib = (manifest.get("quantization") or {}).get("calibration") or {}
    method, correction = default_calibration(load_checkpoint(weights))
    if calib.get("method") != method or bool(calib.get("bias_correction")) != correction:
        return None  # made with other calibration settings than today's defaults
    return manifest, [SimpleNamespace(**row) for row in fidelity["ladder"]]


def _firmware_row(m: dict[str, Any], macs: int) -> dict[str, Any]:
    """A card's entry for one :func:`~edgeghost.export.firmware.measure_cortex_m` result."""
    ins = m["instructions"]
    return {"flash_bytes": m["flash_bytes"], "ram_bytes": m["ram_bytes"], "instructions": ins["mean"],
            "instructions_spread": ins["spread"], "instructions_per_mac": round(ins["mean"] / macs, 3),
            "qemu_machine": m["qemu_machine"]}


def _int16x8_block(out: Path) -> dict[str, Any] | None:
    """The int16x8 side branch of the card export: top-1 and agreement with TFLite fp32 (LiteRT reference
    kernels), TFLite-Micro's top-1, arena and flatbuffer size; None when the export has none."""
    fidelity = json.loads((out / "fidelity.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    rungs = {r["stage"].split(" (")[0]: r for r in fidelity.get("extra") or []}
    litert, tflm, facts = rungs.get("TFLite int16x8"), rungs.get("TFLite-Micro int16x8"), manifest.get("tflm_int16x8")
    if litert is None or facts is None:
        return None
    return {"top1": round(100 * litert["top1_accuracy"], 2), "agreement": round(float(litert["top1_agreement"]), 4),
            "top1_tflm": round(100 * tflm["top1_accuracy"], 2) if tflm else None,
            "test_images": litert["samples"], "arena_bytes": facts["arena_bytes"],
            "model_bytes": facts["model_bytes"], "calibration": "minmax (16-bit activations)", "firmware": {}}


def pretrained_export(name: str, out: str | Path | None = None) -> Path:
    """The int8 export of a shipped zoo model (``exports/NAME`` by default): reused when that folder holds an
    export of exactly these weights, made with the default export settings otherwise (for ``firmware
    --pretrained``)."""
    from ..export import export_model

    weights = pretrained_checkpoint(name)
    folder = Path(out) if out is not None else Path("exports") / name
    if _reusable_export(folder, weights, None) is None:
        export_model(checkpoint=weights, out=folder, int8=True, verbose=False)
    return folder


def host_latency(export_dir: Path) -> dict[str, Any]:
    """One-thread latency of the int8 model on this host: LiteRT (XNNPACK) and the TFLite-Micro interpreter."""
    from ..export.pipeline import STAGES
    from ..runtime import load_runner, measure_latency

    int8 = export_dir / STAGES["tflite_int8"].artifact
    litert = load_runner(int8, threads=1)
    x = litert.example_input()
    lat = measure_latency(lambda: litert.run_raw(x), min_time_s=2.0)
    tflm = load_runner(int8, backend="tflm")
    _, tflm_lat = tflm.benchmark(tflm.example_input(), min_time_s=2.0)
    return {"litert_int8_ms": round(lat.median_ms, 3), "tflm_ms": round(tflm_lat.median_ms, 3), "threads": 1,
            "runs": {"litert_int8": lat.runs, "tflm": tflm_lat.runs}}


def make_card(name: str, *, eval_samples: int = 10_000, work: Path | None = None, firmware: bool = False,
              data_dir: str | None = None, reuse: bool = True) -> dict[str, Any]:
    """Measure one shipped zoo model and return its card (also written to ``cards/NAME.json``/``.md``).

    ``reuse``: take the accuracy rows from an earlier export of the same weights (same SHA-256, same number of
    test images) in ``work/NAME`` instead of exporting again."""
    from ..export import export_model
    from ..models.profile import model_info
    from ..training.checkpoint import load_checkpoint, model_from_checkpoint

    path = pretrained_checkpoint(name)
    ckpt = load_checkpoint(path)
    entry = ZOO[name]
    info = model_info(model_from_checkpoint(ckpt), ckpt["model"])
    out = (work or Path("exports/zoo")) / name
    earlier = _reusable_export(out, path, eval_samples) if reuse else None
    if earlier is None:
        result = export_model(checkpoint=path, out=out, int8=True, int16x8=True, eval_samples=eval_samples,
                              tflm_samples=0, data_dir=data_dir, verbose=False)
        manifest, ladder = result.manifest, result.ladder
    else:
        manifest, ladder = earlier
    rows = _stage_rows(ladder)
    int8_row = rows.get("int8")
    samples = int8_row.samples if int8_row else 0
    top1 = {k: (round(100 * r.top1_accuracy, 2) if r.top1_accuracy is not None else None) for k, r in rows.items()}
    agreement = round(float(int8_row.top1_agreement), 4) if int8_row and int8_row.top1_agreement is not None else None
    card: dict[str, Any] = {
        "name": name,
        "summary": entry.summary,
        "model": ckpt["model"],
        "width": float(ckpt["width"]),
        "dataset": ckpt["dataset"],
        "classes": ckpt.get("classes"),
        "input": manifest["input"]["shape"],
        "preprocess": manifest.get("preprocess"),
        "params": info.params_deploy,
        "params_train_form": info.params_train,
        "macs": info.macs,
        "top1": {"fp32": top1.get("fp32_torch"), "tflite_fp32": top1.get("fp32"), "int8": top1.get("int8"),
                 "tflm": top1.get("tflm"), "test_images": samples},
        "int8_agreement": agreement,
        "agreement_goal": AGREEMENT_GOAL,
        "ladder": [{k: getattr(r, k, None) for k in ("stage", "artifact", "max_abs_diff", "rel_diff",
                                                     "top1_agreement", "top1_accuracy", "samples")}
                   for r in ladder],
        "qat": bool(ckpt.get("qat")),
        "calibration": manifest["quantization"].get("calibration"),
        "arena_bytes": (manifest.get("tflm") or {}).get("arena_bytes"),
        "arena_measured_bytes": (manifest.get("tflm") or {}).get("arena_measured_bytes"),
        "int8_model_bytes": (manifest.get("tflm") or {}).get("model_bytes"),
        "epochs": ckpt.get("epoch"),
        "training_curve": ckpt.get("training_curve"),
        "training_command": (ckpt.get("zoo") or {}).get("command", entry.command()),
        "weights": str(path.name),
        "weights_sha256": file_digest(path),
        "host": host_latency(out),
        "firmware": {},
        "int16x8": _int16x8_block(out),
        "not_measured": {},
    }
    if firmware:
        from ..export.firmware import measure_cortex_m, model_from_export

        runs = [(card["firmware"], "", out, target) for target in FIRMWARE_TARGETS]
        if card["int16x8"] is not None:
            runs.append((card["int16x8"]["firmware"], "int16x8 ", model_from_export(out, precision="int16x8"),
                         INT16X8_FIRMWARE_TARGET))
        for into, label, source, (target, kernels) in runs:
            key = f"{target}-{kernels}"
            try:
                into[key] = _firmware_row(measure_cortex_m(source, target=target, kernels=kernels, images=2),
                                          info.macs)
            except EdgeGhostError as err:
                card["not_measured"][label + key] = str(err)
    else:
        card["not_measured"]["firmware"] = ("flash/RAM/instructions per target not measured in this card run "
                                            "(run with --firmware: Arm toolchain + QEMU + TFLite-Micro tree)")
    card["machine"] = machine_info()
    CARDS_DIR.mkdir(parents=True, exist_ok=True)
    atomic_write_json(CARDS_DIR / f"{name}.json", card)
    atomic_write_text(CARDS_DIR / f"{name}.md", card_markdown(card))
    return card


def _goal(card: dict[str, Any], agreement: float | None) -> str:
    goal = card.get("agreement_goal")
    if agreement is None or goal is None:
        return ""
    return f" (goal ≥ {100 * goal:.1f} %: {'met' if agreement >= goal else 'not met'})"


def _int16x8_rows(card: dict[str, Any]) -> list[str]:
    """The int16x8 model's rows of the card table (16-bit activations, the same 8-bit weights)."""
    q = card.get("int16x8")
    if not q:
        return []
    fw = (q.get("firmware") or {}).get("-".join(INT16X8_FIRMWARE_TARGET))
    tflm = "-" if q["top1_tflm"] is None else f"{q['top1_tflm']:.2f} %"
    rows = [f"| int16x8 (16-bit activations): top-1 LiteRT / TFLite-Micro | {q['top1']:.2f} % / {tflm} |",
            f"| int16x8 top-1 agreement with fp32 | {100 * q['agreement']:.2f} %{_goal(card, q['agreement'])} |",
            f"| int16x8 TFLM arena | {q['arena_bytes']:,} B |"]
    if fw:
        rows.append(f"| int16x8 {'-'.join(INT16X8_FIRMWARE_TARGET)} | flash {fw['flash_bytes']:,} B, "
                    f"{fw['instructions'] / 1e6:.2f} M instructions / inference |")
    return rows


def card_markdown(card: dict[str, Any]) -> str:
    t = card["top1"]

    def pct(v: Any) -> str:
        return "-" if v is None else f"{v:.2f} %"

    agree = "-" if card["int8_agreement"] is None else f"{100 * card['int8_agreement']:.2f} %"
    curve = card.get("training_curve") or []
    lines = [
        f"# {card['name']}",
        "",
        f"{card['summary']}. Generated by `edgeghost zoo --cards` from the shipped weights; do not edit.",
        "",
        "| field | value |",
        "|---|---|",
        f"| model | `{card['model']}` width {card['width']:g} |",
        f"| dataset | {card['dataset']} ({len(card['classes'] or [])} classes) |",
        f"| input | {card['input']} ({(card['preprocess'] or {}).get('resize', '-')}) |",
        f"| params (deploy form) | {card['params']:,} |",
        f"| MACs | {card['macs'] / 1e6:.2f} M |",
        f"| top-1 fp32 (torch) | {pct(t['fp32'])} |",
        f"| top-1 int8 (LiteRT) | {pct(t['int8'])} |",
        f"| top-1 TFLite-Micro | {pct(t['tflm'])} |",
        f"| test images | {t['test_images']:,} |",
        f"| int8 top-1 agreement with fp32 | {agree}{_goal(card, card['int8_agreement'])} |",
        *_int16x8_rows(card),
        f"| QAT | {'yes' if card['qat'] else 'no (post-training quantization)'} |",
        f"| TFLM arena | {card['arena_bytes']:,} B |" if card["arena_bytes"] else "| TFLM arena | - |",
        *([f"| host latency, 1 thread | LiteRT int8 {card['host']['litert_int8_ms']:.3f} ms, "
           f"TFLite-Micro {card['host']['tflm_ms']:.3f} ms |"] if card.get("host") else []),
        f"| epochs | {card['epochs']} |",
        f"| test top-1 per epoch | {', '.join(f'{v:.2f}' for v in curve) or '-'} |",
        "",
        f"Training command: `{card['training_command']}`",
        "",
    ]
    if card["firmware"]:
        lines += ["| firmware target | flash | RAM | instructions / inference | instructions / MAC |",
                  "|---|---:|---:|---:|---:|"]
        for k, v in card["firmware"].items():
            lines.append(f"| {k} | {v['flash_bytes']:,} B | {v['ram_bytes']:,} B | {v['instructions'] / 1e6:.2f} M "
                         f"| {v['instructions_per_mac']:.2f} |")
        lines += ["", "Instructions are counted on QEMU's emulated core (`-icount shift=0` + a hardware timer), not "
                  "cycles: a real core spends more cycles on multi-cycle loads, MACs, taken branches and flash wait "
                  "states.", ""]
    for k, v in card["not_measured"].items():
        lines.append(f"- not measured ({k}): {v}")
    return "\n".join(lines) + "\n"


def make_cards(names: list[str] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
    names = names or shipped()
    if not names:
        raise EdgeGhostError("no zoo weights are shipped in this installation")
    return [make_card(n, **kwargs) for n in names]


def load_cards() -> list[dict[str, Any]]:
    """The generated cards that exist (``cards/*.json``), in zoo order."""
    return [json.loads((CARDS_DIR / f"{n}.json").read_text()) for n in ZOO if (CARDS_DIR / f"{n}.json").is_file()]


PARETO_TARGET = "cortex-m4-cmsis-nn"


def plot_pareto(cards: list[dict[str, Any]], path: str | Path) -> list[str]:
    """Top-1 (TFLite-Micro int8, full test set) vs Cortex-M4 CMSIS-NN instructions per inference, marker area
    proportional to the TFLM arena; one point per card that has both numbers. Returns the names left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..fileio import atomic_path

    have = [c for c in cards if (c.get("firmware") or {}).get(PARETO_TARGET) and c["top1"].get("tflm") is not None]
    missing = [c["name"] for c in cards if c not in have]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for c in have:
        x, y = c["firmware"][PARETO_TARGET]["instructions"] / 1e6, c["top1"]["tflm"]
        ax.scatter(x, y, s=c["arena_bytes"] / 400, alpha=0.6)
        ax.annotate(f"{c['name']}\n{c['arena_bytes'] / 1024:.0f} KiB arena", (x, y), fontsize=7, xytext=(6, -4),
                    textcoords="offset points")
    if not have:
        ax.text(0.5, 0.5, "no card has Cortex-M4 numbers (edgeghost zoo --cards --firmware)", ha="center",
                transform=ax.transAxes)
    ax.set_xlabel("Cortex-M4 CMSIS-NN instructions per inference, millions (QEMU, emulated)")
    ax.set_ylabel("top-1, TFLite-Micro int8 (%)")
    ax.set_title("edgeghost zoo on Fashion-MNIST (10,000 test images); marker area = TFLM arena", fontsize=9)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return missing
