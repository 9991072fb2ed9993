"""edgeghost model runner: one self-contained file that needs only the standard library, numpy and one runtime.

It runs exported models (``.tflite`` through ``ai-edge-litert`` or the ``tflite-runtime`` fallback, ``.onnx``
through ``onnxruntime``) on raw uint8 pixels, times them with the one latency loop of edgeghost and reads the
device facts (board, governor, temperature, throttling). The host imports it as
``edgeghost.runtime.remote_runner``; ``edgeghost bench --device rpi4`` copies this very file to a Raspberry Pi
and runs it there, so both sides run identical code. Keep it free of edgeghost imports (one optional one below).

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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

try:  # on the host, runner errors are edgeghost's user errors; on a device this file stands alone
    from edgeghost.errors import EdgeGhostError as RunnerError
except ImportError:  # pragma: no cover - exercised on the device

    class RunnerError(Exception):  # type: ignore[no-redef]
        """A model or device problem, reported as one line."""


SCHEMA = "edgeghost-runner-v1"
MIN_PYTHON = (3, 9)
EXIT_MISSING_RUNTIME = 3
# Runtime name -> (module to import, pip package); which runtimes run each exported format, preferred first.
RUNTIMES = {"litert": ("ai_edge_litert", "ai-edge-litert"), "onnxruntime": ("onnxruntime", "onnxruntime"),
            "tflite_runtime": ("tflite_runtime", "tflite-runtime")}
FORMAT_RUNTIMES = {"onnx": ("onnxruntime",), "tflite_fp32": ("litert", "tflite_runtime"),
                   "tflite_int8": ("litert", "tflite_runtime")}

# --- the latency loop ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LatencyStats:
    """Single-image latency after warm-up: order statistics are robust to the odd scheduler hiccup."""

    runs: int
    median_ms: float
    p90_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    fps: float  # 1000 / median_ms

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_latency(
    fn: Callable[[], object],
    *,
    warmup: int = 10,
    min_time_s: float = 1.0,
    min_runs: int = 10,
    max_runs: int = 100_000,
) -> LatencyStats:
    """Time ``fn()`` (one inference on one prepared image): ``warmup`` calls are discarded (caches, lazy
    allocation, XNNPACK packing), then calls repeat until both ``min_runs`` and ``min_time_s`` are reached."""
    if min_runs < 1 or max_runs < min_runs:
        raise RunnerError(f"latency loop needs 1 <= min_runs <= max_runs, got {min_runs}, {max_runs}")
    for _ in range(max(0, warmup)):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max_runs and (len(times) < min_runs or time.perf_counter() - start < min_time_s):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    ms = np.asarray(times) * 1e3
    median = float(np.median(ms))
    return LatencyStats(
        runs=len(ms),
        median_ms=median,
        p90_ms=float(np.percentile(ms, 90)),
        mean_ms=float(ms.mean()),
        std_ms=float(ms.std()),
        min_ms=float(ms.min()),
        fps=1000.0 / median if median > 0 else float("inf"),
    )


# --- quantization and layout --------------------------------------------------------------------------


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype: np.dtype) -> np.ndarray:
    """Affine quantization ``q = round(x / scale) + zero_point``, saturated to ``dtype``'s range."""
    info = np.iinfo(dtype)
    q = np.round(np.asarray(x, np.float64) / scale) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return ((np.asarray(q, np.float32) - np.float32(zero_point)) * np.float32(scale)).astype(np.float32)


def infer_layout(shape: tuple[int, ...]) -> str:
    """``NCHW`` or ``NHWC`` from a 4-D image input shape (channels are 1 or 3; images are wider than that)."""
    if len(shape) != 4:
        raise RunnerError(f"expected a 4-D image input, got shape {tuple(shape)}")
    if shape[1] in (1, 3) and shape[3] not in (1, 3):
        return "NCHW"
    if shape[3] in (1, 3):
        return "NHWC"
    raise RunnerError(f"cannot tell the channel axis of input shape {tuple(shape)}")


