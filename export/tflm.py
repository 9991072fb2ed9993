"""TFLite-Micro C artefacts for an int8 ``.tflite``: the C array, the settings header and the op resolver.

``write_tflm_artifacts`` turns any int8 TFLite model into the four files firmware compiles against:

- ``model_data.cc/.h``: the flatbuffer as an ``alignas(16)`` byte array and its length (TFLM reads the model in
  place, and some kernels need 16-byte aligned weights).
- ``model_settings.h``: input/output shape, dtype, scale and zero-point, class labels, and the tensor arena size —
  the minimum measured by running the model in the real TFLite-Micro interpreter plus a stated margin, so no
  firmware ever carries a hand-typed arena number.
- ``model_ops.h``: ``RegisterOps(resolver)`` filling a ``tflite::MicroMutableOpResolver<N>`` with exactly the N
  builtin ops the model uses; an op TFLM does not implement is an :class:`EdgeGhostError` naming it.

The same facts are returned as a dict and written to ``tflm.json`` next to the files.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import EdgeGhostError

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

_TENSOR_TYPES = {9: "int8", 3: "uint8", 7: "int16", 2: "int32", 0: "float32"}  # TensorType enum values


@dataclass(frozen=True)
class TensorFacts:
    """One model input or output as firmware sees it: raw dtype, shape, and its affine quantization."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    scale: float
    zero_point: int


@dataclass(frozen=True)
class TfliteFacts:
    """What firmware needs to know about a ``.tflite``, read from its flatbuffer without running it."""

    ops: tuple[str, ...]  # builtin op names in first-use order
    input: TensorFacts
    output: TensorFacts
    num_subgraphs: int
    model_bytes: int


def _schema():
    # LiteRT ships the generated Python reader for the .tflite flatbuffer schema (pure Python, imports fast).
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError as err:
        raise EdgeGhostError("reading .tflite files needs ai-edge-litert: pip install 'edgeghost[export]'") from err
    return schema_py_generated


def read_tflite(tflite_path: str | Path) -> TfliteFacts:
    """Op list, input and output tensor facts of a ``.tflite`` file (first subgraph's single input/output)."""
    path = Path(tflite_path)
    if not path.is_file():
        raise EdgeGhostError(f"TFLite model {path} does not exist")
    buf = path.read_bytes()
    schema = _schema()
    if len(buf) < 8 or not schema.Model.ModelBufferHasIdentifier(buf, 0):
        raise EdgeGhostError(f"{path} is not a TFLite flatbuffer (missing 'TFL3' identifier)")
    model = schema.Model.GetRootAs(buf, 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if k.isupper()}

    ops: list[str] = []
    for s in range(model.SubgraphsLength()):
        graph = model.Subgraphs(s)
        for i in range(graph.OperatorsLength()):
            code = model.OperatorCodes(graph.Operators(i).OpcodeIndex())
            # Codes >= 127 live in builtin_code; older files only fill deprecated_builtin_code.
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            name = names.get(builtin, f"builtin #{builtin}")
            if name == "CUSTOM":
                name = f"CUSTOM({code.CustomCode().decode(errors='replace')})"
            if name not in ops:
                ops.append(name)

    graph = model.Subgraphs(0)
    if graph.InputsLength() != 1 or graph.OutputsLength() != 1:
        raise EdgeGhostError(
            f"{path}: firmware generation expects one input and one output tensor, "
            f"got {graph.InputsLength()} and {graph.OutputsLength()}"
        )
    return TfliteFacts(
        ops=tuple(ops),
        input=_tensor_facts(graph.Tensors(graph.Inputs(0))),
        output=_tensor_facts(graph.Tensors(graph.Outputs(0))),
        num_subgraphs=model.SubgraphsLength(),
        model_bytes=len(buf),
    )


def _tensor_facts(tensor: Any) -> TensorFacts:
    q = tensor.Quantization()
    has_q = q is not None and q.ScaleLength() > 0
    return TensorFacts(
        name=tensor.Name().decode(errors="replace"),
        dtype=_TENSOR_TYPES.get(tensor.Type(), f"type #{tensor.Type()}"),
        shape=tuple(int(d) for d in tensor.ShapeAsNumpy()),
        scale=float(q.Scale(0)) if has_q else 0.0,
        zero_point=int(q.ZeroPoint(0)) if has_q and q.ZeroPointLength() else 0,
    )


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


