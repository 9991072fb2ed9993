"""Stages 3–5 of the export chain: ONNX → TF graph (onnx2tf) → TFLite fp32, full-integer int8, int16x8.

Route (measured; see export/README.md): onnx2tf 1.28.8 turns the ONNX graph into an NHWC tf_keras model, and
TensorFlow's own ``TFLiteConverter`` writes fp32 and post-training-quantized models from it. onnx2tf's own int8
path is not used: it downloads calibration images and leaves normalization outside the model.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EdgeGhostError

# onnx2tf runs a test inference with this file from the working directory (and downloads it from GitHub when
# it is missing, which fails offline): we write real images there instead.
_ONNX2TF_SAMPLE_FILE = "calibration_image_sample_data_20x128x128x3_float32.npy"

QUANT_MODES = {
    # mode: (TFLite ops set, inference input/output dtype name)
    "int8": ("TFLITE_BUILTINS_INT8", "int8"),
    "int16x8": ("EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8", "int16"),
}


def _import_tensorflow() -> Any:
    """Import TensorFlow (and with it onnx2tf's backend) the one safe way.

    Importing ``triton`` *after* TensorFlow 2.21 segfaults the process (torch's CUDA wheels ship triton, and
    torchvision or torch.compile import it lazily), while the other order is fine: so triton goes first.
    """
    try:
        import triton  # noqa: F401
    except ImportError:  # CPU-only torch builds have no triton
        pass
    # TensorFlow's C++ start-up chatter (oneDNN, CUDA probing) would bury the export's own progress lines.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
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

    work_dir = Path(work_dir).resolve()  # resolved before onnx2tf runs in it
    onnx_path = Path(onnx_path).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    np.save(work_dir / _ONNX2TF_SAMPLE_FILE, sample_images[:20].astype(np.float32))
    log = io.StringIO()
    try:
        with _working_dir(work_dir), contextlib.redirect_stdout(log):
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
    return tf.lite.TFLiteConverter.from_concrete_functions([fn], keras_model)


def convert_fp32(keras_model: Any, path: str | Path) -> Path:
    """Plain float32 TFLite (builtin ops only), NHWC float input in 0..255."""
    tf = _import_tensorflow()

    converter = _converter(keras_model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    path = Path(path)
    path.write_bytes(converter.convert())
    return path


CALIB_METHODS = ("percentile", "minmax")
DEFAULT_PERCENTILE = 99.99  # measured best of 99.9 / 99.99 / 99.999 / 100 on a trained GN-S (export/README.md)
HISTOGRAM_IMAGES = 200  # calibration images that feed the activation histograms (ranges use all of them)
_BINS = 2048


def convert_quantized(
    keras_model: Any,
    path: str | Path,
    *,
    calib_images: np.ndarray,
    mode: str = "int8",
    method: str = "percentile",
    percentile: float = DEFAULT_PERCENTILE,
) -> Path:
    """Full-integer post-training quantization from real calibration images (uint8 NHWC).

    ``int8``: int8 activations and per-channel int8 weights, builtin int8 ops only, int8 input and output.
    ``int16x8``: 16-bit activations, 8-bit weights, int16 input and output (always min/max ranges).
    ``method``: ``minmax`` keeps TFLite's calibration ranges (min/max over all images); ``percentile`` narrows
    every inner activation range to the ``percentile`` of |x| (the model input and output keep theirs), which
    stops rare outliers from costing every other value its resolution.
    Every calibration image is fed as raw 0..255 floats, exactly what the exported graph expects.
    """
    tf = _import_tensorflow()

    if mode not in QUANT_MODES:
        raise ValueError(f"unknown quantization mode {mode!r}")
    if method not in CALIB_METHODS:
        raise ValueError(f"unknown calibration method {method!r}")
    ops_set, io_dtype = QUANT_MODES[mode]
    images = np.asarray(calib_images, dtype=np.float32)

    def representative_dataset() -> Iterator[list[np.ndarray]]:
        for image in images:
            yield [image[None]]

    converter = _converter(keras_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [getattr(tf.lite.OpsSet, ops_set)]
    converter.inference_input_type = getattr(tf, io_dtype)
    converter.inference_output_type = getattr(tf, io_dtype)
    path = Path(path)
    if mode != "int8" or method == "minmax":
        path.write_bytes(converter.convert())
        return path
    # Percentile: the same converter stops after calibration (float model carrying min/max per tensor), the
    # ranges are narrowed, and TensorFlow's own MLIR quantizer (what convert() would call next) quantizes.
    from tensorflow.lite.python import convert as tf_convert

    converter._experimental_calibrate_only = True  # pinned TF 2.21; see export/README.md
    calibrated = converter.convert()
    narrowed = _narrow_ranges(calibrated, images[:HISTOGRAM_IMAGES], percentile)
    quantized = tf_convert.mlir_quantize(narrowed, input_data_type=tf.int8, output_data_type=tf.int8)
    path.write_bytes(tf_convert.deduplicate_readonly_buffers(quantized))
    return path


def _narrow_ranges(calibrated: bytes, images: np.ndarray, percentile: float) -> bytes:
    """Replace each inner activation's calibrated [min, max] by ±(``percentile`` of |x|), clipped to it."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.interpreter import Interpreter

    model = schema.ModelT.InitFromPackedBuf(calibrated, 0)
    graph = model.subgraphs[0]
    keep = set(graph.inputs.tolist()) | set(graph.outputs.tolist())
    ranges = {}
    for i, t in enumerate(graph.tensors):
        q = t.quantization
        if i not in keep and q is not None and q.min is not None and len(q.min) == 1:
            ranges[i] = (float(q.min[0]), float(q.max[0]))
    interp = Interpreter(model_content=calibrated, experimental_preserve_all_tensors=True)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]["index"]
    hist = {i: np.zeros(_BINS, np.int64) for i in ranges}
    for image in images:
        interp.set_tensor(inp, image[None])
        interp.invoke()
        for i, (lo, hi) in ranges.items():
            bound = max(abs(lo), abs(hi)) or 1.0
            idx = np.minimum((np.abs(interp.get_tensor(i)).ravel() * (_BINS / bound)).astype(np.int64), _BINS - 1)
            hist[i] += np.bincount(idx, minlength=_BINS)
    for i, (lo, hi) in ranges.items():
        cdf = np.cumsum(hist[i])
        if cdf[-1] == 0:
            continue
        bound = max(abs(lo), abs(hi))
        clip = bound * (int(np.searchsorted(cdf, percentile / 100 * cdf[-1])) + 1) / _BINS
        q = graph.tensors[i].quantization
        q.min, q.max = [max(lo, -clip)], [min(hi, clip)]
    builder = flatbuffers.Builder(len(calibrated) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@dataclass(frozen=True)
class TFLiteFacts:
    """What a .tflite file holds: ops and I/O tensors (read by :func:`edgeghost.export.tflm.read_tflite`), plus
    the dtype of every tensor and how many are quantized per channel."""

    ops: tuple[str, ...]
    input: Any  # edgeghost.export.tflm.TensorFacts
    output: Any
    tensor_dtypes: dict[str, int] = field(default_factory=dict)
    per_channel_tensors: int = 0

    def to_dict(self) -> dict[str, Any]:
        def io(t: Any) -> dict[str, Any]:
            return {**asdict(t), "shape": list(t.shape)}

        return {"ops": list(self.ops), "input": io(self.input), "output": io(self.output),
                "tensor_dtypes": self.tensor_dtypes, "per_channel_tensors": self.per_channel_tensors}


def inspect_tflite(path: str | Path) -> TFLiteFacts:
    """Ops, I/O quantization, tensor dtypes and per-channel tensors of a .tflite (nothing is run)."""
    from ai_edge_litert.interpreter import Interpreter

    from .tflm import read_tflite

    facts = read_tflite(path)
    dtypes: dict[str, int] = {}
    per_channel = 0
    for t in Interpreter(model_path=str(path)).get_tensor_details():
        name = np.dtype(t["dtype"]).name
        dtypes[name] = dtypes.get(name, 0) + 1
        per_channel += len(t["quantization_parameters"]["scales"]) > 1
    return TFLiteFacts(facts.ops, facts.input, facts.output, dict(sorted(dtypes.items())), per_channel)


# The int8 input contract (MLPerf Tiny convention): q = pixel − 128, i.e. scale 1.0 and zero-point −128.
INT8_INPUT_SCALE = 1.0
INT8_INPUT_ZERO_POINT = -128


def check_full_integer(facts: TFLiteFacts, *, mode: str = "int8") -> None:
    """Fail loudly unless the model is truly full-integer with the documented input contract."""
    _, io_dtype = QUANT_MODES[mode]
    problems = []
    if facts.input.dtype != io_dtype or facts.output.dtype != io_dtype:
        problems.append(f"input/output dtypes are {facts.input.dtype}/{facts.output.dtype}, not {io_dtype}")
    floats = {k: v for k, v in facts.tensor_dtypes.items() if k.startswith("float")}
    if floats:
        problems.append(f"float tensors remain: {floats}")
    if {"QUANTIZE", "DEQUANTIZE"} & set(facts.ops):
        problems.append(f"QUANTIZE/DEQUANTIZE ops inside the model: {facts.ops}")
    if facts.per_channel_tensors == 0:
        problems.append("no per-channel quantized weights")
    if mode == "int8" and (facts.input.scale != INT8_INPUT_SCALE or facts.input.zero_point != INT8_INPUT_ZERO_POINT):
        problems.append(
            f"int8 input quantization is scale {facts.input.scale!r}, zero-point {facts.input.zero_point} instead of "
            f"scale 1.0, zero-point -128 (q = pixel - 128): the calibration images must span pixel values 0..255"
        )
    if problems:
        raise EdgeGhostError(f"{mode} model breaks the full-integer contract: " + "; ".join(problems))
