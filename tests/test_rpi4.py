"""`edgeghost bench --device rpi4` and `edgeghost device` over a real SSH connection to an emulated Pi 4.

The "Pi" is a real sshd on 127.0.0.1 (throwaway host and client keys, key-only, stopped by PID) whose remote
Python is a real aarch64 Python 3.11 from a Debian bookworm arm64 root (mmdebstrap) running the real aarch64
wheels under qemu-user, so the runner that goes to a Pi is the code under test. Board facts (device-tree
model, Cortex-A72 cpuinfo, thermal zone, governor, vcgencmd) are fixture files. Emulated latency means
nothing; the tests check the path and that the numbers agree with the host.

The root is built once into ``$EDGEGHOST_RPI_ROOTFS`` (default ``~/.cache/edgeghost-test/rpi4-bookworm``)
and reused: about 20 s and 300 MB from scratch. Needs Debian packages qemu-user, mmdebstrap,
openssh-server, openssh-client.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import pytest

from edgeghost.cli import main
from edgeghost.runtime.rpi4 import download_wheels

PI_CPUINFO = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x0
CPU part\t: 0xd08
CPU revision\t: 3

Hardware\t: BCM2835
Revision\t: c03114
Model\t\t: Raspberry Pi 4 Model B Rev 1.4
"""
BOARD = "Raspberry Pi 4 Model B Rev 1.4"
THROTTLED = "0x50005"  # under-voltage and throttled now (bits 0, 2) and since boot (16, 18)
HOST_TOOLS = ("mmdebstrap", "qemu-aarch64", "ssh", "scp", "ssh-keygen")
SSHD = "/usr/sbin/sshd"


def _require_tools() -> None:
    missing = [t for t in HOST_TOOLS if shutil.which(t) is None] + ([] if Path(SSHD).is_file() else [SSHD])
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: apt-get install qemu-user mmdebstrap openssh-server "
                    "openssh-client", pytrace=False)


def _build_root(cache: Path) -> None:
    """Debian bookworm arm64 with python3.11 (no root mounts: --variant=extract) + the aarch64 wheels of
    numpy, ai-edge-litert and onnxruntime in the host's versions, installed as system packages."""
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=cache.parent))
    try:
        root, wheels = tmp / "rootfs", tmp / "wheels"
        subprocess.run(["mmdebstrap", "--quiet", "--variant=extract", "--arch=arm64",
                        "--include=python3.11,libstdc++6,libgcc-s1", "bookworm", str(root)],
                       check=True, capture_output=True)
        wheels.mkdir()
        download_wheels(wheels, machine="aarch64", python=(3, 11), runtimes=("litert", "onnxruntime"),
                        pins={"ai-edge-litert": version("ai-edge-litert"), "onnxruntime": version("onnxruntime"),
                              "numpy": version("numpy")})
        site = root / "usr/lib/python3/dist-packages"
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--no-index",
                        "--find-links", str(wheels), "--target", str(site), "--only-binary=:all:",
                        "--python-version", "3.11", "--implementation", "cp", "--platform", "manylinux_2_28_aarch64",
                        "--platform", "manylinux_2_27_aarch64", "--platform", "manylinux2014_aarch64",
                        "numpy", "ai-edge-litert", "onnxruntime"], check=True, capture_output=True)
        # Board facts as a Pi 4 exposes them. qemu -L serves these to the emulated process; the cpuinfo
        # matters: with the x86 one passed through, both runtimes crash at start-up.
        (root / "proc/device-tree").mkdir(parents=True)
        (root / "proc/cpuinfo").write_text(PI_CPUINFO)
        (root / "proc/device-tree/model").write_bytes(BOARD.encode() + b"\0")
        for rel, text in (("sys/class/thermal/thermal_zone0/temp", "48312\n"),
                          ("sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", "ondemand\n"),
                          ("sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq", "1800000\n")):
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
        if cache.exists():
            shutil.rmtree(cache)
        tmp.rename(cache)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@pytest.fixture(scope="module")
