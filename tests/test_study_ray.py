"""The study on a real local Ray cluster (one for the whole module, started on this machine): two tiny runs
train in parallel as Ray tasks, a run that fails is reported while the others land in the study folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeghost.data.synthetic import write_synthetic_fashion_mnist
from edgeghost.training import TrainConfig, load_checkpoint
from edgeghost.training.study import StudyConfig, run_study

ray = pytest.importorskip("ray", reason="the Ray path needs the optional extra edgeghost[cluster]")


@pytest.fixture(scope="module")
def cluster():
    # Ray replaces 127.0.0.1 by this machine's own address; the cluster is this machine alone.
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING",
             _node_ip_address="127.0.0.1")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def test_runs_in_parallel_and_a_failed_run_is_reported(cluster, tmp_path):
    data = write_synthetic_fashion_mnist(tmp_path / "fm", train=64, test=32)
    root = tmp_path / "study"
    base = TrainConfig(model="resnet8", width=0.5, dataset="fashion_mnist", data_dir=str(data), out=str(root),
                       epochs=1, batch_size=16, train_samples=32, test_samples=16, progress=False)
    # Seed 2's folder holds a damaged last.pt (a node that died mid-copy): that run fails, the others must not.
    (root / "baseline" / "seed2").mkdir(parents=True)
    (root / "baseline" / "seed2" / "last.pt").write_bytes(b"not a checkpoint")
    study = StudyConfig(strategies=("baseline",), seeds=(0, 1, 2), ray_address=cluster, cpus_per_run=1,
                        max_retries=0)
    report = run_study(base, study)
    rows = {r["seed"]: r for r in report["runs"]}
    assert [rows[s]["status"] for s in (0, 1, 2)] == ["done", "done", "failed"]
    assert "corrupt" in rows[2]["error"] and report["failed"] == ["baseline/seed2"]
    for seed in (0, 1):
        ckpt = load_checkpoint(rows[seed]["best_checkpoint"])
        assert Path(rows[seed]["best_checkpoint"]).parent == root / "baseline" / f"seed{seed}"
        assert ckpt["config"]["seed"] == seed and ckpt["config"]["threads"] == 1  # the task's CPUs as threads
    # Two CPUs, one per run: seeds 0 and 1 ran at the same time.
    first, second = sorted((rows[0], rows[1]), key=lambda r: r["started"])
    assert second["started"] < first["started"] + first["wall_s"]
    stored = json.loads((root / "study.json").read_text())
    assert [r["status"] for r in stored["runs"]] == ["done", "done", "failed"]
    assert "failed: " in (root / "study.md").read_text()
    # A re-run ships nothing finished to the cluster: the two good runs are read back, not retrained.
    again = run_study(base, study)
    assert [r["status"] for r in again["runs"]] == ["skipped", "skipped", "failed"]
