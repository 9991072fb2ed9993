"""`edgeghost bench` on the host and in TFLite-Micro, on a real edgeghost export of a real checkpoint.

Data: a synthetic Fashion-MNIST in the real IDX format. The export (GN-S w0.25, int8) is made once per test
session by the ``shared`` fixture in tests/conftest.py and reused by tests/test_rpi4.py.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
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
    for column in ("Format", "Status", "Size (MB)", "top-1 %", "ms/im", "FPS", "arena KiB"):
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

    # Top-1 in percent, recomputed independently from the same images: torch itself for the checkpoint, the
    # runtimes for the exported files.
    import torch

    from edgeghost.data import load_split
    from edgeghost.runtime import load_runner
    from edgeghost.training.checkpoint import load_checkpoint, model_from_checkpoint

    test = load_split("fashion_mnist", "test", shared["data"]).subset(40)
    ckpt = load_checkpoint(shared["checkpoint"])
    x = torch.from_numpy(test.images).permute(0, 3, 1, 2).float() / 255.0
    x = (x - torch.tensor(ckpt["mean"]).view(1, -1, 1, 1)) / torch.tensor(ckpt["std"]).view(1, -1, 1, 1)
    with torch.no_grad():
        torch_top1 = 100.0 * float((model_from_checkpoint(ckpt).eval()(x).argmax(1).numpy() == test.labels).mean())
    assert rows["torch"]["top1_pct"] == pytest.approx(torch_top1)
    for fmt in ("onnx", "tflite_fp32", "tflite_int8"):
        runner = load_runner(rows[fmt]["file"])
        expected = 100.0 * float((runner.predict(test.images).argmax(1) == test.labels).mean())
        assert rows[fmt]["top1_pct"] == pytest.approx(expected)

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


def test_tflm_device_reports_arena_and_explains_the_litert_reference_check(shared: dict[str, Path], tmp_path: Path,
                                                                          capsys) -> None:
    rc = main(["bench", "--device", "tflm", "--exports", str(shared["export"]), "--data-dir", str(shared["data"]),
               "--eval-samples", "12", *LATENCY_ARGS, "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0
    (row,) = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert (row["format"], row["status"], row["backend"], row["eval_samples"]) == ("tflite_int8", "ok", "tflm", 12)
    assert row["latency"]["median_ms"] > 0

    import numpy as np

    from edgeghost.data import load_split
    from edgeghost.errors import EdgeGhostError
    from edgeghost.runtime import load_runner
    from edgeghost.runtime.tflm import tflm_invoke

    model = shared["export"] / "model_int8.tflite"
    test = load_split("fashion_mnist", "test", shared["data"]).subset(12)
    q = (test.images.astype(np.int16) - 128).astype(np.int8)  # the int8 contract: q = pixel - 128
    # The reported arena runs the model in TFLM; one byte less does not.
    arena = int(round(row["arena_kib"] * 1024))
    tflm = tflm_invoke(model, q, arena_size=arena)
    with pytest.raises(EdgeGhostError):
        tflm_invoke(model, q[:1], arena_size=arena - 1)
    assert row["top1_pct"] == pytest.approx(100.0 * float((tflm.argmax(1) == test.labels).mean()))
    # The comparison with LiteRT's reference kernels, counted here independently, and said in words.
    ref = load_runner(model, reference_kernels=True).run_raw(q)
    per_image = np.abs(tflm.astype(int) - ref.astype(int)).max(axis=1)
    checks = row["checks"]
    assert checks["tflm_vs_litert_reference_max_lsb"] == per_image.max() <= checks[
        "tflm_vs_litert_reference_tolerance_lsb"]
    assert checks["tflm_vs_litert_reference_differing_inputs"] == int((per_image > 0).sum())
    assert "= False" not in out and "= True" not in out
    assert "TFLM outputs" in out and "LiteRT's reference kernels" in out


def test_user_model_file_and_argument_errors(shared: dict[str, Path], tmp_path: Path, capsys) -> None:
    own = tmp_path / "someone_elses.tflite"
    shutil.copy(shared["export"] / "model_int8.tflite", own)
    rc = main(["bench", "--model", str(own), *LATENCY_ARGS, "--out", str(tmp_path / "out")])
    assert rc == 0
    (row,) = json.loads((tmp_path / "out" / "results.json").read_text())["rows"]
    assert (row["format"], row["status"], row["top1_pct"]) == ("tflite_int8", "ok", None)  # no --eval-data
    assert row["note"] == "no eval data (pass --eval-data)"
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



# --- any model TFLite-Micro runs --------------------------------------------------------------------------------


def _litert_rejects(src: Path, dst: Path) -> Path:
    """``src`` with one per-channel bias tensor's ``quantized_dimension`` set to 1 (out of range for its rank):
    LiteRT's loader refuses the file, TFLite-Micro ignores the field (its kernels take the bias scale from the
    input and weight scales) and runs it exactly as before."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    buf = src.read_bytes()
    model = schema.ModelT.InitFromPackedBuf(buf, 0)
    bias = next(t for t in model.subgraphs[0].tensors
                if t.quantization is not None and t.quantization.scale is not None
                and len(t.quantization.scale) > 1 and len(t.shape) == 1)
    bias.quantization.quantizedDimension = 1
    builder = flatbuffers.Builder(len(buf) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    dst.write_bytes(bytes(builder.Output()))
    return dst


def _feature_model(path: Path, *, n_in: int = 16, n_out: int = 4) -> Path:
    """An int8 model that takes no image: one FULLY_CONNECTED on a (1, n_in) feature vector, written with the
    .tflite schema's own object API."""
    import flatbuffers
    import numpy as np
    from ai_edge_litert import schema_py_generated as s

    rng = np.random.default_rng(0)
    code = s.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = s.BuiltinOperator.FULLY_CONNECTED
    code.version = 4

    def buffer(data: np.ndarray | None = None) -> s.BufferT:
        b = s.BufferT()
        b.data = None if data is None else np.frombuffer(data.tobytes(), np.uint8)
        return b

    def tensor(name: str, shape: tuple[int, ...], ttype: int, buf: int, scale: float, zp: int) -> s.TensorT:
        t = s.TensorT()
        t.name, t.shape, t.type, t.buffer = name, list(shape), ttype, buf
        t.quantization = s.QuantizationParametersT()
        t.quantization.scale, t.quantization.zeroPoint = [scale], [zp]
        return t

    graph = s.SubGraphT()
    graph.tensors = [tensor("features", (1, n_in), s.TensorType.INT8, 1, 0.05, 3),
                     tensor("weights", (n_out, n_in), s.TensorType.INT8, 2, 0.01, 0),
                     tensor("bias", (n_out,), s.TensorType.INT32, 3, 0.0005, 0),
                     tensor("scores", (1, n_out), s.TensorType.INT8, 4, 0.1, -5)]
    op = s.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0, 1, 2], [3]
    op.builtinOptionsType, op.builtinOptions = s.BuiltinOptions.FullyConnectedOptions, s.FullyConnectedOptionsT()
    graph.operators, graph.inputs, graph.outputs = [op], [0], [3]
    model = s.ModelT()
    model.version, model.operatorCodes, model.subgraphs = 3, [code], [graph]
    model.buffers = [buffer(), buffer(), buffer(rng.integers(-127, 128, (n_out, n_in), dtype=np.int8)),
                     buffer(rng.integers(-500, 500, n_out).astype(np.int32)), buffer()]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))
    return path


