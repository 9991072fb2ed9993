"""QAT: the fake-quant deploy form (edgeghost.training.qat) is the deploy model on TFLite's int8 grid, fine-tunes
through the one training loop, and predicts the real int8 TFLite model better than the float model does (what
post-training quantization assumes). Tiny GN-S on synthetic Fashion-MNIST in the real IDX format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from edgeghost.data import get_spec, load_split
from edgeghost.data.loader import normalize
from edgeghost.data.synthetic import write_synthetic_fashion_mnist
from edgeghost.errors import EdgeGhostError
from edgeghost.models import create_model, estimate_bn_statistics, reparameterize
from edgeghost.training.qat import (
    LOGISTIC_SCALE,
    ActQuant,
    QConv,
    calibration_images,
    prepare_qat,
)
from edgeghost.training.checkpoint import deploy_state_dict

SPEC = get_spec("fashion_mnist")
NORM = {"mean": SPEC.mean, "std": SPEC.std}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_fashion_mnist(tmp_path_factory.mktemp("fmnist"), train=192, test=64)


@pytest.fixture(scope="module")
def gns(data_dir: Path) -> torch.nn.Module:
    """GN-S w0.25 (DFC gates, SE, residual adds, the head) with BatchNorm statistics of real images."""
    torch.manual_seed(0)
    model = create_model("ghostnetv3_small", width=0.25, num_classes=10)
    return estimate_bn_statistics(model, load_split("fashion_mnist", "train", data_dir).images[:64], **NORM)


def _x(images: np.ndarray) -> torch.Tensor:
    return normalize(torch.from_numpy(images), **NORM)


def test_fake_quant_model_is_the_deploy_form_on_the_int8_grid(gns: torch.nn.Module, data_dir: Path) -> None:
    train = load_split("fashion_mnist", "train", data_dir)
    calib = calibration_images(train.images, 64)
    net = prepare_qat(gns, calib, **NORM)
    deployed = reparameterize(gns)
    # Same parameters under the same names: a QAT checkpoint is the deploy form plus ranges.
    plain = deploy_state_dict(net.state_dict())
    assert plain.keys() == deployed.state_dict().keys()
    assert all(torch.equal(plain[k], v) for k, v in deployed.state_dict().items())
    x = _x(train.images[100:116])
    with torch.no_grad(), net.float_mode():
        assert torch.equal(net(x), deployed(x))  # fake quantization off = the deploy model, bit for bit
    # Ranges are min/max of the float activations on the calibration images (the converter's minmax).
    assert net.qat_in.qat_lo.item() == pytest.approx(_x(calib).min().item(), abs=1e-6)
    assert net.qat_in.qat_hi.item() == pytest.approx(_x(calib).max().item(), abs=1e-6)

    seen: dict[str, tuple[torch.Tensor, ActQuant]] = {}

    def keep(name: str) -> object:
        def hook(mod: ActQuant, inputs: object, out: torch.Tensor) -> None:
            seen.setdefault(name, (out, mod))
        return hook

    hooks = [m.register_forward_hook(keep(n)) for n, m in net.named_modules() if isinstance(m, ActQuant)]
    with torch.no_grad():
        y = net(x)
    for h in hooks:
        h.remove()
    assert not torch.allclose(y, deployed(x))  # quantization does change the logits ...
    kinds = {"sigmoid gate": 0, "add": 0, "concat": 0}
    for name, (out, quant) in seen.items():
        scale, zp = quant.qparams()
        q = out / scale + zp
        assert torch.allclose(q, q.round(), atol=1e-3), name  # ... every activation lies on its int8 grid
        assert q.min() >= -128.001 and q.max() <= 127.001, name
        if quant.fixed is not None:
            kinds["sigmoid gate"] += 1
            assert scale.item() == LOGISTIC_SCALE and zp.item() == -128
        kinds["add"] += name.endswith("qat_add")
        kinds["concat"] += name.endswith("qat_cat")
    assert all(kinds.values()), kinds
    for m in net.modules():  # weights: per output channel, symmetric, 127 levels each side
        if isinstance(m, QConv):
            wq = m.qat_w(m.weight).detach().flatten(1)
            scale = m.weight.detach().abs().flatten(1).amax(1, keepdim=True) / 127
            levels = wq / scale
            assert torch.allclose(levels, levels.round(), atol=1e-3) and levels.abs().max() <= 127.001



def test_int8_weights_mode_rounds_the_weights_and_nothing_else(gns: torch.nn.Module, data_dir: Path) -> None:
    """``float_mode(int8_weights=True)`` (what int8 weights alone cost): the deploy model with every conv/linear
    weight on its per-channel int8 grid and float activations; the ranges are left untouched."""
    train = load_split("fashion_mnist", "train", data_dir)
    net = prepare_qat(gns, calibration_images(train.images, 64), **NORM)
    rounded = reparameterize(gns)
    with torch.no_grad():
        for m in rounded.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                scale = m.weight.abs().flatten(1).amax(1).clamp_min(1e-12) / 127
                shape = (-1,) + (1,) * (m.weight.dim() - 1)
                m.weight.copy_((m.weight / scale.view(shape)).round() * scale.view(shape))
    ranges = net.ranges()
    x = _x(train.images[100:116])
    with torch.no_grad(), net.float_mode(int8_weights=True):
        y = net(x)
    assert torch.allclose(y, rounded(x), atol=1e-5)
    with torch.no_grad(), net.float_mode():
        assert not torch.allclose(y, net(x), atol=1e-5)  # the rounding did change the logits
    assert net.ranges() == ranges

def test_bad_inputs(gns: torch.nn.Module) -> None:
    with pytest.raises(EdgeGhostError, match="uint8 NHWC"):
        prepare_qat(gns, np.zeros((4, 32, 32, 3), np.float32), **NORM)
    with pytest.raises(EdgeGhostError, match="QAT supports"):
        prepare_qat(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)), np.zeros((2, 32, 32, 3), np.uint8), **NORM)


FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.slow
@pytest.mark.skipif(not FASHION.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_qat_finetune_exports_and_its_int8_follows_its_fake_quant_forward(tmp_path: Path) -> None:
    """`train --qat --from` a trained model (the zoo's ResNet-8) on a few real images, export it with the unchanged
    chain, and compare on real test images: the fake-quant forward must predict the int8 model better than the
    float forward of the same weights does (which is what post-training quantization assumes)."""
    from edgeghost.cli import main
    from edgeghost.data import split_for_checkpoint
    from edgeghost.export import export_model
    from edgeghost.runtime import load_runner
    from edgeghost.training.checkpoint import load_checkpoint, model_from_checkpoint
    from edgeghost.training.qat import qat_model_from_checkpoint
    from edgeghost.zoo import pretrained_checkpoint

    run = tmp_path / "qat"
    assert main(["train", "--qat", "--from", str(pretrained_checkpoint("resnet8-fmnist")), "--epochs", "1",
                 "--train-samples", "256", "--test-samples", "64", "--batch-size", "64", "--lr", "0.001",
                 "--warmup", "0", "--threads", "1", "--out", str(run), "--no-progress"]) == 0
    ckpt = load_checkpoint(run / "best.pt")
    assert ckpt["qat"] and ckpt["form"] == "deploy"
    result = export_model(checkpoint=run / "best.pt", out=tmp_path / "export", int8=True, eval_samples=300,
                          verbose=False)
    assert result.manifest["weights"]["trained"]
    # A QAT checkpoint exports with the ranges its fake quantization emulated and without bias correction.
    calibration = result.manifest["quantization"]["calibration"]
    assert (calibration["method"], calibration["bias_correction"]) == ("minmax", False)
    # Every range the fake-quant model trained with is one the converter chose for a tensor of the int8 file.
    from ai_edge_litert.interpreter import Interpreter

    from edgeghost.training.qat import ActQuant

    in_file = [(float(q["scales"][0]), int(q["zero_points"][0])) for q in (
        d["quantization_parameters"] for d in
        Interpreter(model_path=str(tmp_path / "export" / "model_int8.tflite")).get_tensor_details()
        if d["dtype"] == np.int8) if len(q["scales"]) == 1]
    quantizers = [(name, m) for name, m in qat_model_from_checkpoint(ckpt).named_modules()
                  if isinstance(m, ActQuant) and m.fixed is None and bool(torch.isfinite(m.qat_lo))]
    assert len(quantizers) >= 10
    for name, quant in quantizers:
        scale, zp = (float(v) for v in quant.qparams())
        assert any(abs(scale - s) <= 1e-4 * s and abs(zp - z) <= 1 for s, z in in_file), (name, scale, zp)
    test = split_for_checkpoint(ckpt, "test").subset(300)
    images = test.array()
    int8 = load_runner(tmp_path / "export" / "model_int8.tflite", reference_kernels=True).predict(images)
    x = normalize(torch.from_numpy(images), mean=ckpt["mean"], std=ckpt["std"])
    with torch.no_grad():
        fake = qat_model_from_checkpoint(ckpt)(x).double().numpy()
        fp32 = model_from_checkpoint(ckpt).eval()(x).double().numpy()
    # Logits, not argmax: on 300 images one borderline image decides an argmax comparison either way.
    gap_fake, gap_fp32 = np.abs(fake - int8).mean(), np.abs(fp32 - int8).mean()
    assert gap_fake < 0.5 * gap_fp32, (gap_fake, gap_fp32)
    assert (fake.argmax(1) == int8.argmax(1)).mean() >= 0.99


@pytest.mark.skipif(not FASHION.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_distill_qat_pulls_the_int8_emulation_towards_the_float_model(tmp_path: Path) -> None:
    """`distill --qat --from CKPT --teacher CKPT --alpha 0`: the fake-quant model is fine-tuned on the float model's
    own soft answers, so on the images it trained on its answers move closer to the float model's than those of the
    fake-quant model of the untouched weights and of the same QAT run on hard labels (`train --qat`);
    `--qat` without `--from` is one clear error."""
    import torch.nn.functional as F

    from edgeghost.cli import main
    from edgeghost.data import split_for_checkpoint
    from edgeghost.training.checkpoint import load_checkpoint, model_from_checkpoint
    from edgeghost.training.qat import qat_model_from_checkpoint
    from edgeghost.zoo import pretrained_checkpoint

    source = str(pretrained_checkpoint("resnet8-fmnist"))
    assert main(["distill", "--qat", "--teacher", source, "--alpha", "0", "--out", str(tmp_path / "x"),
                 "--no-progress"]) == 2
    common = ["--from", source, "--epochs", "1", "--train-samples", "512", "--test-samples", "64",
              "--batch-size", "64", "--warmup", "0", "--threads", "1", "--no-progress", "--crop-pad", "0",
              "--no-hflip"]
    assert main(["distill", "--qat", "--teacher", source, "--alpha", "0", "--lr", "0.01",
                 "--out", str(tmp_path / "kd"), *common]) == 0
    assert main(["train", "--qat", "--lr", "0.01", "--out", str(tmp_path / "ce"), *common]) == 0
    assert main(["train", "--qat", "--lr", "0", "--out", str(tmp_path / "ptq"), *common]) == 0  # the start point
    runs = {name: load_checkpoint(tmp_path / name / "last.pt") for name in ("kd", "ce", "ptq")}
    assert runs["kd"]["qat"] and runs["kd"]["form"] == "deploy" and runs["kd"]["distill"]["alpha"] == 0.0
    ckpt = load_checkpoint(source)
    images = split_for_checkpoint(ckpt, "train").subset(512).array()
    x = normalize(torch.from_numpy(images), mean=ckpt["mean"], std=ckpt["std"])
    with torch.no_grad():
        target = F.log_softmax(model_from_checkpoint(ckpt).eval()(x), 1)
        kl = {name: float(F.kl_div(F.log_softmax(qat_model_from_checkpoint(c)(x), 1), target, log_target=True,
                                   reduction="batchmean")) for name, c in runs.items()}
    assert kl["kd"] < 0.95 * kl["ptq"] and kl["kd"] < kl["ce"], kl
