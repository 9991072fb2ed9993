"""edgeghost's device-side runner: the runtime core plus device facts and a job runner, as one file.

``edgeghost bench --device rpi4`` ships this file to a Raspberry Pi (or any Linux board) with the text of
``runtime/core.py`` put in place of the core import below (:func:`edgeghost.runtime.rpi4.runner_source`), so the
device needs only the standard library, numpy and one runtime (``ai-edge-litert``, ``tflite-runtime`` or
``onnxruntime``) and runs the very code the host runs. On the host it is ``edgeghost.runtime.remote_runner``.

On the device::

    python3 remote_runner.py --check               # JSON: Python, numpy, runtimes, device facts
    python3 remote_runner.py job.json result.json  # run the models named in job.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

# <core> (replaced by the text of runtime/core.py when the runner is shipped)
from .core import (  # noqa: F401 - the core's names are this module's names, as on the device
    LatencyStats, Runner, RunnerError, RunnerInfo, TFLiteRunner, dequantize, measure_latency, open_model, quantize,
)
# </core>

SCHEMA = "edgeghost-runner-v1"
MIN_PYTHON = (3, 9)
EXIT_MISSING_RUNTIME = 3
# Runtime name -> (module to import, pip package); which runtimes run each exported format, preferred first.
RUNTIMES = {"litert": ("ai_edge_litert", "ai-edge-litert"), "onnxruntime": ("onnxruntime", "onnxruntime"),
            "tflite_runtime": ("tflite_runtime", "tflite-runtime")}
FORMAT_RUNTIMES = {"onnx": ("onnxruntime",), "tflite_fp32": ("litert", "tflite_runtime"),
                   "tflite_int8": ("litert", "tflite_runtime")}

# --- device facts ----------------------------------------------------------------------------------------

# Current-state bits of `vcgencmd get_throttled` (bits 16-19 are the "has occurred since boot" copies).
THROTTLE_BITS = {0: "under-voltage", 1: "arm frequency capped", 2: "throttled", 3: "soft temperature limit"}


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(errors="replace").strip("\x00\n ")
    except OSError:
        return None


def read_throttled() -> int | None:
    """The ``vcgencmd get_throttled`` bit mask, or None where there is no vcgencmd (not a Raspberry Pi)."""
    exe = shutil.which("vcgencmd")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "get_throttled"], capture_output=True, text=True, timeout=5).stdout
        return int(out.strip().split("=", 1)[1], 16)
    except (OSError, subprocess.SubprocessError, IndexError, ValueError):
        return None


def read_temperature_c() -> float | None:
    raw = _read("/sys/class/thermal/thermal_zone0/temp")
    try:
        return int(raw) / 1000.0 if raw is not None else None
    except ValueError:
        return None


def device_facts() -> dict[str, Any]:
    """Board, CPU, governor, clock, temperature and throttle state, read the way a Raspberry Pi exposes them."""
    cpuinfo = _read("/proc/cpuinfo") or ""
    parts = sorted({line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("CPU part")})
    os_release = dict(
        line.split("=", 1) for line in (_read("/etc/os-release") or "").splitlines() if "=" in line
    )
    freq = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq")
    throttled = read_throttled()
    return {
        "board": _read("/proc/device-tree/model"),
        "machine": platform.machine(),
        "os": os_release.get("PRETTY_NAME", "").strip('"') or platform.platform(),
        "cpu_parts": parts,  # 0xd08 is the Cortex-A72 of a Pi 4
        "cpu_count": os.cpu_count(),
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "cpu_mhz": int(freq) / 1000.0 if freq and freq.isdigit() else None,
        "temperature_c": read_temperature_c(),
        "throttled": None if throttled is None else hex(throttled),
        "throttled_now": None if throttled is None else [n for b, n in THROTTLE_BITS.items() if throttled >> b & 1],
    }


class ThrottleMonitor:
    """Samples the *current* throttle bits (0-3) in the background while a model is timed."""

    def __init__(self, period_s: float = 0.5) -> None:
        self.period_s = period_s
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            bits = read_throttled()
            if bits is None:
                return
            self.samples.append(bits & 0xF)
            self._stop.wait(self.period_s)

    def __enter__(self) -> "ThrottleMonitor":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def throttled(self) -> bool:
        return any(self.samples)


def wait_cool(max_temp_c: float | None, timeout_s: float) -> float:
    """Wait until the SoC is below ``max_temp_c`` (a hot Pi throttles mid-run); returns the seconds waited."""
    start = time.monotonic()
    while max_temp_c is not None and time.monotonic() - start < timeout_s:
        temp = read_temperature_c()
        if temp is None or temp < max_temp_c:
            break
        time.sleep(2.0)
    return time.monotonic() - start


# --- what the device has ---------------------------------------------------------------------------------


def _version(module: str) -> str | None:
    try:
        mod = __import__(module)
    except Exception:  # a broken install counts as absent
        return None
    return str(getattr(mod, "__version__", "unknown"))


def runtime_versions() -> dict[str, str | None]:
    """Version of each runtime that imports here (None where it does not)."""
    versions = {name: _version(module) for name, (module, _) in RUNTIMES.items()}
    for name, version in versions.items():
        if version == "unknown":  # ai_edge_litert has no __version__; ask the package metadata
            from importlib.metadata import PackageNotFoundError, version as dist_version

            try:
                versions[name] = dist_version(RUNTIMES[name][1])
            except PackageNotFoundError:
                pass
    return versions


def missing_runtimes(formats: set[str], versions: dict[str, str | None]) -> list[str]:
    """Preferred runtime of each format in ``formats`` that has none of its runtimes installed."""
    return sorted({FORMAT_RUNTIMES[f][0] for f in formats if not any(versions.get(r) for r in FORMAT_RUNTIMES[f])})


def check() -> dict[str, Any]:
    """Python, numpy and runtime versions on this machine plus its device facts."""
    runtimes = runtime_versions()
    return {
        "schema": SCHEMA,
        "python": platform.python_version(),
        "python_ok": sys.version_info[:2] >= MIN_PYTHON,
        "executable": sys.executable,
        "numpy": np.__version__,
        "runtimes": runtimes,
        "device": device_facts(),
    }


# --- a job: several models on one batch of images ------------------------------------------------------------


def run_job(job: dict[str, Any], root: Path) -> dict[str, Any]:
    """Run every model of ``job`` (paths relative to ``root``) on the job's images.

    Each model gets: cool-down wait, outputs for all images (raw, for comparison with the host) when it takes
    images of their size, then the latency loop on the first image (or on a seeded input of the model's own
    shape) with the throttle monitor running. One model's failure is recorded and
    the others still run.
    """
    if job.get("schema") != SCHEMA:
        raise RunnerError(f"job schema {job.get('schema')!r} is not {SCHEMA!r}; copy the matching runner")
    images = np.load(root / job["images"]) if job.get("images") else None
    threads = int(job.get("threads", 1))
    result: dict[str, Any] = {"schema": SCHEMA, "device_before": device_facts(), "models": []}
    for spec in job["models"]:
        entry: dict[str, Any] = {"name": spec["name"], "file": spec["file"], "status": "ok"}
        try:
            entry["cooldown_s"] = wait_cool(job.get("max_temp_c"), float(job.get("cooldown_timeout_s", 120)))
            entry["temperature_c"] = read_temperature_c()
            runner = open_model(root / spec["file"], threads=threads,
                                reference_kernels=bool(job.get("reference_kernels", False)))
            entry["info"] = runner.info.to_dict()
            if images is not None and runner.info.image_hwc == tuple(images.shape[1:]):
                x = runner.prepare(images)
                raw = runner.run_raw(x)
                entry["raw_outputs"] = raw.reshape(len(raw), -1).tolist()
                entry["raw_dtype"] = str(raw.dtype)
                if runner.info.input_quant is not None and runner.info.kernels != "builtin_ref":
                    # Integer reference kernels are portable C: their outputs must equal the host's bit for
                    # bit, whereas XNNPACK's ARM and x86 kernels may round differently (±1 LSB).
                    ref = TFLiteRunner(root / spec["file"], threads=threads, reference_kernels=True)
                    entry["reference_outputs"] = ref.run_raw(x).reshape(len(raw), -1).tolist()
                one = x[:1]
            else:
                one = runner.example_input()
            with ThrottleMonitor() as monitor:
                stats = measure_latency(
                    lambda: runner.run_raw(one),
                    warmup=int(job.get("warmup", 10)),
                    min_time_s=float(job.get("min_time_s", 1.0)),
                    min_runs=int(job.get("min_runs", 10)),
                )
            entry["latency"] = stats.to_dict()
            entry["throttle_samples"] = [hex(s) for s in monitor.samples]
            entry["throttled"] = monitor.throttled
        except Exception as err:  # one failing model must not sink the others
            entry["status"] = "failed"
            entry["error"] = f"{type(err).__name__}: {err}".splitlines()[0]
        result["models"].append(entry)
    result["device_after"] = device_facts()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="edgeghost model runner (self-contained)")
    parser.add_argument("--check", action="store_true", help="print Python/runtime versions and device facts")
    parser.add_argument("job", nargs="?", help="job JSON (paths inside it are relative to its folder)")
    parser.add_argument("result", nargs="?", help="where to write the result JSON")
    args = parser.parse_args(argv)
    if sys.version_info[:2] < MIN_PYTHON:
        print(f"remote_runner: error: Python {platform.python_version()} is too old; 3.9 or newer needed",
              file=sys.stderr)
        return 2
    if args.check:
        print(json.dumps(check()))
        return 0
    if not args.job or not args.result:
        parser.error("job and result are required without --check")
    job_path = Path(args.job)
    job = json.loads(job_path.read_text())
    versions = runtime_versions()
    missing = missing_runtimes({m["format"] for m in job.get("models", [])}, versions)
    if missing:  # the host turns this into the install command
        print(f"remote_runner: missing runtimes: {' '.join(missing)}", file=sys.stderr)
        return EXIT_MISSING_RUNTIME
    try:
        result = run_job(job, job_path.parent)
        result["check"] = {"python": platform.python_version(), "executable": sys.executable,
                           "numpy": np.__version__, "runtimes": versions}
    except RunnerError as err:
        print(f"remote_runner: error: {err}", file=sys.stderr)
        return 2
    # The result goes into the host's fresh temp folder, read only after this process exits with 0.
    Path(args.result).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