def test_tflm_benches_models_litert_refuses_and_models_without_images(shared: dict[str, Path], tmp_path: Path,
                                                                       capsys) -> None:
    import numpy as np

    from edgeghost.data import load_split
    from edgeghost.errors import EdgeGhostError
    from edgeghost.runtime import load_runner
    from edgeghost.runtime.tflm import tflm_invoke

    original = shared["export"] / "model_int8.tflite"
    strict = _litert_rejects(original, tmp_path / "third_party.tflite")
    with pytest.raises(EdgeGhostError, match="quantized_dimension must be in range"):
        load_runner(strict)  # what bench used to open every model with
    features = _feature_model(tmp_path / "keyword_features.tflite")
    rc = main(["bench", "--device", "tflm", "--model", str(strict), str(features), "--eval-data", "fashion_mnist",
               "--data-dir", str(shared["data"]), "--eval-samples", "10", *LATENCY_ARGS, "--out", str(tmp_path / "o")])
    out = capsys.readouterr().out
    assert rc == 0
    rows = {r["model"]: r for r in json.loads((tmp_path / "o" / "results.json").read_text())["rows"]}
    image, vector = rows["third_party.tflite"], rows["keyword_features.tflite"]
    assert image["status"] == vector["status"] == "ok"
    # Top-1 of the refused file equals the top-1 of the original file's TFLM outputs (the field is ignored).
    test = load_split("fashion_mnist", "test", shared["data"]).subset(10)
    q = (test.images.astype(np.int16) - 128).astype(np.int8)
    expected = 100.0 * float((tflm_invoke(original, q).argmax(1) == test.labels).mean())
    assert image["top1_pct"] == pytest.approx(expected) and image["eval_samples"] == 10
    assert "not compared" in image["checks"]["tflm_vs_litert_reference"] and "not compared" in out
    # The feature model: latency and arena, no top-1, and the reason in the row and on the console.
    assert vector["top1_pct"] is None and vector["input_shape"] == [1, 16]
    assert "not an image classifier" in vector["note"] and "not an image classifier" in out
    assert vector["latency"]["runs"] >= 3 and vector["arena_kib"] > 0
    tflm_invoke(features, np.zeros((1, 16), np.int8), arena_size=int(round(vector["arena_kib"] * 1024)))
    assert vector["checks"]["tflm_vs_litert_reference_max_lsb"] <= vector["checks"][
        "tflm_vs_litert_reference_tolerance_lsb"]


