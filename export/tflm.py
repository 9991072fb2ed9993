"""TFLite-Micro C artefacts for a full-integer ``.tflite``: the C array, the settings header and the op resolver.

``write_tflm_artifacts`` turns any int8 (or int16x8: int16 activations, input and output) TFLite model into the
four files firmware compiles against:

- ``model_data.cc/.h``: the flatbuffer as an ``alignas(16)`` byte array and its length (TFLM reads the model in
  place, and some kernels need 16-byte aligned weights), without the tensor names TFLM never reads; those exact
  bytes are also written as ``model.tflite``, the file every firmware check runs in the Python interpreter.
- ``model_settings.h``: input/output shape, element type (``ModelIo``), scale and zero-point, class labels, and
  the tensor arena size —
  the minimum measured by running the model in the real TFLite-Micro interpreter plus a stated margin, so no
  firmware ever carries a hand-typed arena number.
- ``model_ops.h``: ``RegisterModelOps(resolver)`` filling a ``tflite::MicroMutableOpResolver<N>`` with exactly the N
  builtin ops the model uses; an op TFLM does not implement is an :class:`EdgeGhostError` naming it.

The same facts are returned as a dict and written to ``tflm.json`` next to the files.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import EdgeGhostError
from ..runtime.tflite_file import read_tflite

# Extra arena on top of the measured minimum. The measurement runs the 64-bit host interpreter with reference
# kernels; 32-bit MCUs need less for bookkeeping, but optimized kernels (CMSIS-NN, ESP-NN) ask for scratch buffers
# the reference kernels do not. Relative margin for big models, fixed floor for tiny ones; multiple of 16.
ARENA_MARGIN_FRACTION = 0.10
ARENA_MARGIN_MIN_BYTES = 4096

# TFLite builtin operator name -> tflite::MicroMutableOpResolver method (TFLM commit 90b983c2, the pinned tree in
# /work/shared/third_party/tflm). Every builtin TFLM registers is here; anything else cannot run on TFLM.
MICRO_RESOLVER_METHODS: dict[str, str] = {
    "ABS": "AddAbs", "ADD": "AddAdd", "ADD_N": "AddAddN", "ARG_MAX": "AddArgMax", "ARG_MIN": "AddArgMin",
    "ASSIGN_VARIABLE": "AddAssignVariable", "AVERAGE_POOL_2D": "AddAveragePool2D",
    "BATCH_MATMUL": "AddBatchMatMul", "BATCH_TO_SPACE_ND": "AddBatchToSpaceNd",
    "BROADCAST_ARGS": "AddBroadcastArgs", "BROADCAST_TO": "AddBroadcastTo", "CALL_ONCE": "AddCallOnce",
    "CAST": "AddCast", "CEIL": "AddCeil", "CONCATENATION": "AddConcatenation", "CONV_2D": "AddConv2D",
    "COS": "AddCos", "CUMSUM": "AddCumSum", "DEPTH_TO_SPACE": "AddDepthToSpace",
    "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D", "DEQUANTIZE": "AddDequantize", "DIV": "AddDiv",
    "DYNAMIC_UPDATE_SLICE": "AddDynamicUpdateSlice", "ELU": "AddElu", "EMBEDDING_LOOKUP": "AddEmbeddingLookup",
    "EQUAL": "AddEqual", "EXP": "AddExp", "EXPAND_DIMS": "AddExpandDims", "FILL": "AddFill", "FLOOR": "AddFloor",
    "FLOOR_DIV": "AddFloorDiv", "FLOOR_MOD": "AddFloorMod", "FULLY_CONNECTED": "AddFullyConnected",
    "GATHER": "AddGather", "GATHER_ND": "AddGatherNd", "GREATER": "AddGreater",
    "GREATER_EQUAL": "AddGreaterEqual", "HARD_SWISH": "AddHardSwish", "IF": "AddIf",
    "L2_NORMALIZATION": "AddL2Normalization", "L2_POOL_2D": "AddL2Pool2D", "LEAKY_RELU": "AddLeakyRelu",
    "LESS": "AddLess", "LESS_EQUAL": "AddLessEqual", "LOG": "AddLog", "LOGICAL_AND": "AddLogicalAnd",
    "LOGICAL_NOT": "AddLogicalNot", "LOGICAL_OR": "AddLogicalOr", "LOGISTIC": "AddLogistic",
    "LOG_SOFTMAX": "AddLogSoftmax", "MAXIMUM": "AddMaximum", "MAX_POOL_2D": "AddMaxPool2D",
    "MIRROR_PAD": "AddMirrorPad", "MEAN": "AddMean", "MINIMUM": "AddMinimum", "MUL": "AddMul", "NEG": "AddNeg",
    "NOT_EQUAL": "AddNotEqual", "PACK": "AddPack", "PAD": "AddPad", "PADV2": "AddPadV2", "PRELU": "AddPrelu",
    "QUANTIZE": "AddQuantize", "READ_VARIABLE": "AddReadVariable", "REDUCE_ALL": "AddReduceAll",
    "REDUCE_MAX": "AddReduceMax", "REDUCE_MIN": "AddReduceMin", "RELU": "AddRelu", "RELU6": "AddRelu6",
    "RESHAPE": "AddReshape", "RESIZE_BILINEAR": "AddResizeBilinear",
    "RESIZE_NEAREST_NEIGHBOR": "AddResizeNearestNeighbor", "REVERSE_V2": "AddReverseV2", "ROUND": "AddRound",
    "RSQRT": "AddRsqrt", "SELECT_V2": "AddSelectV2", "SHAPE": "AddShape", "SIN": "AddSin", "SLICE": "AddSlice",
    "SOFTMAX": "AddSoftmax", "SPACE_TO_BATCH_ND": "AddSpaceToBatchNd", "SPACE_TO_DEPTH": "AddSpaceToDepth",
    "SPLIT": "AddSplit", "SPLIT_V": "AddSplitV", "SQUEEZE": "AddSqueeze", "SQRT": "AddSqrt",
    "SQUARE": "AddSquare", "SQUARED_DIFFERENCE": "AddSquaredDifference", "STRIDED_SLICE": "AddStridedSlice",
    "SUB": "AddSub", "SUM": "AddSum", "SVDF": "AddSvdf", "TANH": "AddTanh", "TRANSPOSE": "AddTranspose",
    "TRANSPOSE_CONV": "AddTransposeConv", "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM",
    "UNPACK": "AddUnpack", "VAR_HANDLE": "AddVarHandle", "WHILE": "AddWhile", "ZEROS_LIKE": "AddZerosLike",
}

def resolver_methods(ops: Sequence[str]) -> list[str]:
    """``MicroMutableOpResolver`` ``AddXxx`` method per op; any op TFLM lacks is one error naming all of them."""
    missing = [op for op in ops if op not in MICRO_RESOLVER_METHODS]
    if missing:
        raise EdgeGhostError(
            f"TFLite-Micro does not support op(s) {', '.join(missing)}; "
            "change the model so the converter emits TFLM builtin ops"
        )
    return [MICRO_RESOLVER_METHODS[op] for op in ops]


def arena_size_with_margin(measured_bytes: int) -> int:
    """Arena for firmware: measured minimum + max(10 %, 4 KiB), rounded up to 16 bytes."""
    margin = max(int(measured_bytes * ARENA_MARGIN_FRACTION), ARENA_MARGIN_MIN_BYTES)
    return (measured_bytes + margin + 15) // 16 * 16


def replace_dir(out_dir: Path, write: Callable[[Path], None]) -> None:
    """Fill a temp folder next to ``out_dir`` with ``write(tmp)``, then swap it in: never half a folder."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        write(tmp)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _io(t: Any) -> dict[str, Any]:
    """An input/output tensor as firmware sees it (per-tensor quantization)."""
    return {"name": t.name, "dtype": t.dtype, "shape": list(t.shape), "scale": t.scale, "zero_point": t.zero_point}


