"""A Raspberry Pi (or any Linux board) over SSH: check it, prepare it, run models on it.

The device side is ``remote_runner.py`` with the runtime core (``core.py``) inlined: one self-contained file
(stdlib + numpy + ai-edge-litert, onnxruntime or tflite-runtime), see :func:`runner_source`. A run copies that
file, the model files and a batch of eval images to a fresh temp folder on the device, runs it, reads the JSON
result back and removes the folder.

``setup_device`` makes a venv on the device (Raspberry Pi OS bookworm refuses system-wide pip) and fills
it from wheels the host downloads for the device's platform, so the device needs no internet.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EdgeGhostError
from ..sysinfo import tool_versions
from .remote_runner import EXIT_MISSING_RUNTIME, RUNTIMES, SCHEMA
from .ssh import SSHTarget

RUNNER = Path(__file__).with_name("remote_runner.py")
CORE = Path(__file__).with_name("core.py")
_CORE_BLOCK = re.compile(r"^# <core>.*?^# </core>\n", re.S | re.M)
DEFAULT_VENV = "~/.edgeghost/venv"
# pip platform tags per `uname -m`. ai-edge-litert's aarch64 wheel is tagged manylinux_2_27 (not 2014), so
# every tag is listed explicitly. 32-bit Raspberry Pi OS (armv7l) has only tflite-runtime 2.14.
PLATFORM_TAGS = {
    "aarch64": ("manylinux_2_28_aarch64", "manylinux_2_27_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64"),
    "armv7l": ("manylinux2014_armv7l", "linux_armv7l"),
}
DEFAULT_RUNTIMES = {"aarch64": ("litert", "onnxruntime"), "armv7l": ("tflite_runtime",)}


def runner_source() -> str:
    """The file that runs on the device: ``remote_runner.py`` with its core import replaced by the text of
    ``core.py`` (less its ``__future__`` import, which the runner already has at its top)."""
    runner = RUNNER.read_text()
    core = CORE.read_text().replace("from __future__ import annotations\n", "", 1)
    if len(_CORE_BLOCK.findall(runner)) != 1:
        raise EdgeGhostError(f"{RUNNER} lost its '# <core>' ... '# </core>' import block")
    return _CORE_BLOCK.sub(lambda _: "# --- runtime/core.py, inlined ---\n" + core + "# --- end of runtime/core.py ---\n",
                           runner)


def _stage_runner(folder: Path) -> Path:
    path = folder / "remote_runner.py"
    path.write_text(runner_source())
    return path


def _package(runtime: str) -> str:
    return RUNTIMES[runtime][1]


def resolve_python(target: SSHTarget, python: str | None) -> str:
    """The device's Python command: the one given, else the edgeghost venv if it exists, else ``python3``.
    It is a command line run by the remote shell, so a prefix such as ``taskset -c 0-3 python3`` works."""
    if python:
        return python
    proc = target.run(f"test -x {DEFAULT_VENV}/bin/python", check=False, timeout_s=60)
    return f"{DEFAULT_VENV}/bin/python" if proc.returncode == 0 else "python3"


def install_hint(target: SSHTarget, runtimes: tuple[str, ...] | list[str] = ("litert", "onnxruntime")) -> str:
    """The exact commands that give the device what the runner needs."""
    packages = " ".join(["numpy", *(_package(r) for r in runtimes)])
    port = f" --port {target.port}" if target.port else ""
    return (f"edgeghost device setup --host {target.host}{port} --runtimes {','.join(runtimes)}   (or on the "
            f"device: python3 -m venv {DEFAULT_VENV} && {DEFAULT_VENV}/bin/pip install {packages})")


def _runner_error(proc: subprocess.CompletedProcess, target: SSHTarget, python: str) -> EdgeGhostError:
    """One clear error for a remote runner that did not run: no Python, no numpy, no runtime, too old."""
    stderr = proc.stderr.strip()
    tail = (stderr.splitlines() or [f"exit status {proc.returncode}"])[-1]
    if proc.returncode == 127 or "not found" in tail or "No such file" in tail:
        return EdgeGhostError(f"no Python at {python!r} on {target.where} ({tail}); install it with: sudo apt "
                              f"install python3 python3-venv, then: {install_hint(target)}")
    if proc.returncode == EXIT_MISSING_RUNTIME and "missing runtimes:" in tail:
        missing = tail.split("missing runtimes:", 1)[1].split()
        names = ", ".join(_package(r) for r in missing)
        return EdgeGhostError(f"{names} missing on {target.where} ({python}); install: {install_hint(target, missing)}")
    module = re.search(r"No module named '([^'.]+)", stderr)
    if module:
        return EdgeGhostError(f"{module.group(1)} is missing on {target.where} ({python}); install: "
                              f"{install_hint(target)}")
    if "SyntaxError" in stderr or "too old" in tail:
        return EdgeGhostError(f"{python} on {target.where} is too old for the runner (Python 3.9+ needed): {tail}")
    return EdgeGhostError(f"the runner failed on {target.where} ({python}): {tail}")


def python_version(target: SSHTarget, python: str) -> tuple[int, int]:
    proc = target.run(f"{python} -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])'", check=False,
                      timeout_s=120)
    match = re.fullmatch(r"(\d+)\.(\d+)", proc.stdout.strip())
    if proc.returncode != 0 or match is None:
        raise _runner_error(proc, target, python)
    return int(match.group(1)), int(match.group(2))


@dataclass
class RemoteDir:
    """A fresh temp folder on the device, removed on exit (also after errors)."""

    target: SSHTarget

    def __enter__(self) -> str:
        self.path = self.target.run("mktemp -d /tmp/edgeghost-XXXXXXXX", timeout_s=60).stdout.strip()
        if not re.fullmatch(r"/tmp/edgeghost-[A-Za-z0-9]{8}", self.path):
            raise EdgeGhostError(f"unexpected temp folder {self.path!r} on {self.target.where}")
        return self.path

    def __exit__(self, *exc: object) -> None:
        self.target.run(f"rm -rf -- {shlex.quote(self.path)}", check=False, timeout_s=60)


def check_device(target: SSHTarget, *, python: str | None = None) -> dict[str, Any]:
    """Python, numpy, runtime versions and device facts of the device (ships the runner to a temp folder)."""
    python = resolve_python(target, python)
    with tempfile.TemporaryDirectory(prefix="edgeghost-ship-") as tmp, RemoteDir(target) as remote_dir:
        target.put([_stage_runner(Path(tmp))], remote_dir)
        proc = target.run(f"{python} {remote_dir}/remote_runner.py --check", check=False, timeout_s=300)
    if proc.returncode != 0:
        raise _runner_error(proc, target, python)
    report = json.loads(proc.stdout)
    report["python_command"] = python
    return report


def run_on_device(
    target: SSHTarget,
    models: list[tuple[str, str, Path]],
    *,
    images: np.ndarray | None,
    python: str | None = None,
    threads: int = 4,
    warmup: int = 10,
    min_time_s: float = 2.0,
    min_runs: int = 10,
    max_temp_c: float | None = 70.0,
    reference_kernels: bool = False,
    timeout_s: float = 3600,
) -> dict[str, Any]:
    """Run ``models`` (name, format, local file) on the device with the remote runner; returns its result:
    device facts before/after, runtime versions (``check``) and per model the info, raw outputs for
    ``images``, latency and throttle samples. A missing Python, numpy or runtime is one clear error."""
    python = resolve_python(target, python)
    with tempfile.TemporaryDirectory(prefix="edgeghost-ship-") as tmp, RemoteDir(target) as remote_dir:
        stage = Path(tmp)
        _stage_runner(stage)
        job_models = []
        for i, (name, fmt, path) in enumerate(models):
            file = f"m{i:02d}_{fmt}{path.suffix}"  # export folders reuse file names; staged names are unique
            shutil.copy(path, stage / file)
            job_models.append({"name": name, "format": fmt, "file": file})
        job = {"schema": SCHEMA, "models": job_models, "threads": threads, "warmup": warmup,
               "min_time_s": min_time_s, "min_runs": min_runs, "max_temp_c": max_temp_c,
               "reference_kernels": reference_kernels, "images": None}
        if images is not None:
            np.save(stage / "images.npy", np.ascontiguousarray(images, np.uint8))
            job["images"] = "images.npy"
        (stage / "job.json").write_text(json.dumps(job))
        target.put(sorted(stage.iterdir()), remote_dir)
        proc = target.run(f"{python} {remote_dir}/remote_runner.py {remote_dir}/job.json {remote_dir}/result.json",
                          check=False, timeout_s=timeout_s)
        if proc.returncode != 0:
            raise _runner_error(proc, target, python)
        target.get(f"{remote_dir}/result.json", stage / "result.json")
        result = json.loads((stage / "result.json").read_text())
    result["check"]["python_command"] = python
    return result


# --- device setup ---------------------------------------------------------------------------------------------


def download_wheels(dest: Path, *, machine: str, python: tuple[int, int], runtimes: tuple[str, ...],
                    pins: dict[str, str] | None = None) -> list[Path]:
    """Wheels of numpy, the runtimes and pip for the device's platform and Python, with the host's pip;
    ``pins`` fixes versions (package -> version)."""
    if machine not in PLATFORM_TAGS:
        raise EdgeGhostError(f"no wheel platform known for a {machine} device (aarch64 or armv7l)")
    pins = pins or {}
    packages = [f"{p}=={pins[p]}" if p in pins else p for p in ["pip", "numpy", *(_package(r) for r in runtimes)]]
    args = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--dest", str(dest),
            "--python-version", f"{python[0]}.{python[1]}", "--implementation", "cp"]
    for tag in PLATFORM_TAGS[machine]:
        args += ["--platform", tag]
    proc = subprocess.run([*args, *packages], capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["pip download failed"])[-1]
        raise EdgeGhostError(f"cannot download {machine} wheels for Python {python[0]}.{python[1]}: {tail}")
    return sorted(dest.glob("*.whl"))


def setup_device(
    target: SSHTarget,
    *,
    python: str = "python3",
    venv: str = DEFAULT_VENV,
    runtimes: tuple[str, ...] | None = None,
    wheels_dir: str | Path | None = None,
    online: bool = False,
    say=print,
) -> dict[str, Any]:
    """Create ``venv`` on the device with numpy and the runtimes, and return the device check from inside it.

    Offline (default): wheels come from ``wheels_dir`` or are downloaded here with the device's platform
    tags, copied over and installed with ``pip --no-index`` (pip itself runs from its shipped wheel, so the
    venv needs no ensurepip). ``online``: the device's pip fetches the packages itself.
    """
    machine = target.run("uname -m", timeout_s=60).stdout.strip()
    version = python_version(target, python)
    runtimes = runtimes or DEFAULT_RUNTIMES.get(machine, ("litert", "onnxruntime"))
    unknown = [r for r in runtimes if r not in RUNTIMES]
    if unknown:
        raise EdgeGhostError(f"unknown runtime(s) {', '.join(unknown)}; choose from {', '.join(RUNTIMES)}")
    packages = ["pip", "numpy", *(_package(r) for r in runtimes)]
    say(f"device {target.where}: {machine}, Python {version[0]}.{version[1]} ({python}); venv {venv}")
    # The last word of ``python`` is the interpreter; words before it are a launcher prefix kept for the venv.
    vpy = " ".join([*python.split()[:-1], f"{venv}/bin/python"])
    if online:
        target.run(f"{python} -m venv {venv} && {vpy} -m pip install --upgrade {' '.join(packages)}", timeout_s=3600)
    else:
        target.run(f"{python} -m venv --without-pip {venv}", timeout_s=600)
        with tempfile.TemporaryDirectory(prefix="edgeghost-wheels-") as tmp, RemoteDir(target) as remote_dir:
            if wheels_dir is not None:
                wheels = sorted(Path(wheels_dir).glob("*.whl"))
                if not wheels:
                    raise EdgeGhostError(f"no .whl files in {wheels_dir}")
            else:
                say(f"downloading {machine} wheels for: {' '.join(packages)}")
                # The host's runtime versions, so that the device's outputs can be compared with the host's.
                pins = tool_versions(tuple(_package(r) for r in runtimes)) if machine == "aarch64" else {}
                wheels = download_wheels(Path(tmp), machine=machine, python=version, runtimes=runtimes, pins=pins)
            pip_wheel = next((w for w in wheels if w.name.startswith("pip-")), None)
            if pip_wheel is None:
                raise EdgeGhostError("the wheel set has no pip wheel (needed to install into the venv)")
            say(f"copying {len(wheels)} wheels ({sum(w.stat().st_size for w in wheels) / 2**20:.0f} MB) ...")
            target.put(wheels, remote_dir)
            target.run(f"{vpy} {remote_dir}/{pip_wheel.name}/pip install --quiet --no-compile --no-index --find-links "
                       f"{remote_dir} {' '.join(packages)}", timeout_s=3600)
    report = check_device(target, python=vpy)
    missing = [r for r in runtimes if not report["runtimes"].get(r)]
    if missing:
        raise EdgeGhostError(f"setup finished but {', '.join(missing)} does not import on {target.where}")
    return report
