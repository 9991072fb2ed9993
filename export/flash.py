"""Flash a built bare-metal project onto its board and check what it prints over the serial console.

``flash_firmware(project, probe="stlink"|"openocd", port=None)`` is the one entry point (``edgeghost flash``):
it opens the board's serial port first (so nothing printed after reset is lost), writes the image with Debian's
``st-flash`` (``stlink-tools``) or ``openocd``, which also reset the chip, then reads the console until the
firmware's verdict line and checks every int8 output against the TFLite-Micro Python interpreter's outputs
saved in the project (``expected_outputs.npy``). On a board the SysTick ticks are processor cycles: the result
carries cycles and milliseconds per inference at the clock the firmware reports having set up.

The pieces are separate so that everything but the probe can be checked without hardware:
:func:`flash_commands` (what would run), :func:`read_console` (any tty: a USB CDC port or a pty) and
:func:`check_board_log` (a console log against the project's reference outputs).
"""

from __future__ import annotations

import glob
import json
import os
import re
import select
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import EdgeGhostError
from .firmware import EXPECTED_OUTPUTS, get_target, parse_costs, parse_results

PROBES = ("stlink", "openocd")
# tool that flashes | Debian package | tool that lists attached probes (stlink only)
_TOOLS = {"stlink": ("st-flash", "stlink-tools"), "openocd": ("openocd", "openocd")}
FLASH_BASE = 0x08000000  # where every STM32 boots from (main flash)
BAUD = 115200
# The firmware's last line: "PASS: 4 of 4 outputs ..." / "FAIL: ..."; a fault handler prints "fault: ...".
_VERDICT = re.compile(r"^(PASS|FAIL): .*$|^fault: .*$", re.M)
_CLOCK = re.compile(r"^clock hz=(\d+) source=(.*)$", re.M)
_SERIAL_GLOBS = ("/dev/serial/by-id/*STLINK*", "/dev/serial/by-id/*STM32*", "/dev/ttyACM*")


@dataclass(frozen=True)
class BoardRun:
    """What a board printed, checked: outputs vs the reference, its verdict, its clock and cost per inference."""

    outputs: np.ndarray  # int8 N×classes from the console
    expected: np.ndarray  # int8 N×classes of the TFLite-Micro Python interpreter (saved at generation)
    identical: bool
    passed: bool  # the firmware's own verdict line said PASS
    clock_hz: int  # the processor clock the firmware reports (0: unknown)
    clock_source: str
    cycles: tuple[int, ...]  # SysTick ticks per inference = processor cycles on hardware
    log: str

    @property
    def ms(self) -> tuple[float, ...]:
        """Milliseconds per inference at the reported clock (empty when the clock is unknown)."""
        return tuple(1e3 * c / self.clock_hz for c in self.cycles) if self.clock_hz else ()


def _project_facts(project: Path) -> dict:
    facts_file = project / "edgeghost_firmware.json"
    if not facts_file.is_file():
        raise EdgeGhostError(f"{project} is not a firmware project (no edgeghost_firmware.json): make one with "
                             "`edgeghost firmware --target nucleo-l4r5zi --out DIR --build`")
    return json.loads(facts_file.read_text())


def flash_commands(project: str | Path, probe: str = "stlink") -> list[list[str]]:
    """The commands that write ``project``'s image to its board and reset it (nothing is run)."""
    project = Path(project)
    spec = get_target(_project_facts(project)["target"])
    if not spec.bare_metal or not spec.openocd_target:
        raise EdgeGhostError(f"target {spec.name} is not flashed with a probe (flash targets: nucleo-f446re, "
                             "nucleo-l4r5zi, netduinoplus2)")
    if probe not in PROBES:
        raise EdgeGhostError(f"unknown probe {probe!r}; choose one of {', '.join(PROBES)}")
    elf, image = project / "build/edgeghost_fw.elf", project / "build/edgeghost_fw.bin"
    if probe == "stlink":
        return [["st-flash", "--reset", "write", str(image), f"0x{FLASH_BASE:08x}"]]
    # openocd's `program` erases, writes, verifies and resets; the ELF carries its own load addresses.
    return [["openocd", "-f", "interface/stlink.cfg", "-f", spec.openocd_target,
             "-c", f"program {elf} verify reset exit"]]


def _check_tool(probe: str) -> None:
    tool, package = _TOOLS[probe]
    if shutil.which(tool) is None:
        raise EdgeGhostError(f"{tool} not found: install it with `sudo apt-get install {package}`")


def _probe_attached(probe: str) -> None:
    """One clear line when no ST-LINK is connected (st-info lists them; openocd says so when it fails)."""
    if probe == "stlink":
        out = subprocess.run(["st-info", "--probe"], capture_output=True, text=True, check=False)
        found = re.search(r"Found (\d+) stlink programmers", out.stdout + out.stderr)
        if found is None or int(found.group(1)) == 0:
            raise EdgeGhostError("no ST-LINK probe found (st-info --probe): connect the board's ST-LINK USB port "
                                 "(and check its udev permissions)")