EMBEDDED_MODEL = "model.tflite"  # in the tflm/ folder: the exact bytes of model_data.cc's g_model


def strip_tensor_names(data: bytes) -> tuple[bytes, int]:
    """The flatbuffer without the strings TFLite-Micro never reads (tensor names, subgraph names, the model
    description) and how many bytes of names that removes. Ops, tensors, buffers, quantization and signatures are
    untouched, so every output stays bit for bit the same (:func:`write_tflm_artifacts` checks it)."""
    import flatbuffers

    from ..runtime.tflite_file import _schema

    schema = _schema()
    model = schema.ModelT.InitFromPackedBuf(data, 0)
    removed = len(model.description or b"")
    model.description = None
    for graph in model.subgraphs or []:
        removed += len(graph.name or b"")
        graph.name = None
        for tensor in graph.tensors or []:
            removed += len(tensor.name or b"")
            tensor.name = None
    builder = flatbuffers.Builder(len(data) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), removed


# Raw input/output element type of a full-integer model -> the C type firmware uses for it (``ModelIo``).
IO_CTYPES = {"int8": "int8_t", "int16": "int16_t"}


def _same_outputs(original: Path, stripped: Path, input_shape: Sequence[int], arena: int, dtype: str) -> None:
    """Both flatbuffers give identical outputs in TFLite-Micro on seeded inputs (names are not computation)."""
    import numpy as np

    from ..runtime.tflm import tflm_invoke

    info = np.iinfo(dtype)
    x = np.random.default_rng(0).integers(info.min, info.max + 1, (2, *input_shape[1:]), dtype=dtype)
    a = np.asarray(tflm_invoke(original, x, arena_size=arena))
    b = np.asarray(tflm_invoke(stripped, x, arena_size=arena))
    if not np.array_equal(a, b):
        raise EdgeGhostError(f"{original.name} without tensor names gives other outputs in TFLite-Micro; not embedding it")


