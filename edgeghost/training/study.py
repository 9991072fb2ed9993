"""The paper's distillation comparison as one command: baseline, KD, Teacher Assistant, ensemble and DGKD over
several seeds, with mean ± std, a paired test against the baseline and a verdict; optionally GN-S vs GN-D at
matched MACs or parameters; run locally one after the other or as Ray tasks on a cluster.

Every run goes through :func:`fit_or_skip` (inside :func:`~edgeghost.training.distill.distill` for the
distilled ones), so a re-run skips what is done and resumes what is partial: an interrupted study continues
where it stopped, and ``--stop-epoch`` gives a cheap first pass whose measured s/epoch plans the rest.

Study folder (``--out``, default ``runs/<student>_w<width>_<dataset>``)::

    study_plan.json            the planned runs (written first; Ray workers check they can see it)
    teachers/<name>/           teachers given as NAME[:WIDTH], trained first with the study's recipe
    baseline/seed<k>/          the student without a teacher
    kd_<teacher>/seed<k>/      KD from one teacher
    ta/seed<k>/                Teacher-Assistant chain: assistant1_<model>/ ... then student/
    ensemble/seed<k>/          KD from the mean logits of all teachers
    dgkd/seed<k>/              densely guided KD: assistant1_<model>/ ... then student/
    gnd_w<w>/seed<k>/          GN-D at the width that matches the student's MACs or parameters (--compare-arch)
    study.md / study.json / study.png

Each run folder is an ordinary training run (``best.pt``, ``last.pt``, ``metrics.jsonl``, ``metrics.png``,
``config.json``) plus ``timing.json`` (wall seconds and epochs trained by the study, summed over resumes).

``study.json`` (the stable description other tools read, e.g. ``edgeghost bench --study``)::

    {"title", "config": TrainConfig, "study": StudyConfig, "machine",
     "runs": [ {"key": "kd_resnet18_w1/seed0", "group": "kd_resnet18_w1", "strategy": "kd", "label": "KD",
                "seed": 0, "model": "ghostnetv3_small", "width": 0.5,
                "teachers": ["resnet18_w1"], "teacher_checkpoints": ["runs/t/best.pt"], "assistants": [],
                "alpha": 0.1, "temperature": 4.0,
                "run_dir": "<study>/kd_resnet18_w1/seed0",          # the student's folder (…/student in chains)
                "best_checkpoint": "<study>/kd_resnet18_w1/seed0/best.pt",
                "best_top1": 91.2, "final_top1": 91.1, "epochs_done": 30, "epochs": 30, "params": 195038,
                "status": "done" | "skipped" | "partial" | "failed" | "pending" (--report-only), "error": null,
                "wall_s": …, "s_per_epoch": …, "host": … }, … ],
     "teachers": [ {"name", "checkpoint", "best_top1", "final_top1", "params", "run_dir", "trained_by_study",
                    "train_samples", "epochs"} ],
     "summary": [ {"group", "strategy", "label", "teachers", "alpha", "temperature", "n", "seeds", "failed", "pending",
                   "final_mean", "final_std", "best_mean", "best_std", "delta_mean", "delta_std",
                   "ci95": [lo, hi], "t", "p", "reading"} ],
     "verdict": [str], "budget": {…}, "failed": [key, …]}

Top-1 is in percent on the configured test images. Statistics use the final (last-epoch) top-1, because
the best epoch is chosen on the test set itself; the best is reported next to it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..errors import EdgeGhostError
from ..fileio import atomic_path, atomic_write_json, atomic_write_text, ensure_dir
from .checkpoint import load_checkpoint
from .config import TrainConfig
from .distill import AUTHORS_KD, DEFAULT_KD, DistillConfig, data_from_checkpoints, distill
from .train import fit_or_skip

STRATEGIES = ("baseline", "kd", "ta", "ensemble", "dgkd", "gnd")
DEFAULT_STRATEGIES = ("baseline", "kd", "ta", "ensemble", "dgkd")
LABELS = {"baseline": "baseline", "kd": "KD", "ta": "TA", "ensemble": "ensemble", "dgkd": "DGKD",
          "gnd": "GN-D", "teacher": "(teacher)"}
# The paper: every distillation strategy lowered converged GN-S top-1 by 0.13 to 1.78 pp.
PAPER_DELTA_PP = (-1.78, -0.13)
PLAN_FILE = "study_plan.json"


@dataclass(frozen=True)
class StudyConfig:
    """What the study compares and where it runs.

    Teachers are checkpoints or ``NAME[:WIDTH]`` models trained first with the study's recipe; assistants are
    checkpoints or ``NAME[:WIDTH]`` models distilled inside each TA/DGKD chain. ``roles`` maps a teacher (its
    table name, e.g. ``resnet18_w1``) to the authors' teacher whose α/T it takes (``resnet50``: α=0.1, T=4;
    everything else α=0.5, T=1); ``alpha``/``temperature`` override every run.
    """

    teachers: tuple[str, ...] = ("resnet8:2.0",)
    assistants: tuple[str, ...] = ()
    alpha: float | None = None
    temperature: float | None = None
    strategies: tuple[str, ...] = DEFAULT_STRATEGIES
    seeds: tuple[int, ...] | None = None  # None: the recipe's seed only
    roles: tuple[tuple[str, str], ...] = ()
    compare_arch: str | None = None  # "macs" or "params": add GN-D at the student's MACs / parameters
    arch_model: str = "ghostnetv3_d"
    # Ray: None = run here one after the other; "local" = start Ray on this machine; "HOST:PORT" = join a cluster.
    ray_address: str | None = None
    cpus_per_run: float = 1.0
    gpus_per_run: float = 0.0
    max_retries: int = 1
    # Write the report from the runs that have finished and train nothing (a study still running elsewhere);
    # unfinished runs are listed as "pending" and left out of the statistics.
    report_only: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class RunSpec:
    """One planned run: a folder below the study root and everything needed to train it anywhere."""

    key: str  # folder below the study root, e.g. "kd_resnet18_w1/seed0"
    group: str  # the key without the seed: runs of one group differ only by seed
    strategy: str  # one of STRATEGIES or "teacher"
    seed: int
    model: str
    width: float
    teachers: tuple[str, ...] = ()  # checkpoint paths
    teacher_names: tuple[str, ...] = ()
    assistants: tuple[str, ...] = ()
    dense: bool = False
    alpha: float | None = None
    temperature: float | None = None

    @property
    def student_dir(self) -> str:
        """The folder of the run's final model (the student of a chain lives in ``student/``)."""
        return f"{self.key}/student" if self.assistants else self.key

    @property
    def stages(self) -> int:
        """Trainings per run: the student plus every assistant the chain trains."""
        return 1 + sum(1 for a in self.assistants if not Path(a).is_file())


