"""Stages 3–5 of the export chain: ONNX → TF graph (onnx2tf) → TFLite fp32, full-integer int8, int16x8.

Route (measured; see export/README.md): onnx2tf 1.28.8 turns the ONNX graph into an NHWC tf_keras model, and
TensorFlow's own ``TFLiteConverter`` writes fp32 and post-training-quantized models from it. onnx2tf's own int8
path is not used: it downloads calibration images and leaves normalization outside the model.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EdgeGhostError
from ..fileio import atomic_write_bytes

# onnx2tf runs a test inference with this file from the working directory (and downloads it from GitHub when
# it is missing, which fails offline): we write real images there instead.
_ONNX2TF_SAMPLE_FILE = "calibration_image_sample_data_20x128x128x3_float32.npy"

QUANT_MODES = {
    # mode: (TFLite ops set, inference input/output dtype name)
    "int8": ("TFLITE_BUILTINS_INT8", "int8"),
    "int16x8": ("EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8", "int16"),
}


# Lines TensorFlow, XLA and LiteRT write straight to file descriptor 2 on every run, whatever the log level:
# CUDA probing on a machine without a GPU, oneDNN and CPU-feature notices, absl's pre-init banner, the MLIR
# quantizer's parameter dump. Only these exact lines are dropped; everything else on fd 2 is passed on.
_TF_NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called"
    r"|cudart_stub\.cc.*Could not find cuda drivers"
    r"|failed call to cuInit"
    r"|cuda_(platform|executor|diagnostics|dnn|fft|blas)\.cc"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation placer already registered"
    r"|oneDNN custom operations are on"
    r"|cpu_feature_guard\.cc"
    r"|This TensorFlow binary is optimized to use available CPU instructions"
    r"|To enable the following instructions: .* in other operations, rebuild TensorFlow"
    r"|TF-TRT Warning: Could not find TensorRT"
    r"|Created TensorFlow Lite XNNPACK delegate for CPU"
    r"|^fully_quantize: \d+, inference_type: \d+"
    r"|^W0000 .*\.cc:\d+\] Ignored (output_format|drop_control_dependency)"
)


@contextlib.contextmanager
def quiet_tensorflow() -> Iterator[None]:
    """Drop TensorFlow's native start-up noise (see ``_TF_NOISE``) from fd 2 while the block runs.

    ``TF_CPP_MIN_LOG_LEVEL`` does not reach the absl/XLA logs printed before absl is initialized (the CUDA
    probe among them), so fd 2 goes to a temp file for the duration and every other line is replayed after.
    """
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 at all: nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            kept = [line for line in sink.read().decode(errors="replace").splitlines(keepends=True)
                    if not _TF_NOISE.search(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def _import_tensorflow() -> Any:
    """Import TensorFlow (and with it onnx2tf's backend) the one safe way, without its start-up noise.

    Importing ``triton`` *after* TensorFlow 2.21 segfaults the process (torch's CUDA wheels ship triton, and
    torchvision or torch.compile import it lazily), while the other order is fine: so triton goes first.
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    try:
        import triton  # noqa: F401
    except ImportError:  # CPU-only torch builds have no triton
        pass
    # TensorFlow's C++ start-up chatter (oneDNN, CUDA probing) would bury the export's own progress lines.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with quiet_tensorflow():
        import tensorflow as tf

    return tf


@contextlib.contextmanager
def _working_dir(path: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def onnx_to_keras(onnx_path: str | Path, *, sample_images: np.ndarray, work_dir: str | Path) -> Any:
    """Convert ONNX (NCHW) to an NHWC tf_keras model with onnx2tf, offline.

    ``sample_images``: uint8 NHWC real images; onnx2tf uses them for its own per-op check (raw 0..255 floats,
    because the exported graph takes raw pixels).
    """
    _import_tensorflow()
    import onnx2tf
    import tf_keras

    # Keras names layers from process-wide counters (``tf.nn.relu_26``, ``model_18``), and the names end up in the
    # .tflite: reset them so the same ONNX gives the same bytes however many models this process made before.
    tf_keras.backend.reset_uids()
    work_dir = Path(work_dir).resolve()  # resolved before onnx2tf runs in it
    onnx_path = Path(onnx_path).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    np.save(work_dir / _ONNX2TF_SAMPLE_FILE, sample_images[:20].astype(np.float32))
    log = io.StringIO()
    try:
        with _working_dir(work_dir), contextlib.redirect_stdout(log), quiet_tensorflow():
            model = onnx2tf.convert(
                input_onnx_file_path=str(onnx_path),
                output_folder_path=str(work_dir / "onnx2tf"),
                disable_model_save=True,  # we only need the in-memory model
                not_use_onnxsim=True,  # already simplified
                non_verbose=True,
            )
    except SystemExit:  # onnx2tf reports conversion errors with sys.exit(1)
        raise RuntimeError(f"onnx2tf failed to convert {onnx_path}:\n{log.getvalue()[-2000:]}") from None
    if model is None:
        raise RuntimeError(f"onnx2tf returned no model for {onnx_path}:\n{log.getvalue()[-2000:]}")
    return model


def _converter(keras_model: Any) -> Any:
    tf = _import_tensorflow()

    spec = tf.TensorSpec(keras_model.inputs[0].shape, tf.float32, name="input")
    fn = tf.function(lambda x: keras_model(x)).get_concrete_function(spec)
    # The converter first saves its trackable object as a SavedModel. Given the Keras model, that serializes every
    # layer's config (16 of the 18 s a w2.8 conversion took); a bare module holding the same variables gives the
    # same .tflite bytes (signature included) in 2 s.
    holder = tf.Module()
    holder.weights = list(keras_model.variables)
    return tf.lite.TFLiteConverter.from_concrete_functions([fn], holder)


def convert_fp32(keras_model: Any, path: str | Path) -> Path:
    """Plain float32 TFLite (builtin ops only), NHWC float input in 0..255."""
    tf = _import_tensorflow()

    converter = _converter(keras_model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    with quiet_tensorflow():
        return atomic_write_bytes(path, converter.convert())


CALIB_METHODS = ("percentile", "minmax", "mse")
DEFAULT_PERCENTILE = 99.99  # measured best of 99.9 / 99.99 / 99.999 / 100 on a trained GN-S (export/README.md)
HISTOGRAM_IMAGES = 200  # calibration images that feed the activation histograms (ranges use all of them)
_BINS = 2048


def convert_quantized(
    keras_model: Any,
    path: str | Path,
    *,
    calib_images: np.ndarray,
    mode: str = "int8",
    method: str | None = None,
    percentile: float = DEFAULT_PERCENTILE,
    bias_correction: bool = False,
) -> Path:
    """Full-integer post-training quantization from calibration images (uint8 NHWC, fed as raw 0..255 floats,
    exactly what the exported graph expects).

    ``int8``: int8 activations and per-channel int8 weights, builtin int8 ops only, int8 input and output.
    ``int16x8``: 16-bit activations, per-channel 8-bit weights (per-tensor on fully-connected layers, the only
    kind CMSIS-NN's int16 kernel runs), int16 input and output; min/max ranges only
    (16 bits leave every value thousands of steps even under min/max ranges).
    ``method`` (default: ``percentile`` for int8, ``minmax`` for int16x8): ``minmax`` takes each activation's
    min/max over all images; ``percentile`` then narrows every inner
    activation range to the ``percentile`` of |x| (the model input and output keep theirs), which stops rare
    outliers from costing every other value its resolution; ``mse`` narrows each inner range to the clip that
    minimizes that tensor's expected quantization error (:func:`mse_clip`) instead of one percentile for all.

    ``bias_correction`` (int8): shift each conv/FC bias by the mean error its int8 output still has against the
    float model on the first ``BIAS_CORRECTION_IMAGES`` calibration images (:func:`correct_biases`).

    int8 measures the ranges itself (:func:`_calibrate_ranges`, both cores) and hands them to TensorFlow's own
    MLIR quantizer, the step ``convert()`` takes after its single-threaded calibrator; int16x8 goes through
    ``convert()`` (TF quantizes 16-bit activations with its older quantizer, which calibrates on its own).
    """
    tf = _import_tensorflow()

    if mode not in QUANT_MODES:
        raise ValueError(f"unknown quantization mode {mode!r}")
    method = method or ("percentile" if mode == "int8" else "minmax")
    if method not in CALIB_METHODS:
        raise ValueError(f"unknown calibration method {method!r}")
    if mode != "int8" and (method != "minmax" or bias_correction):
        raise ValueError(f"{mode} supports only min/max calibration without bias correction")
    ops_set, io_dtype = QUANT_MODES[mode]
    images = np.asarray(calib_images, dtype=np.float32)
    # int8: TF's calibrator sees one image, only to mark the tensors that need ranges; ours measures them all.
    fed = images if mode != "int8" else images[:1]

    def representative_dataset() -> Iterator[list[np.ndarray]]:
        for image in fed:
            yield [image[None]]

    converter = _converter(keras_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [getattr(tf.lite.OpsSet, ops_set)]
    converter.inference_input_type = getattr(tf, io_dtype)
    converter.inference_output_type = getattr(tf, io_dtype)
    if mode != "int8":
        # Per-tensor FULLY_CONNECTED weights: CMSIS-NN's int16 FC kernel rejects per-channel ones (its prepare fails
        # on a Cortex-M), while the reference kernels run either.
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
        with quiet_tensorflow():
            return atomic_write_bytes(path, converter.convert())
    # The same converter stops after calibration (a float model carrying min/max per tensor), the ranges are
    # measured (and narrowed), and TensorFlow's own MLIR quantizer (what convert() would call next) quantizes.
    # Both entry points are private TF API, pinned by tests/test_export.py (min/max ranges are the fp32
    # activations' extremes; percentile ranges shrink and outliers clip).
    from tensorflow.lite.python import convert as tf_convert

    if not hasattr(tf_convert, "mlir_quantize") or not hasattr(converter, "_experimental_calibrate_only"):
        raise EdgeGhostError(
            f"int8 calibration needs TensorFlow's private calibrate-only/mlir_quantize API, which TensorFlow "
            f"{tf.__version__} lacks"
        )
    converter._experimental_calibrate_only = True
    with quiet_tensorflow():
        marked = converter.convert()
        calibrated = _calibrate_ranges(marked, images, method, percentile)
        quantized = tf_convert.mlir_quantize(calibrated, input_data_type=tf.int8, output_data_type=tf.int8)
        quantized = tf_convert.deduplicate_readonly_buffers(quantized)
    if bias_correction:
        quantized, _ = correct_biases(quantized, marked, images[:BIAS_CORRECTION_IMAGES])
    return atomic_write_bytes(path, quantized)


def map_halves(fn: Callable[[np.ndarray], Any], images: np.ndarray) -> list[Any]:
    """``fn`` on the two halves of ``images`` in two threads (one on a single core), results in order. LiteRT
    releases the GIL while it invokes and TFLite-Micro runs in a child process, so this uses both cores."""
    parts = np.array_split(images, max(1, min(2, os.cpu_count() or 1, len(images))))
    with ThreadPoolExecutor(max_workers=len(parts)) as pool:
        return list(pool.map(fn, parts))


def _tensor_pass(model: bytes, tensors: list[int], images: np.ndarray, visit: Callable[[int, np.ndarray], None], *,
                 reference_kernels: bool = False) -> None:
    """Run ``model`` on each uint8 image (LiteRT, every intermediate kept; an int8 model gets q = pixel - 128, its
    input contract, on LiteRT's reference kernels with ``reference_kernels``) and ``visit`` each tensor's values."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_content=model, experimental_preserve_all_tensors=True,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_REF if reference_kernels
                         else OpResolverType.AUTO)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    for image in images:
        x = image[None].astype(np.float32)
        interp.set_tensor(inp["index"], (x + INT8_INPUT_ZERO_POINT).astype(np.int8) if inp["dtype"] == np.int8 else x)
        interp.invoke()
        for i in tensors:
            visit(i, interp.get_tensor(i))


def _pack(model: Any, size_hint: int) -> bytes:
    """A schema ``ModelT`` back to ``.tflite`` bytes."""
    import flatbuffers

    builder = flatbuffers.Builder(size_hint + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def mse_clip(counts: np.ndarray, bound: float, lo: float, hi: float) -> float:
    """The clip ``t`` (a histogram bin edge) whose int8 grid on ``[max(lo, -t), min(hi, t)]`` gives the least
    expected squared error over a histogram of |x| (``counts`` in ``len(counts)`` equal bins on ``[0, bound]``):
    values inside the range cost the rounding error step²/12, values beyond it their distance to the clip
    (taken at the bin centre). A one-sided (ReLU) tensor spends all 256 levels on ``[0, t]``, a two-sided one on
    ``[-t, t]`` where its min and max reach that far."""
    bins = len(counts)
    centres = (np.arange(bins) + 0.5) * (bound / bins)
    clips = np.arange(1, bins + 1) * (bound / bins)  # candidate t: every bin's upper edge
    steps = (np.minimum(hi, clips) - np.maximum(lo, -clips)) / 255.0
    inside = np.cumsum(counts)  # values with |x| below each clip
    # Clipping error Σ_{c > t} n (c - t)² = S2 - 2 t S1 + t² S0 over the bins above t, from suffix sums.
    s0, s1, s2 = (np.cumsum((counts * centres**k)[::-1])[::-1] for k in (0, 1, 2))
    above = lambda s: np.append(s[1:], 0.0)  # noqa: E731 - bins strictly above candidate t's bin
    clipped = above(s2) - 2 * clips * above(s1) + clips**2 * above(s0)
    error = inside * steps**2 / 12.0 + np.maximum(clipped, 0.0)
    return float(clips[int(np.argmin(error))])


def _calibrate_ranges(marked: bytes, images: np.ndarray, method: str, percentile: float) -> bytes:
    """Give every activation tensor of the calibrate-only model ``marked`` its [min, max] over ``images``; with
    ``percentile``/``mse``, narrow each inner one to ±clip from a histogram of |x| over the first
    ``HISTOGRAM_IMAGES`` (the ``percentile`` of |x|, or :func:`mse_clip`). Both passes split the images over two
    threads; min, max and integer counts combine exactly, so the ranges do not depend on the split."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(marked, 0)
    graph = model.subgraphs[0]
    tensors = [i for i, t in enumerate(graph.tensors)
               if t.quantization is not None and t.quantization.min is not None and len(t.quantization.min) == 1]

    def extremes(part: np.ndarray) -> dict[int, list[float]]:
        seen = {i: [np.inf, -np.inf] for i in tensors}

        def visit(i: int, x: np.ndarray) -> None:
            seen[i][0], seen[i][1] = min(seen[i][0], float(x.min())), max(seen[i][1], float(x.max()))

        _tensor_pass(marked, tensors, part, visit)
        return seen

    partial = map_halves(extremes, images)
    ranges = {i: (min(p[i][0] for p in partial), max(p[i][1] for p in partial)) for i in tensors}
    keep = set(graph.inputs.tolist()) | set(graph.outputs.tolist())
    inner = [i for i in tensors if i not in keep]
    clips: dict[int, float] = {}
    if method != "minmax" and inner:
        bounds = {i: max(abs(ranges[i][0]), abs(ranges[i][1])) or 1.0 for i in inner}

        def histograms(part: np.ndarray) -> dict[int, np.ndarray]:
            counts = {i: np.zeros(_BINS, np.int64) for i in inner}

            def visit(i: int, x: np.ndarray) -> None:
                idx = np.minimum((np.abs(x).ravel() * (_BINS / bounds[i])).astype(np.int64), _BINS - 1)
                counts[i] += np.bincount(idx, minlength=_BINS)

            _tensor_pass(marked, inner, part, visit)
            return counts

        hist = map_halves(histograms, images[:HISTOGRAM_IMAGES])
        for i in inner:
            counts = sum(c[i] for c in hist)
            cdf = np.cumsum(counts)
            if not cdf[-1]:
                continue
            if method == "mse":
                clips[i] = mse_clip(counts, bounds[i], *ranges[i])
            else:
                clips[i] = bounds[i] * (int(np.searchsorted(cdf, percentile / 100 * cdf[-1])) + 1) / _BINS
    for i, (lo, hi) in ranges.items():
        clip = clips.get(i, np.inf)
        q = graph.tensors[i].quantization
        q.min, q.max = [max(lo, -clip)], [min(hi, clip)]
    return _pack(model, len(marked))


# Calibration images whose mean int8 error each bias is corrected by: the cost is one int8 inference per biased
# op and image (GN-S-MCU, agreement with fp32 on 10,000 test images: 64 images 99.52 %, 200 99.55 %, 500 99.57 %).
BIAS_CORRECTION_IMAGES = 200
_BIASED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def correct_biases(quantized: bytes, reference: bytes, images: np.ndarray) -> tuple[bytes, list[dict[str, Any]]]:
    """Empirical bias correction of a full-integer model: op by op in execution order, every CONV_2D,
    DEPTHWISE_CONV_2D and FULLY_CONNECTED gets its int32 bias shifted by the mean per-channel difference between
    its int8 output (dequantized, LiteRT's reference kernels: what TFLite-Micro computes) and the same tensor of
    the float model ``reference`` over ``images`` (calibration images; tensors are matched by name, both models
    being one converted graph). Upstream corrections are in place when an op's error is measured. Only elements
    in the op's linear region count: int8 output strictly inside its range (not clamped by a fused ReLU/ReLU6
    or the int8 limits) and the float value inside the representable range, so clipping is not mistaken for a
    bias. Returns the corrected model and, per op, the shift in output steps (max |shift| per channel)."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.interpreter import Interpreter

    def outputs(model: bytes, tensors: list[int], reference_kernels: bool) -> dict[int, np.ndarray]:
        def part(images: np.ndarray) -> dict[int, list[np.ndarray]]:
            seen: dict[int, list[np.ndarray]] = {i: [] for i in tensors}
            _tensor_pass(model, tensors, images, lambda i, x: seen[i].append(x.copy()),
                         reference_kernels=reference_kernels)
            return seen

        parts = map_halves(part, images)
        return {i: np.concatenate([v for p in parts for v in p[i]]).astype(np.float64) for i in tensors}

    model = schema.ModelT.InitFromPackedBuf(quantized, 0)
    graph = model.subgraphs[0]
    codes = {getattr(schema.BuiltinOperator, n): n for n in _BIASED_OPS}
    uses: dict[int, int] = {}
    for t in graph.tensors:
        uses[t.buffer] = uses.get(t.buffer, 0) + 1
    float_index = {t["name"]: t["index"] for t in Interpreter(model_content=reference).get_tensor_details()}
    targets = []
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        name = codes.get(max(code.builtinCode, code.deprecatedBuiltinCode))
        out = graph.tensors[op.outputs[0]]
        if name is None or len(op.inputs) < 3 or op.inputs[2] < 0 or out.name.decode() not in float_index:
            continue
        targets.append((name, op, out))
    float_tensors = [float_index[out.name.decode()] for _, _, out in targets]
    ref = outputs(reference, float_tensors, False)

    report = []
    # One int8 run per op, after every upstream shift: correcting all ops from one run (and repeating) was
    # measured to diverge on GN-S-MCU (agreement 97.1 % after one pass, 82.7 % after two), because each op's
    # error then also carries the upstream errors that their own shifts remove.
    for (name, op, out), f in zip(targets, float_tensors):
        q = outputs(_pack(model, len(quantized)), [op.outputs[0]], True)[op.outputs[0]]
        report.append(_shift_bias(model, graph, uses, name, op, out, q, ref[f]))
    return _pack(model, len(quantized)), report


def _shift_bias(model: Any, graph: Any, uses: dict[int, int], name: str, op: Any, out: Any, q: np.ndarray,
                f: np.ndarray) -> dict[str, Any]:
    """Shift ``op``'s int32 bias by the mean per-channel error of its int8 output ``q`` against the float ``f``
    over the linear region (see :func:`correct_biases`); returns the shift in output steps."""
    from ai_edge_litert import schema_py_generated as schema

    scale, zp = float(out.quantization.scale[0]), int(out.quantization.zeroPoint[0])
    lo, hi = (-128 - zp) * scale, (127 - zp) * scale
    linear = (q > -128) & (q < 127) & (f > lo) & (f < hi)
    channels = q.shape[-1]
    counts = linear.reshape(-1, channels).sum(0)
    mean = (((q - zp) * scale - f) * linear).reshape(-1, channels).sum(0) / np.maximum(counts, 1)
    bias = graph.tensors[op.inputs[2]]
    if uses[bias.buffer] > 1:  # a deduplicated buffer shared with another tensor: give this one its own
        model.buffers.append(schema.BufferT())
        model.buffers[-1].data = np.array(model.buffers[bias.buffer].data, dtype=np.uint8)
        uses[bias.buffer] -= 1
        bias.buffer = len(model.buffers) - 1
        uses[bias.buffer] = 1
    bias_scale = np.broadcast_to(np.asarray(bias.quantization.scale, np.float64), (channels,))
    values = np.frombuffer(np.asarray(model.buffers[bias.buffer].data, np.uint8).tobytes(), np.int32)
    shift = np.round(mean / bias_scale).astype(np.int64)
    values = np.clip(values.astype(np.int64) - shift, -(2**31), 2**31 - 1).astype(np.int32)
    model.buffers[bias.buffer].data = np.frombuffer(values.tobytes(), np.uint8).copy()
    return {"op": name, "tensor": out.name.decode(), "max_shift_steps": round(float(np.abs(mean).max() / scale), 3),
            "mean_shift_steps": round(float(np.abs(mean).mean() / scale), 3)}


@dataclass(frozen=True)
class QuantizationFacts:
    """What the full-integer checks look at in a ``.tflite``: ops and I/O tensors, the dtype of every tensor and
    how many are quantized per channel (all from :func:`edgeghost.runtime.read_tflite`, the one ``.tflite``
    reader), plus every QUANTIZE/DEQUANTIZE op with the dtypes it converts (``"int16->int16"`` is a
    requantization between integer scales, which a full-integer model may hold; anything touching a float is a
    float island)."""

    ops: tuple[str, ...]
    input: Any  # edgeghost.runtime.TensorFacts
    output: Any
    tensor_dtypes: dict[str, int] = field(default_factory=dict)
    per_channel_tensors: int = 0
    conversions: tuple[str, ...] = ()  # "QUANTIZE int16->int16", "DEQUANTIZE int8->float32", ...

    def to_dict(self) -> dict[str, Any]:
        def io(t: Any) -> dict[str, Any]:
            return {"name": t.name, "dtype": t.dtype, "shape": list(t.shape), "scale": t.scale,
                    "zero_point": t.zero_point}

        return {"ops": list(self.ops), "input": io(self.input), "output": io(self.output),
                "tensor_dtypes": self.tensor_dtypes, "per_channel_tensors": self.per_channel_tensors,
                "conversions": dict(sorted({c: self.conversions.count(c) for c in self.conversions}.items()))}


def inspect_tflite(path: str | Path) -> QuantizationFacts:
    """Ops, I/O quantization, tensor dtypes, per-channel tensors and (de)quantize ops of a .tflite (nothing is
    run; LiteRT's interpreter is opened only to name the dtypes each (de)quantize op converts)."""
    from ai_edge_litert.interpreter import Interpreter

    from ..runtime import read_tflite

    facts = read_tflite(path)
    interp = Interpreter(model_path=str(path))
    details = {t["index"]: t for t in interp.get_tensor_details()}
    conversions = tuple(
        f"{op['op_name']} {np.dtype(details[op['inputs'][0]]['dtype']).name}->"
        f"{np.dtype(details[op['outputs'][0]]['dtype']).name}"
        for op in interp._get_ops_details() if op["op_name"] in ("QUANTIZE", "DEQUANTIZE")
    )
    return QuantizationFacts(facts.ops, facts.input, facts.output, dict(facts.tensor_dtypes),
                             facts.per_channel_tensors, conversions)


# The int8 input contract (MLPerf Tiny convention): q = pixel − 128, i.e. scale 1.0 and zero-point −128.
INT8_INPUT_SCALE = 1.0
INT8_INPUT_ZERO_POINT = -128


def check_full_integer(facts: QuantizationFacts, *, mode: str = "int8") -> None:
    """Fail loudly unless the model is truly full-integer with the documented input contract.

    A QUANTIZE op between two integer tensors is a requantization (TFLite inserts them where concatenated
    int16 inputs carry different scales, for example) and runs in TFLite-Micro; a DEQUANTIZE, or a QUANTIZE
    from or to a float tensor, would mean a float island inside the model.
    """
    _, io_dtype = QUANT_MODES[mode]
    problems = []
    if facts.input.dtype != io_dtype or facts.output.dtype != io_dtype:
        problems.append(f"input/output dtypes are {facts.input.dtype}/{facts.output.dtype}, not {io_dtype}")
    floats = {k: v for k, v in facts.tensor_dtypes.items() if k.startswith("float")}
    if floats:
        problems.append(f"float tensors remain: {floats}")
    float_islands = sorted({c for c in facts.conversions if c.startswith("DEQUANTIZE") or "float" in c})
    if float_islands:
        problems.append(f"float conversions inside the model: {', '.join(float_islands)}")
    if facts.per_channel_tensors == 0:
        problems.append("no per-channel quantized weights")
    if mode == "int8" and (facts.input.scale != INT8_INPUT_SCALE or facts.input.zero_point != INT8_INPUT_ZERO_POINT):
        problems.append(
            f"int8 input quantization is scale {facts.input.scale!r}, zero-point {facts.input.zero_point} instead of "
            f"scale 1.0, zero-point -128 (q = pixel - 128): the calibration images must span pixel values 0..255"
        )
    if problems:
        raise EdgeGhostError(f"{mode} model breaks the full-integer contract: " + "; ".join(problems))