def write_tflm_artifacts(tflite_path: str | Path, out_dir: str | Path, *, labels: Sequence[str],
                         strip_names: bool = True) -> dict[str, Any]:
    """Write ``model_data.cc/.h``, ``model_settings.h``, ``model_ops.h``, ``tflm.json`` and ``model.tflite``
    (the embedded flatbuffer) for a full-integer model: int8, or int16x8 (int16 input, output and activations).

    ``strip_names``: embed the model without tensor/subgraph names (:func:`strip_tensor_names`; 11 % of a GN-S
    flatbuffer's flash), after checking that TFLite-Micro computes the same outputs from both. The arena size is
    measured on the embedded flatbuffer with :func:`edgeghost.runtime.tflm.find_min_arena` (the real
    TFLite-Micro interpreter) and padded by :func:`arena_size_with_margin`. ``out_dir`` is replaced atomically.
    Returns the facts (ops, resolver methods, arena bytes, input/output quantization, labels, file names).
    """
    tflite_path = Path(tflite_path)
    out_dir = Path(out_dir)
    facts = read_tflite(tflite_path)
    methods = resolver_methods(facts.ops)
    dtype = facts.input.dtype
    if dtype not in IO_CTYPES or facts.output.dtype != dtype:
        raise EdgeGhostError(f"{tflite_path}: input/output tensors are {facts.input.dtype}/{facts.output.dtype}; "
                             "TFLM firmware needs a full-integer model (int8, or int16x8)")
    num_classes = facts.output.shape[-1]
    labels = [str(label) for label in labels]
    if len(labels) != num_classes:
        raise EdgeGhostError(f"{len(labels)} labels given for a model with {num_classes} outputs")

    from ..runtime.tflm import find_min_arena  # runs the model in TFLM; imported late (needs the tflite-micro wheel)

    original = tflite_path.read_bytes()
    embedded, names_bytes = strip_tensor_names(original) if strip_names else (original, 0)
    with tempfile.TemporaryDirectory() as work:
        embedded_path = Path(work) / EMBEDDED_MODEL
        embedded_path.write_bytes(embedded)
        measured = int(find_min_arena(embedded_path))
        if strip_names:
            _same_outputs(tflite_path, embedded_path, facts.input.shape, measured, dtype)
    arena = arena_size_with_margin(measured)
    info: dict[str, Any] = {
        "source": tflite_path.name,
        "embedded": EMBEDDED_MODEL,
        "model_bytes": len(embedded),
        "source_bytes": facts.model_bytes,
        "stripped_name_bytes": names_bytes,
        "ops": list(facts.ops),
        "resolver_methods": methods,
        "num_ops": len(methods),
        "dtype": dtype,
        "input": _io(facts.input),
        "output": _io(facts.output),
        "labels": labels,
        "arena_measured_bytes": measured,
        "arena_margin_bytes": arena - measured,
        "arena_bytes": arena,
        "arena_rule": f"measured minimum (tflite-micro Python interpreter, bisection) + max("
        f"{ARENA_MARGIN_FRACTION:.0%}, {ARENA_MARGIN_MIN_BYTES} B), rounded up to 16 B",
        "files": ["model_data.cc", "model_data.h", "model_settings.h", "model_ops.h", "tflm.json", EMBEDDED_MODEL],
    }

    def write(tmp: Path) -> None:
        (tmp / EMBEDDED_MODEL).write_bytes(embedded)
        (tmp / "model_data.h").write_text(_model_data_h(tflite_path.name))
        (tmp / "model_data.cc").write_text(_model_data_cc(embedded, tflite_path.name))
        (tmp / "model_settings.h").write_text(_model_settings_h(info))
        (tmp / "model_ops.h").write_text(_model_ops_h(facts.ops, methods, tflite_path.name, dtype))
        (tmp / "tflm.json").write_text(json.dumps(info, indent=2) + "\n")

    replace_dir(out_dir, write)
    return info


