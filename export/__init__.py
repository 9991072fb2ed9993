"""Export chain (``edgeghost.export``): reparameterize → ONNX → TFLite fp32 → full-integer int8 TFLite →
TFLite-Micro artefacts, each stage verified against the one before, with a fidelity ladder.

The one entry point is :func:`export_model`; ``edgeghost export`` is a thin CLI over it.
"""

from .pipeline import ARTIFACTS, ExportResult, export_model

__all__ = ["ARTIFACTS", "ExportResult", "export_model"]
