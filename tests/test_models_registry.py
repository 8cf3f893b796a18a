"""Registry, configs, parameter counts and input checks of xequi.models."""

from __future__ import annotations

import json

import pytest
import torch

from xequi.errors import GridError, ModelError, ParameterError
from xequi.models import available, create, rollout

torch.set_num_threads(1)

PAPER_NAMES = ["resnet", "um-resnet", "mag-resnet", "rot-resnet", "scale-resnet",
               "unet", "um-unet", "mag-unet", "rot-unet", "scale-unet"]


def test_available_contains_paper_models_and_combined():
    names = available()
    for name in PAPER_NAMES + ["um-mag-rot-resnet"]:
        assert name in names


def test_unknown_name_lists_valid():
    with pytest.raises(ModelError) as info:
        create("transformer")
    assert "transformer" in str(info.value) and "rot-resnet" in str(info.value)


def test_bad_arguments():
    with pytest.raises(ParameterError):
        create("resnet", t_in=0)
    with pytest.raises(ParameterError):
        create("resnet", size="huge")
    with pytest.raises(ModelError):
        create("resnet", group_order=8)  # not a rot model
    with pytest.raises(ModelError):
        create("rot-resnet", group_order=6)


@pytest.mark.parametrize("name", available())
def test_config_roundtrip(name):
    net = create(name, t_in=2, n_scalars=1)
    cfg = json.loads(json.dumps(net.config))
    again = create(**cfg)
    assert again.config == net.config
    assert sum(p.numel() for p in again.parameters()) == sum(p.numel() for p in net.parameters())
    assert isinstance(net.symmetries, tuple) and net.symmetries


def test_rot_config_has_group_order():
    net = create("rot-resnet", t_in=2, group_order=8, widths=(2, 2))
    assert net.config["group_order"] == 8 and "rotate" in net.symmetries
    assert "rotate" not in create("rot-resnet", t_in=2, widths=(2,)).symmetries  # C4


# exact counts at t_in = 24 (pinned), and the released models' sizes for comparison: the U-net
# here has two 3x3 convs per level and an upsampling conv instead of the released stride-2 /
# transposed convs, hence more parameters.
@pytest.mark.parametrize("name, exact, paper, tol", [
    ("resnet", 11_202_242, 12.6e6, 0.15),
    ("um-resnet", 11_202_242, 12.6e6, 0.15),
    ("unet", 8_624_834, 6.2e6, 0.4),
    ("scale-resnet", 4_103_160, 4.1e6, 0.05),
    ("scale-unet", 4_672_584, 4.7e6, 0.05),
])
def test_paper_param_counts(name, exact, paper, tol):
    n = sum(p.numel() for p in create(name, t_in=24, size="paper").parameters())
    assert n == exact
    assert abs(n - paper) / paper < tol


def test_wrong_t_in_and_channels():
    net = create("resnet", t_in=3, n_scalars=1)
    with pytest.raises(ModelError, match="t_in=3"):
        net(torch.randn(1, 2, 3, 8, 8))
    with pytest.raises(ModelError, match="3 channels"):
        net(torch.randn(1, 3, 2, 8, 8))
    with pytest.raises(ModelError, match="5 dims"):
        net(torch.randn(3, 3, 8, 8))


@pytest.mark.parametrize("name", ["unet", "rot-unet", "um-unet"])
def test_unet_rejects_indivisible_grid(name):
    net = create(name, t_in=2, widths=(2, 2, 2, 2))  # depth 3
    with pytest.raises(GridError, match=r"H=65 is not divisible by 2\*\*depth=8") as info:
        net(torch.randn(1, 2, 2, 65, 64))
    assert "64 or 72" in str(info.value)
    with pytest.raises(GridError, match="W=4"):
        net(torch.randn(1, 2, 2, 8, 4))


def test_rollout_bad_steps():
    net = create("resnet", t_in=2, widths=(2,))
    with pytest.raises(ParameterError):
        rollout(net, torch.randn(1, 2, 2, 8, 8), 0)


def test_rot_models_do_not_share_e2cnn_buffers():
    """e2cnn shares cached basis modules between networks; create() must decouple them."""
    a = create("rot-resnet", t_in=2, widths=(2,))
    b = create("rot-resnet", t_in=2, widths=(2,))
    ptr_a = {t.data_ptr() for t in list(a.buffers()) + list(a.parameters())}
    ptr_b = {t.data_ptr() for t in list(b.buffers()) + list(b.parameters())}
    assert not ptr_a & ptr_b
    b.to(torch.float64)  # must not touch a
    a.eval()(torch.randn(1, 2, 2, 8, 8))


