"""STM32 targets and ``edgeghost flash``.

Truths checked: the STM32F4 board code (clock set-up, USART console, semihosting exit) runs under QEMU
``netduinoplus2`` and its int8 outputs equal the TFLite-Micro Python interpreter's, printed over the emulated
USART; its instruction counts calibrate against QEMU's 168 MHz SysTick. The NUCLEO projects link for their
chips' memory maps (vectors at the start of flash, image within the chip's flash) and a model whose arena
cannot fit the chip is refused before anything is written. ``edgeghost flash`` names the exact commands it runs,
fails with one line when the tool or the probe is missing (real st-flash/st-info/openocd, no board attached),
and its console reader, fed a real firmware log through a pty, checks outputs, verdict and cycles — and
notices a changed output.

Needs the Arm toolchain, qemu-system-arm and a TFLite-Micro tree; the probe tests need stlink-tools and openocd
(the README's test command installs them).
"""

from __future__ import annotations

import dataclasses
import os
import pty
import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edgeghost.cli import main
from edgeghost.errors import EdgeGhostError
from edgeghost.export import firmware as fw
from edgeghost.export import flash

NUM_IMAGES = 3


@pytest.fixture(scope="module")
def images(tiny_model: fw.ModelSource) -> np.ndarray:
    return fw.sample_images(tiny_model, num=NUM_IMAGES)[0]


@pytest.fixture(scope="module")
def netduino(tiny_model: fw.ModelSource, images: np.ndarray, tflm_root: Path, cache_dir: Path,
             tmp_path_factory: pytest.TempPathFactory) -> fw.FirmwareResult:
    return fw.make_firmware(tiny_model, tmp_path_factory.mktemp("n2") / "fw", target="netduinoplus2",
                            kernels="cmsis-nn", images=images, run=True, tflm_dir=tflm_root, cache_dir=cache_dir)


@pytest.fixture(scope="module")
def nucleo(tiny_model: fw.ModelSource, images: np.ndarray, tflm_root: Path, cache_dir: Path,
           tmp_path_factory: pytest.TempPathFactory) -> dict[str, fw.FirmwareResult]:
    out = tmp_path_factory.mktemp("nucleo")
    return {t: fw.make_firmware(tiny_model, out / t, target=t, kernels="cmsis-nn", images=images, build=True,
                                tflm_dir=tflm_root, cache_dir=cache_dir)
            for t in fw.BOARD_TARGETS}


def test_stm32f4_code_runs_bit_identically_under_qemu_netduinoplus2(netduino: fw.FirmwareResult) -> None:
    run = netduino.check.run
    assert netduino.check.identical and run.passed
    assert run.outputs.shape == (NUM_IMAGES, 10)
    assert "PASS: 3 of 3" in run.log
    # Printed by the USART, not by semihosting: with QEMU's serial port unplugged the same ELF says nothing,
    # yet still exits 0 (its verdict) through the semihosting exit of the emulator build.
    cmd = [a if a != "stdio" else "none" for a in fw.qemu_command("netduinoplus2", netduino.binary)]
    silent = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    assert silent.returncode == 0 and b"result" not in silent.stdout + silent.stderr
    # QEMU models no RCC: the bounded waits give up and the firmware says it stayed on the HSI.
    assert "clock hz=16000000 source=hsi (HSIRDY never set" in run.log
    counts = netduino.instructions
    assert counts["calibration"]["instructions_per_tick"] == pytest.approx(1e9 / 168e6, rel=1e-3)
    assert min(counts["per_image"]) > 10_000


def test_same_instructions_as_the_mps2_cortex_m4(netduino: fw.FirmwareResult, tiny_model: fw.ModelSource,
                                                images: np.ndarray, tflm_root: Path, cache_dir: Path,
                                                tmp_path: Path) -> None:
    # Same core, same compiler flags, same kernels: only the board layer differs, and it is outside the timed
    # inference, so the counts agree to within the timers' resolution (6 and 40 instructions per tick).
    m4 = fw.make_firmware(tiny_model, tmp_path / "m4", target="cortex-m4", kernels="cmsis-nn", images=images,
                          run=True, tflm_dir=tflm_root, cache_dir=cache_dir)
    assert np.array_equal(m4.check.outputs, netduino.check.outputs)
    for a, b in zip(m4.instructions["per_image"], netduino.instructions["per_image"]):
        assert abs(a - b) <= 0.001 * a + 80


