"""Teacher networks for distillation: torchvision classifiers adapted to 32×32 inputs.

Registered in the model registry so ``edgeghost train --model resnet50`` trains a teacher with the same
recipe and loop as the student, and checkpoints rebuild through ``create_model``. No weights are downloaded;
user weights load through ``edgeghost distill --teacher path.pt``. Adaptations (the usual CIFAR variants):

- ``resnet18/34/50``: 7×7 stride-2 stem conv → 3×3 stride 1, first max-pool removed (final map 4×4, not 1×1).
- ``vgg13_bn``: the 7×7 adaptive pool + 3-layer 4096-wide classifier assume 224 px; at 32 px the features
  end at 1×1×512, so pool to 1×1 and classify with one linear layer.
- ``densenet161``: 7×7 stride-2 stem conv → 3×3 stride 1, first max-pool removed.
- ``inception_v3``: stride-2 first conv → stride 1 and both early max-pools removed, so a 32 px input
  keeps 5×5 at the last block (the original needs ≥ 75 px); no auxiliary head, no input transform.
- ``efficientnet_v2_s``: stride-2 stem → stride 1 (final map 2×2). For a teacher fine-tuned at 224 px
  (as the authors did), keep its original form and pass ``--teacher-resize 224`` instead.

Only width 1.0 and 3 input channels exist for these (torchvision has no width multiplier for them).
"""

from __future__ import annotations

from torch import nn

from ..errors import EdgeGhostError
from .registry import register_model

TEACHER_MODELS = ("resnet18", "resnet34", "resnet50", "vgg13_bn", "densenet161", "inception_v3", "efficientnet_v2_s")


def _check(name: str, width: float, in_chans: int) -> None:
    if abs(width - 1.0) > 1e-9 or in_chans != 3:
        raise EdgeGhostError(f"{name} exists only at width 1.0 with 3 input channels (got width {width:g}, {in_chans})")


def _tag(model: nn.Module, *, num_classes: int) -> nn.Module:
    # The attributes checkpoints and exporters read from every edgeghost model.
    model.width, model.num_classes, model.in_chans, model.img_size = 1.0, num_classes, 3, 32
    return model


def _cifar_resnet(name: str, num_classes: int) -> nn.Module:
    from torchvision import models

    model = getattr(models, name)(weights=None, num_classes=num_classes)
    model.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.maxpool = nn.Identity()
    return _tag(model, num_classes=num_classes)


@register_model
def resnet18(*, width: float = 1.0, num_classes: int = 10, in_chans: int = 3) -> nn.Module:
    """torchvision ResNet-18, CIFAR stem (3×3 s1 conv, no max-pool)."""
    _check("resnet18", width, in_chans)
    return _cifar_resnet("resnet18", num_classes)


@register_model
def resnet34(*, width: float = 1.0, num_classes: int = 10, in_chans: int = 3) -> nn.Module:
    """torchvision ResNet-34, CIFAR stem (3×3 s1 conv, no max-pool)."""
    _check("resnet34", width, in_chans)
    return _cifar_resnet("resnet34", num_classes)


@register_model
def resnet50(*, width: float = 1.0, num_classes: int = 10, in_chans: int = 3) -> nn.Module:
    """torchvision ResNet-50, CIFAR stem (3×3 s1 conv, no max-pool); the authors' main teacher."""
    _check("resnet50", width, in_chans)
    return _cifar_resnet("resnet50", num_classes)


@register_model
def vgg13_bn(*, width: float = 1.0, num_classes: int = 10, in_chans: int = 3) -> nn.Module:
    """torchvision VGG-13-BN with a 1×1 pool and a single linear classifier for 32 px inputs."""
    from torchvision import models

    _check("vgg13_bn", width, in_chans)
    model = models.vgg13_bn(weights=None, num_classes=num_classes)
    model.avgpool = nn.AdaptiveAvgPool2d(1)
    model.classifier = nn.Linear(512, num_classes)
    return _tag(model, num_classes=num_classes)


@register_model
def densenet161(*, width: float = 1.0, num_classes: int = 10, in_chans: int = 3) -> nn.Module:
    """torchvision DenseNet-161, CIFAR stem (3×3 s1 conv, no max-pool)."""
    from torchvision import models

    _check("densenet161", width, in_chans)
    model = models.densenet161(weights=None, num_classes=num_classes)
    stem_chs = model.features.conv0.out_channels
    model.features.conv0 = nn.Conv2d(3, stem_chs, 3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(model.features.conv0.weight)
    model.features.pool0 = nn.Identity()
    return _tag(model, num_classes=num_classes)


@register_model
def inception_v3(*, width: float = 1.0, num_classes: int = 10, in_chans: int = 3) -> nn.Module:
    """torchvision Inception-v3 with a stride-1 first conv and no early max-pools (runs at 32 px)."""
    from torchvision import models

    _check("inception_v3", width, in_chans)
    model = models.inception_v3(weights=None, num_classes=num_classes, aux_logits=False, init_weights=True)
    model.transform_input = False
    model.Conv2d_1a_3x3.conv.stride = (1, 1)
    model.maxpool1 = nn.Identity()
    model.maxpool2 = nn.Identity()
    return _tag(model, num_classes=num_classes)


@register_model
def efficientnet_v2_s(*, width: float = 1.0, num_classes: int = 10, in_chans: int = 3) -> nn.Module:
    """torchvision EfficientNetV2-S with a stride-1 stem (final map 2×2 at 32 px)."""
    from torchvision import models

    _check("efficientnet_v2_s", width, in_chans)
    model = models.efficientnet_v2_s(weights=None, num_classes=num_classes)
    model.features[0][0].stride = (1, 1)
    return _tag(model, num_classes=num_classes)
