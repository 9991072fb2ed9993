"""Model architecture facts and exact reparameterization."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from edgeghost.cli import main
from edgeghost.errors import EdgeGhostError
from edgeghost.models import (
    count_params,
    create_model,
    list_models,
    model_info,
    reparameterization_error,
    reparameterize,
)
from edgeghost.models.ghostnet import GhostBottleneckMCU
from edgeghost.models.layers import RepConv, SamePad

GHOSTNETS = ["ghostnetv3_small", "ghostnetv3_d"]


def _randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm non-trivial affine parameters and the running statistics of real batches, as
    after training (cumulative averages, so the statistics are those of the data actually seen)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.num_features, generator=g) * 0.5 + 0.75)
                m.bias.copy_(torch.rand(m.num_features, generator=g) * 0.4 - 0.2)
                m.momentum = None
        model.train()
        for _ in range(3):
            model(torch.randn(8, model.in_chans, 32, 32, generator=g) * 1.5 + 0.3)
    return model.eval()


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.mark.parametrize("width", [0.5, 1.0, 2.8, 3.4])
@pytest.mark.parametrize("name", GHOSTNETS)
def test_reparameterize_is_exact(name: str, width: float) -> None:
    torch.manual_seed(0)
    model = _randomize_bn(create_model(name, width=width))
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        y = model(x)
        deployed = reparameterize(model)
        y_deploy = deployed(x)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in deployed.modules())
    assert not any(isinstance(m, RepConv) for m in deployed.modules())
    assert _rel_err(y_deploy, y) <= 1e-5
    assert count_params(deployed) < count_params(model)
    # the input model is left in train form
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


@pytest.mark.parametrize("name", ["resnet8", "ghostnetv3_small_lean", "ghostnetv3_small_mcu"])
@pytest.mark.parametrize("width", [0.25, 0.5, 1.0])
def test_reparameterize_other_models(name: str, width: float) -> None:
    torch.manual_seed(1)
    model = _randomize_bn(create_model(name, width=width))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert _rel_err(reparameterize(model)(x), model(x)) <= 1e-5


@pytest.mark.parametrize(
    "name", ["ghostnetv3_small", "ghostnetv3_d", "ghostnetv3_small_lean", "ghostnetv3_small_mcu", "resnet8"]
)
def test_fusion_is_exact_in_float64_even_untrained(name: str) -> None:
    """Untrained nets (BN at mean 0 / var 1) are badly conditioned in float32; in float64 the fusion must be
    exact to rounding, which separates a wrong fusion (O(1) error) from float32 noise."""
    torch.manual_seed(3)
    model = create_model(name, width=0.5)
    assert reparameterization_error(model, torch.randn(2, 3, 32, 32)) < 1e-10
    assert next(model.parameters()).dtype == torch.float32  # the caller's model is untouched


def test_gnd_stride2_stem_runs_at_1x1_and_reparameterizes() -> None:
    """With a stride-2 stem GN-D's last stage is 1×1: the DFC gates there must skip the 2×2 pool statically."""
    torch.manual_seed(2)
    model = _randomize_bn(create_model("ghostnetv3_d", width=1.0, stem_stride=2))
    assert model.feature_size == 1
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert _rel_err(reparameterize(model)(x), model(x)) <= 1e-5


@pytest.mark.parametrize("width", [0.25, 0.3, 0.5, 0.75, 1.0, 1.3, 2.0, 2.8, 3.4, 4.0])
def test_every_width_builds_and_fuses(width: float) -> None:
    """Widths where block input channels equal half the expansion give the primary 1×1 conv an identity
    branch; its fused kernel must stay 1×1 (a reference implementation padded it to 3×3 and broke)."""
    model = _randomize_bn(create_model("ghostnetv3_small", width=width))
    deployed = reparameterize(model)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert deployed(x).shape == (1, 10)
        assert _rel_err(deployed(x), model(x)) <= 1e-5


def test_identity_branch_in_1x1_primary_conv_fuses_to_1x1() -> None:
    block = RepConv(8, 8, 1)
    assert block.identity is not None and block.scale is None
    _randomize_bn_module(block)
    fused = block.reparameterize()
    assert fused.kernel_size == (1, 1)
    x = torch.randn(2, 8, 5, 5)
    with torch.no_grad():
        assert _rel_err(fused(x), block(x)) <= 1e-6


def _randomize_bn_module(block: nn.Module) -> None:
    """Arbitrary eval-mode statistics: the fusion is exact for any values, not just realistic ones."""
    with torch.no_grad():
        for m in block.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    block.eval()


def test_deploy_form_round_trips_through_state_dict(tmp_path) -> None:
    model = _randomize_bn(create_model("ghostnetv3_small", width=0.5))
    deployed = reparameterize(model)
    torch.save(deployed.state_dict(), tmp_path / "deploy.pt")
    fresh = reparameterize(create_model("ghostnetv3_small", width=0.5))
    fresh.load_state_dict(torch.load(tmp_path / "deploy.pt"))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(fresh(x), deployed(x))