# --- C++ text. Kept as plain templates so the generated files read like hand-written TFLM example files. -------

_HEADER = "// Generated by edgeghost from {src}. Do not edit: rerun `edgeghost export` or `edgeghost firmware`.\n"


def _model_data_h(src: str) -> str:
    return _HEADER.format(src=src) + (
        "#ifndef EDGEGHOST_MODEL_DATA_H_\n"
        "#define EDGEGHOST_MODEL_DATA_H_\n\n"
        "// The full-integer TFLite flatbuffer; TFLM reads it in place, so it stays in flash (const).\n"
        "extern const unsigned char g_model[];\n"
        "extern const unsigned int g_model_len;\n\n"
        "#endif  // EDGEGHOST_MODEL_DATA_H_\n"
    )


def _model_data_cc(data: bytes, src: str) -> str:
    rows = (", ".join(f"0x{b:02x}" for b in data[i : i + 12]) for i in range(0, len(data), 12))
    body = ",\n    ".join(rows)
    return _HEADER.format(src=src) + (
        '#include "model_data.h"\n\n'
        "// 16-byte alignment: TFLM requires aligned buffers inside the flatbuffer for some kernels.\n"
        f"alignas(16) const unsigned char g_model[] = {{\n    {body}}};\n"
        f"const unsigned int g_model_len = {len(data)};\n"
    )


def _c_float(x: float) -> str:
    return f"{x!r}f" if x != int(x) else f"{x:.1f}f"


