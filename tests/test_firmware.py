"""Firmware: a real GN-S int8 export compiled into TFLite-Micro firmware for the host, Cortex-M4 (reference and
CMSIS-NN kernels) and Cortex-M55, run natively or in QEMU, and its int8 outputs compared with the TFLite-Micro
Python interpreter's; the MLPerf Tiny harness driven through its command protocol; the error paths.

Needs a TFLite-Micro tree (found by ``edgeghost.export.firmware.find_tflm_root``: ``$TFLM_DIR``,
``../shared/third_party/tflm``, the user cache; without one these tests are skipped with the reason, and fail under
``$CI``), g++, the Arm toolchain and qemu-system-arm. TFLM object files are shared between the builds and with
tests/test_cortex_m.py (``$EDGEGHOST_TFLM_CACHE`` keeps them across runs).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgeghost.cli import main
from edgeghost.errors import EdgeGhostError
from edgeghost.export import firmware as fw
from edgeghost.export.tflm import write_tflm_artifacts
from edgeghost.runtime import read_tflite
from edgeghost.runtime.tflm import tflm_invoke

NUM_IMAGES = 3


@pytest.fixture(scope="module")
def gns_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edgeghost.export import export_model

    out = tmp_path_factory.mktemp("export") / "ghostnetv3_small_w0.25"
    export_model(model="ghostnetv3_small", width=0.25, out=out, int8=True, calib_samples=16, eval_samples=8,
                 verbose=False)
    return out


@pytest.fixture(scope="module")
def model(gns_export: Path) -> fw.ModelSource:
    return fw.model_from_export(gns_export)


@pytest.fixture(scope="module")
def images(model: fw.ModelSource) -> np.ndarray:
    imgs, origin = fw.sample_images(model, num=NUM_IMAGES)
    assert "fashion_mnist" in origin  # real test images, not noise
    return imgs


def test_tflm_artifacts_match_the_model(model: fw.ModelSource) -> None:
    facts = read_tflite(model.tflite)
    ops_h = (model.tflm_dir / "model_ops.h").read_text()
    settings = (model.tflm_dir / "model_settings.h").read_text()
    registered = re.findall(r"resolver\.(Add\w+)\(", ops_h)
    assert len(registered) == len(set(registered)) == len(set(facts.ops))
    assert f"constexpr int kNumOps = {len(registered)};" in ops_h
    # int8-only kernels where TFLite-Micro has them (the linker then drops the float/int16 code).
    assert "resolver.AddConv2D(tflite::Register_CONV_2D_INT8())" in ops_h
    assert '#include "tensorflow/lite/micro/kernels/conv.h"' in ops_h
    info = model.info
    assert f"constexpr int kTensorArenaSize = {info['arena_bytes']};" in settings
    assert info["arena_bytes"] >= info["arena_measured_bytes"] + 4096  # the stated floor of the margin
    assert "constexpr float kInputScale = 1.0f;" in settings and "kInputZeroPoint = -128;" in settings
    data = (model.tflm_dir / "model_data.cc").read_text()
    # The C array is exactly tflm/model.tflite, which is the export's int8 model without its tensor names.
    array = bytes(int(b, 16) for b in re.findall(r"0x([0-9a-f]{2})", data.split("g_model[]", 1)[1]))
    assert "alignas(16)" in data and array == model.tflite.read_bytes()
    assert model.tflite.name == "model.tflite" and model.tflite.parent == model.tflm_dir
    source = read_tflite(model.tflite.parent.parent / "model_int8.tflite")
    assert source.ops == facts.ops and source.op_counts == facts.op_counts
    assert source.input.name and facts.input.name == "" and facts.output.name == ""
    assert len(array) <= source.model_bytes - info["stripped_name_bytes"] + 64 and info["stripped_name_bytes"] > 1000


BUILDS = [("host", "reference"), ("cortex-m4", "reference"), ("cortex-m4", "cmsis-nn"), ("cortex-m55", "reference")]


@pytest.mark.slow
@pytest.mark.parametrize(("target", "kernels"), BUILDS, ids=[f"{t}-{k}" for t, k in BUILDS])
def test_firmware_outputs_identical_to_tflm_python(target: str, kernels: str, model: fw.ModelSource,
                                                   images: np.ndarray, tflm_root: Path, cache_dir: Path,
                                                   tmp_path: Path) -> None:
    project = fw.generate_firmware(model, tmp_path / target, target=target, kernels=kernels, test_images=images)
    binary = fw.build_firmware(project, tflm_dir=tflm_root, cache_dir=cache_dir, jobs=os.cpu_count())
    check = fw.check_firmware(project, model, images)
    assert check.outputs.shape == (NUM_IMAGES, 10)
    np.testing.assert_array_equal(check.outputs, check.expected)
    if target != "host":  # the bare-metal firmware checks itself too: exit code 0 and its own verdict
        assert check.run.passed and f"PASS: {NUM_IMAGES} of {NUM_IMAGES}" in check.run.log
    used = int(re.search(r"arena used (\d+) of", check.run.log).group(1))
    assert used <= model.info["arena_bytes"]
    size = fw.firmware_size(binary, arena_bytes=model.info["arena_bytes"])
    assert size["bss"] >= model.info["arena_bytes"] and size["flash"] > model.info["model_bytes"]


@pytest.mark.slow
def test_mlperf_tiny_harness_answers_its_commands(model: fw.ModelSource, images: np.ndarray, tflm_root: Path,
                                                  cache_dir: Path, tmp_path: Path, mlperf) -> None:
    project = fw.generate_firmware(model, tmp_path / "mlperf", target="mlperf-tiny")
    binary = fw.build_firmware(project, tflm_dir=tflm_root, cache_dir=cache_dir, jobs=os.cpu_count())
    pixels = images[0].reshape(-1)
    proc = subprocess.run([str(binary)], input=mlperf.script(pixels), capture_output=True, text=True,
                          timeout=120, check=True)
    mlperf.check(proc.stdout, model, pixels)


def test_board_projects_carry_the_same_generated_files(model: fw.ModelSource, images: np.ndarray,
                                                       tmp_path: Path) -> None:
    esp = fw.generate_firmware(model, tmp_path / "esp", target="esp32s3", test_images=images)
    ino = fw.generate_firmware(model, tmp_path / "ino", target="arduino", test_images=images)
    for name in ("model_data", "model_settings", "model_ops"):
        ext = ".cc" if name == "model_data" else ".h"
        ref = (model.tflm_dir / f"{name}{ext}").read_bytes()
        assert (esp / "main" / f"{name}{ext}").read_bytes() == ref
        assert (ino / "edgeghost_classifier" / f"{name}{ext.replace('.cc', '.cpp')}").read_bytes() == ref
    assert (esp / "main/idf_component.yml").is_file() and (ino / "edgeghost_classifier/classifier.cpp").is_file()
    # The embedded reference outputs are the TFLite-Micro interpreter's for the embedded inputs.
    expected = tflm_invoke(model.tflite, fw.to_model_inputs(images, model.info))
    embedded = (esp / "main/test_data.cc").read_text().split("kTestExpected")[1]
    assert [int(v) for v in re.findall(r"-?\d+", embedded.split("=", 1)[1])] == expected.reshape(-1).tolist()
    with pytest.raises(EdgeGhostError, match="own tools"):
        fw.check_toolchain("esp32s3")


def test_unsupported_op_fails_with_its_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tf = pytest.importorskip("tensorflow")

    @tf.function(input_signature=[tf.TensorSpec([1, 10], tf.float32)])
    def top3(x):
        return tf.math.top_k(x, 3).values

    path = tmp_path / "topk.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions([top3.get_concrete_function()], top3).convert())
    with pytest.raises(EdgeGhostError, match="TOPK_V2"):
        write_tflm_artifacts(path, tmp_path / "tflm", labels=["a", "b", "c"])
    assert not (tmp_path / "tflm").exists()  # nothing half-written
    assert main(["firmware", "--tflite", str(path), "--target", "host", "--out", str(tmp_path / "fw")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "TOPK_V2" in err and "does not support" in err


def test_missing_toolchain_names_the_debian_package(gns_export: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(EdgeGhostError, match=r"apt-get install gcc-arm-none-eabi"):
        fw.check_toolchain("cortex-m4")
    code = main(["firmware", "--export", str(gns_export), "--target", "cortex-m55", "--out", str(tmp_path / "fw"),
                 "--build"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "arm-none-eabi-g++ not found" in err
    assert not (tmp_path / "fw").exists()


def test_tflm_tree_lookup_order_and_offline_message(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    # A tree beside the checkout is found without any setting; a given folder wins and must hold a tree.
    shared, cache = tmp_path / "shared", tmp_path / "xdg"
    for sub in ("reference", "cmsis_nn"):
        (shared / sub / "tensorflow/lite/micro").mkdir(parents=True)
        (shared / sub / "tensorflow/lite/micro/micro_interpreter.h").touch()
    (shared / "cmsis_nn/tensorflow/lite/micro/kernels/cmsis_nn").mkdir(parents=True)
    monkeypatch.delenv("TFLM_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setattr(fw, "_SHARED_TREES", shared)
    assert fw.find_tflm_root(None) == shared
    assert fw.resolve_tflm_dir(None, kernels="cmsis-nn") == shared / "cmsis_nn"
    with pytest.raises(EdgeGhostError, match="holds no TFLite-Micro tree"):
        fw.find_tflm_root(tmp_path / "empty")
    monkeypatch.setenv("TFLM_DIR", str(tmp_path / "empty"))
    with pytest.raises(EdgeGhostError, match="holds no TFLite-Micro tree"):
        fw.find_tflm_root(None)
    # Nothing anywhere: one line naming the flag, the variable, the cache and the command that builds it.
    monkeypatch.delenv("TFLM_DIR")
    monkeypatch.setattr(fw, "_SHARED_TREES", tmp_path / "none")
    with pytest.raises(EdgeGhostError) as err:
        fw.find_tflm_root(None)
    msg = str(err.value)
    assert "\n" not in msg and "--tflm-dir" in msg and "TFLM_DIR" in msg and str(fw.user_tree_cache()) in msg
    assert fw._main(["--tflm-dir"]) == 2 and "--build" in capsys.readouterr().err
    # Offline (no network here, or no git): building the cache fails with one line saying what to provide.
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EdgeGhostError, match="provide a tree with --tflm-dir or TFLM_DIR"):
        fw.build_tflm_trees(tmp_path / "trees")
    assert not (tmp_path / "trees").exists()


def test_cli_validates_targets_in_the_library(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["firmware", "--tflite", str(tmp_path / "x.tflite"), "--target", "cortex-m99",
                 "--out", str(tmp_path / "fw")]) == 2
    err = capsys.readouterr().err
    assert "unknown firmware target 'cortex-m99'" in err and all(t in err for t in fw.TARGETS)


def test_examples_are_found_where_the_package_is() -> None:
    # Source checkout and wheel both keep firmware_examples/ two levels above export/firmware.py.
    assert (fw.EXAMPLES_DIR / "common/classifier.cc").is_file()
    for spec in fw.TARGETS.values():
        assert (fw.EXAMPLES_DIR / spec.example).is_dir()


def test_unwritable_out_is_one_line_before_anything_is_made(tmp_path: Path, monkeypatch, capsys) -> None:
    """`edgeghost firmware --out` that cannot be written fails first: no traceback, and no export of a
    --pretrained model is made before the failure."""
    monkeypatch.chdir(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    assert main(["firmware", "--pretrained", "gns-mcu-fmnist", "--target", "host", "--out", str(blocker / "fw")]) == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