@pytest.mark.parametrize(
    ("name", "width", "params", "tol"),
    [
        ("ghostnetv3_small", 2.8, 2_427_000, 0.01),  # authors' design, measured train-form count
        ("ghostnetv3_small", 3.4, 3_380_000, 0.01),
        ("ghostnetv3_small", 1.0, 480_000, 0.02),
        ("ghostnetv3_d", 1.0, 6_860_000, 0.01),  # paper's GN-D baseline
        ("resnet8", 1.0, 77_946, 0.0),  # MLPerf Tiny's 78,666 minus 240 redundant pre-BN biases and 480 BN stats
    ],
)
def test_parameter_counts_match_the_paper(name: str, width: float, params: int, tol: float) -> None:
    assert abs(count_params(create_model(name, width=width)) - params) <= tol * params


def test_gns_structure() -> None:
    model = create_model("ghostnetv3_small", width=2.8)
    assert model.stem[0].conv.stride == (1, 1)
    assert model.conv_head.out_channels == 1280  # fixed, not scaled by width
    assert model.feature_size == 8
    blocks = [b for stage in model.blocks[:-1] for b in stage]
    assert len(blocks) == 10
    assert [b.ghost1.dfc is not None for b in blocks] == [False, False] + [True] * 8
    assert all(isinstance(m.upsample, nn.Upsample) and m.upsample.size == m.feature_size for m in
               model.modules() if m.__class__.__name__ == "DFCGate")


def test_lean_variant_is_lean() -> None:
    lean, gns = create_model("ghostnetv3_small_lean", width=0.5), create_model("ghostnetv3_small", width=0.5)
    assert lean.conv_head.out_channels < 1280
    assert not any(m.__class__.__name__ == "DFCGate" for m in lean.modules())
    assert count_params(lean) < count_params(gns)


@pytest.mark.parametrize(
    "name", sorted(set(list_models()) & {"ghostnetv3_small", "ghostnetv3_d", "ghostnetv3_small_mcu", "resnet8"})
)
def test_batch_one_and_num_classes(name: str) -> None:
    model = create_model(name, width=0.5, num_classes=7).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 7)


def test_model_info_counts_macs_of_deploy_form() -> None:
    info = model_info(create_model("resnet8"), "resnet8")
    # stem + 6 stack convs + 2 shortcut convs + dense; MACs are dominated by the 3×3 convs
    assert info.layers == 10
    assert 12_000_000 < info.macs < 13_000_000
    assert info.params_deploy < info.params_train


@pytest.mark.parametrize(("kwargs", "message"), [({"name": "mobilenet"}, "unknown model"),
                                                 ({"name": "ghostnetv3_small", "width": 0.1}, "out of range"),
                                                 ({"name": "ghostnetv3_small", "width": 5.0}, "out of range")])
def test_bad_model_requests_raise_clear_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(EdgeGhostError, match=message):
        create_model(**kwargs)


