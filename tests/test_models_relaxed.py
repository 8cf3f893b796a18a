"""Relaxed (approximately equivariant) C4 models: exact at initialisation, able to leave the
symmetry when trained, penalized, reducing to the rot models, saved, exported and fitted."""

from __future__ import annotations

import types

import pytest
import torch

from xequi import checkpoint as ck
from xequi.errors import ModelError
from xequi.models import create, equivariance_error
from xequi.models.relaxed import RelaxedConv, _orientations, breaking_ratios, departure

torch.set_num_threads(1)

EXACT_TOL = 1e-5
BROKEN_MIN = 1e-3


@pytest.fixture(scope="module")
def x():
    return torch.randn(2, 2, 3, 12, 12, generator=torch.Generator().manual_seed(1)) + 0.3


def _net(name="relaxed-rot-resnet", seed=0, **kw):
    torch.manual_seed(seed)
    return create(name, t_in=2, n_scalars=1, widths=kw.pop("widths", (2, 3)), **kw)


def _break(net, seed=0, scale=1.0):
    """Random relaxed weights (varying across the group): a model that has left C4."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.relaxed_layers().values():
            m.relaxed_weights.copy_(scale * torch.randn(m.relaxed_weights.shape, generator=g))
    return net


def _rot90_errors(net, x):
    return [equivariance_error(net, x, "rot90", k=k) for k in (1, 2, 3)]


def _constraint_errors(kernel, fields_in, fields_out):
    """max |rot90(K, -g) - P(g) K P(g)^T| per element g of e2cnn's Rot2dOnR2(4)."""
    from e2cnn import gspaces

    gs = gspaces.Rot2dOnR2(4)
    out = []
    for g, el in enumerate(gs.fibergroup.elements):
        r = torch.tensor(gs.regular_repr(el), dtype=kernel.dtype)
        p_in, p_out = torch.block_diag(*[r] * fields_in), torch.block_diag(*[r] * fields_out)
        rhs = (p_out @ kernel.permute(2, 3, 0, 1) @ p_in.T).permute(2, 3, 0, 1)
        out.append(float((torch.rot90(kernel, -g, dims=(-2, -1)) - rhs).abs().max()))
    return out


def test_kernel_convention_is_e2cnn_s():
    """The R2Conv filter and the group lift of any kernel satisfy the same constraint."""
    net = _net(widths=(2, 3))
    conv = net.relaxed_layers()["blocks.1.0"]  # 2 -> 3 fields
    assert max(_constraint_errors(conv.module.expand_parameters()[0].detach(), 2, 3)) < 1e-6
    d = torch.randn(3, 2, 4, 3, 3)
    lifted = _orientations(d.expand(4, *d.shape))  # the same kernel for every g
    assert max(_constraint_errors(lifted, 2, 3)) < 1e-6
    varied = _orientations(torch.randn(4, *d.shape))  # another kernel per g: not equivariant
    assert max(_constraint_errors(varied, 2, 3)) > 0.1


@pytest.mark.parametrize("name", ["relaxed-rot-resnet", "um-mag-relaxed-rot-unet"])
def test_exactly_c4_equivariant_at_initialisation(name, x):
    net = _net(name, widths=(2, 3))
    assert "rot90" not in net.symmetries  # never claimed: not kept once trained
    assert float(net.symmetry_penalty()) == 0.0
    d = departure(net, x)
    assert d["rot90_error"] <= EXACT_TOL and d["breaking_ratio"] == 0.0, d
    # equal weights across the group (penalty 0) but non-zero: still exact
    with torch.no_grad():
        for m in net.relaxed_layers().values():
            w = torch.randn(m.relaxed_weights.shape[:2] + (1,))
            m.relaxed_weights.copy_(w.expand(-1, -1, 4))
    assert float(net.symmetry_penalty()) < 1e-10
    assert max(_rot90_errors(net, x)) <= EXACT_TOL
    # weights varying across the group: the same check fails
    _break(net)
    assert float(net.symmetry_penalty()) > 0
    assert min(_rot90_errors(net, x)) > BROKEN_MIN


@pytest.mark.parametrize("backbone", ["resnet", "unet"])
def test_reduces_to_the_rot_model(backbone, x):
    """Same seed: the rot model's R2Conv weights; zero breaking part: its outputs. relax=0:
    the rot model itself (same state dict keys, bit-identical outputs)."""
    rot = _net(f"rot-{backbone}")
    relaxed = _net(f"relaxed-rot-{backbone}")
    off = _net(f"relaxed-rot-{backbone}", relax=0)
    assert not off.relaxed_layers() and float(off.symmetry_penalty()) == 0.0
    assert off.state_dict().keys() == rot.state_dict().keys()
    sr, sx = rot.state_dict(), relaxed.state_dict()
    assert all(torch.equal(sr[k], sx[k]) for k in sr)
    assert set(sx) - set(sr) == {f"{n}.{p}" for n in relaxed.relaxed_layers()
                                 for p in ("psi", "relaxed_weights")}
    with torch.no_grad():
        for mode in ("train", "eval"):
            want = getattr(rot, mode)()(x)
            assert torch.equal(getattr(off, mode)()(x), want), mode
            torch.testing.assert_close(getattr(relaxed, mode)()(x), want, rtol=1e-6, atol=1e-6)


