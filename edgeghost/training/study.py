"""The paper's distillation comparison as one command: baseline, KD, Teacher Assistant, ensemble and DGKD
with the same seed and schedule, plus an α/T sweep. Every run goes through :func:`fit_or_skip`, so a
re-run skips what is done and resumes what is partial.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import EdgeGhostError
from .checkpoint import load_checkpoint
from .config import TrainConfig
from .distill import DistillConfig, distill
from .train import fit_or_skip, save_figure


@dataclass(frozen=True)
class StudyConfig:
    """Teachers are checkpoints or ``NAME[:WIDTH]`` models trained first with the same recipe; assistants are
    checkpoints or ``NAME[:WIDTH]`` models distilled inside each TA/DGKD chain."""

    teachers: tuple[str, ...] = ("resnet8:2.0",)
    assistants: tuple[str, ...] = ()
    alpha: float | None = None  # None: the authors' per-teacher values
    temperature: float | None = None
    strategies: tuple[str, ...] = ("baseline", "kd", "ta", "ensemble", "dgkd")


STRATEGIES = ("baseline", "kd", "ta", "ensemble", "dgkd")


def _resolve(spec: str, base: TrainConfig, root: Path, role: str) -> dict[str, Any]:
    """A checkpoint path as is; a ``NAME[:WIDTH]`` model trained with ``base``'s recipe under ``root``."""
    if Path(spec).is_file():
        ckpt = load_checkpoint(spec)
        return {"best": spec, "name": f"{ckpt['model']}_w{ckpt['width']:g}", "best_acc": ckpt.get("best_acc"),
                "params": ckpt.get("params"), "final": ckpt.get("metrics"), "run_dir": str(Path(spec).parent)}
    name, _, width = spec.partition(":")
    try:
        w = float(width) if width else 1.0
    except ValueError:
        raise EdgeGhostError(f"{role} {spec!r}: expected a checkpoint path or NAME[:WIDTH]") from None
    cfg = dataclasses.replace(base, model=name, width=w, out=str(root / f"{role}_{name}_w{w:g}"), resume=None)
    result = fit_or_skip(cfg)
    return {**result, "name": f"{name}_w{w:g}"}


def run_study(base: TrainConfig, study: StudyConfig) -> dict[str, Any]:
    """Run every strategy into ``base.run_dir()/<strategy>...`` and write ``study.{md,json,png}`` there."""
    unknown = [s for s in study.strategies if s not in STRATEGIES]
    if unknown:
        raise EdgeGhostError(f"unknown strategy {unknown[0]!r}; choose from {', '.join(STRATEGIES)}")
    if not study.teachers:
        raise EdgeGhostError("the study needs at least one teacher")
    root = Path(base.run_dir())
    teachers = [_resolve(t, base, root, "teacher") for t in study.teachers]
    # Assistants are trained inside each chain (distilled from the teacher), not beforehand.
    assistants = list(study.assistants)
    names = [_chain_name(a) for a in assistants]
    student = f"{base.model}_w{base.width:g}"
    rows = [_row(student=t["name"], strategy="(teacher)", teachers="", result=t) for t in teachers]

    def kd_run(out: str, teacher_ckpts: list[str], dense: bool = False, chain: tuple[str, ...] = ()) -> dict:
        dcfg = DistillConfig(
            teachers=tuple(teacher_ckpts), assistants=chain, alpha=study.alpha, temperature=study.temperature,
            dense=dense,
        )
        return distill(dataclasses.replace(base, out=str(root / out), resume=None), dcfg)

    if "baseline" in study.strategies:
        baseline = fit_or_skip(dataclasses.replace(base, out=str(root / "baseline"), resume=None))
        rows.append(_row(student=student, strategy="baseline", teachers="", result=baseline))
    for t in teachers if "kd" in study.strategies else []:
        r = kd_run(f"kd_{t['name']}", [t["best"]])
        rows.append(_row(student=student, strategy="KD", teachers=t["name"], result=r))
    if "ta" in study.strategies and assistants:
        r = kd_run("ta", [teachers[0]["best"]], chain=tuple(assistants))
        chain = " → ".join([teachers[0]["name"], *names])
        rows.append(_row(student=student, strategy="TA", teachers=chain, result=r))
    if "ensemble" in study.strategies and len(teachers) > 1:
        r = kd_run("ensemble", [t["best"] for t in teachers])
        together = " + ".join(t["name"] for t in teachers)
        rows.append(_row(student=student, strategy="ensemble", teachers=together, result=r))
    if "dgkd" in study.strategies and assistants:
        r = kd_run("dgkd", [teachers[0]["best"]], dense=True, chain=tuple(assistants))
        guides = " + ".join([teachers[0]["name"], *names])
        rows.append(_row(student=student, strategy="DGKD", teachers=guides, result=r))
    title = f"Distillation study: {student} on {base.dataset}, {base.epochs} epochs"
    return write_table(rows, root / "study", title=title, base=base)