def pi(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The emulated Pi: {root, wheels, python (remote command), bin}."""
    _require_tools()
    stamp = f"v1 litert {version('ai-edge-litert')} onnxruntime {version('onnxruntime')} numpy {version('numpy')}"
    cache = Path(os.environ.get("EDGEGHOST_RPI_ROOTFS") or Path.home() / ".cache/edgeghost-test/rpi4-bookworm")
    cache.parent.mkdir(parents=True, exist_ok=True)
    marker = cache / "complete"
    if not marker.is_file() or marker.read_text() != stamp:
        _build_root(cache)
        marker.write_text(stamp)
    root = cache / "rootfs"
    # Host-side helpers (per test session): vcgencmd reporting a throttled board, and the launcher that makes
    # "python" on the device an emulated aarch64 Python seeing the Pi's files.
    bin_dir = tmp_path_factory.mktemp("pi-bin")
    (bin_dir / "vcgencmd").write_text(f"#!/bin/sh\necho throttled={THROTTLED}\n")
    (bin_dir / "pi-run").write_text(
        f"#!/bin/sh\nexport QEMU_CPU=cortex-a72 PATH={bin_dir}:$PATH\nexec qemu-aarch64 -L {root} \"$@\"\n"
    )
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    return {"root": root, "wheels": cache / "wheels", "bin": bin_dir,
            "python": f"{bin_dir}/pi-run {root}/usr/bin/python3.11"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A real sshd on 127.0.0.1: fresh host and client keys, public-key login only."""
    _require_tools()
    d = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "client_key", "other_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True)
    shutil.copy(d / "client_key.pub", d / "authorized_keys")
    port = _free_port()
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\n"
        "PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "PermitRootLogin prohibit-password\nStrictModes no\n"
        f"PidFile {d}/sshd.pid\nSubsystem sftp /usr/lib/openssh/sftp-server\n"
    )
    if os.geteuid() == 0:  # sshd started by root insists on its privilege-separation directory
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    log = open(d / "sshd.log", "w")
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")], stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                log.close()
                pytest.fail(f"sshd did not start: {(d / 'sshd.log').read_text()}", pytrace=False)
            time.sleep(0.05)
    host_pub = (d / "host_key.pub").read_text().split()
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    yield {"dir": d, "port": port, "user": getpass.getuser(), "known_hosts": d / "known_hosts"}
    proc.terminate()  # by PID: this sshd only
    proc.wait(timeout=10)
    log.close()


def _ssh_args(sshd: dict, *, key: str = "client_key", known_hosts: Path | None = None) -> list[str]:
    return ["--host", f"{sshd['user']}@127.0.0.1", "--port", str(sshd["port"]),
            "--identity", str(sshd["dir"] / key), "--known-hosts", str(known_hosts or sshd["known_hosts"])]


def _remote_dirs() -> set[str]:
    """The runner's remote temp folders (``mktemp -d /tmp/edgeghost-XXXXXXXX``; the "device" is this host)."""
    return {p.name for p in Path("/tmp").glob("edgeghost-*") if re.fullmatch(r"edgeghost-[A-Za-z0-9]{8}", p.name)}


