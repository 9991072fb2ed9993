"""`edgeghost bench` on the host and in TFLite-Micro, on a real edgeghost export of a real checkpoint.

Data: a synthetic Fashion-MNIST in the real IDX format. The export (GN-S w0.25, int8) is made once per test
session by the ``shared`` fixture in tests/conftest.py and reused by tests/test_rpi4.py.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from edgeghost.cli import main

LATENCY_ARGS = ["--warmup", "1", "--min-time", "0.02", "--min-runs", "3"]


def _rows(path: Path) -> dict[str, dict]:
    return {r["format"]: r for r in json.loads(path.read_text())["rows"]}


def test_host_bench_every_format_one_table(shared: dict[str, Path], tmp_path: Path, capsys) -> None:
    out, json_copy = tmp_path / "out", tmp_path / "copy.json"
    rc = main(["bench", "--checkpoints", str(shared["checkpoint"]), "--exports-dir", str(shared["exports_dir"]),
               "--data-dir", str(shared["data"]), "--eval-samples", "40", *LATENCY_ARGS,
               "--out", str(out), "--json", str(json_copy)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "[bench] exporting" not in captured.err  # the up-to-date export of this checkpoint is reused
    for column in ("Format", "Status", "Size (MB)", "top-1", "ms/im", "FPS", "arena KiB"):
        assert column in captured.out
    assert "untrained weights (ckpt-gns)" in captured.out  # epoch-0 checkpoint, no metrics

    rows = _rows(out / "results.json")
    assert list(rows) == ["torch", "torch_deploy", "onnx", "tflite_fp32", "tflite_int8"]
    assert json.loads(json_copy.read_text()) == json.loads((out / "results.json").read_text())
    for fmt, r in rows.items():
        assert r["status"] == "ok", (fmt, r["error"])
        lat = r["latency"]
        assert lat["runs"] >= 3 and 0 < lat["min_ms"] <= lat["median_ms"] <= lat["p90_ms"]
        assert lat["fps"] == pytest.approx(1000 / lat["median_ms"])
        assert r["eval_samples"] == 40 and r["params"] > 0 and r["macs"] > 0
        assert r["size_mb"] == pytest.approx(Path(r["file"]).stat().st_size / 1e6)
    assert rows["tflite_int8"]["backend"] == "litert" and rows["tflite_int8"]["kernels"] == "xnnpack"

    # Top-1 recomputed independently from the same images: the float formats agree with torch.
    from edgeghost.data import load_split
    from edgeghost.runtime import load_runner

    test = load_split("fashion_mnist", "test", shared["data"]).subset(40)
    for fmt in ("torch", "onnx", "tflite_fp32", "tflite_int8"):
        runner = load_runner(rows[fmt]["file"])
        assert rows[fmt]["top1"] == pytest.approx(float((runner.predict(test.images).argmax(1) == test.labels).mean()))

    with (out / "results.csv").open() as f:
        table = list(csv.DictReader(f))
    assert [r["format"] for r in table] == list(rows) and all(float(r["median_ms"]) > 0 for r in table)
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_failed_format_marks_its_row_and_the_rest_run(shared: dict[str, Path], tmp_path: Path, capsys) -> None:
    broken = tmp_path / "broken_export"
    shutil.copytree(shared["export"], broken)
    (broken / "model_int8.tflite").write_bytes(b"this is not a flatbuffer")
    # A checkpoint whose export cannot calibrate (no train split): its export rows fail, torch still runs.
    no_train = tmp_path / "test_only"
    no_train.mkdir()
    for f in shared["data"].glob("t10k-*"):
        shutil.copy(f, no_train / f.name)
    rc = main(["bench", "--exports", str(broken), "--checkpoints", str(shared["checkpoint"]),
               "--exports-dir", str(tmp_path / "fresh_exports"), "--data-dir", str(no_train),
               "--formats", "torch,onnx,tflite_int8", "--eval-samples", "8", *LATENCY_ARGS,
               "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert rc == 1
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    status = {(r["model"], r["format"]): (r["status"], r["error"] or "") for r in doc["rows"]}
    assert status[("broken_export", "onnx")][0] == "ok"
    assert status[("broken_export", "tflite_int8")][0] == "run failed"
    assert "cannot load" in status[("broken_export", "tflite_int8")][1]
    assert status[("ckpt-gns", "torch")][0] == "ok"
    assert status[("ckpt-gns", "onnx")][0] == "export failed" and "train" in status[("ckpt-gns", "onnx")][1]
    assert "run failed" in captured.out and "export failed" in captured.out


def test_tflm_device_reports_arena_and_matches_litert_reference(shared: dict[str, Path], tmp_path: Path) -> None:
    rc = main(["bench", "--device", "tflm", "--exports", str(shared["export"]), "--data-dir", str(shared["data"]),
               "--eval-samples", "12", *LATENCY_ARGS, "--out", str(tmp_path)])
    assert rc == 0
    (row,) = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert (row["format"], row["status"], row["backend"]) == ("tflite_int8", "ok", "tflm")
    assert row["checks"]["tflm_equals_litert_reference"] is True
    manifest = json.loads((shared["export"] / "manifest.json").read_text())
    assert row["arena_kib"] * 1024 == manifest["tflm"]["arena_measured_bytes"]  # same bisection, same bytes
    assert row["latency"]["median_ms"] > 0

    from edgeghost.data import load_split
    from edgeghost.runtime import load_runner

    test = load_split("fashion_mnist", "test", shared["data"]).subset(12)
    ref = load_runner(shared["export"] / "model_int8.tflite", reference_kernels=True).predict(test.images)
    assert row["top1"] == pytest.approx(float((ref.argmax(1) == test.labels).mean()))


def test_user_model_file_and_argument_errors(shared: dict[str, Path], tmp_path: Path, capsys) -> None:
    own = tmp_path / "someone_elses.tflite"
    shutil.copy(shared["export"] / "model_int8.tflite", own)
    rc = main(["bench", "--model", str(own), *LATENCY_ARGS, "--out", str(tmp_path / "out")])
    assert rc == 0
    (row,) = json.loads((tmp_path / "out" / "results.json").read_text())["rows"]
    assert (row["format"], row["status"], row["top1"]) == ("tflite_int8", "ok", None)  # no --eval-data
    capsys.readouterr()

    for argv, message in (
        (["--device", "tflm", "--formats", "onnx"], "does not run on device tflm"),
        (["--formats", "tflite_int4"], "unknown format"),
        (["--device", "rpi4", "--model", str(own)], "needs --host"),
        (["--model", str(tmp_path / "nope.onnx")], "does not exist"),
        (["--device", "tflm", "--model", str(shared["export"] / "model_fp32.tflite")], "is a tflite_fp32 model"),
    ):
        assert main(["bench", *argv, "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1