def find_serial_port() -> str:
    """The ST-LINK virtual COM port: /dev/serial/by-id/*STLINK* (udev), else the first /dev/ttyACM*."""
    for pattern in _SERIAL_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    raise EdgeGhostError(f"no serial port found (looked for {', '.join(_SERIAL_GLOBS)}): pass --port")


def open_console(port: str, baud: int = BAUD) -> int:
    """Opens a tty raw at ``baud`` 8N1 and drops what was already buffered; returns the descriptor."""
    import termios
    import tty

    try:
        fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as err:
        raise EdgeGhostError(f"cannot open serial port {port}: {err.strerror}") from err
    try:
        tty.setraw(fd)
        attrs = termios.tcgetattr(fd)
        speed = getattr(termios, f"B{baud}", None)
        if speed is None:
            raise EdgeGhostError(f"unsupported baud rate {baud}")
        attrs[4] = attrs[5] = speed  # ispeed, ospeed
        attrs[2] = (attrs[2] & ~(termios.PARENB | termios.CSTOPB | termios.CSIZE)) | termios.CS8 | termios.CLOCAL \
            | termios.CREAD
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
        termios.tcflush(fd, termios.TCIFLUSH)
    except termios.error as err:
        os.close(fd)
        raise EdgeGhostError(f"{port} is not a serial port ({err.args[-1]})") from err
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_console(fd: int, *, timeout: float = 120.0) -> str:
    """Console text from an open tty up to and including the firmware's verdict line (or a fault line).
    Times out with one clear line naming the last thing the board said."""
    deadline = time.monotonic() + timeout
    data = b""
    while True:
        text = data.decode("utf-8", "replace").replace("\r", "")
        if _VERDICT.search(text):
            return text
        left = deadline - time.monotonic()
        if left <= 0:
            last = text.strip().splitlines()[-1] if text.strip() else "nothing"
            raise EdgeGhostError(f"no verdict line from the board within {timeout:.0f} s (last line: {last!r}); "
                                 "is the right port open and the board reset?")
        ready, _, _ = select.select([fd], [], [], min(left, 0.5))
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except BlockingIOError:
                continue
            except OSError as err:  # EIO: the other end closed (a pty whose writer left)
                raise EdgeGhostError(f"serial port closed before the verdict line: {err.strerror}") from err
            data += chunk


def check_board_log(project: str | Path, log: str) -> BoardRun:
    """A board's console log against the project's reference outputs (``expected_outputs.npy``)."""
    project = Path(project)
    expected_file = project / EXPECTED_OUTPUTS
    if not expected_file.is_file():
        raise EdgeGhostError(f"{expected_file} is missing: regenerate the project with `edgeghost firmware`")
    expected = np.load(expected_file)
    log = log.replace("\r", "")
    fault = re.search(r"^fault: .*$", log, re.M)
    if fault:
        raise EdgeGhostError(f"the board stopped with {fault.group(0)!r}")
    outputs = parse_results(log)
    identical = outputs.shape == expected.shape and bool(np.array_equal(outputs, expected))
    verdict = _VERDICT.search(log)
    clock = _CLOCK.search(log)
    return BoardRun(outputs, expected, identical, bool(verdict and verdict.group(0).startswith("PASS")),
                    int(clock.group(1)) if clock else 0, clock.group(2) if clock else "unknown",
                    parse_costs(log)["ticks"], log)


def flash_firmware(
    project: str | Path, *, probe: str = "stlink", port: str | None = None, read: bool = True,
    timeout: float = 120.0,
) -> BoardRun | None:
    """Flash ``project`` (built with ``edgeghost firmware --build``) and, with ``read``, check its console.

    Fails with one line when the tool is missing (naming the Debian package), no probe is attached, the project
    is not built, or the board says nothing within ``timeout`` seconds.
    """
    project = Path(project)
    commands = flash_commands(project, probe)
    for path in (project / "build/edgeghost_fw.elf", project / "build/edgeghost_fw.bin"):
        if not path.is_file():
            raise EdgeGhostError(f"{path} is missing: build the project first (`edgeghost firmware ... --build`)")
    _check_tool(probe)
    _probe_attached(probe)
    fd = open_console(port or find_serial_port()) if read else None
    try:
        for cmd in commands:
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                out = proc.stdout + proc.stderr
                if re.search(r"open failed|Couldn't find any ST-Link|No ST-LINK|unable to open", out, re.I):
                    raise EdgeGhostError(f"{cmd[0]} found no ST-LINK probe: connect the board's ST-LINK USB port")
                last = out.strip().splitlines()[-1] if out.strip() else f"exit {proc.returncode}"
                raise EdgeGhostError(f"{cmd[0]} failed: {last}")
        if fd is None:
            return None
        return check_board_log(project, read_console(fd, timeout=timeout))
    finally:
        if fd is not None:
            os.close(fd)
