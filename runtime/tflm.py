"""TensorFlow Lite Micro on the host: the only code in edgeghost that drives the ``tflite-micro`` wheel.

Every call runs the interpreter in a child process: an arena that is too small can make TFLM crash
(SIGSEGV) instead of raising, and a crash must not take the caller down. The child reads its job and
inputs from a temp folder and writes outputs there (``.npy``) plus a JSON reply.

Arena sizes are measured with this wheel on the host (64-bit pointers, reference kernels). A 32-bit MCU needs
less for the interpreter's bookkeeping, but optimized kernels (CMSIS-NN, ESP-NN) request scratch buffers the
reference kernels do not, so the host minimum is not an upper bound for every build: firmware adds a stated
margin (``edgeghost.export.tflm``) and the Cortex-M runs report the arena the firmware really used.

Model facts (shapes, dtypes, quantization) come from :func:`edgeghost.runtime.tflite_file.read_tflite`, the
project's flatbuffer reader, never from LiteRT, whose loader refuses some models TFLM runs.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EdgeGhostError
from .core import LatencyStats, Runner, RunnerInfo, _quant_pair, image_layout, measure_latency, tflite_format
from .tflite_file import read_tflite

# TFLM vs LiteRT's reference kernels (BUILTIN_REF), int8 output LSB. They are ported from the same code but not
# bit-exact: comparing every intermediate tensor, the first difference is always a 1-LSB rounding difference in
# an int8 MUL (SE/DFC gates) or FULLY_CONNECTED, which grew to 3 LSB at the output of GN-S w1.0 (8 of 50
# images; export/README.md). A conversion or kernel fault is far larger.
TFLM_VS_REFERENCE_TOLERANCE_LSB = 4
DEFAULT_ARENA = 16 << 20  # generous host arena when the caller does not ask for a size
_WORKER = "from edgeghost.runtime.tflm import _worker_main; _worker_main()"
_min_arena_cache: dict[tuple[str, int, int], int] = {}


# --- the child process -------------------------------------------------------------------------------------


def _interpreter(model_path: str, arena_size: int) -> Any:
    from tflite_micro import runtime

    return runtime.Interpreter.from_file(model_path, arena_size=arena_size)


def _check_inputs(interp: Any, x: np.ndarray) -> None:
    detail = interp.get_input_details(0)
    want = tuple(int(d) for d in detail["shape"])
    if x.dtype != np.dtype(detail["dtype"]) or tuple(x.shape[1:]) != want[1:]:
        raise ValueError(f"model takes {np.dtype(detail['dtype']).name} {want}, got {x.dtype} {x.shape}")


def _invoke_all(interp: Any, x: np.ndarray) -> np.ndarray:
    outs = []
    for i in range(len(x)):
        interp.set_input(x[i : i + 1], 0)
        interp.invoke()
        outs.append(np.array(interp.get_output(0)))
    return np.concatenate(outs)


def _allocates(model_path: str, size: int) -> bool:
    try:
        _interpreter(model_path, size)
        return True
    except RuntimeError:  # "TFLM failed to allocate tensors"
        return False


def _probe_arena(model_path: str, lo: int, hi: int | None, log: Path) -> int:
    """Smallest arena that allocates, knowing ``lo`` fails and ``hi`` (if known) works: double up to a
    working size, then bisect. Each size is logged before it is tried, so that when a size crashes the
    child, the parent knows which one and starts a fresh child from there."""
    with log.open("a") as f:

        def probe(size: int) -> bool:
            f.write(f"try {size}\n")
            f.flush()
            ok = _allocates(model_path, size)
            f.write(f"{'ok' if ok else 'fail'} {size}\n")
            f.flush()
            return ok

        while hi is None:
            size = max(2 * lo, 1024)
            if size > 1 << 30:
                raise ValueError("the model does not allocate even in a 1 GiB arena")
            if probe(size):
                hi = size
            else:
                lo = size
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if probe(mid) else (mid, hi)
    # The allocation plan includes every scratch buffer; one real invoke confirms the size.
    interp = _interpreter(model_path, hi)
    detail = interp.get_input_details(0)
    interp.set_input(np.zeros(detail["shape"], detail["dtype"]), 0)
    interp.invoke()
    return hi


def _worker_main() -> None:
    job_dir = Path(sys.argv[1])
    job = json.loads((job_dir / "job.json").read_text())
    reply: dict[str, Any] = {}
    try:
        if job["op"] == "arena":
            reply["arena"] = _probe_arena(job["model"], job["lo"], job["hi"], job_dir / "probe.log")
        else:
            interp = _interpreter(job["model"], job["arena_size"])
            x = np.load(job_dir / "inputs.npy")
            _check_inputs(interp, x)
            np.save(job_dir / "outputs.npy", _invoke_all(interp, x))
            if job["op"] == "bench":
                one = x[:1]

                def once() -> None:
                    interp.set_input(one, 0)
                    interp.invoke()

                reply["latency"] = measure_latency(once, **job["latency"]).to_dict()
    except (RuntimeError, ValueError) as err:
        reply["error"] = str(err)
    (job_dir / "reply.json").write_text(json.dumps(reply))


# --- the parent side -----------------------------------------------------------------------------------------


def _run_child(job: dict[str, Any], job_dir: Path, *, what: str) -> tuple[int, dict[str, Any], str]:
    (job_dir / "job.json").write_text(json.dumps(job))
    proc = subprocess.run([sys.executable, "-c", _WORKER, str(job_dir)], capture_output=True, text=True)
    reply_path = job_dir / "reply.json"
    reply = json.loads(reply_path.read_text()) if proc.returncode == 0 and reply_path.is_file() else {}
    if proc.returncode > 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise EdgeGhostError(f"TFLite-Micro child process failed while {what}: {tail}")
    return proc.returncode, reply, proc.stderr


def _crash_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def _model_file(model_path: str | Path) -> Path:
    path = Path(model_path)
    if not path.is_file():
        raise EdgeGhostError(f"model file {path} does not exist")
    return path.resolve()


def _invoke_job(
    model_path: str | Path, inputs: np.ndarray, arena_size: int | None, op: str, latency: dict[str, Any] | None
) -> tuple[np.ndarray, dict[str, Any]]:
    path = _model_file(model_path)
    inputs = np.asarray(inputs)
    if inputs.ndim < 2 or len(inputs) == 0:
        raise EdgeGhostError(f"TFLite-Micro inputs must be a non-empty batch (N, ...), got shape {inputs.shape}")
    arena = DEFAULT_ARENA if arena_size is None else int(arena_size)
    with tempfile.TemporaryDirectory(prefix="edgeghost-tflm-") as tmp:
        job_dir = Path(tmp)
        np.save(job_dir / "inputs.npy", inputs)
        job = {"op": op, "model": str(path), "arena_size": arena, "latency": latency}
        code, reply, _ = _run_child(job, job_dir, what=f"running {path.name}")
        if code < 0:
            raise EdgeGhostError(
                f"TFLite-Micro crashed ({_crash_name(code)}) running {path.name} with a {arena}-byte arena; "
                "the arena is probably too small (see find_min_arena)"
            )
        if "error" in reply:
            raise EdgeGhostError(f"TFLite-Micro cannot run {path.name} with a {arena}-byte arena: {reply['error']}")
        return np.load(job_dir / "outputs.npy"), reply


def tflm_invoke(model_path: str | Path, inputs: np.ndarray, *, arena_size: int | None = None) -> np.ndarray:
    """Run ``inputs`` (N×H×W×C, already in the model's input dtype, e.g. int8 ``pixel − 128``) through the
    TFLite-Micro interpreter one image at a time; returns the raw outputs (N×classes, the model's dtype).

    ``arena_size`` defaults to a generous 16 MiB; a too-small arena is a clear :class:`EdgeGhostError`.
    """
    outputs, _ = _invoke_job(model_path, inputs, arena_size, "invoke", None)
    return outputs


def tflm_benchmark(
    model_path: str | Path,
    inputs: np.ndarray,
    *,
    arena_size: int | None = None,
    warmup: int = 3,
    min_time_s: float = 1.0,
    min_runs: int = 5,
) -> tuple[np.ndarray, LatencyStats]:
    """Raw outputs for ``inputs`` and the single-image latency of the TFLM interpreter (the shared loop)."""
    latency = {"warmup": warmup, "min_time_s": min_time_s, "min_runs": min_runs}
    outputs, reply = _invoke_job(model_path, inputs, arena_size, "bench", latency)
    return outputs, LatencyStats(**reply["latency"])


def find_min_arena(model_path: str | Path) -> int:
    """The smallest tensor arena (bytes) in which TFLite-Micro allocates the model, found by bisection.

    Probes run in child processes; a child that crashes marks its size as too small and a fresh child
    resumes the search. The result is verified by one real invoke. Cached per file (path, size, mtime).
    """
    path = _model_file(model_path)
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key in _min_arena_cache:
        return _min_arena_cache[key]
    lo, hi = 0, None
    with tempfile.TemporaryDirectory(prefix="edgeghost-arena-") as tmp:
        job_dir = Path(tmp)
        log = job_dir / "probe.log"
        while True:
            log.write_text("")
            job = {"op": "arena", "model": str(path), "lo": lo, "hi": hi}
            code, reply, _ = _run_child(job, job_dir, what=f"sizing the arena of {path.name}")
            if "error" in reply:
                raise EdgeGhostError(f"TFLite-Micro cannot run {path.name}: {reply['error']}")
            if code == 0:
                arena = int(reply["arena"])
                break
            # The child crashed: sizes that allocated bound from above, the failed one (or the one in
            # flight when it crashed) bounds from below; a fresh child carries on from there.
            lines = log.read_text().splitlines()
            if not lines:
                raise EdgeGhostError(
                    f"TFLite-Micro crashed ({_crash_name(code)}) invoking {path.name} in an arena that allocates"
                )
            for line in lines:
                verdict, size = line.split()
                if verdict == "ok":
                    hi = int(size) if hi is None else min(hi, int(size))
                else:
                    lo = max(lo, int(size))
    _min_arena_cache[key] = arena
    return arena


class TFLMRunner(Runner):
    """A ``.tflite`` in the TFLite-Micro interpreter (reference kernels), each call in a child process. Any
    model TFLM runs is accepted (image or not; its facts come from the flatbuffer, not from LiteRT). The arena
    defaults to the measured minimum (``info.arena_bytes``), so every run also proves that size."""

    def __init__(self, path: str | Path, *, arena_size: int | None = None) -> None:
        path = _model_file(path)
        facts = read_tflite(path)
        inp, out = facts.input, facts.output
        self.arena_size = find_min_arena(path) if arena_size is None else int(arena_size)
        self.info = RunnerInfo(
            backend="tflm",
            format=tflite_format(inp.dtype),
            path=str(path),
            size_bytes=path.stat().st_size,
            input_shape=inp.shape,
            input_dtype=inp.dtype,
            layout=image_layout(inp.shape),
            input_quant=_quant_pair(inp.scales, inp.zero_points, inp.dtype),
            output_quant=_quant_pair(out.scales, out.zero_points, out.dtype),
            num_classes=int(np.prod(out.shape[1:])),
            threads=1,
            kernels="tflm_reference",
            arena_bytes=self.arena_size,
            output_shape=out.shape,
            extra={"ops": list(facts.ops)},
        )

    def run_raw(self, x: np.ndarray) -> np.ndarray:
        return tflm_invoke(self.info.path, x, arena_size=self.arena_size)

    def benchmark(self, x: np.ndarray, **latency: Any) -> tuple[np.ndarray, LatencyStats]:
        """Raw outputs for ``x`` and the latency of one invoke, from one child process."""
        return tflm_benchmark(self.info.path, x, arena_size=self.arena_size, **latency)