# --- results folders and studies --------------------------------------------------------------------------------


def test_results_are_never_replaced_silently(tmp_path: Path, monkeypatch, capsys) -> None:
    features = _feature_model(tmp_path / "f.tflite")
    monkeypatch.chdir(tmp_path)
    args = ["bench", "--model", str(features), *LATENCY_ARGS]
    assert main(args) == 0 and main(args) == 0
    runs = sorted(p for p in (tmp_path / "bench").iterdir())
    assert len(runs) == 2 and all(p.name.startswith("host-") and (p / "results.json").is_file() for p in runs)
    capsys.readouterr()
    first = (runs[0] / "results.json").read_text()
    assert main([*args, "--out", str(runs[0])]) == 2
    err = capsys.readouterr().err.strip()
    assert "already holds bench results" in err and "--force" in err and len(err.splitlines()) == 1
    assert (runs[0] / "results.json").read_text() == first
    assert main([*args, "--out", str(runs[0]), "--force"]) == 0
    assert (runs[0] / "results.json").read_text() != first  # a new run: new timings and time stamp


def test_study_folder_benches_baseline_and_every_variant(shared: dict[str, Path], tmp_path: Path, capsys) -> None:
    from edgeghost.bench import study_checkpoints

    study = tmp_path / "study"
    for run in ("baseline/seed0", "kd_resnet8_w2/seed0", "kd_resnet8_w2/seed1", "failed/seed0", "teacher_resnet8_w2",
                "dgkd/seed0"):
        (study / run).mkdir(parents=True)
        shutil.copy(shared["checkpoint"], study / run / "best.pt")
    runs = [{"key": "baseline/seed0", "label": "baseline", "strategy": "baseline", "teachers": [], "seed": 0,
             "run_dir": str(study / "baseline/seed0"), "best_checkpoint": str(study / "baseline/seed0/best.pt"),
             "status": "done"},
            *({"key": f"kd_resnet8_w2/seed{k}", "label": "KD", "strategy": "kd", "teachers": ["resnet8_w2"],
               "seed": k, "run_dir": str(study / f"kd_resnet8_w2/seed{k}"), "status": "done"} for k in (0, 1)),
            {"key": "failed/seed0", "label": "ensemble", "strategy": "ensemble", "seed": 0, "status": "failed",
             "run_dir": str(study / "failed/seed0")},
            # still training (`--report-only` lists it): its best.pt so far is not a result
            {"key": "dgkd/seed0", "label": "DGKD", "strategy": "dgkd", "seed": 0, "status": "pending",
             "run_dir": str(study / "dgkd/seed0")}]
    (study / "study.json").write_text(json.dumps({"title": "t", "runs": runs, "teachers": [
        {"name": "resnet8_w2", "checkpoint": str(study / "teacher_resnet8_w2/best.pt")}]}))
    common = ["--formats", "torch", "--data-dir", str(shared["data"]), "--eval-samples", "8", *LATENCY_ARGS]
    assert main(["bench", "--study", str(study), *common, "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    doc = json.loads((tmp_path / "a" / "results.json").read_text())
    # Teachers, failed and unfinished runs are not variants; one row per seed.
    assert [r["model"] for r in doc["rows"]] == ["baseline seed 0", "KD (resnet8_w2) seed 0", "KD (resnet8_w2) seed 1"]
    assert all(r["status"] == "ok" and r["top1_pct"] is not None for r in doc["rows"])
    assert "KD (resnet8_w2) seed 1" in out
    # An older report (rows with strategy/run), then none at all: every run folder's best.pt by its folder.
    rows = [{"strategy": "(teacher)", "run": str(study / "teacher_resnet8_w2")},
            {"strategy": "baseline", "teachers": "", "run": str(study / "baseline/seed0")}]
    (study / "study.json").write_text(json.dumps({"rows": rows}))
    assert [label for label, _ in study_checkpoints(study)] == ["baseline"]
    (study / "study.json").unlink()
    assert [label for label, _ in study_checkpoints(study)] == [
        "baseline/seed0", "dgkd/seed0", "failed/seed0", "kd_resnet8_w2/seed0", "kd_resnet8_w2/seed1",
        "teacher_resnet8_w2"]


def test_reparam_latency_benchmark_smoke_run(tmp_path: Path) -> None:
    """benchmarks/reparam_latency.py at tiny size: it runs, writes its JSON with machine and command, and its
    goal is "not measured" when its row (w2.8, batch 1) is not in the run."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "reparam_latency.py"
    out = tmp_path / "reparam.json"
    proc = subprocess.run([sys.executable, str(script), "--widths", "0.25", "--batches", "1", "--rounds", "1",
                           "--min-time", "0.01", "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    (row,) = doc["results"]
    assert (row["width"], row["batch"]) == (0.25, 1) and row["train_ms"] > 0 and row["deploy_ms"] > 0
    assert row["ratio"] == pytest.approx(row["deploy_ms"] / row["train_ms"], abs=1e-3)
    assert doc["goal"]["met"] is None and "--widths 0.25" in doc["command"] and doc["machine"]["cores"] >= 1



def test_train_throughput_benchmark_smoke_run(tmp_path: Path) -> None:
    """benchmarks/train_throughput.py at tiny size writes one row per model with a rate and its projection."""
    from edgeghost.data.synthetic import write_synthetic_fashion_mnist

    data = write_synthetic_fashion_mnist(tmp_path / "fm", train=64, test=32)
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "train_throughput.py"
    proc = subprocess.run([sys.executable, str(script), "throughput", "--models", "ghostnetv3_small:0.25",
                           "--images", "64", "--batch-size", "32", "--threads", "1", "--data-dir", str(data),
                           "--results", str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    (path,) = (tmp_path / "out").glob("train_throughput_*.json")
    doc = json.loads(path.read_text())
    (row,) = doc["rows"]
    assert (row["model"], row["width"], row["images"]) == ("ghostnetv3_small", 0.25, 64) and row["images_per_s"] > 0
    assert row["projected_cifar10_200_epochs_h"] == pytest.approx(200 * 50_000 / row["images_per_s"] / 3600, rel=1e-2)
    assert "--images 64" in doc["command"] and doc["machine"]["cores"] >= 1


def _bench_script(name: str, *args: str) -> subprocess.CompletedProcess:
    """benchmarks/NAME.py run with this interpreter, as a user runs it."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True)


def test_host_matrix_benchmark_smoke_run(shared: dict[str, Path], tmp_path: Path) -> None:
    """benchmarks/host_matrix.py on one model (the shared GN-S w0.25 checkpoint and its export, reused): a row per
    host format and the TFLM row, and ratios computed from those rows."""
    work = tmp_path / "work"
    (work / "ckpt").mkdir(parents=True)
    (work / "exports").mkdir()
    (work / "ckpt" / "ghostnetv3_small_w0.25.pt").symlink_to(shared["checkpoint"])
    (work / "exports" / "ckpt-ghostnetv3_small_w0.25").symlink_to(shared["export"])
    proc = _bench_script("host_matrix", "--models", "ghostnetv3_small:0.25", "--min-time", "0.01",
                         "--eval-samples", "4", "--work-dir", str(work), "--data-dir", str(shared["data"]),
                         "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert "[bench] exporting" not in proc.stderr  # the up-to-date export was reused
    doc = json.loads((tmp_path / "out" / "host_matrix.json").read_text())
    rows = {(r["device"], r["format"]): r for r in doc["rows"]}
    assert set(rows) == {("host", f) for f in ("torch", "torch_deploy", "onnx", "tflite_fp32", "tflite_int8")} | {
        ("tflm", "tflite_int8")}
    assert all(r["status"] == "ok" and r["model"] == "ghostnetv3_small_w0.25" and r["top1_pct"] is None
               for r in rows.values())
    ms = {k: r["latency"]["median_ms"] for k, r in rows.items()}
    rat = doc["ratios"]
    assert rat["int8_over_fp32_litert"] == {
        "ghostnetv3_small_w0.25": pytest.approx(ms[("host", "tflite_int8")] / ms[("host", "tflite_fp32")])}
    assert rat["tflm_ms_per_mmac"]["ghostnetv3_small_w0.25"] == pytest.approx(
        ms[("tflm", "tflite_int8")] / (rows[("tflm", "tflite_int8")]["macs"] / 1e6))
    assert rat["tflm_ms_per_mmac_vs_resnet8"] == {}  # no ResNet-8 in this run
    assert "--models ghostnetv3_small:0.25" in doc["command"] and doc["host"]["cores"] >= 1
    assert (tmp_path / "out" / "host_matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert "ghostnetv3_small_w0.25" in (tmp_path / "out" / "host_matrix.md").read_text()


@pytest.mark.slow
def test_mcu_design_benchmark_smoke_run(shared: dict[str, Path], tmp_path: Path) -> None:
    """benchmarks/mcu_design.py on one candidate (GN-S-MCU as registered): the arena it reports runs the int8 file
    in TFLite-Micro and one byte less does not; the allocator's head + tail is that arena; sizes are the file's."""
    import numpy as np

    from edgeghost.errors import EdgeGhostError
    from edgeghost.runtime.tflm import tflm_invoke

    proc = _bench_script("mcu_design", "--only", "mcu", "--work", str(tmp_path / "work"), "--data-dir",
                         str(shared["data"]), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "out" / "mcu_design.json").read_text())
    (row,) = doc["rows"]
    assert (row["key"], row["model"], row["input"]) == ("mcu", "ghostnetv3_small_mcu", [1, 32, 32, 1])
    tflite = tmp_path / "work" / "mcu" / "model_int8.tflite"
    assert row["int8_bytes"] == tflite.stat().st_size and row["n_ops"] == sum(row["ops"].values())
    alloc = row["arena_allocations"]
    assert alloc["head"] + alloc["tail"] == row["arena"] and 0 < row["live_peak"] <= alloc["head"]
    x = np.zeros((1, 32, 32, 1), np.int8)
    tflm_invoke(tflite, x, arena_size=row["arena"])
    with pytest.raises(EdgeGhostError):
        tflm_invoke(tflite, x, arena_size=row["arena"] - 1)
    assert 0 < row["params_deploy"] <= row["params_train"] and row["macs"] > row["params_deploy"]
    assert "--only mcu" in doc["command"] and doc["machine"]["cores"] >= 1
    assert json.loads((tmp_path / "work" / "mcu.json").read_text()) == row  # the per-candidate cache
    assert "| mcu |" in (tmp_path / "out" / "mcu_design.md").read_text()


@pytest.mark.slow
def test_export_suite_benchmark_smoke_run(shared: dict[str, Path], tmp_path: Path) -> None:
    """benchmarks/export_suite.py's timing part at GN-S w0.25: stage times add up within the wall time, and sizes and
    arena equal those of the shared export of the same architecture (they do not depend on the weights)."""
    proc = _bench_script("export_suite", "--part", "timing", "--widths", "0.25", "--data-dir", str(shared["data"]),
                         "--results", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "export_timing.json").read_text())
    (row,) = doc["results"]["rows"]
    assert (row["model"], row["width"]) == ("ghostnetv3_small", 0.25)
    stages = {k: v for k, v in row["stages_s"].items() if k not in ("cpu_s", "total")}
    assert 0 < sum(stages.values()) <= row["stages_s"]["total"] <= row["wall_s"]
    assert row["meets_goal"] == (row["wall_s"] <= row["goal_s"])
    files = {"onnx": "model.onnx", "tflite_fp32": "model_fp32.tflite", "tflite_int8": "model_int8.tflite"}
    assert row["bytes"] == {k: (shared["export"] / f).stat().st_size for k, f in files.items()}
    manifest = json.loads((shared["export"] / "manifest.json").read_text())
    assert row["arena_bytes"] == manifest["tflm"]["arena_measured_bytes"]
    assert {r["samples"] for r in row["ladder"]} == {64}  # every synthetic test image (fewer than the default 500)
    assert "--part timing" in doc["command"] and doc["machine"]["cores"] >= 1


@pytest.mark.slow
def test_int8_ptq_benchmark_smoke_run(shared: dict[str, Path], tmp_path: Path) -> None:
    """benchmarks/int8_ptq.py on the shared checkpoint, minmax, one percentile and mse, 16 test images: top-1 of fp32
    and int8 recomputed from the files it names; the shared export (percentile) is not taken for the minmax row;
    the fake-quant trace finds every QAT range in the minmax file; a rerun skips the pairs already measured."""
    from edgeghost.data import load_split
    from edgeghost.runtime import load_runner
    from edgeghost.sysinfo import file_digest

    work, out = tmp_path / "work", tmp_path / "out" / "ptq"
    # The shared export beside the script's folder for .../ckpt/gns.pt is percentile-calibrated: not reusable here.
    (work / "ckpt-gns").mkdir(parents=True)
    (work / "ckpt-gns" / "export").symlink_to(shared["export"])
    args = [str(shared["checkpoint"]), "--percentiles", "99.9", "--test-samples", "16", "--data-dir",
            str(shared["data"]), "--work-dir", str(work), "--out", str(out), "--fake-quant-trace"]
    proc = _bench_script("int8_ptq", *args)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.with_suffix(".json").read_text())
    rows = {r["method"]: r for r in doc["results"]}
    assert list(rows) == ["minmax", "percentile:99.9", "mse"]
    assert len({r["int8_file"] for r in rows.values()}) == 3
    test = load_split("fashion_mnist", "test", shared["data"]).subset(16)
    fp32 = load_runner(shared["export"] / "model_fp32.tflite").predict(test.images).argmax(1)
    for method, r in rows.items():
        int8 = load_runner(r["int8_file"], reference_kernels=True).predict(test.images).argmax(1)
        assert r["test_samples"] == 16 and r["sha256"] == file_digest(shared["checkpoint"])
        assert r["top1_fp32"] == pytest.approx(100 * float((fp32 == test.labels).mean()), abs=1e-3)
        assert r["top1_int8"] == pytest.approx(100 * float((int8 == test.labels).mean()), abs=1e-3)
        assert r["flips"] == int((fp32 != int8).sum()) and r["int8_bytes"] == Path(r["int8_file"]).stat().st_size
    minmax_export = Path(rows["minmax"]["int8_file"]).parent
    calibration = json.loads((minmax_export / "manifest.json").read_text())["quantization"]["calibration"]
    assert (calibration["method"], calibration["bias_correction"]) == ("minmax", False)  # the plain minmax row
    assert not minmax_export.samefile(shared["export"])
    assert "fake_quant" in rows["minmax"] and "fake_quant" not in rows["percentile:99.9"]
    # The trace: every QAT quantizer found its tensor in the int8 file, and the input is bit-exact.
    trace = rows["minmax"]["fake_quant"]["trace"]
    assert len(trace) > 20 and all(t["tensor"] is not None for t in trace), trace
    assert trace[0]["quantizer"] == "qat_in" and trace[0]["max_lsb"] == 0
    assert "--test-samples 16" in doc["command"] and doc["machine"]["cores"] >= 1
    assert "percentile:99.9" in out.with_suffix(".md").read_text()
    again = _bench_script("int8_ptq", *args)
    assert again.returncode == 0 and again.stderr.count("done before, skipped") == 3
    assert json.loads(out.with_suffix(".json").read_text())["results"] == doc["results"]


@pytest.mark.slow
def test_distill_study_benchmark_smoke_run(shared: dict[str, Path], tmp_path: Path) -> None:
    """benchmarks/distill_study.py at tiny size (GN-S w0.25, baseline and KD from the shared checkpoint, one seed,
    one epoch on 64 images): both runs finish with a checkpoint, KD's Δ is the two runs' difference, and the
    invocation's wall time covers both runs (they run one after the other)."""
    proc = _bench_script("distill_study", "--stem", "smoke", "--seeds", "0", "--epochs", "1", "--student-width",
                         "0.25", "--batch-size", "32", "--train-samples", "64", "--test-samples", "32", "--teachers",
                         str(shared["checkpoint"]), "--assistants", "--strategies", "baseline", "kd", "--data-dir",
                         str(shared["data"]), "--out", str(tmp_path / "runs"), "--results", str(tmp_path / "results"))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "results" / "smoke.json").read_text())
    runs = {r["strategy"]: r for r in doc["runs"]}
    assert set(runs) == {"baseline", "kd"} and not doc["failed"]
    for r in runs.values():
        assert (r["status"], r["seed"], r["width"], r["epochs_done"]) == ("done", 0, 0.25, 1)
        assert Path(r["best_checkpoint"]).is_file() and Path(r["run_dir"]).parent.parent == tmp_path / "runs"
    assert runs["kd"]["teacher_checkpoints"] == [str(shared["checkpoint"])] and runs["baseline"]["teachers"] == []
    kd = next(s for s in doc["summary"] if s["strategy"] == "kd")
    assert kd["delta_mean"] == pytest.approx(runs["kd"]["final_top1"] - runs["baseline"]["final_top1"])
    assert doc["wall_s"] >= runs["kd"]["wall_s"] + runs["baseline"]["wall_s"]
    assert doc["budget"]["train_images"] == 64 and doc["machine"]["cores"] >= 1 and "--epochs 1" in doc["command"]
    assert "Command:" in (tmp_path / "results" / "smoke.md").read_text()
    assert (tmp_path / "results" / "smoke.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_firmware_sizes_benchmark_smoke_run(tmp_path: Path) -> None:
    """benchmarks/firmware_sizes.py --quick (GN-S w0.25, four builds): every build reproduces the TFLite-Micro
    Python interpreter, its RAM holds the arena it was built with, flash = text + data, and the firmware used no
    more arena than it was given."""
    out = tmp_path / "firmware_sizes.json"
    proc = _bench_script("firmware_sizes", "--quick", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["command"] and doc["machine"]
    (row,) = doc["results"]
    assert set(row["targets"]) == {"host/reference", "cortex-m4/reference", "cortex-m4/cmsis-nn",
                                   "cortex-m55/reference"}
    assert row["arena_measured_bytes"] <= row["arena_bytes"]
    for name, e in row["targets"].items():
        assert e["identical_to_tflm_python"] is True, name
        assert e["arena"] == row["arena_bytes"] and e["ram"] >= e["arena"], name
        assert e["flash"] == e["text"] + e["data"] and e["ram"] == e["data"] + e["bss"], name
        assert e["arena_used_bytes"] is None or e["arena_used_bytes"] <= e["arena"], name


@pytest.mark.slow
def test_cortex_m_suite_benchmark_smoke_run(tmp_path: Path) -> None:
    """benchmarks/cortex_m_suite.py --quick (the first shipped zoo model on Cortex-M4, both kernels, under QEMU):
    bit-identical to the TFLite-Micro Python interpreter, more instructions than MACs, the per-op profile adds up
    to the profiled inference, and CMSIS-NN needs fewer instructions than the reference kernels."""
    out = tmp_path / "cortex_m.json"
    proc = _bench_script("cortex_m_suite", "--quick", "--exports", str(tmp_path / "exports"), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["command"] and doc["machine"]
    rows = {r["kernels"]: r for r in doc["rows"]}
    assert set(rows) == {"reference", "cmsis-nn"}
    for r in rows.values():
        n = r["instructions"]
        assert r["identical_to_tflm_python"] is True and r["target"] == "cortex-m4"
        assert n["min"] <= n["mean"] <= n["max"] and n["mean"] > r["macs"]
        assert abs(n["ops_total"] / n["profiled_inference"] - 1) < 0.01
        assert r["arena_used_bytes"] <= r["arena_bytes"] <= r["ram_bytes"]
    assert rows["cmsis-nn"]["instructions"]["mean"] < rows["reference"]["instructions"]["mean"]