def test_info_cli_json(capsys) -> None:
    assert main(["info", "--model", "ghostnetv3_small", "--width", "2.8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"model", "width", "params_train", "params_deploy", "macs"} <= out.keys()
    assert out["params_train"] == count_params(create_model("ghostnetv3_small", width=2.8))
    assert out["params_deploy"] < out["params_train"]


@pytest.mark.parametrize("argv", [["info", "--model", "nope"], ["info", "--width", "9"]])
def test_info_cli_bad_input_exits_2_with_one_line(argv: list[str], capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error" in err[0]


@pytest.mark.parametrize("size", [32, 15])
def test_same_pad_repconv_is_tensorflow_same_and_fuses(size: int) -> None:
    """A stride-2 RepConv with ``same_pad`` computes TensorFlow's SAME conv: the extra padding row/column goes
    bottom/right on even maps (PyTorch would pad both sides), so onnx2tf needs no PAD op. Its 1×1 scale branch
    must read the kernel centres, or the fused kernel would not match the train form."""
    block = RepConv(8, 8, 3, stride=2, groups=8, identity=False, same_pad=True)
    _randomize_bn_module(block)
    fused = block.reparameterize()
    x = torch.randn(2, 8, size, size)
    pad = (0, 1, 0, 1) if size % 2 == 0 else (1, 1, 1, 1)
    conv = fused[-1]
    with torch.no_grad():
        same = nn.functional.conv2d(nn.functional.pad(x, pad), conv.weight, conv.bias, stride=2, groups=8)
        assert same.shape[-1] == (size + 1) // 2
        assert _rel_err(fused(x), same) <= 1e-6
        assert _rel_err(fused(x), block(x)) <= 1e-6
    assert SamePad(3, 2).pads(32) == (0, 1) and SamePad(3, 2).pads(15) == (1, 1) and SamePad(3, 1).pads(8) == (1, 1)


def test_mcu_downsampling_block_equals_depthwise_of_the_concatenation() -> None:
    """GN-S-MCU applies the stride-2 depthwise conv to each ghost half; that must be the same function as one
    depthwise conv over the concatenated ghost output (GN-S's bottleneck), with the halves' kernels stacked."""
    torch.manual_seed(4)
    block = GhostBottleneckMCU(8, 16, 24, kernel_size=3, stride=2, se=False)
    _randomize_bn_module(block)
    x = torch.randn(2, 8, 16, 16)
    with torch.no_grad():
        halves = [dw.reparameterize()[-1] for dw in block.dw]
        weight = torch.cat([h.weight for h in halves]).float()
        bias = torch.cat([h.bias for h in halves]).float()
        y = nn.functional.conv2d(nn.functional.pad(block.ghost1(x), (0, 1, 0, 1)), weight, bias, stride=2, groups=16)
        assert _rel_err(block(x), block.ghost2(y) + block.shortcut(x)) <= 1e-5
    assert isinstance(block.shortcut, nn.Module) and block.shortcut.conv.kernel_size == (1, 1)


@pytest.mark.parametrize("width", [0.5, 1.0])
def test_mcu_variant_structure(width: float) -> None:
    """GN-S-MCU's MCU rules, each of which the export measurements depend on."""
    model = create_model("ghostnetv3_small_mcu", width=width, in_chans=1).eval()
    assert not any(m.__class__.__name__ in {"DFCGate", "Upsample"} for m in model.modules())
    assert isinstance(model.conv_head, nn.Identity)  # no 1280-wide head
    convs = [m for m in reparameterize(model).modules() if isinstance(m, nn.Conv2d)]
    assert all(c.out_channels % 4 == 0 for c in convs)  # divisor 8: every ghost half is a multiple of 4
    assert all(c.padding == (0, 0) for c in convs if c.stride == (2, 2))  # SAME-padded, no PAD op
    # Only the stem and one block run at 32×32, and no tensor there is wider than the stem.
    sizes: list[tuple[int, int]] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: sizes.append(tuple(out.shape[1:3])))
             for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ReLU))]
    with torch.no_grad():
        assert model(torch.randn(1, 1, 32, 32)).shape == (1, 10)
    for h in hooks:
        h.remove()
    stem = model.stem[0].conv.out_channels
    assert all(c <= stem for c, h in sizes if h == 32)
    blocks = [b for stage in model.blocks for b in stage]
    assert len(blocks) == 4 and all(isinstance(b.se, nn.Identity) for b in blocks)
    assert sum(b.dw.__class__.__name__ == "ModuleList" for b in blocks) == 2  # both downsamplings split


def test_mcu_parameter_count_is_pinned() -> None:
    """The lead trains GN-S-MCU from this table: a change to it must be deliberate (new name, new weights)."""
    info = model_info(create_model("ghostnetv3_small_mcu", in_chans=1), "ghostnetv3_small_mcu")
    assert (info.params_train, info.params_deploy, info.macs) == (109_162, 42_038, 3_908_544)
    assert info.input_shape == [1, 1, 32, 32]


@pytest.mark.parametrize("name", ["ghostnetv3_small", "ghostnetv3_small_mcu"])
def test_fused_branch_training_forward_is_the_per_branch_function(name: str) -> None:
    """The one-conv training forward of 1×1 blocks computes what the per-branch forward computes: outputs,
    every parameter gradient (through the batch statistics too) and every BatchNorm buffer after a step, in
    float64 so that only the order of summation differs."""
    import copy

    from edgeghost.models import fused_branches

    torch.manual_seed(0)
    reference = _randomize_bn(create_model(name, width=0.5, in_chans=1)).double().train()
    for m in reference.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 0.1
    fused = fused_branches(copy.deepcopy(reference))
    assert sum(isinstance(m, RepConv) and m.fused and m._fusable() for m in fused.modules()) > 0
    x = torch.randn(6, 1, 32, 32, dtype=torch.float64) * 2 + 0.5
    outs = []
    for model in (reference, fused):
        y = model(x)
        (y * torch.linspace(-1, 1, y.shape[1], dtype=y.dtype)).square().sum().backward()
        outs.append(y)
    assert _rel_err(outs[1], outs[0]) < 1e-10
    for (key, p), q in zip(reference.named_parameters(), fused.parameters()):
        assert (p.grad - q.grad).abs().max() <= 1e-9 * (1 + p.grad.abs().max()), key
    ref_state, fused_state = reference.state_dict(), fused.state_dict()
    assert ref_state.keys() == fused_state.keys()
    for key, value in ref_state.items():
        assert torch.allclose(fused_state[key].double(), value.double(), rtol=1e-9, atol=1e-12), key
    # eval mode uses the (equal) running statistics through the per-branch forward
    reference.eval(), fused.eval()
    with torch.no_grad():
        assert _rel_err(fused(x), reference(x)) < 1e-10