def test_nucleo_projects_link_for_their_chips(nucleo: dict[str, fw.FirmwareResult]) -> None:
    for target, res in nucleo.items():
        spec = fw.get_target(target)
        elf = res.binary
        header = subprocess.run(["arm-none-eabi-readelf", "-S", str(elf)], capture_output=True, text=True,
                                check=True).stdout
        vectors = next(line for line in header.splitlines() if ".vectors" in line)
        assert " 08000000 " in vectors, vectors  # boots from the start of main flash
        image = elf.with_suffix(".bin")
        assert image.is_file() and res.size["flash"] <= image.stat().st_size <= spec.flash_bytes
        assert res.size["ram"] + 0xC000 <= spec.ram_bytes
        facts = (res.project / "board.mk").read_text()
        assert spec.board_defines in facts and not list((res.project / "src").glob("board_semihosting.cc"))
    with pytest.raises(EdgeGhostError, match="runs on the board"):
        fw.make_firmware(next(iter(nucleo.values())).model, Path("unused"), target="nucleo-f446re", run=True)


def test_a_model_too_big_for_the_chip_is_refused_before_writing(tiny_model: fw.ModelSource, images: np.ndarray,
                                                                tmp_path: Path) -> None:
    big = dataclasses.replace(tiny_model, info={**tiny_model.info, "arena_bytes": 200_000})
    with pytest.raises(EdgeGhostError, match="nucleo-f446re has 128 KiB SRAM"):
        fw.generate_firmware(big, tmp_path / "f446", target="nucleo-f446re", test_images=images)
    assert not (tmp_path / "f446").exists()
    fw.generate_firmware(big, tmp_path / "l4r5", target="nucleo-l4r5zi", test_images=images)  # 640 KiB fits


def test_flash_commands(nucleo: dict[str, fw.FirmwareResult]) -> None:
    f446, l4 = nucleo["nucleo-f446re"].project, nucleo["nucleo-l4r5zi"].project
    assert flash.flash_commands(f446, "stlink") == [
        ["st-flash", "--reset", "write", str(f446 / "build/edgeghost_fw.bin"), "0x08000000"]]
    assert flash.flash_commands(l4, "openocd") == [
        ["openocd", "-f", "interface/stlink.cfg", "-f", "target/stm32l4x.cfg",
         "-c", f"program {l4 / 'build/edgeghost_fw.elf'} verify reset exit"]]
    with pytest.raises(EdgeGhostError, match="unknown probe"):
        flash.flash_commands(f446, "jlink")