def test_leaves_the_symmetry_when_trained_on_directed_data(x):
    """A target moved one cell to +x (a fixed direction) breaks C4: a few steps of the relaxed
    model depart from it (penalty grows); the rot model trained alike stays exact."""
    target = torch.roll(x[:, -1], 1, dims=-1)
    out = {}
    for name in ("relaxed-rot-resnet", "rot-resnet"):
        net = _net(name, residual=False).train()
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        pens = []
        for _ in range(8):
            opt.zero_grad()
            loss = torch.mean((net(x) - target) ** 2)
            loss.backward()
            opt.step()
            pens.append(float(net.symmetry_penalty()) if hasattr(net, "symmetry_penalty") else 0)
        out[name] = (departure(net, x), pens)
    d, pens = out["relaxed-rot-resnet"]
    assert pens[0] > 0 and pens[-1] > pens[0]
    assert d["rot90_error"] > BROKEN_MIN and d["breaking_ratio"] > 0, d
    assert set(d["layers"]) == {"blocks.0.0", "blocks.0.3", "blocks.1.0", "blocks.1.3",
                                "shortcuts.1"}
    d_rot, _ = out["rot-resnet"]
    assert d_rot["rot90_error"] <= EXACT_TOL and d_rot["breaking_ratio"] is None


def test_um_and_mag_stay_exact_when_c4_is_broken(x):
    net = _break(_net("um-mag-relaxed-rot-resnet"))
    assert {"uniform_motion", "magnitude"} <= set(net.symmetries)
    assert equivariance_error(net, x, "uniform_motion", c=(0.5, -1.0), steps=2) < 1e-4
    assert equivariance_error(net, x, "magnitude", lam=3.7, steps=2) < 1e-4
    assert min(_rot90_errors(net, x)) > BROKEN_MIN


def test_export_save_and_load_agree(x, tmp_path):
    net = _break(_net("um-mag-relaxed-rot-resnet")).eval()
    exp = net.export()
    assert not any(type(m).__module__.startswith("e2cnn") for m in exp.modules())
    assert not any(isinstance(m, RelaxedConv) for m in exp.modules())
    path = ck.save_model(net, tmp_path / "relaxed")
    card = ck.read_card(path)
    assert "rot90" not in card["symmetries"] and "C4" not in card["symmetry_group"]
    assert card["architecture"]["relax"] == 1 and card["architecture"]["penalty"] == 1e-3
    back = ck.load_model(path)
    with torch.no_grad():
        want = net(x)
        torch.testing.assert_close(exp(x), want, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(back(x), want, rtol=1e-5, atol=1e-5)
    assert back.model.penalty_weight == 1e-3
    ratio = departure(net, x)["breaking_ratio"]
    assert ratio > 0 and departure(back, x)["breaking_ratio"] == pytest.approx(ratio)


def test_settings_are_recorded_and_checked():
    net = _net(widths=(2,), penalty=0.25, relax=2)
    assert net.config["penalty"] == 0.25 and net.penalty_weight == 0.25
    assert net.relaxed_layers()["blocks.0.0"].psi.shape[0] == 2
    assert create(**net.config).config == net.config
    for bad in (dict(group_order=8), dict(relax=-1), dict(penalty=-1.0)):
        with pytest.raises(ModelError):
            _net(widths=(2,), **bad)


def test_the_training_loss_adds_the_weighted_penalty():
    from xequi.train import _batch_loss, rollout_loss

    net = _break(_net(widths=(2,), penalty=0.5))
    xb = torch.randn(1, 2, 3, 8, 8)
    yb = torch.randn(1, 1, 3, 8, 8)
    s = types.SimpleNamespace(pushforward=0, amp_dtype=None)
    data = types.SimpleNamespace(noise_std=None)
    torch.manual_seed(0)
    got = _batch_loss(net, data, s, xb, yb, 1)
    want = rollout_loss(net, xb, yb, None) + 0.5 * net.symmetry_penalty()
    torch.testing.assert_close(got, want)


def test_fit_smoke_with_the_penalty():
    from xequi.train import fit

    from test_train import _advect

    model, hist = fit("relaxed-rot-resnet", _advect(T=12, H=8, W=8), t_in=2, epochs=1,
                      rollout_steps=1, batch_size=4, window=8, val_fraction=0.3, progress=False,
                      device="cpu", model_kwargs={"widths": (2,), "penalty": 0.1})
    assert model.card["architecture"]["penalty"] == 0.1
    assert "rot90" not in model.card["symmetries"]
    assert hist["train_loss"][0] is not None
    d = departure(model, torch.zeros(1, 2, 2, 8, 8) + torch.linspace(0, 1, 8))
    assert d["breaking_ratio"] is not None
    # the card and equivariance_error report the departure
    card_dep = model.card["metrics"]["symmetry_departure"]
    assert card_dep["breaking_ratio"] == pytest.approx(breaking_ratios(model)["breaking_ratio"])
    assert set(card_dep["layers"]) and "definition" in card_dep
    from xequi.forecast import equivariance_error as ds_equivariance_error

    import numpy as np
    import xarray as xr

    frames = _advect(T=12, H=8, W=8)
    ds = xr.Dataset({c: (("time", "y", "x"), frames.sel(channel=c).values, {"units": "m/s"})
                     for c in ("u", "v")},
                    coords={"time": ("time", np.arange(12) * 3600.0, {"units": "s"}),
                            "y": ("y", np.arange(8) * 5000.0, {"units": "m"}),
                            "x": ("x", np.arange(8) * 5000.0, {"units": "m"})})
    err = ds_equivariance_error(ds, model, "rot90", init_time=ds.time.values[3])
    assert err.attrs["breaking_ratio"] == pytest.approx(card_dep["breaking_ratio"])
