"""Export chain (``edgeghost.export``): reparameterize → ONNX → TFLite fp32 → full-integer int8 TFLite →
TFLite-Micro artefacts, each stage verified against the one before, with a fidelity ladder.

The one entry point is :func:`export_model`, driven by the stage table :data:`STAGES`; ``edgeghost export`` is a thin CLI over it.
"""

from .pipeline import FORMATS, STAGES, ExportResult, Stage, export_model

__all__ = ["FORMATS", "STAGES", "ExportResult", "Stage", "export_model"]