# --------------------------------------------------------------------------------------------- planning


def _name(model: str, width: float) -> str:
    return f"{model}_w{width:g}"


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}_{seen[n]}")
    return out


def _kd_setting(study: StudyConfig, teacher_name: str, *, several: bool) -> tuple[float, float]:
    """α, T of a run: the override, else the authors' value for the teacher's role (ensembles/chains: 0.5, 1)."""
    roles = dict(study.roles)
    model = teacher_name.rsplit("_w", 1)[0]
    role = roles.get(teacher_name, roles.get(model, model))
    alpha, temperature = DEFAULT_KD if several else AUTHORS_KD.get(role, DEFAULT_KD)
    return (study.alpha if study.alpha is not None else alpha,
            study.temperature if study.temperature is not None else temperature)


def match_width(reference: tuple[str, float], other: str, *, by: str, num_classes: int = 10, in_chans: int = 3,
                img_size: int = 32) -> dict[str, Any]:
    """The width of ``other`` whose deploy-form MACs (or parameters) come closest to ``reference``'s, both
    counted at the study's input (``in_chans`` × ``img_size``²).

    Widths are searched on a 0.05 grid over the range models build at, by bisection (both counts grow with
    width); a budget below the narrowest width gets the narrowest (the table shows the real counts).
    """
    from ..data import Preprocess
    from ..models import WIDTH_RANGE
    from ..models.profile import model_info
    from .checkpoint import build_model

    if by not in ("macs", "params"):
        raise EdgeGhostError(f"--compare-arch must be macs or params, not {by!r}")
    key = "macs" if by == "macs" else "params_deploy"
    shape = Preprocess(img_size=img_size, in_chans=in_chans)

    def measure(model: str, width: float) -> dict[str, Any]:
        return model_info(build_model(model, width=width, num_classes=num_classes, preprocess=shape), model).to_dict()

    ref = measure(*reference)
    target = ref[key]
    lo, hi = math.ceil(WIDTH_RANGE[0] / 0.05 - 1e-9), math.floor(WIDTH_RANGE[1] / 0.05 + 1e-9)  # width = 0.05·i
    cache: dict[int, dict[str, Any]] = {}

    def at(i: int) -> dict[str, Any]:
        if i not in cache:
            cache[i] = measure(other, round(0.05 * i, 2))
        return cache[i]

    if at(lo)[key] >= target:
        hi = lo
    elif at(hi)[key] <= target:
        lo = hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if at(mid)[key] < target else (lo, mid)
    best = min({lo, hi}, key=lambda i: abs(at(i)[key] - target))
    return {"by": by, "reference": ref, "match": at(best), "width": round(0.05 * best, 2)}


def unavailable(study: StudyConfig) -> dict[str, str]:
    """Requested strategies the study's teachers/assistants cannot run, with the reason (reported, not run)."""
    reasons = {}
    if not study.assistants:
        reasons.update({s: "needs --assistants" for s in ("ta", "dgkd") if s in study.strategies})
    if "ensemble" in study.strategies and len(study.teachers) < 2:
        reasons["ensemble"] = "needs at least two --teachers"
    return reasons