def write_tflm_artifacts(tflite_path: str | Path, out_dir: str | Path, *, labels: Sequence[str]) -> dict[str, Any]:
    """Write ``model_data.cc/.h``, ``model_settings.h``, ``model_ops.h`` and ``tflm.json`` for an int8 model.

    The arena size is measured with :func:`edgeghost.runtime.tflm.find_min_arena` (the real TFLite-Micro
    interpreter) and padded by :func:`arena_size_with_margin`. ``out_dir`` is replaced atomically. Returns the facts
    (ops, resolver methods, arena bytes, input/output quantization, labels, file names).
    """
    tflite_path = Path(tflite_path)
    out_dir = Path(out_dir)
    facts = read_tflite(tflite_path)
    methods = resolver_methods(facts.ops)
    for role, t in (("input", facts.input), ("output", facts.output)):
        if t.dtype != "int8":
            raise EdgeGhostError(f"{tflite_path}: {role} tensor is {t.dtype}; TFLM firmware needs a full-int8 model")
    num_classes = facts.output.shape[-1]
    labels = [str(label) for label in labels]
    if len(labels) != num_classes:
        raise EdgeGhostError(f"{len(labels)} labels given for a model with {num_classes} outputs")

    from ..runtime.tflm import find_min_arena  # runs the model in TFLM; imported late (needs the tflite-micro wheel)

    measured = int(find_min_arena(tflite_path))
    arena = arena_size_with_margin(measured)
    info: dict[str, Any] = {
        "source": tflite_path.name,
        "model_bytes": facts.model_bytes,
        "ops": list(facts.ops),
        "resolver_methods": methods,
        "num_ops": len(methods),
        "input": asdict(facts.input),
        "output": asdict(facts.output),
        "labels": labels,
        "arena_measured_bytes": measured,
        "arena_margin_bytes": arena - measured,
        "arena_bytes": arena,
        "arena_rule": f"measured minimum (tflite-micro Python interpreter, bisection) + max("
        f"{ARENA_MARGIN_FRACTION:.0%}, {ARENA_MARGIN_MIN_BYTES} B), rounded up to 16 B",
        "files": ["model_data.cc", "model_data.h", "model_settings.h", "model_ops.h", "tflm.json"],
    }
    info["input"]["shape"] = list(facts.input.shape)
    info["output"]["shape"] = list(facts.output.shape)

    def write(tmp: Path) -> None:
        (tmp / "model_data.h").write_text(_model_data_h(tflite_path.name))
        (tmp / "model_data.cc").write_text(_model_data_cc(tflite_path.read_bytes(), tflite_path.name))
        (tmp / "model_settings.h").write_text(_model_settings_h(info))
        (tmp / "model_ops.h").write_text(_model_ops_h(facts.ops, methods, tflite_path.name))
        (tmp / "tflm.json").write_text(json.dumps(info, indent=2) + "\n")

    replace_dir(out_dir, write)
    return info


# --- C++ text. Kept as plain templates so the generated files read like hand-written TFLM example files. -------

_HEADER = "// Generated by edgeghost from {src}. Do not edit: rerun `edgeghost export` or `edgeghost firmware`.\n"


def _model_data_h(src: str) -> str:
    return _HEADER.format(src=src) + (
        "#ifndef EDGEGHOST_MODEL_DATA_H_\n"
        "#define EDGEGHOST_MODEL_DATA_H_\n\n"
        "// The int8 TFLite flatbuffer; TFLM reads it in place, so it stays in flash (const).\n"
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
    return _HEADER.format(src=info["source"]) + (
        "#ifndef EDGEGHOST_MODEL_SETTINGS_H_\n"
        "#define EDGEGHOST_MODEL_SETTINGS_H_\n\n"
        "// Input: raw int8 tensor as the model expects it (edgeghost models: q = pixel - 128, NHWC).\n"
        f"constexpr int kInputRank = {len(inp['shape'])};\n"
        f"constexpr int kInputDims[kInputRank] = {{{dims}}};\n"
        f"constexpr int kInputSize = {in_elems};  // int8 elements = bytes\n"
        f"constexpr float kInputScale = {_c_float(inp['scale'])};\n"
        f"constexpr int kInputZeroPoint = {inp['zero_point']};\n\n"
        "// Output: int8 scores; real value = kOutputScale * (q - kOutputZeroPoint).\n"
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


def _model_ops_h(ops: Sequence[str], methods: Sequence[str], src: str) -> str:
    calls = "\n".join(
        f"  if (resolver.{m}() != kTfLiteOk) return kTfLiteError;  // {op}" for op, m in zip(ops, methods)
    )
    return _HEADER.format(src=src) + (
        "#ifndef EDGEGHOST_MODEL_OPS_H_\n"
        "#define EDGEGHOST_MODEL_OPS_H_\n\n"
        '#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"\n\n'
        "// Exactly the builtin ops the model uses: the linker then keeps only these kernels.\n"
        f"constexpr int kNumOps = {len(methods)};\n"
        "using ModelOpResolver = tflite::MicroMutableOpResolver<kNumOps>;\n\n"
        "// Registers every op once; a failure means the resolver is too small or an op is missing.\n"
        "inline TfLiteStatus RegisterModelOps(ModelOpResolver& resolver) {\n"
        f"{calls}\n"
        "  return kTfLiteOk;\n"
        "}\n\n"
        "#endif  // EDGEGHOST_MODEL_OPS_H_\n"
    )