@dataclass(frozen=True)
class RunnerInfo:
    """What a loaded model is: enough to feed it and to describe it in a results table."""

    backend: str  # torch, onnxruntime, litert, tflite_runtime, tflm
    format: str  # torch, torch_deploy, onnx, tflite_fp32, tflite_int8
    path: str
    size_bytes: int
    input_shape: tuple[int, ...]
    input_dtype: str
    layout: str  # NCHW or NHWC
    input_quant: tuple[float, int] | None  # (scale, zero_point) of an integer input
    output_quant: tuple[float, int] | None
    num_classes: int
    threads: int
    kernels: str  # e.g. xnnpack, builtin_ref, tflm_reference
    arena_bytes: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        return d


class Runner:
    """A loaded model. ``predict`` takes raw uint8 NHWC pixels (N, H, W, C) and returns float32 logits (N, K);
    ``run_raw`` takes the model's own input (layout, dtype, quantized) and returns its own output."""

    info: RunnerInfo

    def prepare(self, images: np.ndarray) -> np.ndarray:
        """Raw pixels → the model's input: layout, then quantization with the model's input parameters
        (the int8 contract is scale 1, zero point −128, i.e. ``q = pixel − 128``)."""
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4:
            raise RunnerError(f"predict takes uint8 images (N, H, W, C), got {images.dtype} {images.shape}")
        info = self.info
        c_axis = 1 if info.layout == "NCHW" else 3
        want = tuple(d for i, d in enumerate(info.input_shape) if i not in (0, c_axis))
        channels = info.input_shape[c_axis]
        if images.shape[1:3] != want or images.shape[3] != channels:
            raise RunnerError(
                f"{Path(info.path).name} takes {want[0]}×{want[1]}×{channels} images, got "
                f"{images.shape[1]}×{images.shape[2]}×{images.shape[3]}"
            )
        x = images.transpose(0, 3, 1, 2) if info.layout == "NCHW" else images
        if info.input_quant is not None:
            return quantize(x, *info.input_quant, np.dtype(info.input_dtype))
        return np.ascontiguousarray(x, dtype=np.dtype(info.input_dtype))

    def finish(self, raw: np.ndarray) -> np.ndarray:
        """The model's raw output → float32 logits (dequantized with the model's output parameters)."""
        raw = np.asarray(raw).reshape(len(raw), -1)
        if self.info.output_quant is not None:
            return dequantize(raw, *self.info.output_quant)
        return raw.astype(np.float32)

    def run_raw(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self.finish(self.run_raw(self.prepare(images)))


def _quant_pair(detail: dict[str, Any]) -> tuple[float, int] | None:
    if not np.issubdtype(np.dtype(detail["dtype"]), np.integer):
        return None
    scales = detail["quantization_parameters"]["scales"]
    zps = detail["quantization_parameters"]["zero_points"]
    if len(scales) != 1:
        raise RunnerError(f"tensor {detail['name']!r} is not per-tensor quantized ({len(scales)} scales)")
    return float(scales[0]), int(zps[0])


def import_tflite() -> tuple[Any, Any, str]:
    """(Interpreter, OpResolverType, backend name): ai-edge-litert, or the tflite-runtime fallback (the only
    package for 32-bit Raspberry Pi OS, armv7, stuck at 2.14)."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        return Interpreter, OpResolverType, "litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter, OpResolverType

        return Interpreter, OpResolverType, "tflite_runtime"
    except ImportError:
        raise RunnerError(
            "no TFLite runtime: pip install ai-edge-litert (64-bit) or tflite-runtime (32-bit Raspberry Pi OS)"
        ) from None


class TFLiteRunner(Runner):
    """A ``.tflite`` model in LiteRT. XNNPACK by default; ``reference_kernels`` selects the BUILTIN_REF op
    resolver (portable reference kernels, bit-exact with TFLite-Micro)."""

    def __init__(self, path: str | Path, *, threads: int = 1, reference_kernels: bool = False) -> None:
        path = Path(path)
        Interpreter, OpResolverType, backend = import_tflite()
        resolver = OpResolverType.BUILTIN_REF if reference_kernels else OpResolverType.AUTO
        try:
            self._interp = Interpreter(
                model_path=str(path), num_threads=threads, experimental_op_resolver_type=resolver
            )
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as err:
            raise RunnerError(f"cannot load {path} as a TFLite model: {err}") from None
        inputs, outputs = self._interp.get_input_details(), self._interp.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise RunnerError(f"{path} has {len(inputs)} inputs and {len(outputs)} outputs; 1 and 1 expected")
        self._in, self._out = inputs[0], outputs[0]
        shape = tuple(int(d) for d in self._in["shape"])
        in_quant, out_quant = _quant_pair(self._in), _quant_pair(self._out)
        self.info = RunnerInfo(
            backend=backend,
            format="tflite_int8" if in_quant is not None else "tflite_fp32",
            path=str(path),
            size_bytes=path.stat().st_size,
            input_shape=shape,
            input_dtype=np.dtype(self._in["dtype"]).name,
            layout=infer_layout(shape),
            input_quant=in_quant,
            output_quant=out_quant,
            num_classes=int(np.prod(self._out["shape"][1:])),
            threads=threads,
            kernels="builtin_ref" if reference_kernels else "xnnpack",
        )

    def invoke_one(self, x: np.ndarray) -> np.ndarray:
        self._interp.set_tensor(self._in["index"], x)
        self._interp.invoke()
        return self._interp.get_tensor(self._out["index"])

    def run_raw(self, x: np.ndarray) -> np.ndarray:
        # Exported models have batch 1; a batch is run image by image.
        return np.concatenate([self.invoke_one(x[i : i + 1]) for i in range(len(x))])


class OnnxRunner(Runner):
    """An ``.onnx`` model in onnxruntime on the CPU with a fixed thread count."""

    def __init__(self, path: str | Path, *, threads: int = 1) -> None:
        path = Path(path)
        try:
            import onnxruntime as ort
        except ImportError:
            raise RunnerError("onnxruntime is not installed: pip install onnxruntime") from None
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self._sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types for bad files
            raise RunnerError(f"cannot load {path} as an ONNX model: {err}") from None
        inputs, outputs = self._sess.get_inputs(), self._sess.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise RunnerError(f"{path} has {len(inputs)} inputs and {len(outputs)} outputs; 1 and 1 expected")
        self._in_name = inputs[0].name
        dtypes = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(uint8)": "uint8"}
        if inputs[0].type not in dtypes:
            raise RunnerError(f"{path}: input type {inputs[0].type} is not supported (float or uint8 pixels)")
        # A symbolic batch dimension becomes 1 for the description; run_raw feeds whole batches then.
        shape = tuple(d if isinstance(d, int) else 1 for d in inputs[0].shape)
        self._fixed_batch = isinstance(inputs[0].shape[0], int)
        out_shape = outputs[0].shape
        self.info = RunnerInfo(
            backend="onnxruntime",
            format="onnx",
            path=str(path),
            size_bytes=path.stat().st_size,
            input_shape=shape,
            input_dtype=dtypes[inputs[0].type],
            layout=infer_layout(shape),
            input_quant=None,
            output_quant=None,
            num_classes=int(np.prod([d for d in out_shape[1:] if isinstance(d, int)])),
            threads=threads,
            kernels="cpu",
        )

    def run_raw(self, x: np.ndarray) -> np.ndarray:
        if self._fixed_batch:
            return np.concatenate([self._sess.run(None, {self._in_name: x[i : i + 1]})[0] for i in range(len(x))])
        return self._sess.run(None, {self._in_name: x})[0]


def open_model(path: str | Path, *, threads: int = 1, reference_kernels: bool = False) -> Runner:
    """A runner for an exported ``.tflite`` or ``.onnx`` file."""
    path = Path(path)
    if not path.is_file():
        raise RunnerError(f"model file {path} does not exist")
    if path.suffix == ".tflite":
        return TFLiteRunner(path, threads=threads, reference_kernels=reference_kernels)
    if path.suffix == ".onnx":
        return OnnxRunner(path, threads=threads)
    raise RunnerError(f"{path}: unknown model type {path.suffix!r} (.tflite or .onnx)")


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

    Each model gets: cool-down wait, outputs for all images (raw, for comparison with the host), then the
    latency loop on the first image with the throttle monitor running. One model's failure is recorded and
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
            if images is not None:
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
                one = np.zeros(runner.info.input_shape, np.dtype(runner.info.input_dtype))
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
    tmp = Path(args.result).with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    os.replace(tmp, args.result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
