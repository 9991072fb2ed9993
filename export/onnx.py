"""Stage 2 of the export chain: deploy-form torch model → simplified, static-shape ONNX.

The exported graph takes raw pixels: :class:`InputNormalization` puts ``(x/255 − mean)/std`` in front of the
network as one 1×1 depthwise conv, so every artefact after it (ONNX, TFLite fp32/int8, TFLite-Micro) shares one
input contract and the int8 model can be fed ``pixel − 128`` directly.
"""

from __future__ import annotations

import copy
import io
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

ONNX_OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "logits"


class InputNormalization(nn.Module):
    """``(x/255 − mean)/std`` per channel as a 1×1 depthwise conv with bias: one op that every converter
    keeps as one op (a Mul + Add pair would cost two int8 activation tensors on the MCU)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        chans = len(mean)
        self.conv = nn.Conv2d(chans, chans, 1, groups=chans, bias=True)
        with torch.no_grad():
            std_t = torch.tensor([float(s) for s in std], dtype=torch.float64)
            mean_t = torch.tensor([float(m) for m in mean], dtype=torch.float64)
            self.conv.weight.copy_((1.0 / (255.0 * std_t)).reshape(chans, 1, 1, 1))
            self.conv.bias.copy_(-mean_t / std_t)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def export_form(deployed: nn.Module, *, mean: Sequence[float], std: Sequence[float]) -> nn.Module:
    """The exact torch graph that is exported: input normalization + the deploy-form model. Takes float NCHW
    raw pixels in 0..255; ``deployed`` is left untouched."""
    return nn.Sequential(InputNormalization(mean, std), copy.deepcopy(deployed).eval()).eval()


def export_onnx(model: nn.Module, path: str | Path, *, in_chans: int = 3, img_size: int = 32) -> Path:
    """Export ``model`` (raw-pixel input) to ``path``: legacy TorchScript exporter at opset 17 (the dynamo
    exporter needs onnxscript and writes weights to a side file), static shape 1×C×H×W, then onnxsim."""
    import onnx
    import onnxsim

    path = Path(path)
    dummy = torch.zeros(1, in_chans, img_size, img_size)
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        # The legacy exporter is chosen on purpose (see module docs), and tracing warns about shape-dependent
        # Python branches that are static for a fixed input size.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            model.eval(),
            (dummy,),
            buf,
            dynamo=False,
            opset_version=ONNX_OPSET,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            do_constant_folding=True,
        )
    graph = onnx.load_from_string(buf.getvalue())
    simplified, ok = onnxsim.simplify(graph)
    if not ok:
        raise RuntimeError("onnxsim could not verify the simplified ONNX graph against the original")
    onnx.checker.check_model(simplified, full_check=True)
    onnx.save(simplified, path)
    return path


def onnx_op_counts(path: str | Path) -> dict[str, int]:
    """Node count per op type, for the manifest and for tests."""
    import onnx

    counts: dict[str, int] = {}
    for node in onnx.load(str(path)).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return dict(sorted(counts.items()))
