"""Cortex-M instruction counts: a tiny int8 CNN with a [1, 40, 40, 1] input (not 32×32×3, so the firmware's
shapes come from the model) built into the bare-metal firmware, run under QEMU ``-icount shift=0`` with
reference and CMSIS-NN kernels; and the same model in the host firmware.

Truths checked: the counts are non-zero and identical run to run for a fixed model and input; the calibration
loop agrees with the board's clock (or the count is refused); CMSIS-NN needs fewer instructions than the
reference kernels; the per-op profile adds up to the whole inference within a stated tolerance.

Needs a TFLite-Micro tree (found by ``edgeghost.export.firmware.find_tflm_root``), the Arm toolchain and
qemu-system-arm. TFLM objects are shared with tests/test_firmware.py through the session's temp folder
(``$EDGEGHOST_TFLM_CACHE`` keeps them across runs).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from edgeghost.errors import EdgeGhostError
from edgeghost.export import firmware as fw

SHAPE = (40, 40, 1)  # the conftest tiny_model's input
NUM_IMAGES = 2
# The per-op sum leaves out the interpreter's loop between ops and the profiler hooks; on this 6-op model that
# is a few hundred instructions of ~10^5. On the real models (benchmarks/results/cortex_m_suite.md) it is < 1 %.
OPS_TOLERANCE = 0.05


@pytest.fixture(scope="module")
def images(tiny_model: fw.ModelSource) -> np.ndarray:
    imgs, _ = fw.sample_images(tiny_model, num=NUM_IMAGES)
    return imgs


@pytest.fixture(scope="module")
def m4_runs(tiny_model: fw.ModelSource, images: np.ndarray, tflm_root: Path, cache_dir: Path,
            tmp_path_factory: pytest.TempPathFactory) -> dict[str, fw.FirmwareResult]:
    out = tmp_path_factory.mktemp("m4")
    return {k: fw.make_firmware(tiny_model, out / k, target="cortex-m4", kernels=k, images=images, run=True,
                                tflm_dir=tflm_root, cache_dir=cache_dir)
            for k in ("reference", "cmsis-nn")}


@pytest.mark.parametrize("kernels", ["reference", "cmsis-nn"])
def test_counts_are_calibrated_nonzero_and_deterministic(kernels: str, m4_runs: dict[str, fw.FirmwareResult],
                                                         images: np.ndarray) -> None:
    res = m4_runs[kernels]
    assert res.check.identical and res.check.run.passed  # the counted firmware computes the right answer
    counts = res.instructions
    assert len(counts["per_image"]) == NUM_IMAGES and min(counts["per_image"]) > 10_000
    cal = counts["calibration"]
    assert abs(cal["instructions_per_tick"] / 40.0 - 1) < fw.CALIBRATION_TOLERANCE  # 25 MHz SysTick, 1 ns/insn
    # Same ELF, same inputs, a second QEMU run: every count is identical, not merely close.
    again = fw.instruction_counts("cortex-m4", fw.run_firmware(res.project))
    assert again["per_image"] == counts["per_image"] and again["ops"] == counts["ops"]
    assert (res.project / "instructions.json").is_file()


def test_cmsis_nn_needs_fewer_instructions_than_reference(m4_runs: dict[str, fw.FirmwareResult]) -> None:
    ref, cmsis = (m4_runs[k].instructions for k in ("reference", "cmsis-nn"))
    assert cmsis["mean"] < ref["mean"]
    ref_conv = next(r for r in ref["ops"] if r["op"] == "CONV_2D")
    cmsis_conv = next(r for r in cmsis["ops"] if r["op"] == "CONV_2D")
    assert cmsis_conv["instructions"] < ref_conv["instructions"]


@pytest.mark.parametrize("kernels", ["reference", "cmsis-nn"])
def test_per_op_profile_adds_up_to_the_inference(kernels: str, m4_runs: dict[str, fw.FirmwareResult]) -> None:
    counts = m4_runs[kernels].instructions
    ops = {r["op"]: r for r in counts["ops"]}
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "MEAN", "FULLY_CONNECTED"} <= set(ops)
    assert ops["CONV_2D"]["count"] == 2 and ops["DEPTHWISE_CONV_2D"]["count"] == 1
    assert 1 - OPS_TOLERANCE <= counts["ops_total"] / counts["profiled_inference"] <= 1
    # The profiled inference is the first input again: the hooks themselves cost under OPS_TOLERANCE.
    assert abs(counts["profiled_inference"] / counts["per_image"][0] - 1) < OPS_TOLERANCE
    assert abs(sum(r["share"] for r in counts["ops"]) - counts["ops_total_vs_profiled"]) < 1e-6


def test_a_wrong_clock_is_refused(m4_runs: dict[str, fw.FirmwareResult]) -> None:
    run = m4_runs["reference"].check.run
    instr, ticks = run.calibration
    skewed = dataclasses.replace(run, calibration=(instr, round(ticks * 1.25)))  # as if the clock were 20 MHz
    with pytest.raises(EdgeGhostError, match="calibration loop"):
        fw.instruction_counts("cortex-m4", skewed)


def test_40x40x1_input_runs_on_the_host_too(tiny_model: fw.ModelSource, images: np.ndarray, tflm_root: Path,
                                            cache_dir: Path, tmp_path: Path) -> None:
    assert tuple(tiny_model.info["input"]["shape"]) == (1, *SHAPE)
    res = fw.make_firmware(tiny_model, tmp_path / "host", target="host", images=images, run=True,
                           tflm_dir=tflm_root, cache_dir=cache_dir)
    assert res.check.identical and res.instructions is None
    np.testing.assert_array_equal(res.check.outputs, res.check.expected)


def test_bench_cortex_m4_reports_instructions_flash_and_arena(tiny_model: fw.ModelSource, tflm_root: Path,
                                                             tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             m4_runs: dict[str, fw.FirmwareResult]) -> None:
    import json

    from edgeghost.cli import main

    json_path = tmp_path / "m4.json"
    assert main(["bench", "--device", "cortex-m4", "--model", str(tiny_model.tflite), "--kernels", "cmsis-nn",
                 "--mcu-images", "2", "--out", str(tmp_path / "bench"), "--json", str(json_path)]) == 0
    capsys.readouterr()
    (row,) = json.loads(json_path.read_text())["rows"]
    assert row["status"] == "ok" and row["checks"]["firmware_equals_tflm_python"] is True
    # The bench row is the same measurement as `firmware --run` on the same ELF and inputs: same count.
    direct = m4_runs["cmsis-nn"].instructions
    assert row["instructions"] > 0
    assert abs(row["instructions"] - direct["mean"]) <= 0.001 * direct["mean"]
    assert row["flash_kib"] > 0 and row["arena_kib"] > 0


@pytest.mark.parametrize("target,kernels", [("host", "reference"), ("cortex-m4", "cmsis-nn")])
def test_int16x8_firmware_reproduces_tflm(target: str, kernels: str, tiny_model_int16x8: fw.ModelSource,
                                          tiny_model: fw.ModelSource, images: np.ndarray, tflm_root: Path,
                                          cache_dir: Path, m4_runs: dict[str, fw.FirmwareResult],
                                          tmp_path: Path) -> None:
    """The 16-bit-activation model through the same firmware (``ModelIo`` = int16_t): every int16 score equals the
    TFLite-Micro Python interpreter's on the host program and under QEMU with CMSIS-NN's int16 kernels, and it
    costs more arena and instructions than the int8 model of the same network."""
    assert tiny_model_int16x8.info["dtype"] == "int16"
    res = fw.make_firmware(tiny_model_int16x8, tmp_path / target, target=target, kernels=kernels, images=images,
                           run=True, tflm_dir=tflm_root, cache_dir=cache_dir)
    assert res.check.identical and res.check.run.passed is not False
    np.testing.assert_array_equal(res.check.outputs, res.check.expected)
    assert np.abs(res.check.outputs).max() > 127  # int16 scores arrive whole, not cut to int8
    assert "using ModelIo = int16_t;" in (res.project / "src/model_settings.h").read_text()
    assert "_INT8()" not in (res.project / "src/model_ops.h").read_text()
    assert res.model.info["arena_bytes"] > tiny_model.info["arena_bytes"]
    if target == "cortex-m4":
        assert res.instructions["mean"] > m4_runs[kernels].instructions["mean"]


def test_mlperf_harness_refuses_an_int16x8_model(tiny_model_int16x8: fw.ModelSource, tmp_path: Path) -> None:
    with pytest.raises(EdgeGhostError, match="MLPerf Tiny harness runs int8 models"):
        fw.generate_firmware(tiny_model_int16x8, tmp_path / "mlperf", target="mlperf-tiny")
