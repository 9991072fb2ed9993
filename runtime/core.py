"""The runtime core: one ``Runner`` interface, the one latency loop, (de)quantization, LiteRT and onnxruntime.

Needs only the standard library, numpy and the runtime it opens (``ai-edge-litert`` or ``tflite-runtime`` for
``.tflite``, ``onnxruntime`` for ``.onnx``), and imports nothing from edgeghost except its error type when it is
there: ``remote_runner.py`` is shipped to a device with this file's text inside it (see
:func:`edgeghost.runtime.rpi4.runner_source`), so host and device run identical code.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

try:  # on the host, runner errors are edgeghost's user errors; on a device this text stands alone
    from edgeghost.errors import EdgeGhostError as RunnerError
except ImportError:  # pragma: no cover - exercised on the device

    class RunnerError(Exception):  # type: ignore[no-redef]
        """A model or device problem, reported as one line."""


# --- the latency loop ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LatencyStats:
    """Single-input latency after warm-up: order statistics are robust to the odd scheduler hiccup."""

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
    """Time ``fn()`` (one inference on one prepared input): ``warmup`` calls are discarded (caches, lazy
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
    """``x = scale · (q − zero_point)`` in float32."""
    return ((np.asarray(q, np.float32) - np.float32(zero_point)) * np.float32(scale)).astype(np.float32)


def image_layout(shape: tuple[int, ...]) -> str | None:
    """``NCHW`` or ``NHWC`` for a 4-D image input (channels 1 or 3, images wider than that); None for any
    other input (audio features, sequences, ...): such a model still runs and is timed, it just takes no
    pixels."""
    if len(shape) != 4:
        return None
    if shape[1] in (1, 3) and shape[3] not in (1, 3):
        return "NCHW"
    if shape[3] in (1, 3):
        return "NHWC"
    return None


@dataclass(frozen=True)
class RunnerInfo:
    """What a loaded model is: enough to feed it and to describe it in a results table."""

    backend: str  # torch, onnxruntime, litert, tflite_runtime, tflm
    format: str  # torch, torch_deploy, onnx, tflite_fp32, tflite_int8
    path: str
    size_bytes: int
    input_shape: tuple[int, ...]
    input_dtype: str
    layout: str | None  # NCHW or NHWC for image models; None when the input is not an image
    input_quant: tuple[float, int] | None  # (scale, zero_point) of an integer input
    output_quant: tuple[float, int] | None
    num_classes: int  # elements per output row (the classes of a classifier)
    threads: int
    kernels: str  # e.g. xnnpack, builtin_ref, tflm_reference
    arena_bytes: int | None = None
    output_shape: tuple[int, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def image_hwc(self) -> tuple[int, int, int] | None:
        """(height, width, channels) of the image the model takes, or None when it takes no image."""
        if self.layout is None:
            return None
        s = self.input_shape
        return (s[2], s[3], s[1]) if self.layout == "NCHW" else (s[1], s[2], s[3])

    @property
    def is_image_classifier(self) -> bool:
        """Image in, one score per class out (N×K, or N×1×1×K): the models top-1 is defined for."""
        out = tuple(self.output_shape)
        scores = len(out) == 2 or (len(out) == 4 and out[1] == out[2] == 1)
        return self.image_hwc is not None and scores and self.num_classes > 1

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        d["output_shape"] = list(self.output_shape)
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
        hwc = info.image_hwc
        if hwc is None:
            raise RunnerError(f"{Path(info.path).name} takes {info.input_dtype} {tuple(info.input_shape)}, "
                              "not images")
        if images.shape[1:] != hwc:
            raise RunnerError(
                f"{Path(info.path).name} takes {hwc[0]}×{hwc[1]}×{hwc[2]} images, got "
                f"{images.shape[1]}×{images.shape[2]}×{images.shape[3]}"
            )
        x = images.transpose(0, 3, 1, 2) if info.layout == "NCHW" else images
        if info.input_quant is not None:
            return quantize(x, *info.input_quant, np.dtype(info.input_dtype))
        return np.ascontiguousarray(x, dtype=np.dtype(info.input_dtype))

    def example_input(self, seed: int = 0) -> np.ndarray:
        """One input of the model's own shape and dtype (seeded noise over the dtype's range), for timing
        models that take no images or when no eval data is given."""
        shape, dtype = tuple(self.info.input_shape), np.dtype(self.info.input_dtype)
        rng = np.random.default_rng(seed)
        if np.issubdtype(dtype, np.integer):
            lo, hi = np.iinfo(dtype).min, np.iinfo(dtype).max
            return rng.integers(lo, hi, shape, dtype=dtype, endpoint=True)
        return rng.uniform(0.0, 255.0 if self.info.image_hwc else 1.0, shape).astype(dtype)

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


def _quant_pair(scales: Any, zero_points: Any, dtype: Any) -> tuple[float, int] | None:
    """(scale, zero point) of a per-tensor quantized integer I/O tensor; None for float tensors and for
    the rare per-channel I/O tensor (such a model runs on its raw input; it takes no pixels)."""
    if not np.issubdtype(np.dtype(dtype), np.integer) or len(scales) != 1:
        return None
    return float(scales[0]), int(zero_points[0])


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
    resolver (portable reference kernels, the ones TFLite-Micro's kernels are ported from: int8 outputs equal
    TFLM's or differ by a few LSB where their MUL / FULLY_CONNECTED round differently)."""

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
        qi, qo = self._in["quantization_parameters"], self._out["quantization_parameters"]
        in_quant = _quant_pair(qi["scales"], qi["zero_points"], self._in["dtype"])
        self.info = RunnerInfo(
            backend=backend,
            format=tflite_format(self._in["dtype"]),
            path=str(path),
            size_bytes=path.stat().st_size,
            input_shape=shape,
            input_dtype=np.dtype(self._in["dtype"]).name,
            layout=image_layout(shape),
            input_quant=in_quant,
            output_quant=_quant_pair(qo["scales"], qo["zero_points"], self._out["dtype"]),
            num_classes=int(np.prod(self._out["shape"][1:])),
            threads=threads,
            kernels="builtin_ref" if reference_kernels else "xnnpack",
            output_shape=tuple(int(d) for d in self._out["shape"]),
        )

    def invoke_one(self, x: np.ndarray) -> np.ndarray:
        self._interp.set_tensor(self._in["index"], x)
        self._interp.invoke()
        return self._interp.get_tensor(self._out["index"])

    def run_raw(self, x: np.ndarray) -> np.ndarray:
        # Exported models have batch 1; a batch is run input by input.
        return np.concatenate([self.invoke_one(x[i : i + 1]) for i in range(len(x))])


def tflite_format(input_dtype: Any) -> str:
    """``tflite_int8`` for an integer-input model (int8, uint8, int16), else ``tflite_fp32``."""
    return "tflite_int8" if np.issubdtype(np.dtype(input_dtype), np.integer) else "tflite_fp32"


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
        dtypes = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(uint8)": "uint8",
                  "tensor(int8)": "int8"}
        if inputs[0].type not in dtypes:
            raise RunnerError(f"{path}: input type {inputs[0].type} is not supported (float or integer)")
        # A symbolic batch dimension becomes 1 for the description; run_raw feeds whole batches then.
        shape = tuple(d if isinstance(d, int) else 1 for d in inputs[0].shape)
        self._fixed_batch = isinstance(inputs[0].shape[0], int)
        out_shape = tuple(d if isinstance(d, int) else 1 for d in outputs[0].shape)
        self.info = RunnerInfo(
            backend="onnxruntime",
            format="onnx",
            path=str(path),
            size_bytes=path.stat().st_size,
            input_shape=shape,
            input_dtype=dtypes[inputs[0].type],
            layout=image_layout(shape),
            input_quant=None,
            output_quant=None,
            num_classes=int(np.prod(out_shape[1:])),
            threads=threads,
            kernels="cpu",
            output_shape=out_shape,
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
