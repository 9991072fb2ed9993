"""The one reader of ``.tflite`` files in edgeghost: ops, I/O tensors and quantization, straight from the flatbuffer.

Nothing is run and nothing is validated beyond the file's structure, so a model that TFLite-Micro runs but
LiteRT's stricter loader refuses (for instance per-channel quantization metadata it disputes) is still
described. The accessors are the ``schema_py_generated`` module that both ``ai-edge-litert`` and the
``tflite-micro`` wheel ship (pure Python over the ``flatbuffers`` package): whichever is installed is used.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import EdgeGhostError

_SCHEMA_MODULES = ("ai_edge_litert.schema_py_generated",
                   "tflite_micro.tensorflow.lite.micro.python.schema_py_generated")


@dataclass(frozen=True)
class TensorFacts:
    """One tensor: raw dtype, shape and its affine quantization (``scale``/``zero_point``: the first, i.e. the
    only one of a per-tensor quantized tensor; 0.0 / 0 for a float tensor)."""

    name: str
    dtype: str  # int8, uint8, int16, int32, float32, ...
    shape: tuple[int, ...]
    scale: float
    zero_point: int
    scales: tuple[float, ...] = ()
    zero_points: tuple[int, ...] = ()
    quantized_dimension: int = 0

    @property
    def per_channel(self) -> bool:
        return len(self.scales) > 1

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["shape"], d["scales"], d["zero_points"] = list(self.shape), list(self.scales), list(self.zero_points)
        return d


@dataclass(frozen=True)
class TFLiteFacts:
    """What a ``.tflite`` holds, read without running it."""

    path: str
    ops: tuple[str, ...]  # builtin op names in first-use order (all subgraphs)
    op_counts: dict[str, int]  # how many times each op occurs
    inputs: tuple[TensorFacts, ...]  # first subgraph
    outputs: tuple[TensorFacts, ...]
    tensor_dtypes: dict[str, int]  # dtype -> number of tensors (first subgraph)
    per_channel_tensors: int  # tensors with more than one scale (per-channel quantized weights)
    num_subgraphs: int
    model_bytes: int

    def _single(self, role: str) -> TensorFacts:
        tensors = self.inputs if role == "input" else self.outputs
        if len(tensors) != 1:
            raise EdgeGhostError(f"{Path(self.path).name} has {len(self.inputs)} inputs and {len(self.outputs)} "
                                 "outputs; one of each expected")
        return tensors[0]

    @property
    def input(self) -> TensorFacts:
        return self._single("input")

    @property
    def output(self) -> TensorFacts:
        return self._single("output")

    def to_dict(self) -> dict[str, Any]:
        return {"ops": list(self.ops), "op_counts": dict(self.op_counts),
                "inputs": [t.to_dict() for t in self.inputs], "outputs": [t.to_dict() for t in self.outputs],
                "tensor_dtypes": dict(self.tensor_dtypes), "per_channel_tensors": self.per_channel_tensors,
                "num_subgraphs": self.num_subgraphs, "model_bytes": self.model_bytes}


def _schema() -> Any:
    import importlib

    for name in _SCHEMA_MODULES:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise EdgeGhostError("reading .tflite files needs ai-edge-litert or tflite-micro: pip install ai-edge-litert")


def _enum_names(enum: Any) -> dict[int, str]:
    return {v: k for k, v in vars(enum).items() if k.isupper() and isinstance(v, int)}


def read_tflite(path: str | Path) -> TFLiteFacts:
    """Ops, I/O tensors (shape, dtype, quantization), dtype counts and per-channel tensors of a ``.tflite``."""
    path = Path(path)
    if not path.is_file():
        raise EdgeGhostError(f"TFLite model {path} does not exist")
    buf = path.read_bytes()
    schema = _schema()
    if len(buf) < 8 or not schema.Model.ModelBufferHasIdentifier(buf, 0):
        raise EdgeGhostError(f"{path} is not a TFLite flatbuffer (missing 'TFL3' identifier)")
    try:
        return _read(schema, buf, path)
    except EdgeGhostError:
        raise
    except Exception as err:  # a truncated or corrupt flatbuffer surfaces as struct/index errors
        raise EdgeGhostError(f"{path} is not a readable TFLite flatbuffer: {type(err).__name__}: {err}") from None


def _read(schema: Any, buf: bytes, path: Path) -> TFLiteFacts:
    model = schema.Model.GetRootAs(buf, 0)
    op_names = _enum_names(schema.BuiltinOperator)
    type_names = {v: k.lower() for v, k in _enum_names(schema.TensorType).items()}
    if model.SubgraphsLength() < 1:
        raise EdgeGhostError(f"{path} has no subgraph")

    counts: dict[str, int] = {}
    for s in range(model.SubgraphsLength()):
        graph = model.Subgraphs(s)
        for i in range(graph.OperatorsLength()):
            code = model.OperatorCodes(graph.Operators(i).OpcodeIndex())
            # Codes >= 127 live in builtin_code; older files only fill deprecated_builtin_code.
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            name = op_names.get(builtin, f"builtin #{builtin}")
            if name == "CUSTOM":
                name = f"CUSTOM({(code.CustomCode() or b'').decode(errors='replace')})"
            counts[name] = counts.get(name, 0) + 1

    def tensor(index: int) -> TensorFacts:
        t = graph.Tensors(index)
        q = t.Quantization()
        scales = tuple(float(q.Scale(i)) for i in range(q.ScaleLength())) if q is not None else ()
        zps = tuple(int(q.ZeroPoint(i)) for i in range(q.ZeroPointLength())) if q is not None else ()
        return TensorFacts(
            name=(t.Name() or b"").decode(errors="replace"),
            dtype=type_names.get(t.Type(), f"type #{t.Type()}"),
            shape=tuple(int(t.Shape(i)) for i in range(t.ShapeLength())),
            scale=scales[0] if scales else 0.0,
            zero_point=zps[0] if zps else 0,
            scales=scales,
            zero_points=zps,
            quantized_dimension=int(q.QuantizedDimension()) if q is not None else 0,
        )

    graph = model.Subgraphs(0)
    dtypes: dict[str, int] = {}
    per_channel = 0
    for i in range(graph.TensorsLength()):
        t = graph.Tensors(i)
        name = type_names.get(t.Type(), f"type #{t.Type()}")
        dtypes[name] = dtypes.get(name, 0) + 1
        q = t.Quantization()
        per_channel += q is not None and q.ScaleLength() > 1
    return TFLiteFacts(
        path=str(path),
        ops=tuple(counts),
        op_counts=counts,
        inputs=tuple(tensor(graph.Inputs(i)) for i in range(graph.InputsLength())),
        outputs=tuple(tensor(graph.Outputs(i)) for i in range(graph.OutputsLength())),
        tensor_dtypes=dict(sorted(dtypes.items())),
        per_channel_tensors=per_channel,
        num_subgraphs=model.SubgraphsLength(),
        model_bytes=len(buf),
    )
