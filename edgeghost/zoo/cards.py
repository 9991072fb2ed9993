"""Model cards, generated from the shipped weights by one command — never typed.

``edgeghost zoo --cards`` exports every shipped model through the real chain (:func:`edgeghost.export.export_model`:
reparameterize → ONNX → TFLite fp32 → full-integer int8 → TFLite-Micro, each stage checked) and reads the card
from what the chain measured: top-1 of every stage on the same test images, int8 top-1 agreement with fp32, the
TFLite-Micro arena, parameters and MACs. Firmware flash/RAM and Cortex-M instruction counts come from
:func:`edgeghost.export.firmware.measure_cortex_m` with ``--firmware`` (they need the Arm toolchain, QEMU and a
TFLite-Micro tree); a field that was not measured is ``null`` with the reason in ``not_measured``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import EdgeGhostError
from ..fileio import atomic_write_json, atomic_write_text
from ..sysinfo import machine_info
from . import CARDS_DIR, ZOO, pretrained_checkpoint, shipped

FIRMWARE_TARGETS = (("cortex-m4", "reference"), ("cortex-m4", "cmsis-nn"), ("cortex-m55", "reference"))
STAGES = {"torch deploy form": "fp32_torch", "TFLite fp32 (LiteRT)": "fp32", "TFLite int8 (LiteRT)": "int8",
          "TFLite-Micro int8": "tflm"}


def _stage_rows(ladder: list[Any]) -> dict[str, Any]:
    rows = {}
    for r in ladder:
        key = next((v for k, v in STAGES.items() if r.stage.startswith(k.split(" (")[0]) and k.split(" (")[0] in r.stage), None)
        if key is not None:
            rows[key] = r
    return rows


def make_card(name: str, *, eval_samples: int = 10_000, work: Path | None = None, firmware: bool = False,
              data_dir: str | None = None) -> dict[str, Any]:
    """Measure one shipped zoo model and return its card (also written to ``cards/NAME.json``/``.md``)."""
    from ..export import export_model
    from ..models.profile import model_info
    from ..training.checkpoint import load_checkpoint, model_from_checkpoint

    path = pretrained_checkpoint(name)
    ckpt = load_checkpoint(path)
    entry = ZOO[name]
    info = model_info(model_from_checkpoint(ckpt), ckpt["model"])
    out = (work or Path("exports/zoo")) / name
    result = export_model(checkpoint=path, out=out, int8=True, eval_samples=eval_samples, data_dir=data_dir,
                          verbose=False)
    rows = _stage_rows(result.ladder)
    int8_row = rows.get("int8")
    samples = int8_row.samples if int8_row else 0
    top1 = {k: (round(100 * r.top1_accuracy, 2) if r.top1_accuracy is not None else None) for k, r in rows.items()}
    agreement = round(float(int8_row.top1_agreement), 4) if int8_row and int8_row.top1_agreement is not None else None
    manifest = result.manifest
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
        "qat": bool(ckpt.get("qat")),
        "calibration": manifest["quantization"].get("calibration"),
        "arena_bytes": (manifest.get("tflm") or {}).get("arena_bytes"),
        "arena_measured_bytes": (manifest.get("tflm") or {}).get("arena_measured_bytes"),
        "int8_model_bytes": (manifest.get("tflm") or {}).get("model_bytes"),
        "epochs": ckpt.get("epoch"),
        "training_curve": ckpt.get("training_curve"),
        "training_command": (ckpt.get("zoo") or {}).get("command", entry.command()),
        "weights": str(path.name),
        "firmware": {},
        "not_measured": {},
    }
    if firmware:
        from ..export.firmware import measure_cortex_m

        for target, kernels in FIRMWARE_TARGETS:
            key = f"{target}-{kernels}"
            try:
                m = measure_cortex_m(out, target=target, kernels=kernels, images=2)
                card["firmware"][key] = {k: m.get(k) for k in ("flash_bytes", "ram_bytes", "arena_bytes",
                                                               "instructions_mean", "instructions_spread")}
            except EdgeGhostError as err:
                card["not_measured"][key] = str(err)
    else:
        card["not_measured"]["firmware"] = ("flash/RAM/instructions per target not measured in this card run "
                                            "(run with --firmware: Arm toolchain + QEMU + TFLite-Micro tree)")
    card["machine"] = machine_info()
    CARDS_DIR.mkdir(parents=True, exist_ok=True)
    atomic_write_json(CARDS_DIR / f"{name}.json", card)
    atomic_write_text(CARDS_DIR / f"{name}.md", card_markdown(card))
    return card


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
        f"| int8 top-1 agreement with fp32 | {agree} |",
        f"| QAT | {'yes' if card['qat'] else 'no (post-training quantization)'} |",
        f"| TFLM arena | {card['arena_bytes']:,} B |" if card["arena_bytes"] else "| TFLM arena | - |",
        f"| epochs | {card['epochs']} |",
        f"| test top-1 per epoch | {', '.join(f'{v:.2f}' for v in curve) or '-'} |",
        "",
        f"Training command: `{card['training_command']}`",
        "",
    ]
    if card["firmware"]:
        lines += ["| firmware target | flash | RAM | instructions / inference |", "|---|---:|---:|---:|"]
        for k, v in card["firmware"].items():
            lines.append(f"| {k} | {v.get('flash_bytes')} | {v.get('ram_bytes')} | {v.get('instructions_mean')} |")
        lines.append("")
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
