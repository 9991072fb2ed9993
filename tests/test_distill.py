"""Distillation: the KD loss against a hand computation, ensembles, α=1 ≡ plain training, teachers frozen,
the TA/DGKD chain, the dataset taken from the teacher, and the study over seeds with its statistics."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from edgeghost.cli import main
from edgeghost.data.synthetic import write_synthetic_fashion_mnist
from edgeghost.errors import EdgeGhostError
from edgeghost.models import create_model
from edgeghost.models.teachers import TEACHER_MODELS
from edgeghost.training import TrainConfig, fit, load_checkpoint
from edgeghost.training.distill import DistillConfig, DistillLoss, Teacher, distill, kd_loss, load_teacher
from edgeghost.training.study import (
    StudyConfig, match_width, paired_t_test, plan_study, run_study, run_sweep, t_quantile, t_two_sided_p,
    teacher_training,
    unavailable,
)


def _np_kd(s, t, y, alpha, T):
    def log_softmax(z):
        z = z - z.max(1, keepdims=True)
        return z - np.log(np.exp(z).sum(1, keepdims=True))
    ce = -log_softmax(s)[np.arange(len(y)), y].mean()
    p_t = np.exp(log_softmax(t / T))
    kl = (p_t * (np.log(p_t) - log_softmax(s / T))).sum(1).mean()
    return alpha * ce + (1 - alpha) * T * T * kl


def test_kd_loss_matches_a_hand_computation():
    g = torch.Generator().manual_seed(0)
    s = torch.randn(6, 10, generator=g, dtype=torch.float64)
    t = 3 * torch.randn(6, 10, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (6,), generator=g)
    for alpha, T in ((0.1, 4.0), (0.5, 1.0), (0.0, 2.0)):
        got = kd_loss(s.float(), t.float(), y, alpha=alpha, temperature=T).item()
        assert got == pytest.approx(_np_kd(s.numpy(), t.numpy(), y.numpy(), alpha, T), rel=1e-5)
    assert kd_loss(s, s, y, alpha=0.0, temperature=3.0).item() == pytest.approx(0.0, abs=1e-6)  # KL(p‖p) = 0
    assert kd_loss(s, t, y, alpha=1.0, temperature=4.0).item() == pytest.approx(
        torch.nn.functional.cross_entropy(s, y).item(), rel=1e-6)
    # The T² factor: the soft-target gradient keeps its scale as T grows (≈ (s − t)/N for large T).
    grads = []
    for T in (20.0, 40.0):
        x = s.clone().float().requires_grad_(True)
        kd_loss(x, t.float(), y, alpha=0.0, temperature=T).backward()
        grads.append(x.grad.norm().item())
    assert grads[0] == pytest.approx(grads[1], rel=0.05)


def test_ensembles_average_logits_or_probabilities_or_losses():
    g = torch.Generator().manual_seed(1)
    s = torch.randn(4, 5, generator=g)
    teachers = [torch.randn(4, 5, generator=g) for _ in range(3)]
    y = torch.randint(0, 5, (4,), generator=g)
    mean_logits = kd_loss(s, torch.stack(teachers).mean(0), y, alpha=0.3, temperature=2.0)
    got = kd_loss(s, teachers, y, alpha=0.3, temperature=2.0, combine="logits")
    assert got.item() == pytest.approx(mean_logits.item())
    p = torch.stack([torch.softmax(t / 2.0, 1) for t in teachers]).mean(0)
    kl = (p * (p.log() - torch.log_softmax(s / 2.0, 1))).sum(1).mean()
    expected = 0.3 * torch.nn.functional.cross_entropy(s, y) + 0.7 * 4.0 * kl
    got = kd_loss(s, teachers, y, alpha=0.3, temperature=2.0, combine="probs")
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    dense = np.mean([kd_loss(s, t, y, alpha=0.3, temperature=2.0).item() for t in teachers])
    assert kd_loss(s, teachers, y, alpha=0.3, temperature=2.0, combine="dense").item() == pytest.approx(dense, rel=1e-5)
    with pytest.raises(EdgeGhostError, match="combine"):
        kd_loss(s, teachers, y, alpha=0.3, temperature=2.0, combine="max")


@pytest.mark.parametrize("name", TEACHER_MODELS)
def test_teachers_run_at_32_pixels(name):
    # On the meta device nothing is allocated or computed, but every layer still checks its shapes: an
    # unadapted inception_v3, for one, fails here at 32 px.
    with torch.device("meta"):
        model = create_model(name, num_classes=7).eval()
        assert model(torch.empty(2, 3, 32, 32)).shape == (2, 7)
    assert (model.width, model.num_classes, model.in_chans) == (1.0, 7, 3)
    with pytest.raises(EdgeGhostError, match="width 1.0"):
        create_model(name, width=0.5)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_synthetic_fashion_mnist(tmp_path_factory.mktemp("fm"), train=64, test=32)


def _cfg(data: Path, out: Path, **kw) -> TrainConfig:
    values = dict(model="resnet8", width=0.25, dataset="fashion_mnist", data_dir=str(data), out=str(out), epochs=1,
                  batch_size=16, train_samples=32, test_samples=16, threads=1, progress=False)
    values.update(kw)
    return TrainConfig(**values)


@pytest.fixture(scope="module")
def teacher(data, tmp_path_factory) -> str:
    return fit(_cfg(data, tmp_path_factory.mktemp("t") / "teacher", width=0.5))["best"]


def test_alpha_one_is_plain_training_and_teachers_stay_frozen(data, teacher, tmp_path):
    plain = fit(_cfg(data, tmp_path / "plain"))
    before = {k: v.clone() for k, v in load_checkpoint(teacher)["state_dict"].items()}
    kd = distill(_cfg(data, tmp_path / "kd"), DistillConfig(teachers=(teacher,), alpha=1.0, temperature=4.0))
    a, b = load_checkpoint(plain["last"])["state_dict"], load_checkpoint(kd["last"])["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    soft = distill(_cfg(data, tmp_path / "soft"), DistillConfig(teachers=(teacher,), alpha=0.5, temperature=4.0))
    c = load_checkpoint(soft["last"])["state_dict"]
    assert any(not torch.equal(a[k], c[k]) for k in a)  # the teacher's signal does change training
    assert all(torch.equal(before[k], v) for k, v in load_checkpoint(teacher)["state_dict"].items())
    assert load_checkpoint(soft["last"])["distill"]["teachers"] == ["resnet8_w0.5"]


def test_teacher_hook_is_eval_mode_no_grad_and_resizes(teacher):
    t = load_teacher(teacher, resize=48, num_classes=10)
    seen = []
    t.model.register_forward_pre_hook(lambda m, inp: seen.append(inp[0].shape))
    hook = DistillLoss([t], alpha=0.5, temperature=2.0).train()
    assert not t.training and not t.model.training
    logits = torch.randn(3, 10, requires_grad=True)
    loss = hook(logits, torch.tensor([0, 1, 2]), torch.randint(0, 256, (3, 32, 32, 3), dtype=torch.uint8))
    loss.backward()
    assert seen == [(3, 3, 48, 48)] and all(p.grad is None for p in t.parameters())
    with pytest.raises(EdgeGhostError, match="100 classes|predicts 10 classes"):
        load_teacher(teacher, num_classes=100)


def test_plain_weights_file_teacher(tmp_path):
    path = tmp_path / "r8.pth"
    torch.save(create_model("resnet8", width=1.0).state_dict(), path)
    t = load_teacher(f"resnet8={path}", num_classes=10, resize=None)
    assert isinstance(t, Teacher) and t.name == "resnet8"
    with pytest.raises(EdgeGhostError, match="do not fit"):
        load_teacher(f"resnet18={path}", num_classes=10)


def test_distill_cli_chain_keeps_every_stage(data, teacher, tmp_path, capsys):
    out = tmp_path / "chain"
    args = ["distill", "--teacher", teacher, "--assistant", "resnet8:0.25", "--student", "resnet8", "--width", "0.25",
            "--dataset", "fashion_mnist", "--data-dir", str(data), "--epochs", "1", "--batch-size", "16",
            "--train-samples", "32", "--test-samples", "16", "--threads", "1", "--no-progress", "--out", str(out)]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [Path(s["run_dir"]).name for s in result["stages"]] == ["assistant1_resnet8_w0.25", "student"]
    assert (out / "assistant1_resnet8_w0.25" / "best.pt").exists() and (out / "student" / "best.pt").exists()
    student = load_checkpoint(out / "student" / "last.pt")
    assert student["distill"]["teachers"] == ["resnet8_w0.25"]  # the chain: the student learns from the assistant
    assert main(args) == 0  # a re-run skips finished stages
    assert load_checkpoint(out / "student" / "last.pt")["rng"]["torch"].equal(student["rng"]["torch"])


def test_distill_takes_the_dataset_from_the_teacher(data, teacher, tmp_path, capsys):
    args = ["distill", "--teacher", teacher, "--student", "resnet8", "--width", "0.25", "--data-dir", str(data),
            "--epochs", "1", "--batch-size", "16", "--train-samples", "32", "--test-samples", "16", "--threads", "1",
            "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "kd")]) == 0  # no --dataset: the teacher's (fashion_mnist)
    assert load_checkpoint(tmp_path / "kd" / "best.pt")["dataset"] == "fashion_mnist"
    capsys.readouterr()
    assert main([*args, "--dataset", "cifar10", "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "--dataset cifar10, but teacher" in err and "fashion_mnist" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "bad").exists()  # nothing half-written


def test_paired_t_test_matches_closed_forms():
    for t in (0.3, 1.0, 2.5, 9.0):
        assert t_two_sided_p(t, 1) == pytest.approx(1 - 2 / np.pi * np.arctan(t), rel=1e-9)
        assert t_two_sided_p(t, 2) == pytest.approx(1 - t / np.sqrt(2 + t * t), rel=1e-9)
        assert t_two_sided_p(t, 4) == pytest.approx(  # df = 4 closed form
            1 - (t / np.sqrt(4 + t * t)) * (1 + 2 / (4 + t * t)), rel=1e-9)
    assert t_quantile(0.975, 2) == pytest.approx(4.302652729911275, rel=1e-9)
    assert t_quantile(0.975, 1) == pytest.approx(12.706204736174705, rel=1e-9)
    diffs = [-0.5, -0.2, -0.35]
    test = paired_t_test(diffs)
    mean, sd = np.mean(diffs), np.std(diffs, ddof=1)
    assert test["t"] == pytest.approx(mean / (sd / np.sqrt(3)))
    assert test["p"] == pytest.approx(1 - abs(test["t"]) / np.sqrt(2 + test["t"] ** 2))
    assert test["ci95"] == pytest.approx([mean - 4.302652729911275 * sd / np.sqrt(3),
                                          mean + 4.302652729911275 * sd / np.sqrt(3)])
    assert paired_t_test([0.4])["p"] is None and paired_t_test([0.0, 0.0])["p"] == 1.0


def test_plan_uses_the_authors_kd_settings_per_role(data):
    base = _cfg(data, "unused")
    teachers = [{"name": "resnet18_w1", "best": "r18.pt"}, {"name": "resnet8_w2", "best": "r8.pt"}]
    study = StudyConfig(teachers=("r18.pt", "r8.pt"), assistants=("resnet8:1.0",), seeds=(0, 1),
                        roles=(("resnet18_w1", "resnet50"),))
    specs = plan_study(base, study, teachers)
    got = {(s.key, s.alpha, s.temperature) for s in specs if s.seed == 1}
    assert got == {("baseline/seed1", None, None), ("kd_resnet18_w1/seed1", 0.1, 4.0), ("kd_resnet8_w2/seed1", 0.5, 1.0),
                   ("ta/seed1", 0.5, 1.0), ("ensemble/seed1", 0.5, 1.0), ("dgkd/seed1", 0.5, 1.0)}
    assert [s.seed for s in specs] == [0] * 6 + [1] * 6  # seed-major: complete comparisons first
    ta = next(s for s in specs if s.group == "ta")
    assert ta.teacher_names == ("resnet18_w1", "resnet8_w1") and ta.student_dir == "ta/seed0/student"
    override = plan_study(base, dataclasses.replace(study, alpha=0.9), teachers)
    assert {s.alpha for s in override if s.strategy != "baseline"} == {0.9}
    one = dataclasses.replace(study, teachers=("r18.pt",), assistants=())
    assert [s.group for s in plan_study(base, one, teachers[:1]) if s.seed == 0] == ["baseline", "kd_resnet18_w1"]
    assert unavailable(one) == {"ta": "needs --assistants", "dgkd": "needs --assistants",
                                "ensemble": "needs at least two --teachers"}


def test_match_width_finds_the_nearest_budget():
    match = match_width(("resnet8", 0.5), "resnet8", by="macs")
    assert match["width"] == 0.5 and match["match"]["macs"] == match["reference"]["macs"]
    wider = match_width(("resnet8", 0.5), "resnet8", by="params")
    assert wider["width"] == 0.5
    grey = match_width(("resnet8", 0.5), "resnet8", by="macs", in_chans=1)  # counted at the study's input
    assert grey["reference"]["input_shape"][1] == 1 and grey["reference"]["macs"] < match["reference"]["macs"]


def test_study_over_seeds_writes_statistics_and_study_json(data, teacher, tmp_path):
    base = _cfg(data, tmp_path / "study")
    # GN-D's role taken by resnet8 so the test stays fast: at matched parameters it is the baseline model itself.
    # (The TA chain is the CLI chain test's; leaving it out here keeps this test short.)
    study = StudyConfig(teachers=(teacher, "resnet8:0.25"), assistants=("resnet8:0.25",), seeds=(0, 1),
                        strategies=("baseline", "kd", "ensemble", "dgkd"), compare_arch="params",
                        arch_model="resnet8")
    report = run_study(base, study)
    runs = report["runs"]
    assert [r["group"] for r in runs[:6]] == ["baseline", "kd_resnet8_w0.5", "kd_resnet8_w0.25", "ensemble", "dgkd",
                                              "gnd_w0.25"]
    assert len(runs) == 12 and {r["status"] for r in runs} == {"done"} and not report["failed"]
    for r in runs:
        assert Path(r["best_checkpoint"]).is_file() and r["final_top1"] is not None and r["s_per_epoch"] > 0
        assert load_checkpoint(r["best_checkpoint"])["config"]["seed"] == r["seed"]
    dgkd_run = next(r for r in runs if r["group"] == "dgkd")
    assert dgkd_run["run_dir"].endswith("dgkd/seed0/student")
    assert dgkd_run["teachers"] == ["resnet8_w0.5", "resnet8_w0.25"] and dgkd_run["stages"] == 2
    dgkd = load_checkpoint(tmp_path / "study" / "dgkd" / "seed1" / "student" / "last.pt")["distill"]
    assert dgkd["teachers"] == ["resnet8_w0.5", "resnet8_w0.25"] and dgkd["combine"] == "dense"
    # Statistics: mean ± std over the seeds and the paired difference to the baseline, by seed.
    summary = {s["group"]: s for s in report["summary"]}
    base_acc = {r["seed"]: r["final_top1"] for r in runs if r["group"] == "baseline"}
    kd = [r for r in runs if r["group"] == "kd_resnet8_w0.5"]
    diffs = [r["final_top1"] - base_acc[r["seed"]] for r in kd]
    assert summary["kd_resnet8_w0.5"]["delta_mean"] == pytest.approx(np.mean(diffs))
    assert summary["kd_resnet8_w0.5"]["final_std"] == pytest.approx(np.std([r["final_top1"] for r in kd], ddof=1))
    assert summary["baseline"]["n"] == 2 and summary["kd_resnet8_w0.5"]["p"] == paired_t_test(diffs)["p"]
    # The same model, seed and schedule trains bit-identically: Δ is exactly 0 and not significant.
    assert summary["gnd_w0.25"]["delta_mean"] == 0.0 and summary["gnd_w0.25"]["p"] == 1.0
    stored = json.loads(Path(report["json"]).read_text())
    assert [r["key"] for r in stored["runs"]] == [r["key"] for r in runs] and stored["verdict"]
    # Each teacher says how it was trained: the checkpoint its own images and epochs, the study's its recipe.
    given, trained = stored["teachers"]
    assert given["trained_by_study"] is False and given["epochs"] == load_checkpoint(teacher)["config"]["epochs"]
    assert trained["trained_by_study"] is True and trained["epochs"] == base.epochs
    assert teacher_training(trained) == "the study's images and recipe"
    assert teacher_training(given).startswith("checkpoint: ") and f"{given['epochs']} epochs" in teacher_training(given)
    md = Path(report["markdown"]).read_text()
    assert "## Verdict" in md and "## Budget (runs × epochs × measured s/epoch)" in md and "| KD | resnet8_w0.5 |" in md
    assert Path(report["png"]).stat().st_size > 1000
    again = run_study(base, study)  # every run is complete: nothing is retrained
    assert {r["status"] for r in again["runs"]} == {"skipped"}
    assert [r["final_top1"] for r in again["runs"]] == [r["final_top1"] for r in runs]
    # Baseline runs copied into another study are reused only under the same recipe.
    shutil.copytree(tmp_path / "study" / "baseline", tmp_path / "shared" / "baseline")
    baseline_only = StudyConfig(seeds=(0, 1), strategies=("baseline",))
    shared = run_study(_cfg(data, tmp_path / "shared"), baseline_only)
    assert [r["final_top1"] for r in shared["runs"]] == [base_acc[0], base_acc[1]]
    assert {r["status"] for r in shared["runs"]} == {"skipped"}
    other = run_study(_cfg(data, tmp_path / "shared", lr=0.2), baseline_only)
    assert {r["status"] for r in other["runs"]} == {"failed"} and other["failed"]
    assert "holds a different run (lr differ)" in other["runs"][0]["error"]
    # --report-only with a seed not trained yet: its runs are pending, nothing trains, the statistics are the
    # finished seeds' own.
    partial = run_study(base, dataclasses.replace(study, seeds=(0, 1, 2), report_only=True))
    by_status = {s: [r for r in partial["runs"] if r["status"] == s] for s in ("skipped", "pending")}
    assert len(by_status["skipped"]) == 12 and {r["seed"] for r in by_status["pending"]} == {2}
    assert not (tmp_path / "study" / "baseline" / "seed2").exists() and not partial["failed"]
    kd_partial = next(s for s in partial["summary"] if s["group"] == "kd_resnet8_w0.5")
    assert kd_partial["n"] == 2 and kd_partial["delta_mean"] == pytest.approx(np.mean(diffs))
    assert kd_partial["pending"] == ["kd_resnet8_w0.5/seed2"]
    assert "| baseline | 2 | – | – | – | pending |" in Path(partial["markdown"]).read_text()


def test_sweep_writes_its_own_table(data, teacher, tmp_path):
    report = run_sweep(_cfg(data, tmp_path / "sweep"), teacher=teacher, alphas=[0.1, 0.9], temperatures=[4.0])
    assert [(r["group"], r["alpha"], r["temperature"]) for r in report["runs"]] == [
        ("baseline", None, None), ("kd_a0.1_T4", 0.1, 4.0), ("kd_a0.9_T4", 0.9, 4.0)]
    md = Path(report["markdown"])
    assert md.name == "sweep.md" and "| KD | resnet8_w0.5 | 0.9 | 4 | 1 |" in md.read_text()