def test_flash_without_tool_names_the_package(nucleo: dict[str, fw.FirmwareResult], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a machine without the tools
    for probe, package in (("stlink", "stlink-tools"), ("openocd", "openocd")):
        with pytest.raises(EdgeGhostError, match=f"apt-get install {package}"):
            flash.flash_firmware(nucleo["nucleo-f446re"].project, probe=probe, read=False)


@pytest.mark.skipif(not (shutil.which("st-info") and shutil.which("openocd")), reason="stlink-tools/openocd absent")
def test_flash_without_a_board_says_so_in_one_line(nucleo: dict[str, fw.FirmwareResult],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    project = nucleo["nucleo-l4r5zi"].project
    assert main(["flash", "--project", str(project), "--no-read"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no ST-LINK probe found" in err
    leader, follower = pty.openpty()  # openocd needs the console open first; a pty stands in for the port
    try:
        with pytest.raises(EdgeGhostError, match="openocd found no ST-LINK probe"):
            flash.flash_firmware(project, probe="openocd", port=os.ttyname(follower))
    finally:
        os.close(leader)
        os.close(follower)


def _replay(log: str, tmp: Path, *, corrupt: bool = False) -> flash.BoardRun:
    """Writes a console log into a pty in small chunks, as a UART delivers it, and reads it back with the
    console reader of `edgeghost flash`."""
    if corrupt:  # one score of the first result changed
        head, tail = log.split(" q=", 1)
        first, rest = tail.split(",", 1)
        log = f"{head} q={int(first) + 1},{rest}"
    leader, follower = pty.openpty()
    port = os.ttyname(follower)
    fd = flash.open_console(port)
    data = log.encode()

    def write() -> None:
        for i in range(0, len(data), 64):
            os.write(leader, data[i:i + 64])

    writer = threading.Thread(target=write)
    try:
        writer.start()
        text = flash.read_console(fd, timeout=30)
        writer.join()
        return flash.check_board_log(tmp, text)
    finally:
        os.close(fd)
        os.close(leader)
        os.close(follower)


def test_console_reader_checks_a_real_firmware_log_through_a_pty(netduino: fw.FirmwareResult) -> None:
    log = netduino.check.run.log
    ok = _replay(log, netduino.project)
    assert ok.identical and ok.passed and ok.outputs.shape == (NUM_IMAGES, 10)
    assert ok.cycles == netduino.check.run.ticks and ok.clock_hz == 16_000_000
    assert ok.ms[0] == pytest.approx(1e3 * ok.cycles[0] / 16e6)
    bad = _replay(log, netduino.project, corrupt=True)
    assert not bad.identical


def test_console_reader_times_out_with_the_last_line() -> None:
    leader, follower = pty.openpty()
    fd = flash.open_console(os.ttyname(follower))
    try:
        os.write(leader, b"clock hz=180000000 source=pll\r\n")
        with pytest.raises(EdgeGhostError, match="no verdict line .* 'clock hz=180000000 source=pll'"):
            flash.read_console(fd, timeout=1.0)
    finally:
        os.close(fd)
        os.close(leader)
        os.close(follower)


def test_mlperf_tiny_harness_over_the_usart_under_qemu(tiny_model: fw.ModelSource, images: np.ndarray,
                                                       tflm_root: Path, cache_dir: Path, tmp_path: Path,
                                                       mlperf) -> None:
    # The same EEMBC runner exchange as the host harness, typed into the emulated STM32F405's USART.
    project = fw.generate_firmware(tiny_model, tmp_path / "mlperf", target="netduinoplus2", kernels="cmsis-nn",
                                   app="mlperf-tiny")
    assert not (project / "src/main.cc").exists() and (project / "src/io_board.cc").is_file()
    elf = fw.build_firmware(project, tflm_dir=tflm_root, cache_dir=cache_dir)
    pixels = images[0].reshape(-1)
    proc = subprocess.Popen(fw.qemu_command("netduinoplus2", elf, icount=False), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    out = b""

    def read_until_ready(count: int, deadline: float) -> None:
        nonlocal out
        while out.count(b"m-ready") < count:
            assert time.monotonic() < deadline and proc.poll() is None, out[-300:]
            chunk = proc.stdout.read()
            if chunk:
                out += chunk
            else:
                time.sleep(0.02)

    try:
        os.set_blocking(proc.stdout.fileno(), False)
        deadline = time.monotonic() + 120
        # As the EEMBC runner does: wait for m-ready before each command (a UART has no flow control, and the
        # emulated USART drops what arrives before the firmware enables its receiver).
        read_until_ready(1, deadline)
        for i, command in enumerate(mlperf.commands(pixels)):
            proc.stdin.write(f"{command}%".encode())
            proc.stdin.flush()
            read_until_ready(i + 2, deadline)
    finally:
        proc.kill()  # the harness listens forever, as on a board
        proc.wait()
    laps = mlperf.check(out.decode(), tiny_model, pixels)
    assert laps[1] > laps[0]  # the SysTick timer advanced over the timed window
    with pytest.raises(EdgeGhostError, match="MLPerf Tiny harness runs on the host"):
        fw.generate_firmware(tiny_model, tmp_path / "m4", target="cortex-m4", app="mlperf-tiny")
