"""Runtimes: the one latency loop, quantization, and every backend of ``load_runner`` on real model files.

The TFLite files are made here by the real TFLite converter (a tiny Keras CNN with the raw-pixel input
contract: rescaling inside the graph, int8 input scale 1 / zero point −128); the ONNX file is built with
``onnx.helper``; the checkpoint is a real edgeghost checkpoint. End-to-end runs on edgeghost exports are in
tests/test_bench.py.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeghost.errors import EdgeGhostError
from edgeghost.runtime import dequantize, load_runner, measure_latency, quantize, read_tflite
from edgeghost.runtime.tflm import find_min_arena, tflm_benchmark, tflm_invoke

MEAN = (0.5, 0.4, 0.3)
STD = (0.25, 0.2, 0.3)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def tflite_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """fp32 and full-integer int8 .tflite files of a tiny CNN whose first op is the pixel normalization."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    inp = tf.keras.Input((32, 32, 3), batch_size=1)
    x = tf.keras.layers.Rescaling(1 / 255.0)(inp)
    x = tf.keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    x = tf.keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = tf.keras.layers.Conv2D(16, 1, activation="relu")(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    model = tf.keras.Model(inp, tf.keras.layers.Dense(10)(x))
    root = tmp_path_factory.mktemp("tflite")
    paths = {"fp32": root / "model_fp32.tflite", "int8": root / "model_int8.tflite"}
    paths["fp32"].write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    calib = np.random.default_rng(1).integers(0, 256, (16, 1, 32, 32, 3)).astype(np.float32)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([c] for c in calib)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    paths["int8"].write_bytes(conv.convert())
    return {k: str(v) for k, v in paths.items()}


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, np.ndarray, np.ndarray]:
    """NCHW float pixels → /255 → global average pool → linear: per-channel means expose a wrong layout."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(2)
    w = rng.normal(size=(10, 3)).astype(np.float32)
    b = rng.normal(size=10).astype(np.float32)
    nodes = [
        helper.make_node("Mul", ["pixels", "inv255"], ["x"]),
        helper.make_node("GlobalAveragePool", ["x"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Gemm", ["flat", "w", "b"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])],
        [numpy_helper.from_array(np.array(1 / 255.0, np.float32), "inv255"),
         numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    onnx.save(model, path)
    return str(path), w, b


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> str:
    import torch

    from edgeghost.models import create_model
    from edgeghost.training.checkpoint import atomic_torch_save, make_checkpoint

    torch.manual_seed(0)
    model = create_model("resnet8", width=0.25, num_classes=10)
    # Non-trivial BatchNorm statistics so that the deploy form's folding is exercised.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    ckpt = make_checkpoint(model, model_name="resnet8", dataset="cifar10", classes=[str(i) for i in range(10)],
                           mean=MEAN, std=STD)
    return str(atomic_torch_save(ckpt, tmp_path_factory.mktemp("ckpt") / "r8.pt"))


# --- latency loop and quantization ------------------------------------------------------------------------


def test_latency_loop_discards_warmup_and_runs_until_min_runs_and_min_time() -> None:
    calls = []
    stats = measure_latency(lambda: calls.append(1), warmup=7, min_time_s=0.0, min_runs=25)
    assert stats.runs == 25 and len(calls) == 32
    slow = measure_latency(lambda: __import__("time").sleep(0.002), warmup=1, min_time_s=0.05, min_runs=3)
    # Timed calls fill the 50 ms budget (less the loop's own few µs between calls).
    assert slow.runs >= 3 and slow.runs * slow.mean_ms >= 45.0
    assert 1.9 <= slow.min_ms <= slow.median_ms <= slow.p90_ms
    assert slow.fps == pytest.approx(1000.0 / slow.median_ms)
    with pytest.raises(EdgeGhostError):
        measure_latency(lambda: None, min_runs=0)


def test_int8_pixel_contract_and_saturation() -> None:
    pixels = np.arange(256, dtype=np.uint8)
    q = quantize(pixels, 1.0, -128, np.int8)
    assert q.dtype == np.int8 and np.array_equal(q.astype(np.int16), pixels.astype(np.int16) - 128)
    assert np.array_equal(quantize(np.array([-1e9, 1e9]), 0.5, 3, np.int8), [-128, 127])
    assert np.allclose(dequantize(np.array([-128, 1, 127], np.int8), 0.25, 1), [-32.25, 0.0, 31.5])


# --- LiteRT -----------------------------------------------------------------------------------------------------


def test_litert_runner_reads_quant_params_and_dequantizes(tflite_models: dict[str, str], images: np.ndarray) -> None:
    runner = load_runner(tflite_models["int8"], reference_kernels=True)
    info = runner.info
    assert (info.backend, info.format, info.layout, info.kernels) == ("litert", "tflite_int8", "NHWC", "builtin_ref")
    assert info.input_shape == (1, 32, 32, 3) and info.input_dtype == "int8"
    assert info.input_quant == (1.0, -128)  # raw-pixel contract: q = pixel - 128
    scale, zp = info.output_quant
    raw = runner.run_raw((images.astype(np.int16) - 128).astype(np.int8))
    assert raw.dtype == np.int8 and raw.shape == (6, 10)
    assert np.array_equal(runner.predict(images), (raw.astype(np.float32) - zp) * np.float32(scale))

    fp32 = load_runner(tflite_models["fp32"], threads=2)
    assert (fp32.info.format, fp32.info.input_quant, fp32.info.threads) == ("tflite_fp32", None, 2)
    logits = fp32.predict(images)
    assert logits.dtype == np.float32
    # int8 tracks fp32 within a few output quantization steps
    assert np.abs(runner.predict(images) - logits).max() < 8 * scale


def test_litert_xnnpack_and_reference_kernels_agree(tflite_models: dict[str, str], images: np.ndarray) -> None:
    xnn = load_runner(tflite_models["int8"]).predict(images)
    ref = load_runner(tflite_models["int8"], reference_kernels=True)
    assert np.abs(xnn - ref.predict(images)).max() <= 2 * ref.info.output_quant[0]


# --- TFLite-Micro -------------------------------------------------------------------------------------------------


def test_tflm_matches_litert_reference_kernels_bit_exactly(tflite_models: dict[str, str], images: np.ndarray) -> None:
    raw_in = (images.astype(np.int16) - 128).astype(np.int8)
    ref = load_runner(tflite_models["int8"], reference_kernels=True).run_raw(raw_in)
    out = tflm_invoke(tflite_models["int8"], raw_in)
    assert out.dtype == np.int8 and np.array_equal(out, ref)
    bench_out, stats = tflm_benchmark(tflite_models["int8"], raw_in[:2], min_time_s=0.0, min_runs=3, warmup=1)
    assert np.array_equal(bench_out, ref[:2]) and stats.runs == 3 and stats.median_ms > 0


def test_find_min_arena_is_the_smallest_working_size(tflite_models: dict[str, str], images: np.ndarray) -> None:
    path = tflite_models["int8"]
    arena = find_min_arena(path)
    raw_in = (images[:1].astype(np.int16) - 128).astype(np.int8)
    assert tflm_invoke(path, raw_in, arena_size=arena).shape == (1, 10)
    with pytest.raises(EdgeGhostError, match="arena"):
        tflm_invoke(path, raw_in, arena_size=arena - 1)
    # A tiny arena crashes TFLM (SIGSEGV) in the child; the caller gets one clear error and lives on.
    with pytest.raises(EdgeGhostError, match="arena"):
        tflm_invoke(path, raw_in, arena_size=0)

    runner = load_runner(path, backend="tflm")
    assert (runner.info.backend, runner.info.arena_bytes, runner.info.input_quant) == ("tflm", arena, (1.0, -128))
    ref = load_runner(path, reference_kernels=True)
    assert np.array_equal(runner.predict(images), ref.predict(images))


# --- onnxruntime and torch ------------------------------------------------------------------------------------------


def test_onnx_runner_feeds_nchw_float_pixels(onnx_model: tuple, images: np.ndarray) -> None:
    path, w, b = onnx_model
    runner = load_runner(path)
    assert (runner.info.backend, runner.info.layout, runner.info.input_dtype) == ("onnxruntime", "NCHW", "float32")
    expected = (images.astype(np.float64) / 255.0).mean(axis=(1, 2)) @ w.T.astype(np.float64) + b
    assert np.allclose(runner.predict(images), expected, atol=1e-5)


def test_torch_runner_normalizes_and_deploy_form_matches(checkpoint: str, images: np.ndarray) -> None:
    import torch

    from edgeghost.training.checkpoint import model_from_checkpoint

    train = load_runner(checkpoint)
    deploy = load_runner(checkpoint, form="deploy")
    assert (train.info.format, deploy.info.format, train.info.layout) == ("torch", "torch_deploy", "NCHW")
    x = (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0 - torch.tensor(MEAN).view(1, 3, 1, 1)) / (
        torch.tensor(STD).view(1, 3, 1, 1)
    )
    with torch.no_grad():
        expected = model_from_checkpoint(checkpoint)(x).numpy()
    got = train.predict(images)
    assert np.allclose(got, expected, atol=1e-5)
    assert np.abs(deploy.predict(images) - got).max() <= 1e-4 * max(1.0, np.abs(got).max())


def test_bad_inputs_are_one_clear_error(tflite_models: dict[str, str], tmp_path) -> None:
    with pytest.raises(EdgeGhostError, match="does not exist"):
        load_runner(tmp_path / "missing.tflite")
    (tmp_path / "model.bin").write_bytes(b"x")
    with pytest.raises(EdgeGhostError, match="unknown model type"):
        load_runner(tmp_path / "model.bin")
    (tmp_path / "junk.tflite").write_bytes(b"not a flatbuffer")
    with pytest.raises(EdgeGhostError, match="cannot load"):
        load_runner(tmp_path / "junk.tflite")
    runner = load_runner(tflite_models["fp32"])
    with pytest.raises(EdgeGhostError, match="uint8"):
        runner.predict(np.zeros((1, 32, 32, 3), np.float32))
    with pytest.raises(EdgeGhostError, match="32×32×3"):
        runner.predict(np.zeros((1, 28, 28, 1), np.uint8))
    with pytest.raises(EdgeGhostError, match="cannot open"):
        load_runner(tflite_models["fp32"], backend="torch")


# --- the .tflite reader -----------------------------------------------------------------------------------------------


def test_tflite_reader_agrees_with_litert_interpreter(tflite_models: dict[str, str]) -> None:
    from ai_edge_litert.interpreter import Interpreter

    for kind, path in tflite_models.items():
        facts = read_tflite(path)
        interp = Interpreter(model_path=path)
        for mine, theirs in ((facts.input, interp.get_input_details()[0]),
                             (facts.output, interp.get_output_details()[0])):
            q = theirs["quantization_parameters"]
            assert mine.shape == tuple(int(d) for d in theirs["shape"])
            assert mine.dtype == np.dtype(theirs["dtype"]).name
            assert np.allclose(mine.scales, q["scales"]) and list(mine.zero_points) == list(q["zero_points"])
        details = interp.get_tensor_details()
        assert facts.per_channel_tensors == sum(len(d["quantization_parameters"]["scales"]) > 1 for d in details)
        ops = [op["op_name"] for op in interp._get_ops_details()]
        assert set(facts.ops) == set(ops) and sum(facts.op_counts.values()) == len(ops)
        assert (facts.per_channel_tensors > 0) == (kind == "int8")
    bad = Path(tflite_models["int8"]).with_name("not_a_model.tflite")
    bad.write_bytes(b"\0" * 64)
    with pytest.raises(EdgeGhostError, match="not a TFLite flatbuffer"):
        read_tflite(bad)


# --- the remote runner: one file, stdlib + numpy + a runtime --------------------------------------------------------


def test_remote_runner_runs_with_only_stdlib_numpy_and_a_runtime(tflite_models: dict[str, str], onnx_model: tuple,
                                                                  images: np.ndarray, tmp_path: Path) -> None:
    from edgeghost.runtime.rpi4 import runner_source

    # A Python without site-packages (-S) that sees numpy, LiteRT and onnxruntime only.
    site = tmp_path / "site"
    site.mkdir()
    for module in ("numpy", "ai_edge_litert", "onnxruntime"):
        package = Path(importlib.util.find_spec(module).origin).parent
        (site / module).symlink_to(package)
        libs = package.with_name(f"{module}.libs")
        if libs.is_dir():
            (site / libs.name).symlink_to(libs)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(site)}
    probe = subprocess.run([sys.executable, "-S", "-c", "import edgeghost"], env=env, capture_output=True, cwd=tmp_path)
    assert probe.returncode != 0 and "No module named 'edgeghost'" in probe.stderr.decode()

    job_dir = tmp_path / "job"
    job_dir.mkdir()
    (job_dir / "remote_runner.py").write_text(runner_source())
    for name, path in (("m.tflite", tflite_models["int8"]), ("m.onnx", onnx_model[0])):
        (job_dir / name).write_bytes(Path(path).read_bytes())
    np.save(job_dir / "images.npy", images)
    job = {"schema": "edgeghost-runner-v1", "images": "images.npy", "threads": 1, "warmup": 1, "min_time_s": 0.0,
           "min_runs": 3, "max_temp_c": None, "models": [{"name": "int8", "format": "tflite_int8", "file": "m.tflite"},
                                                        {"name": "onnx", "format": "onnx", "file": "m.onnx"}]}
    (job_dir / "job.json").write_text(json.dumps(job))
    proc = subprocess.run([sys.executable, "-S", "remote_runner.py", "job.json", "result.json"], env=env,
                          capture_output=True, text=True, cwd=job_dir)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((job_dir / "result.json").read_text())
    by = {m["name"]: m for m in result["models"]}
    assert all(m["status"] == "ok" and m["latency"]["runs"] >= 3 for m in by.values()), by
    # The same outputs the host's runners give for the same files and images.
    host_int8 = load_runner(tflite_models["int8"])
    assert np.array_equal(np.asarray(by["int8"]["raw_outputs"], np.int8), host_int8.run_raw(host_int8.prepare(images)))
    host_ref = load_runner(tflite_models["int8"], reference_kernels=True)
    assert np.array_equal(np.asarray(by["int8"]["reference_outputs"], np.int8),
                          host_ref.run_raw(host_ref.prepare(images)))
    assert np.allclose(by["onnx"]["raw_outputs"], load_runner(onnx_model[0]).predict(images), atol=1e-5)
    # --check in the same bare environment: no edgeghost, no torch, no TensorFlow.
    check = subprocess.run([sys.executable, "-S", "remote_runner.py", "--check"], env=env, capture_output=True,
                           text=True, cwd=job_dir)
    report = json.loads(check.stdout)
    assert report["runtimes"]["litert"] and report["runtimes"]["onnxruntime"] and report["numpy"] == np.__version__


# --- device facts (the Raspberry Pi side of the runner) -----------------------------------------------------------


@pytest.mark.parametrize("mask, now, during", [("0x50005", ["under-voltage", "throttled"], True),
                                               ("0x50000", [], False), ("0x8", ["soft temperature limit"], True)])
def test_throttle_bits_current_state_only(mask: str, now: list, during: bool, tmp_path: Path, monkeypatch) -> None:
    """``vcgencmd get_throttled`` as a Pi prints it: only bits 0-3 mean "now"; 16-19 record the past."""
    from edgeghost.runtime import remote_runner

    (tmp_path / "vcgencmd").write_text(f"#!/bin/sh\necho throttled={mask}\n")
    (tmp_path / "vcgencmd").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    assert remote_runner.device_facts()["throttled_now"] == now
    with remote_runner.ThrottleMonitor(period_s=0.01) as monitor:
        measure_latency(lambda: None, warmup=0, min_time_s=0.05, min_runs=1)
    assert monitor.samples and monitor.throttled is during


# --- layering -----------------------------------------------------------------------------------------------------


def _edgeghost_imports(path: Path, package: str) -> set[str]:
    """Every edgeghost module ``path`` imports (top level or inside functions), relative imports resolved."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.add(name)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {n for n in found if n == "edgeghost" or n.startswith("edgeghost.")}


def test_runtime_layer_imports_nothing_above_models_and_checkpoints() -> None:
    import edgeghost.runtime as runtime

    allowed = ("edgeghost.errors", "edgeghost.fileio", "edgeghost.sysinfo", "edgeghost.models",
               "edgeghost.training.checkpoint", "edgeghost.runtime")
    root = Path(runtime.__file__).parent
    for path in sorted(root.glob("*.py")):
        bad = [m for m in _edgeghost_imports(path, "edgeghost.runtime")
               if not any(m == a or m.startswith(a + ".") for a in allowed)]
        assert not bad, f"{path.name} imports {bad}"
    # The core ships to devices: it imports nothing from edgeghost but the optional error type.
    assert _edgeghost_imports(root / "core.py", "edgeghost.runtime") == {"edgeghost.errors"}


def test_atomic_writes_leave_no_temp_file_and_the_usual_file_mode(tmp_path: Path) -> None:
    from edgeghost.fileio import atomic_write_text

    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "a" / "result.json", "{}\n")
    finally:
        os.umask(old)
    assert path.read_text() == "{}\n" and [p.name for p in path.parent.iterdir()] == ["result.json"]
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600: results are meant to be read by others