@pytest.mark.parametrize("mode_a, mode_b", [("eval", "train"), ("train", "eval"), ("eval", "eval")])
def test_state_dict_roundtrip_rot(mode_a, mode_b):
    """Weights saved from a model in either mode load into a fresh ``create(**config)``."""
    a = create("um-mag-rot-resnet", t_in=2, widths=(2, 2))
    with torch.no_grad():
        for p in a.parameters():
            p.add_(0.1 * torch.randn_like(p))
    getattr(a, mode_a)()
    sd = a.state_dict()
    b = getattr(create(**a.config), mode_b)()
    b.load_state_dict(sd)
    x = torch.randn(1, 2, 2, 8, 8)
    torch.testing.assert_close(b.eval()(x), a.eval()(x))


def test_field_batchnorm_matches_e2cnn_inner_batchnorm():
    from e2cnn import gspaces
    from e2cnn import nn as enn

    from xequi.models.layers import FieldBatchNorm

    gs = gspaces.Rot2dOnR2(N=4)
    ftype = enn.FieldType(gs, 3 * [gs.regular_repr])
    ref, mine = enn.InnerBatchNorm(ftype), FieldBatchNorm(3, 4)
    with torch.no_grad():
        w, b = torch.randn(3), torch.randn(3)
        mine.weight.copy_(w), mine.bias.copy_(b)
        bn = [m for m in ref.modules() if isinstance(m, torch.nn.BatchNorm3d)][0]
        bn.weight.copy_(w), bn.bias.copy_(b)
    for _ in range(2):
        x = torch.randn(4, 12, 5, 5) * 3 + 1
        torch.testing.assert_close(mine(x), ref(enn.GeometricTensor(x, ftype)).tensor, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(mine.running_mean, bn.running_mean)
    torch.testing.assert_close(mine.running_var, bn.running_var)
    mine.eval(), ref.eval()
    torch.testing.assert_close(mine(x), ref(enn.GeometricTensor(x, ftype)).tensor, rtol=1e-4, atol=1e-5)


def test_scale_conv_is_group_correlation_over_three_scales():
    """The stacked implementation equals the sum over neighbouring scales j of dilated convs."""
    import torch.nn.functional as F

    from xequi.models.families import _ScaleConv

    torch.manual_seed(0)
    conv = _ScaleConv(2, 3, 3, 3)
    with torch.no_grad():
        conv.bias.normal_()
    x = torch.randn(2, 6, 12, 12)
    h = x.reshape(2, 2, 3, 12, 12)
    outs = []
    for s in range(3):
        d, acc = 2 ** s, conv.bias.view(1, -1, 1, 1)
        for j in (-1, 0, 1):
            if 0 <= s + j < 3:
                acc = acc + F.conv2d(F.pad(h[:, :, s + j], (d,) * 4), conv.weight[j + 1], dilation=d)
        outs.append(acc)
    torch.testing.assert_close(conv(x), torch.stack(outs, 2).reshape(2, -1, 12, 12), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["scale-resnet", "scale-unet"])
def test_scale_models_backprop_through_a_rollout(name):
    """Regression: the scale lift updated a tensor in place that autograd had saved."""
    torch.manual_seed(0)
    model = create(name, t_in=2)
    x = torch.randn(2, 2, 2, 32, 32)
    loss = rollout(model, x, 3).pow(2).mean()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", ["mirror-resnet", "mirror-rot-resnet", "um-mag-mirror-rot-resnet",
                                  "mirror-unet", "mirror-rot-unet"])
def test_mirror_models_registered_exported_and_checkpointed(name, tmp_path):
    """The mirror models claim "mirror" (declared by their class), export to plain torch, and
    save / load through a checkpoint (``create(**config)`` rebuilds them)."""
    from xequi.checkpoint import load_model, read_card, save_model
    from xequi.models.mirror import MirrorAveraged

    net = create(name, t_in=2, n_scalars=1, widths=(2, 2))
    assert isinstance(net, MirrorAveraged) and "mirror" in net.symmetries
    assert net.symmetries[:-1] == create(name.replace("mirror-", ""), t_in=2, n_scalars=1,
                                         widths=(2, 2)).symmetries
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    net.eval()
    x = torch.randn(1, 2, 3, 8, 8)
    exp = net.export()
    assert not any(type(m).__module__.startswith("e2cnn") for m in exp.modules())
    with torch.no_grad():
        torch.testing.assert_close(exp(x), net(x), rtol=1e-5, atol=1e-5)
    path = save_model(net, tmp_path / "m")
    card = read_card(path)
    assert "mirror" in card["symmetries"] and "mirror" in card["symmetry_group"]
    back = load_model(path).eval()
    assert back.config == net.config and back.symmetries == net.symmetries
    with torch.no_grad():
        torch.testing.assert_close(back(x), net(x), rtol=1e-5, atol=1e-5)