def test_rpi4_bench_over_ssh_matches_host(pi: dict, sshd: dict, shared: dict, tmp_path: Path, capsys) -> None:
    known_before = sshd["known_hosts"].read_text()
    dirs_before = _remote_dirs()
    rc = main(["bench", "--device", "rpi4", *_ssh_args(sshd), "--remote-python", pi["python"],
               "--exports", str(shared["export"]), "--data-dir", str(shared["data"]), "--eval-samples", "12",
               "--threads", "1", "--warmup", "1", "--min-time", "0.05", "--min-runs", "3", "--max-temp", "80",
               "--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    doc = json.loads((tmp_path / "results.json").read_text())
    rows = {r["format"]: r for r in doc["rows"]}
    assert list(rows) == ["onnx", "tflite_fp32", "tflite_int8"]
    for fmt, r in rows.items():
        assert r["status"] == "ok", (fmt, r["error"])
        assert r["latency"]["runs"] >= 3 and r["eval_samples"] == 12
        assert r["checks"]["throttled_during_run"] is True  # the board's vcgencmd says "throttled now"
    assert (rows["tflite_int8"]["backend"], rows["onnx"]["backend"]) == ("litert", "onnxruntime")
    # The aarch64 runtimes on the "Pi" agree with the host: int8 reference kernels bit for bit, XNNPACK's
    # ARM and x86 int8 kernels within one LSB, float formats to rounding.
    assert rows["tflite_int8"]["checks"]["int8_reference_equals_host"] is True
    assert rows["tflite_int8"]["checks"]["max_abs_diff_vs_host"] <= 1
    assert rows["tflite_fp32"]["checks"]["max_abs_diff_vs_host"] < 1e-3
    assert rows["onnx"]["checks"]["max_abs_diff_vs_host"] < 1e-3

    from edgeghost.data import load_split
    from edgeghost.runtime import load_runner

    test = load_split("fashion_mnist", "test", shared["data"]).subset(12)
    host = load_runner(shared["export"] / "model_int8.tflite").predict(test.images)
    assert rows["tflite_int8"]["top1_pct"] == pytest.approx(100.0 * float((host.argmax(1) == test.labels).mean()))

    remote = doc["remote"]
    for facts in (remote["device_before"], remote["device_after"]):
        # Decoded by the runner, not echoed: the NUL-terminated device-tree string, the CPU part of the
        # emulated core, millidegrees as °C, and the current-state bits of 0x50005 (bits 0 and 2; 16 and 18
        # are the "since boot" copies).
        assert (facts["board"], facts["machine"], facts["cpu_parts"]) == (BOARD, "aarch64", ["0xd08"])
        assert (facts["governor"], facts["temperature_c"]) == ("ondemand", 48.312)
        assert facts["throttled_now"] == ["under-voltage", "throttled"]
    assert remote["check"]["python"].startswith("3.11")
    assert remote["check"]["runtimes"]["litert"] == version("ai-edge-litert")
    assert BOARD in captured.out and "THROTTLED" in captured.out and "governor is not 'performance'" in captured.out
    assert _remote_dirs() <= dirs_before  # the remote temp folder is gone
    assert sshd["known_hosts"].read_text() == known_before


def test_ssh_failures_are_one_clear_error_each(pi: dict, sshd: dict, tmp_path: Path, capsys) -> None:
    def fails(argv: list[str], message: str) -> None:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err

    check = ["device", "check", "--remote-python", "/nonexistent/python3"]
    # Host key unknown: refused unless first contact is accepted explicitly.
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    fails([*check, *_ssh_args(sshd, known_hosts=empty)], "unknown host key")
    assert empty.read_text() == ""
    # With --accept-new-host-key the key is recorded; the run then stops at the missing Python.
    fails([*check, *_ssh_args(sshd, known_hosts=empty), "--accept-new-host-key"], "no Python at")
    assert (sshd["dir"] / "host_key.pub").read_text().split()[1] in empty.read_text()
    # A changed host key is refused even with --accept-new-host-key.
    other = (sshd["dir"] / "other_key.pub").read_text().split()
    wrong = tmp_path / "wrong_known_hosts"
    wrong.write_text(f"[127.0.0.1]:{sshd['port']} {other[0]} {other[1]}\n")
    fails([*check, *_ssh_args(sshd, known_hosts=wrong), "--accept-new-host-key"], "host key mismatch")
    fails([*check, *_ssh_args(sshd, key="other_key")], "authentication failed")
    closed = _free_port()
    fails(["device", "check", "--host", "me@127.0.0.1", "--port", str(closed)], "cannot reach")
    # A Python without the packages (-S: no site-packages) gets the exact install command.
    fails(["device", "check", *_ssh_args(sshd), "--remote-python", f"{pi['python']} -S"],
          "numpy is missing")


def test_device_setup_offline_venv_then_missing_runtime(pi: dict, sshd: dict, shared: dict, tmp_path: Path,
                                                        capsys) -> None:
    venv = tmp_path / "venv"
    rc = main(["device", "setup", *_ssh_args(sshd), "--remote-python", pi["python"], "--venv", str(venv),
               "--runtimes", "litert", "--wheels-dir", str(pi["wheels"]), "--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    report = json.loads(captured.out.strip().splitlines()[-1])
    assert report["runtimes"]["litert"] == version("ai-edge-litert") and report["runtimes"]["onnxruntime"] is None
    assert report["python_command"].endswith(f"{venv}/bin/python") and report["device"]["board"] == BOARD
    assert (venv / "pyvenv.cfg").is_file()
    # The venv has LiteRT only: an ONNX run stops before starting, naming the package and the command.
    venv_python = f"{pi['bin']}/pi-run {venv}/bin/python"
    rc = main(["bench", "--device", "rpi4", *_ssh_args(sshd), "--remote-python", venv_python,
               "--model", str(shared["export"] / "model.onnx"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and "onnxruntime missing" in err and "edgeghost device setup" in err
