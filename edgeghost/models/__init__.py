"""edgeghost models: GhostNetV3-Small, GhostNetV3 (GN-D), an MCU-lean GN-S and MLPerf Tiny's ResNet-8."""

from . import ghostnet, resnet8, teachers  # noqa: F401  (registers the builders; teachers: distillation)
from .batchnorm import estimate_bn_statistics
from .ghostnet import GhostNetV3
from .layers import fused_branches
from .profile import ModelInfo, count_macs, count_params, model_info
from .registry import WIDTH_RANGE, check_width, create_model, list_models, parse_model_spec
from .reparam import is_deployed, reparameterization_error, reparameterize

__all__ = [
    "GhostNetV3",
    "ModelInfo",
    "WIDTH_RANGE",
    "check_width",
    "count_macs",
    "count_params",
    "create_model",
    "estimate_bn_statistics",
    "is_deployed",
    "list_models",
    "model_info",
    "parse_model_spec",
    "reparameterization_error",
    "reparameterize",
    "fused_branches",
]