def _chain_name(spec: str) -> str:
    if Path(spec).is_file():
        ckpt = load_checkpoint(spec)
        return f"{ckpt['model']}_w{ckpt['width']:g}"
    name, _, width = spec.partition(":")
    return f"{name}_w{float(width or 1.0):g}"


def run_sweep(base: TrainConfig, *, teacher: str, alphas: list[float], temperatures: list[float]) -> dict[str, Any]:
    """KD from one teacher over a grid of α and T (the paper's unspecified hyperparameters)."""
    root = Path(base.run_dir())
    t = _resolve(teacher, base, root, "teacher")
    student = f"{base.model}_w{base.width:g}"
    baseline = fit_or_skip(dataclasses.replace(base, out=str(root / "baseline"), resume=None))
    rows = [_row(student=student, strategy="baseline", teachers="", result=baseline)]
    for alpha in alphas:
        for temperature in temperatures:
            dcfg = DistillConfig(teachers=(t["best"],), alpha=alpha, temperature=temperature)
            r = distill(dataclasses.replace(base, out=str(root / f"kd_a{alpha:g}_T{temperature:g}"), resume=None), dcfg)
            rows.append(_row(student=student, strategy="KD", teachers=t["name"], result=r))
    title = f"α/T sweep: {student} ← {t['name']} on {base.dataset}"
    return write_table(rows, root / "sweep", title=title, base=base)


def _row(*, student: str, strategy: str, teachers: str, result: dict[str, Any]) -> dict[str, Any]:
    return {
        "student": student, "strategy": strategy, "teachers": teachers,
        "alpha": result.get("alpha"), "temperature": result.get("temperature"),
        "top1": result.get("best_acc"), "final_top1": (result.get("final") or {}).get("test_acc"),
        "params": result.get("params"), "run": result.get("run_dir"),
    }


def write_table(rows: list[dict[str, Any]], stem: Path, *, title: str, base: TrainConfig) -> dict[str, Any]:
    """Markdown + JSON + bar-chart PNG of the rows, with Δ vs the baseline row (all written atomically)."""
    base_acc = next((r["top1"] for r in rows if r["strategy"] == "baseline"), None)
    for r in rows:
        is_student = not r["strategy"].startswith("(")
        r["delta_pp"] = r["top1"] - base_acc if base_acc is not None and r["top1"] is not None and is_student else None
    fmt = lambda v, spec: "–" if v is None else format(v, spec)  # noqa: E731
    lines = [
        f"# {title}", "",
        "| student | strategy | teacher(s) | α | T | top-1 % (best) | top-1 % (final) | Δ vs baseline (pp) "
        "| params |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['student']} | {r['strategy']} | {r['teachers'] or '–'} | {fmt(r['alpha'], 'g')} | "
            f"{fmt(r['temperature'], 'g')} | {fmt(r['top1'], '.2f')} | {fmt(r['final_top1'], '.2f')} | "
            f"{fmt(r['delta_pp'], '+.2f')} | {fmt(r['params'], ',')} |"
        )
    lines += ["", f"Same seed ({base.seed}) and schedule for every run: {base.epochs} epochs, batch {base.batch_size}, "
              f"lr {base.lr:g}, wd {base.weight_decay:g}, train samples {base.train_samples or 'all'}."]
    stem.parent.mkdir(parents=True, exist_ok=True)
    report = {"title": title, "config": base.to_dict(), "rows": rows}
    _write_atomic(stem.with_suffix(".md"), "\n".join(lines) + "\n")
    _write_atomic(stem.with_suffix(".json"), json.dumps(report, indent=2) + "\n")
    _bar_chart(rows, stem.with_suffix(".png"), title=title)
    return {**report, "markdown": str(stem.with_suffix(".md")), "json": str(stem.with_suffix(".json")),
            "png": str(stem.with_suffix(".png"))}


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _bar_chart(rows: list[dict[str, Any]], path: Path, *, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in rows if r["top1"] is not None]
    labels = [
        f"{r['strategy']}\n" + (r["teachers"] or r["student"]).replace(" + ", "\n+ ").replace(" → ", "\n→ ")
        for r in shown
    ]
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(shown)), 4.5))
    colors = ["tab:gray" if r["strategy"].startswith("(") else "tab:blue" for r in shown]
    bars = ax.bar(range(len(shown)), [r["top1"] for r in shown], color=colors)
    ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.set_xticks(range(len(shown)), labels, fontsize=7)
    base = next((r["top1"] for r in shown if r["strategy"] == "baseline"), None)
    if base is not None:
        ax.axhline(base, color="tab:red", linestyle="--", linewidth=1, label="student baseline")
        ax.legend()
    accs = [r["top1"] for r in shown]
    ax.set_ylim(max(0.0, min(accs) - 5), min(100.0, max(accs) + 3))
    ax.set(ylabel="top-1 %", title=title)
    save_figure(fig, path)