def _c_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _model_settings_h(info: dict[str, Any]) -> str:
    inp, out = info["input"], info["output"]
    dims = ", ".join(str(d) for d in inp["shape"])
    in_elems = 1
    for d in inp["shape"]:
        in_elems *= d
    labels = ",\n    ".join(_c_string(s) for s in info["labels"])
    dtype = info.get("dtype", "int8")
    rule = ("q = pixel - 128" if dtype == "int8" else "q = round(pixel / kInputScale)")
    return _HEADER.format(src=info["source"]) + (
        "#ifndef EDGEGHOST_MODEL_SETTINGS_H_\n"
        "#define EDGEGHOST_MODEL_SETTINGS_H_\n\n"
        "#include <cstdint>\n\n"
        f"// Raw element type of the model's input and output tensors ({dtype}).\n"
        f"using ModelIo = {IO_CTYPES[dtype]};\n\n"
        f"// Input: raw {dtype} tensor as the model expects it (edgeghost models: {rule}, NHWC).\n"
        f"constexpr int kInputRank = {len(inp['shape'])};\n"
        f"constexpr int kInputDims[kInputRank] = {{{dims}}};\n"
        f"constexpr int kInputSize = {in_elems};  // elements of ModelIo\n"
        f"constexpr float kInputScale = {_c_float(inp['scale'])};\n"
        f"constexpr int kInputZeroPoint = {inp['zero_point']};\n\n"
        f"// Output: {dtype} scores; real value = kOutputScale * (q - kOutputZeroPoint).\n"
        f"constexpr int kNumClasses = {out['shape'][-1]};\n"
        f"constexpr float kOutputScale = {_c_float(out['scale'])};\n"
        f"constexpr int kOutputZeroPoint = {out['zero_point']};\n\n"
        "// Tensor arena: measured minimum in the TFLite-Micro interpreter plus a margin, never hand-typed.\n"
        f"// Rule: {info['arena_rule']}.\n"
        f"constexpr int kTensorArenaMeasuredBytes = {info['arena_measured_bytes']};\n"
        f"constexpr int kTensorArenaMarginBytes = {info['arena_margin_bytes']};\n"
        f"constexpr int kTensorArenaSize = {info['arena_bytes']};\n\n"
        "// Class names in output order.\n"
        f"constexpr const char* kCategoryLabels[kNumClasses] = {{\n    {labels}}};\n\n"
        "#endif  // EDGEGHOST_MODEL_SETTINGS_H_\n"
    )


# Ops with an int8-only registration in TFLite-Micro (kernels/<header>): an int8 model's resolver gets the int8
# kernel alone, so the linker drops the float/int16 paths (with CMSIS-NN: the int16 kernels and the reference
# fallbacks). Exact: a full-integer model runs the same int8 code either way. Reference builds map them to the
# generic kernels. An int16x8 model gets the generic registrations.
INT8_REGISTRATIONS = {
    "ADD": "add.h", "CONV_2D": "conv.h", "DEPTHWISE_CONV_2D": "depthwise_conv.h", "FULLY_CONNECTED":
    "fully_connected.h", "MUL": "mul.h", "AVERAGE_POOL_2D": "pooling.h", "MAX_POOL_2D": "pooling.h", "PAD": "pad.h",
}


def model_ops_header(ops: Sequence[str], src: str, dtype: str = "int8") -> str:
    """``model_ops.h`` for a model with these builtin ops (``src``: the model file named in its header;
    ``dtype``: its input/output type, ``int8`` or ``int16``)."""
    return _model_ops_h(ops, resolver_methods(ops), src, dtype)


def _model_ops_h(ops: Sequence[str], methods: Sequence[str], src: str, dtype: str) -> str:
    int8_only = INT8_REGISTRATIONS if dtype == "int8" else {}
    calls = "\n".join(
        f"  if (resolver.{m}({f'tflite::Register_{op}_INT8()' if op in int8_only else ''}) != kTfLiteOk) "
        f"return kTfLiteError;  // {op}" for op, m in zip(ops, methods)
    )
    headers = sorted({int8_only[op] for op in ops if op in int8_only})
    includes = "".join(f'#include "tensorflow/lite/micro/kernels/{h}"\n' for h in headers)
    which = ("int8-only kernels where TFLite-Micro has them: the linker then\n// keeps only the code this "
             "full-integer model runs." if int8_only else f"the generic kernels ({dtype} activations).")
    return _HEADER.format(src=src) + (
        "#ifndef EDGEGHOST_MODEL_OPS_H_\n"
        "#define EDGEGHOST_MODEL_OPS_H_\n\n"
        f"{includes}"
        '#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"\n\n'
        f"// Exactly the builtin ops the model uses, {which}\n"
        f"constexpr int kNumOps = {len(methods)};\n"
        "using ModelOpResolver = tflite::MicroMutableOpResolver<kNumOps>;\n\n"
        "// Registers every op once; a failure means the resolver is too small or an op is missing.\n"
        "inline TfLiteStatus RegisterModelOps(ModelOpResolver& resolver) {\n"
        f"{calls}\n"
        "  return kTfLiteOk;\n"
        "}\n\n"
        "#endif  // EDGEGHOST_MODEL_OPS_H_\n"
    )