def plan_study(base: TrainConfig, study: StudyConfig, teachers: list[dict[str, Any]],
               arch: dict[str, Any] | None = None) -> list[RunSpec]:
    """Every student run of the study, seed-major (all strategies of the first seed first, so an interrupted
    study already holds complete comparisons); strategies in :func:`unavailable` are left out."""
    seeds = list(study.seeds) if study.seeds else [base.seed]
    names = [t["name"] for t in teachers]
    ckpts = [t["best"] for t in teachers]
    assistants = list(study.assistants)
    assistant_names = [_assistant_name(a) for a in assistants]
    skipped = unavailable(study)
    specs = []
    for seed in seeds:
        common = {"seed": seed, "model": base.model, "width": base.width}
        for strategy in (s for s in study.strategies if s not in skipped):
            if strategy == "baseline":
                specs.append(RunSpec(key=f"baseline/seed{seed}", group="baseline", strategy="baseline", **common))
            elif strategy == "kd":
                for name, ckpt in zip(names, ckpts):
                    a, t = _kd_setting(study, name, several=False)
                    specs.append(RunSpec(key=f"kd_{name}/seed{seed}", group=f"kd_{name}", strategy="kd",
                                         teachers=(ckpt,), teacher_names=(name,), alpha=a, temperature=t, **common))
            elif strategy == "ta":
                a, t = _kd_setting(study, names[0], several=True)
                specs.append(RunSpec(key=f"ta/seed{seed}", group="ta", strategy="ta", teachers=(ckpts[0],),
                                     teacher_names=(names[0], *assistant_names), assistants=tuple(assistants),
                                     alpha=a, temperature=t, **common))
            elif strategy == "ensemble":
                a, t = _kd_setting(study, names[0], several=True)
                specs.append(RunSpec(key=f"ensemble/seed{seed}", group="ensemble", strategy="ensemble",
                                     teachers=tuple(ckpts), teacher_names=tuple(names), alpha=a, temperature=t,
                                     **common))
            elif strategy == "dgkd":
                a, t = _kd_setting(study, names[0], several=True)
                specs.append(RunSpec(key=f"dgkd/seed{seed}", group="dgkd", strategy="dgkd", teachers=(ckpts[0],),
                                     teacher_names=(names[0], *assistant_names), assistants=tuple(assistants),
                                     dense=True, alpha=a, temperature=t, **common))
            elif strategy == "gnd":
                if arch is None:
                    raise EdgeGhostError("the gnd strategy needs --compare-arch macs|params")
                group = f"gnd_w{arch['width']:g}"
                specs.append(RunSpec(key=f"{group}/seed{seed}", group=group, strategy="gnd", seed=seed,
                                     model=study.arch_model, width=arch["width"]))
            else:
                raise EdgeGhostError(f"unknown strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
    return specs


def _assistant_name(spec: str) -> str:
    if Path(spec).is_file():
        ckpt = load_checkpoint(spec)
        return _name(ckpt["model"], ckpt["width"])
    from ..models import parse_model_spec

    return _name(*parse_model_spec(spec, "assistant"))


# --------------------------------------------------------------------------------------------- running


def _metrics_lines(folder: Path) -> int:
    return sum(len(p.read_text().splitlines()) for p in folder.rglob("metrics.jsonl")) if folder.exists() else 0


def execute_run(base: TrainConfig, spec: RunSpec, root: str | Path) -> dict[str, Any]:
    """Train (or skip, or resume) one planned run under ``root`` and return its study row. Raises on failure."""
    root = Path(root)
    folder = root / spec.key
    cfg = dataclasses.replace(base, model=spec.model, width=spec.width, seed=spec.seed, out=str(folder), resume=None)
    epochs_before, started = _metrics_lines(folder), time.time()
    if spec.teachers:
        dcfg = DistillConfig(teachers=spec.teachers, assistants=spec.assistants, alpha=spec.alpha,
                             temperature=spec.temperature, dense=spec.dense)
        result = distill(cfg, dcfg)
    else:
        result = fit_or_skip(cfg)
    wall = time.time() - started
    epochs_run = _metrics_lines(folder) - epochs_before
    timing = _read_json(folder / "timing.json") or {"wall_s": 0.0, "epochs_run": 0}
    if epochs_run > 0:
        timing = {"wall_s": timing["wall_s"] + wall, "epochs_run": timing["epochs_run"] + epochs_run}
        atomic_write_json(folder / "timing.json", timing)
    final = result.get("final") or {}
    complete = result.get("epochs_done", 0) >= base.epochs
    return {
        **_row_head(spec),
        "best_top1": result.get("best_acc"), "final_top1": final.get("test_acc"),
        "epochs_done": result.get("epochs_done"), "epochs": base.epochs, "params": result.get("params"),
        "status": ("skipped" if epochs_run == 0 else "done") if complete else "partial", "error": None,
        "wall_s": round(wall, 2),
        "s_per_epoch": round(timing["wall_s"] / timing["epochs_run"], 3) if timing["epochs_run"] else None,
        "images_per_s": final.get("images_per_s"), "host": platform.node(), "started": started,
    }


def _row_head(spec: RunSpec) -> dict[str, Any]:
    return {
        "key": spec.key, "group": spec.group, "strategy": spec.strategy, "label": LABELS[spec.strategy],
        "seed": spec.seed, "model": spec.model, "width": spec.width, "teachers": list(spec.teacher_names),
        "teacher_checkpoints": list(spec.teachers), "assistants": list(spec.assistants),
        "alpha": spec.alpha, "temperature": spec.temperature, "stages": spec.stages,
    }


def _failed_row(spec: RunSpec, err: BaseException) -> dict[str, Any]:
    cause = getattr(err, "cause", None) or err  # a RayTaskError carries the task's own exception
    text = str(cause).strip().splitlines()
    message = f"{type(cause).__name__}: {text[0] if text else ''}".strip()
    return {**_row_head(spec), "best_top1": None, "final_top1": None, "epochs_done": None, "epochs": None,
            "params": None, "status": "failed", "error": message, "wall_s": None, "s_per_epoch": None,
            "images_per_s": None, "host": None, "started": None}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _is_complete(spec: RunSpec, root: Path) -> bool:
    last = root / spec.student_dir / "last.pt"
    if not last.exists():
        return False
    try:
        ckpt = load_checkpoint(last)
    except EdgeGhostError:
        return False
    return ckpt["epoch"] >= ckpt.get("config", {}).get("epochs", 1 << 30)


def _run_local(base: TrainConfig, specs: list[RunSpec], root: Path, desc: str) -> list[dict[str, Any]]:
    rows = []
    bar = tqdm(specs, desc=desc, unit="run", disable=not base.progress, dynamic_ncols=True)
    for spec in bar:
        bar.set_postfix_str(spec.key)
        try:
            rows.append(execute_run(base, spec, root))
        except Exception as err:  # one failed run is reported; the others still run
            rows.append(_failed_row(spec, err))
            tqdm.write(f"{spec.key}: FAILED: {rows[-1]['error']}")
    return rows


def _ray_task(base: TrainConfig, spec: RunSpec, root: str) -> dict[str, Any]:
    """One run inside a Ray worker. User errors come back as failed rows (retrying cannot help); any other
    exception propagates so that Ray retries the task (``max_retries``), resuming from its ``last.pt``."""
    if not (Path(root) / PLAN_FILE).exists():
        return _failed_row(spec, EdgeGhostError(
            f"the study folder {root} is not visible on {platform.node()}: put it on a filesystem every node "
            "shares (same path), or run the study without --ray"))
    try:
        return execute_run(base, spec, root)
    except EdgeGhostError as err:
        return _failed_row(spec, err)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise EdgeGhostError("--ray needs Ray: pip install 'edgeghost[cluster]'") from None
    return ray


def _run_ray(base: TrainConfig, specs: list[RunSpec], root: Path, study: StudyConfig, desc: str) -> list[dict]:
    """Each run as one Ray task with its own CPUs/GPUs; results in plan order. Runs already complete are
    read here instead of being shipped to the cluster."""
    ray = _import_ray()
    if study.cpus_per_run <= 0 or study.gpus_per_run < 0 or study.max_retries < 0:
        raise EdgeGhostError("need --cpus-per-run > 0, --gpus-per-run >= 0 and --max-retries >= 0")
    rows: dict[str, dict[str, Any]] = {}
    todo = []
    for spec in specs:
        if _is_complete(spec, root):
            rows[spec.key] = _run_local(dataclasses.replace(base, progress=False), [spec], root, desc)[0]
        else:
            todo.append(spec)
    if todo:
        started_here = not ray.is_initialized()
        if started_here:
            address = None if study.ray_address in (None, "local") else study.ray_address
            try:
                ray.init(address=address, include_dashboard=False, logging_level="WARNING")
            except (ConnectionError, RuntimeError, ValueError) as err:
                raise EdgeGhostError(f"cannot reach the Ray cluster at {address}: {err}") from None
        try:
            # Each task gets the CPUs it reserves as torch threads, unless --threads says otherwise.
            threads = base.threads or max(1, int(study.cpus_per_run))
            task_base = dataclasses.replace(base, threads=threads, progress=False)
            remote = ray.remote(_ray_task).options(
                num_cpus=study.cpus_per_run, num_gpus=study.gpus_per_run, max_retries=study.max_retries,
                retry_exceptions=True,
            )
            if base.data_dir:
                task_base = dataclasses.replace(task_base, data_dir=str(Path(base.data_dir).resolve()))
            futures = {remote.remote(task_base, _absolute(spec), str(root.resolve())): spec for spec in todo}
            pending = list(futures)
            bar = tqdm(total=len(specs), initial=len(specs) - len(todo), desc=desc, unit="run",
                       disable=not base.progress, dynamic_ncols=True)
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    spec = futures[ref]
                    try:
                        rows[spec.key] = ray.get(ref)
                    except Exception as err:  # retries exhausted, or the worker died
                        rows[spec.key] = _failed_row(spec, err)
                    if rows[spec.key]["status"] == "failed":
                        tqdm.write(f"{spec.key}: FAILED: {rows[spec.key]['error']}")
                    bar.update()
            bar.close()
        finally:
            if started_here:
                ray.shutdown()
    return [rows[s.key] for s in specs]


def _absolute(spec: RunSpec) -> RunSpec:
    """The spec with checkpoint paths a worker can open whatever its working directory."""
    def fix(paths: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(str(Path(p).resolve()) if Path(p).is_file() else p for p in paths)

    return dataclasses.replace(spec, teachers=fix(spec.teachers), assistants=fix(spec.assistants))


def _pending_row(spec: RunSpec) -> dict[str, Any]:
    return {**_failed_row(spec, EdgeGhostError("not finished")), "status": "pending", "error": None}


def _dispatch(base: TrainConfig, specs: list[RunSpec], root: Path, study: StudyConfig, desc: str) -> list[dict]:
    if study.report_only:  # finished runs are read back (execute_run trains nothing for them), the rest wait
        return [execute_run(base, s, root) if _is_complete(s, root) else _pending_row(s) for s in specs]
    if study.ray_address is None:
        return _run_local(base, specs, root, desc)
    return _run_ray(base, specs, root, study, desc)


def _resolve_teachers(base: TrainConfig, study: StudyConfig, root: Path) -> list[dict[str, Any]]:
    """Checkpoint teachers as they are; ``NAME[:WIDTH]`` teachers trained first (also on Ray) under
    ``teachers/``. A teacher that fails stops the study: every distilled run needs it."""
    from ..models import parse_model_spec

    entries, to_train = [], []
    for spec in study.teachers:
        if Path(spec).is_file():
            ckpt = load_checkpoint(spec)
            trained_with = ckpt.get("config") or {}
            entries.append({"name": _name(ckpt["model"], ckpt["width"]), "best": str(spec),
                            "best_top1": ckpt.get("best_acc"), "final_top1": (ckpt.get("metrics") or {}).get("test_acc"),
                            "params": ckpt.get("params"), "run_dir": str(Path(spec).parent), "checkpoint": str(spec),
                            "trained_by_study": False, "train_samples": trained_with.get("train_samples"),
                            "epochs": trained_with.get("epochs")})
        else:
            model, width = parse_model_spec(spec, "teacher")
            name = _name(model, width)
            run = RunSpec(key=f"teachers/{name}", group=f"teachers/{name}", strategy="teacher", seed=base.seed,
                          model=model, width=width)
            entries.append({"name": name, "spec": run})
            to_train.append(run)
    if to_train:
        trained = {r["key"]: r for r in _dispatch(base, to_train, root, study, desc="teachers")}
        failed = [r for r in trained.values() if r["status"] == "failed"]
        if failed:
            raise EdgeGhostError(f"teacher {failed[0]['key']} failed: {failed[0]['error']}")
        for e in entries:
            if "spec" in e:
                run = e.pop("spec")
                r = trained[run.key]
                folder = root / run.key
                e.update(best=str(folder / "best.pt"), checkpoint=str(folder / "best.pt"), best_top1=r["best_top1"],
                         final_top1=r["final_top1"], params=r["params"], run_dir=str(folder),
                         s_per_epoch=r["s_per_epoch"], trained_by_study=True, train_samples=base.train_samples,
                         epochs=base.epochs)
    for e, name in zip(entries, _unique([e["name"] for e in entries])):
        e["name"] = name
    return entries


def run_study(base: TrainConfig, study: StudyConfig) -> dict[str, Any]:
    """Run every (strategy, seed) into ``base.run_dir()`` and write ``study.{md,json,png}`` there.

    A run that fails is reported (``status: failed``, its error) and the others still run.
    """
    unknown = [s for s in study.strategies if s not in STRATEGIES]
    if unknown:
        raise EdgeGhostError(f"unknown strategy {unknown[0]!r}; choose from {', '.join(STRATEGIES)}")
    strategies = tuple(study.strategies)
    if study.compare_arch and "gnd" not in strategies:
        strategies += ("gnd",)
    if "gnd" in strategies and "baseline" not in strategies:
        strategies = ("baseline", *strategies)  # GN-D is compared with the GN-S baseline runs
    study = dataclasses.replace(study, strategies=strategies)
    distilled = set(strategies) & {"kd", "ta", "ensemble", "dgkd"}
    if distilled and not study.teachers:
        raise EdgeGhostError("the study needs at least one teacher")
    if base.dataset is None:
        base = data_from_checkpoints(base, [t for t in study.teachers if Path(t).is_file()])
        if base.dataset is None:
            base = dataclasses.replace(base, dataset=TrainConfig().dataset)
    root = Path(base.run_dir())
    ensure_dir(root)
    atomic_write_json(root / PLAN_FILE, {"config": base.to_dict(), "study": study.to_dict(), "state": "teachers"})
    teachers = _resolve_teachers(base, study, root) if distilled else []
    arch = None
    if "gnd" in strategies:
        from ..data import SPECS

        cached = _read_json(root / "arch_match.json")
        wanted = {"by": study.compare_arch or "macs", "reference": [base.model, base.width], "other": study.arch_model,
                  "in_chans": base.in_chans or 3, "img_size": base.img_size or 32}
        if cached and cached.get("request") == wanted:
            arch = cached
        else:
            arch = {"request": wanted, **match_width((base.model, base.width), study.arch_model,
                                                      by=wanted["by"],
                                                      num_classes=SPECS[base.dataset].num_classes
                                                      if base.dataset in SPECS else 10,
                                                      in_chans=wanted["in_chans"], img_size=wanted["img_size"])}
            atomic_write_json(root / "arch_match.json", arch)
    specs = plan_study(base, study, teachers, arch)
    atomic_write_json(root / PLAN_FILE, {"config": base.to_dict(), "study": study.to_dict(),
                                         "runs": [dataclasses.asdict(s) for s in specs]})
    rows = _dispatch(base, specs, root, study, desc="study runs")
    # Paths as the user named the study folder (not a worker's absolute view of it).
    for spec, row in zip(specs, rows):
        row["run_dir"] = str(root / spec.student_dir)
        row["best_checkpoint"] = str(root / spec.student_dir / "best.pt")
        row["teacher_checkpoints"] = list(spec.teachers)
    student = _name(base.model, base.width)
    title = f"Distillation study: {student} on {base.dataset}, {base.epochs} epochs"
    return write_report(rows, teachers, root / "study", title=title, base=base, study=study, arch=arch)


def run_sweep(base: TrainConfig, *, teacher: str, alphas: list[float], temperatures: list[float],
              study: StudyConfig | None = None) -> dict[str, Any]:
    """KD from one teacher over a grid of α and T (the paper's unspecified hyperparameters), for every seed of
    ``study`` (default: the recipe's seed), written as ``sweep.{md,json,png}``."""
    study = dataclasses.replace(study or StudyConfig(), teachers=(teacher,), strategies=("baseline",))
    if base.dataset is None:
        base = data_from_checkpoints(base, [teacher] if Path(teacher).is_file() else [])
        if base.dataset is None:
            base = dataclasses.replace(base, dataset=TrainConfig().dataset)
    root = Path(base.run_dir())
    ensure_dir(root)
    atomic_write_json(root / PLAN_FILE, {"config": base.to_dict(), "study": study.to_dict(), "state": "teachers"})
    t = _resolve_teachers(base, study, root)[0]
    specs = []
    for seed in study.seeds or [base.seed]:
        common = {"seed": seed, "model": base.model, "width": base.width}
        specs.append(RunSpec(key=f"baseline/seed{seed}", group="baseline", strategy="baseline", **common))
        for alpha in alphas:
            for temperature in temperatures:
                group = f"kd_a{alpha:g}_T{temperature:g}"
                specs.append(RunSpec(key=f"{group}/seed{seed}", group=group, strategy="kd", teachers=(t["best"],),
                                     teacher_names=(t["name"],), alpha=alpha, temperature=temperature, **common))
    atomic_write_json(root / PLAN_FILE, {"config": base.to_dict(), "study": study.to_dict(),
                                         "runs": [dataclasses.asdict(s) for s in specs]})
    rows = _dispatch(base, specs, root, study, desc="sweep runs")
    for spec, row in zip(specs, rows):
        row["run_dir"], row["best_checkpoint"] = str(root / spec.key), str(root / spec.key / "best.pt")
        row["teacher_checkpoints"] = list(spec.teachers)
    title = f"α/T sweep: {_name(base.model, base.width)} ← {t['name']} on {base.dataset}"
    return write_report(rows, [t], root / "sweep", title=title, base=base, study=study)


# --------------------------------------------------------------------------------------------- statistics


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularized incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-14:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: int) -> float:
    """Two-sided p-value of Student's t with ``df`` degrees of freedom."""
    if math.isinf(t):
        return 0.0
    return betainc(df / 2.0, 0.5, df / (df + t * t))


def t_quantile(q: float, df: int) -> float:
    """The ``q`` quantile (q > 0.5) of Student's t, by bisection on :func:`t_two_sided_p`."""
    target = 2.0 * (1.0 - q)
    lo, hi = 0.0, 1e3
    for _ in range(200):
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if t_two_sided_p(mid, df) > target else (lo, mid)
    return (lo + hi) / 2.0


def paired_t_test(diffs: list[float]) -> dict[str, Any]:
    """Mean, sample std, 95 % CI, t and two-sided p of paired differences (n ≥ 2; otherwise only the mean)."""
    n = len(diffs)
    mean = sum(diffs) / n if n else None
    if n < 2:
        return {"n": n, "mean": mean, "std": None, "ci95": None, "t": None, "p": None}
    std = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    se = std / math.sqrt(n)
    if se == 0.0:
        t = 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
    else:
        t = mean / se
    half = t_quantile(0.975, n - 1) * se
    return {"n": n, "mean": mean, "std": std, "ci95": [mean - half, mean + half], "t": t,
            "p": 1.0 if t == 0.0 else t_two_sided_p(t, n - 1)}


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else None
    return mean, std


def _reading(group: dict[str, Any], *, alpha: float = 0.05) -> str:
    """The result of one group against the baseline, in plain words, against the paper's claim."""
    d, p, ci, n = group["delta_mean"], group["p"], group["ci95"], group["n_paired"]
    if d is None:
        return "no completed runs paired with the baseline"
    if group["strategy"] == "gnd":
        if p is None:
            return f"{d:+.2f} pp on one seed: no test possible"
        if p < alpha:
            who = "GN-S better: agrees with the paper" if d < 0 else "GN-D better: contradicts the paper"
            return f"{who} ({d:+.2f} pp, p = {p:.3g})"
        return f"no significant difference at {n} seeds (p = {p:.2g}, 95 % CI {ci[0]:+.2f} to {ci[1]:+.2f} pp)"
    if p is None:
        return f"{d:+.2f} pp on one seed: no test possible"
    if p < alpha:
        if d < 0:
            return f"significantly lower ({d:+.2f} pp, p = {p:.3g}): the paper's sign"
        return f"significantly higher ({d:+.2f} pp, p = {p:.3g}): the opposite of the paper"
    lo, hi = ci
    paper_lo, paper_hi = PAPER_DELTA_PP
    if lo > paper_hi:
        overlap = "rules out even the paper's smallest drop"
    elif lo > paper_lo:
        overlap = "rules out the paper's largest drops, not its smallest"
    else:
        overlap = "includes the paper's whole range"
    return f"no significant difference at {n} seeds (p = {p:.2g}; 95 % CI {lo:+.2f} to {hi:+.2f} pp {overlap})"


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean ± std per group and the paired (by seed) test against the baseline group, on final top-1."""
    complete = [r for r in rows if r["status"] in ("done", "skipped")]
    baseline = {r["seed"]: r["final_top1"] for r in complete if r["group"] == "baseline"}
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r["group"], []).append(r)
    summary = []
    for group, members in groups.items():
        ok = [r for r in members if r["status"] in ("done", "skipped")]
        final_mean, final_std = _mean_std([r["final_top1"] for r in ok])
        best_mean, best_std = _mean_std([r["best_top1"] for r in ok])
        first = members[0]
        entry = {
            "group": group, "strategy": first["strategy"], "label": first["label"],
            "teachers": first["teachers"], "alpha": first["alpha"], "temperature": first["temperature"],
            "model": first["model"], "width": first["width"], "params": next((r["params"] for r in ok), None),
            "n": len(ok), "seeds": [r["seed"] for r in ok],
            "failed": [r["key"] for r in members if r["status"] == "failed"],
            "pending": [r["key"] for r in members if r["status"] in ("pending", "partial")],
            "final_mean": final_mean, "final_std": final_std, "best_mean": best_mean, "best_std": best_std,
            "delta_mean": None, "delta_std": None, "ci95": None, "t": None, "p": None, "n_paired": 0,
        }
        if group != "baseline":
            diffs = [r["final_top1"] - baseline[r["seed"]] for r in ok if r["seed"] in baseline]
            if diffs:
                test = paired_t_test(diffs)
                entry.update(delta_mean=test["mean"], delta_std=test["std"], ci95=test["ci95"], t=test["t"],
                             p=test["p"], n_paired=test["n"])
            entry["reading"] = _reading(entry)
        else:
            entry["reading"] = "reference"
        summary.append(entry)
    return summary


def _verdict(summary: list[dict[str, Any]], teachers: list[dict[str, Any]]) -> list[str]:
    distilled = [s for s in summary if s["strategy"] in ("kd", "ta", "ensemble", "dgkd") and s["delta_mean"] is not None]
    base = next((s for s in summary if s["group"] == "baseline"), None)
    lines = []
    if distilled:
        tested = [s for s in distilled if s["p"] is not None]
        lower = [s for s in tested if s["p"] < 0.05 and s["delta_mean"] < 0]
        higher = [s for s in tested if s["p"] < 0.05 and s["delta_mean"] > 0]
        deltas = ", ".join(f"{_group_label(s)} {s['delta_mean']:+.2f}" for s in distilled)
        lines.append(f"Δ top-1 vs the baseline (pp, mean over paired seeds): {deltas}.")
        if not tested:
            lines.append("With one seed per strategy no difference can be called significant.")
        elif lower and not higher:
            lines.append(f"{len(lower)} of {len(tested)} strategies lower the student significantly (p < 0.05), "
                         f"as the paper found (−0.13 to −1.78 pp); the others show no significant change.")
        elif higher and not lower:
            lines.append(f"{len(higher)} of {len(tested)} strategies raise the student significantly (p < 0.05): "
                         "the opposite of the paper's finding that distillation lowers converged GN-S.")
        elif higher and lower:
            lines.append(f"Mixed: {len(lower)} strategies significantly lower, {len(higher)} significantly higher.")
        else:
            lines.append(f"No strategy changes the student significantly at {tested[0]['n_paired']} seeds: "
                         "neither the paper's drop nor a gain is shown; the CIs in the table say how large an "
                         "effect is still possible.")
    if base and base["final_mean"] is not None and teachers:
        gaps = ", ".join(f"{t['name']} {t['best_top1'] - base['final_mean']:+.2f}" for t in teachers
                         if t.get("best_top1") is not None)
        lines.append(f"Teachers vs the student baseline (pp): {gaps}.")
    gnd = [s for s in summary if s["strategy"] == "gnd"]
    for s in gnd:
        lines.append(f"Architecture: {_group_label(s)} vs GN-S baseline: {s['reading']}.")
    return lines


def teacher_training(teacher: dict[str, Any]) -> str:
    """How a teacher was trained, as the study's tables say it: the study's own recipe, or a checkpoint's
    images and epochs (a teacher that saw more images than the student brings that data with it)."""
    # Records written before teachers carried their training: only the study's own teachers had s_per_epoch.
    if teacher.get("trained_by_study", "s_per_epoch" in teacher):
        return "the study's images and recipe"
    if "train_samples" not in teacher:
        return "checkpoint"
    images = "all training images" if teacher.get("train_samples") is None else f"{teacher['train_samples']:,} images"
    epochs = "" if teacher.get("epochs") is None else f", {teacher['epochs']} epochs"
    return f"checkpoint: {images}{epochs}"


def _group_label(s: dict[str, Any]) -> str:
    if s["strategy"] == "kd":
        return f"KD({s['teachers'][0]})"
    if s["strategy"] == "gnd":
        return f"GN-D w{s['width']:g}"
    return s["label"]


# --------------------------------------------------------------------------------------------- report


def _budget(rows: list[dict[str, Any]], teachers: list[dict[str, Any]], base: TrainConfig) -> dict[str, Any]:
    """Runs × epochs × measured s/epoch per group, and what the whole study costs at those rates."""
    groups: dict[str, dict[str, Any]] = {}
    for r in rows:
        g = groups.setdefault(r["group"], {"group": r["group"], "runs": 0, "stage_epochs": 0, "rates": [],
                                           "wall_s": 0.0})
        g["runs"] += 1
        g["stage_epochs"] += base.epochs * r["stages"]
        if r["s_per_epoch"]:
            g["rates"].append(r["s_per_epoch"])
        if r["wall_s"] and r["status"] != "skipped":
            g["wall_s"] += r["wall_s"]
    table = []
    for g in groups.values():
        rate = sum(g["rates"]) / len(g["rates"]) if g["rates"] else None
        table.append({"group": g["group"], "runs": g["runs"], "epochs_per_run": base.epochs,
                      "stage_epochs": g["stage_epochs"], "s_per_epoch": rate,
                      "projected_h": rate * g["stage_epochs"] / 3600 if rate else None})
    known = [t["projected_h"] for t in table if t["projected_h"] is not None]
    return {"groups": table, "projected_total_h": sum(known) if known else None,
            "unmeasured_groups": [t["group"] for t in table if t["projected_h"] is None],
            "train_images": base.train_samples, "teachers_s_per_epoch": {t["name"]: t.get("s_per_epoch")
                                                                         for t in teachers}}


def _fmt(v: Any, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def _pm(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "–"
    return f"{mean:.2f} ± {std:.2f}" if std is not None else f"{mean:.2f}"


def write_report(rows: list[dict[str, Any]], teachers: list[dict[str, Any]], stem: Path, *, title: str,
                 base: TrainConfig, study: StudyConfig, arch: dict[str, Any] | None = None) -> dict[str, Any]:
    """``<stem>.md`` (summary, verdict, per-run table, budget), ``.json`` (see the module docstring) and
    ``.png`` (mean ± std bars with the seeds, and the test-top-1 curves), all written atomically."""
    from ..sysinfo import machine_info

    summary = summarize(rows)
    verdict = _verdict(summary, teachers)
    budget = _budget(rows, teachers, base)
    seeds = sorted({r["seed"] for r in rows})
    lines = [f"# {title}", "",
             f"Seeds {', '.join(map(str, seeds))}; top-1 % on {base.test_samples or 'all'} test images; statistics "
             "on the final epoch's top-1 (the best epoch is picked on the test set itself); Δ is paired by seed "
             "against the baseline (two-sided paired t-test).", "",
             "| strategy | teacher(s) | α | T | seeds | final top-1 % (mean ± std) | best top-1 % | Δ final (pp) "
             "| 95 % CI (pp) | p | reading |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in summary:
        ci = "–" if s["ci95"] is None else f"{s['ci95'][0]:+.2f} … {s['ci95'][1]:+.2f}"
        chain = " → " if s["strategy"] in ("ta",) else " + "
        who = chain.join(s["teachers"]) or (f"{s['model']} w{s['width']:g}" if s["strategy"] == "gnd" else "–")
        lines.append(
            f"| {s['label']} | {who} | {_fmt(s['alpha'], 'g')} | {_fmt(s['temperature'], 'g')} | {s['n']} | "
            f"{_pm(s['final_mean'], s['final_std'])} | {_pm(s['best_mean'], s['best_std'])} | "
            f"{_pm(s['delta_mean'], s['delta_std'])} | {ci} | {_fmt(s['p'], '.3g')} | {s['reading']} |")
    if teachers:
        lines += ["", "| teacher | best top-1 % | final top-1 % | params | trained on | checkpoint |",
                  "|---|---|---|---|---|---|"]
        for t in teachers:
            lines.append(f"| {t['name']} | {_fmt(t.get('best_top1'), '.2f')} | {_fmt(t.get('final_top1'), '.2f')} | "
                         f"{_fmt(t.get('params'), ',')} | {teacher_training(t)} | `{t['checkpoint']}` |")
    if arch:
        ref, match = arch["reference"], arch["match"]
        lines += ["", f"Architecture at matched {arch['by']}: {ref['model']} w{ref['width']:g} "
                      f"({ref['params_deploy']:,} deploy params, {ref['macs'] / 1e6:.2f} M MACs) vs {match['model']} "
                      f"w{arch['width']:g} ({match['params_deploy']:,} params, {match['macs'] / 1e6:.2f} M MACs)."]
    lines += ["", "## Verdict", "", *verdict, "", "## Runs", "",
              "| run | seed | final top-1 % | best top-1 % | epochs | status | s/epoch |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        status = r["status"] if r["status"] != "failed" else f"failed: {r['error']}"
        lines.append(f"| {r['group']} | {r['seed']} | {_fmt(r['final_top1'], '.2f')} | {_fmt(r['best_top1'], '.2f')} "
                     f"| {_fmt(r['epochs_done'], 'd')} | {status} | {_fmt(r['s_per_epoch'], '.1f')} |")
    lines += ["", "## Budget (runs × epochs × measured s/epoch)", "",
              "| group | runs | epochs per run | trainings × epochs | s/epoch (measured) | projected h |",
              "|---|---|---|---|---|---|"]
    for g in budget["groups"]:
        lines.append(f"| {g['group']} | {g['runs']} | {g['epochs_per_run']} | {g['stage_epochs']} | "
                     f"{_fmt(g['s_per_epoch'], '.1f')} | {_fmt(g['projected_h'], '.2f')} |")
    total = budget["projected_total_h"]
    lines += ["", f"Projected total for the whole plan: {_fmt(total, '.1f')} h at the measured rates"
              + (f" (not yet measured: {', '.join(budget['unmeasured_groups'])})" if budget["unmeasured_groups"]
                 else "") + f"; train images per epoch: {base.train_samples or 'all'}. TA/DGKD runs train their "
              "assistants too (trainings × epochs counts them).",
              "", f"Schedule for every run: {base.epochs} epochs, batch {base.batch_size}, lr {base.lr:g}, "
                  f"wd {base.weight_decay:g}, warm-up {base.warmup:g}, crop pad {base.crop_pad}, "
                  f"dataset {base.dataset}, threads {base.threads or 'torch default'}."]
    notes = unavailable(study)
    if notes:
        lines += ["", "Not run: " + "; ".join(f"{LABELS[k]} ({v})" for k, v in notes.items()) + "."]
    failed = [r["key"] for r in rows if r["status"] == "failed"]
    report = {"not_run": notes, "title": title, "config": base.to_dict(), "study": study.to_dict(), "machine": machine_info(),
              "runs": rows, "teachers": teachers, "summary": summary, "verdict": verdict, "budget": budget,
              "arch": arch, "failed": failed}
    atomic_write_text(stem.with_suffix(".md"), "\n".join(lines) + "\n")
    atomic_write_json(stem.with_suffix(".json"), report)
    _plot(rows, summary, stem.with_suffix(".png"), title=title)
    return {**report, "markdown": str(stem.with_suffix(".md")), "json": str(stem.with_suffix(".json")),
            "png": str(stem.with_suffix(".png"))}


def _plot(rows: list[dict[str, Any]], summary: list[dict[str, Any]], path: Path, *, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [s for s in summary if s["final_mean"] is not None]
    fig, (ax, ax_curve) = plt.subplots(1, 2, figsize=(max(10, 1.6 * len(shown) + 5), 4.8),
                                       gridspec_kw={"width_ratios": [max(1, len(shown)), 3]})
    for i, s in enumerate(shown):
        color = "tab:gray" if s["group"] == "baseline" else ("tab:green" if s["strategy"] == "gnd" else "tab:blue")
        ax.bar(i, s["final_mean"], yerr=s["final_std"] or 0, color=color, capsize=4, alpha=0.8)
        vals = [r["final_top1"] for r in rows if r["group"] == s["group"] and r["final_top1"] is not None]
        ax.scatter([i] * len(vals), vals, color="black", s=10, zorder=3)
        ax.annotate(f"{s['final_mean']:.2f}", (i, s["final_mean"]), ha="center", va="bottom", fontsize=8,
                    xytext=(0, 3), textcoords="offset points")
    ax.set_xticks(range(len(shown)), [_group_label(s) for s in shown], fontsize=7, rotation=20)
    base = next((s["final_mean"] for s in shown if s["group"] == "baseline"), None)
    if base is not None:
        ax.axhline(base, color="tab:red", linestyle="--", linewidth=1, label="baseline mean")
        ax.legend(fontsize=8)
    vals = [r["final_top1"] for r in rows if r["final_top1"] is not None]
    if vals:
        ax.set_ylim(max(0.0, min(vals) - 3), min(100.0, max(vals) + 2))
    ax.set(ylabel="final top-1 % (mean ± std, dots: seeds)", title=title)
    ax.title.set_fontsize(9)
    # Test top-1 per epoch, mean over the seeds of each group: are the runs converged?
    for s in shown:
        curves = []
        for r in rows:
            if r["group"] == s["group"] and r["status"] not in ("failed", "pending"):
                metrics = Path(r["run_dir"]) / "metrics.jsonl"
                if metrics.exists():
                    curves.append([json.loads(x)["test_acc"] for x in metrics.read_text().splitlines() if x.strip()])
        if curves:
            n = min(len(c) for c in curves)
            ax_curve.plot(range(1, n + 1), [sum(c[i] for c in curves) / len(curves) for i in range(n)],
                          label=_group_label(s), linewidth=2 if s["group"] == "baseline" else 1)
    ax_curve.set(xlabel="epoch", ylabel="test top-1 % (mean over seeds)", title="curves")
    ax_curve.grid(alpha=0.3)
    ax_curve.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
