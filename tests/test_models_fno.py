"""The Fourier backbone (xequi.models.fno): spectral convolution, exact C4 / UM / Mag equivariance
on square and non-square grids (and the plain FNO failing the rotation check), equal-parameter
presets, export, state dict and checkpoint round trips, a tiny fit and a forecast."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import torch
import xarray as xr

from xequi import symmetry
from xequi.errors import ModelError
from xequi.models import create, equivariance_error, parameter_count
from xequi.models import fno as fno_module
from xequi.models.fno import FNO, RotSpectralConv2d, SpectralConv2d, hermitian, spectral_conv

from conftest import tiny_model
from test_models_equivariance import randomize  # one home for the trained-like weights

torch.set_num_threads(1)

T_IN = 3
N_SCALARS = 1
EXACT_TOL = 1e-5
PLAIN_MIN = 1e-3
SHAPES = [(16, 16), (16, 11)]  # square and non-square (odd width: odd padded grid too)
FNO_NAMES = ["fno", "um-fno", "mag-fno", "rot-fno", "um-mag-rot-fno"]


_CACHE: dict = {}


def model(name: str, **kw):
    key = (name, tuple(sorted(kw.items())))
    if key not in _CACHE:
        torch.manual_seed(0)
        kw.setdefault("widths", (2, 2) if "rot" in name else (6, 6))
        _CACHE[key] = randomize(create(name, t_in=T_IN, n_scalars=N_SCALARS, **kw))
    return _CACHE[key]


def data_input(shape, seed: int = 1, batch: int = 2):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, T_IN, 2 + N_SCALARS, *shape, generator=g) + 0.3


# --------------------------------------------------------------------------------------------
# the spectral convolution
# --------------------------------------------------------------------------------------------
def reference_spectral_conv(h, p_block, modes, padding):
    """The textbook layer: full ``fft2``, the complex Hermitian block on ``|ky|, |kx| <= m``,
    ``ifft2``, crop. Returns the complex result (its imaginary part must vanish)."""
    B, _, H, W = h.shape
    hp = torch.nn.functional.pad(h.double(), (padding,) * 4)
    Hp, Wp = hp.shape[-2:]
    m = min(modes, (min(Hp, Wp) - 1) // 2)
    w = hermitian(p_block.double())[..., modes - m:modes + m + 1, modes - m:modes + m + 1]
    X = torch.fft.fft2(hp)
    Y = torch.zeros(B, p_block.shape[1], Hp, Wp, dtype=X.dtype)
    for i, ky in enumerate(range(-m, m + 1)):
        for j, kx in enumerate(range(-m, m + 1)):
            Y[..., ky % Hp, kx % Wp] = torch.einsum("bi,io->bo", X[..., ky % Hp, kx % Wp], w[..., i, j])
    return torch.fft.ifft2(Y)[..., padding:padding + H, padding:padding + W]


@pytest.mark.parametrize("shape, modes, padding", [((10, 7), 3, 2), ((6, 6), 12, 0), ((5, 9), 12, 4),
                                                   ((8, 8), 0, 1)])
def test_spectral_conv_is_the_full_fft_block_and_real(shape, modes, padding):
    torch.manual_seed(0)
    conv = SpectralConv2d(3, 2, modes, padding)
    h = torch.randn(2, 3, *shape)
    ref = reference_spectral_conv(h, conv.weight.detach(), modes, padding)
    assert float(ref.imag.abs().max()) < 1e-12  # the Hermitian block maps real to real
    with torch.no_grad():
        got = conv(h)
    assert got.shape == (2, 2, *shape)
    torch.testing.assert_close(got.double(), ref.real, rtol=1e-5, atol=1e-5)


def test_modes_are_clipped_to_the_padded_grid_and_the_centre_block_is_used():
    torch.manual_seed(0)
    big = SpectralConv2d(1, 1, modes=12, padding=0)
    small = SpectralConv2d(1, 1, modes=1, padding=0, weight=big.weight.detach()[..., 11:14, 11:14])
    h = torch.randn(1, 1, 4, 3)  # (min(4, 3) - 1) // 2 = 1 mode
    with torch.no_grad():
        torch.testing.assert_close(big(h), small(h))


def test_spectral_conv_is_rotation_equivariant_with_the_rotated_block():
    """Index-space weights: rotating the input array (square or not) and the centred weight block
    by 90 degrees rotates the output."""
    torch.manual_seed(0)
    block = torch.randn(2, 3, 7, 7)
    for shape in [(12, 12), (12, 9)]:
        h = torch.randn(1, 2, *shape)
        y = spectral_conv(h, block, 3, 2)
        yr = spectral_conv(torch.rot90(h, 1, (-2, -1)), torch.rot90(block, 1, (-2, -1)), 3, 2)
        torch.testing.assert_close(yr, torch.rot90(y, 1, (-2, -1)), rtol=1e-5, atol=1e-5)
        y_wrong = spectral_conv(torch.rot90(h, 1, (-2, -1)), block, 3, 2)  # untied: not equivariant
        assert float((y_wrong - torch.rot90(y, 1, (-2, -1))).norm() / y.norm()) > 0.1


def test_e2cnn_regular_fields_permute_as_the_rot_layer_assumes():
    """Rotating the input by rot90(k=1) rotates every channel of the rot family's lift and shifts
    the orientation index by one: h'[g] = rot90(h[g - 1]) (what RotSpectralConv2d ties to)."""
    net = model("rot-fno")
    x = data_input((9, 9))
    with torch.no_grad():
        h, _ = net.lift(x)
        hr, _ = net.lift(symmetry.rot90(x, 1))
    h5 = h.view(2, -1, 4, 9, 9)
    want = torch.roll(torch.rot90(h5, 1, (-2, -1)), 1, dims=2).reshape(hr.shape)
    torch.testing.assert_close(hr, want, rtol=1e-5, atol=1e-5)
    assert float((torch.rot90(h, 1, (-2, -1)) - hr).abs().max()) > 1e-2  # a permutation there is


def test_rot_spectral_conv_exports_to_the_plain_layer_and_has_a_quarter_of_its_weights():
    torch.manual_seed(0)
    conv = RotSpectralConv2d(2, 3, modes=4, padding=3)
    plain = conv.export()
    assert isinstance(plain, SpectralConv2d) and plain.weight.shape == (8, 12, 9, 9)
    assert conv.weight.numel() * 4 == plain.weight.numel()
    h = torch.randn(2, 8, 11, 14)
    with torch.no_grad():
        torch.testing.assert_close(plain(h), conv(h))


# --------------------------------------------------------------------------------------------
# exact equivariance of the models (and the plain FNO failing)
# --------------------------------------------------------------------------------------------
CASES = [("rot-fno", "rot90", dict(k=k)) for k in (1, 2, 3)] + [
    ("um-mag-rot-fno", "rot90", dict(k=1)), ("um-mag-rot-fno", "rot90", dict(k=3)),
    ("um-mag-rot-fno", "uniform_motion", dict(c=(0.5, -1.0))),
    ("um-mag-rot-fno", "uniform_motion", dict(c=(100.0, -300.0))),
    ("um-mag-rot-fno", "magnitude", dict(lam=0.37)), ("um-mag-rot-fno", "magnitude", dict(lam=1e3)),
    ("um-fno", "uniform_motion", dict(c=(0.5, -1.0))), ("mag-fno", "magnitude", dict(lam=5.0)),
]


@pytest.mark.parametrize("shape", SHAPES, ids=["square", "non-square"])
@pytest.mark.parametrize("name, kind, params", CASES,
                         ids=[f"{n}-{k}-{list(p.values())[0]}" for n, k, p in CASES])
def test_exact_equivariance(name, kind, params, shape):
    net = model(name)
    assert kind in net.symmetries
    x = data_input(shape)
    for steps in (1, 2):
        err = equivariance_error(net, x, kind, steps=steps, **params)
        assert err < EXACT_TOL, f"{name} {kind} {params} {shape} steps={steps}: {err:.2e}"
    # the plain FNO is not equivariant: the check can fail
    err = equivariance_error(model("fno"), x, kind, **params)
    assert err > PLAIN_MIN, f"plain fno unexpectedly equivariant to {kind}: {err:.2e}"


def test_rot_fno_claims_c4_only_and_is_exact_in_train_mode():
    net = create("um-mag-rot-fno", t_in=T_IN, n_scalars=N_SCALARS, widths=(2, 2)).train()
    assert {"rot90", "uniform_motion", "magnitude"} <= set(net.symmetries)
    assert "rotate" not in net.symmetries and net.config["group_order"] == 4
    x = data_input((12, 9))
    with torch.no_grad():  # batch statistics are shared by the 4 channels of a field
        y, yr = net(x), net(symmetry.rot90(x, 1))
    torch.testing.assert_close(yr, symmetry.rot90(y, 1), rtol=1e-5, atol=1e-5)


def test_scalar_only_rot_fno():
    torch.manual_seed(0)
    net = randomize(create("rot-fno", t_in=2, n_scalars=1, velocity=False, widths=(2,)))
    x = torch.randn(1, 2, 1, 12, 10)
    assert equivariance_error(net, x, "rot90", k=1) < EXACT_TOL


def test_bad_arguments_are_model_errors():
    with pytest.raises(ModelError, match="C4 only"):
        create("rot-fno", group_order=8)
    with pytest.raises(ModelError, match="modes"):
        create("fno", modes=-1)
    with pytest.raises(ModelError, match="'scale'"):
        FNO(t_in=2, family="scale")
    with pytest.raises(ModelError, match="does not take"):
        create("fno", group_order=4)


# --------------------------------------------------------------------------------------------
# presets, export, state dict, checkpoints
# --------------------------------------------------------------------------------------------
def test_presets_and_equal_parameters():
    plain = parameter_count("fno")
    assert abs(plain / parameter_count("resnet") - 1) < 0.1  # comparable with the small ResNet
    for name in ("rot-fno", "um-mag-rot-fno"):
        assert parameter_count(name) < 0.5 * plain  # equal channels: weight sharing
        assert abs(parameter_count(name, size="small-params") / plain - 1) < 0.1
        n = parameter_count(name, size="paper-params")
        assert abs(n / parameter_count("fno", size="paper") - 1) < 0.1
    net = create("fno", size="paper")
    assert net.config["modes"] == 12 and net.config["widths"] == [20, 20, 20, 20]
    assert create(**net.config).config == net.config
    assert create("rot-fno", modes=5).config["modes"] == 5


@pytest.mark.parametrize("name", ["rot-fno", "um-mag-rot-fno", "fno"])
def test_export_agrees_and_is_plain_torch(name):
    net = model(name)
    exp = net.export()
    assert not any(type(m).__module__.startswith("e2cnn") for m in exp.modules())
    assert not any(isinstance(m, RotSpectralConv2d) for m in exp.modules())
    assert exp.config == net.config and exp.symmetries == net.symmetries and not exp.training
    for shape in SHAPES:
        x = data_input(shape)
        with torch.no_grad():
            torch.testing.assert_close(exp(x), net(x), rtol=1e-5, atol=1e-5)
    assert any(isinstance(m, RotSpectralConv2d) for m in net.modules()) == ("rot" in name)


@pytest.mark.parametrize("mode_a, mode_b", [("eval", "train"), ("train", "eval")])
def test_state_dict_roundtrip(mode_a, mode_b):
    a = create("um-mag-rot-fno", t_in=2, widths=(2, 2))
    with torch.no_grad():
        for p in a.parameters():
            p.add_(0.1 * torch.randn_like(p))
    getattr(a, mode_a)()
    b = create(**a.config)
    getattr(b, mode_b)()
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, 2, 2, 12, 8)
    with torch.no_grad():
        torch.testing.assert_close(b.eval()(x), a.eval()(x), rtol=0, atol=0)


def test_checkpoint_roundtrip(tmp_path):
    from xequi.checkpoint import load_model, read_card, save_model

    net = model("um-mag-rot-fno")
    path = save_model(net, tmp_path / "fno")
    card = read_card(path)
    assert card["architecture"]["name"] == "um-mag-rot-fno" and card["architecture"]["modes"] == 4
    assert "rot90" in card["symmetries"]
    back = load_model(path).eval()
    assert back.config == net.config and back.symmetries == net.symmetries
    x = data_input((16, 11))
    with torch.no_grad():
        torch.testing.assert_close(back(x), net(x), rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------------------------
# training and forecasting through the xarray pipeline
# --------------------------------------------------------------------------------------------
def _advect(T=14, H=16, W=16, seed=0):
    """A smooth field advected by one cell per step (as in tests/test_train.py)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(2, H, W))
    k = np.fft.fftfreq(H)[:, None] ** 2 + np.fft.fftfreq(W)[None, :] ** 2
    base = np.real(np.fft.ifft2(np.fft.fft2(base) * np.exp(-40 * k)))
    frames = np.stack([np.roll(base / base.std(), t, axis=-1) for t in range(T)]) * 3.0 + 0.5
    return xr.DataArray(frames.astype("float32"), dims=("time", "channel", "y", "x"),
                        coords={"channel": ["u", "v"]},
                        attrs={"units": "u: m/s, v: m/s", "dx": "5000 m", "dy": "5000 m", "dt": "3600 s"})


def test_fit_smoke_and_checkpoint(tmp_path):
    from xequi import checkpoint as ck
    from xequi.train import fit

    data = _advect()
    net, hist = fit("rot-fno", data, epochs=2, t_in=2, rollout_steps=2, batch_size=4,
                    model_kwargs={"widths": (2, 2), "modes": 3}, val_fraction=0.3, progress=False,
                    window=16, device="cpu")
    assert hist["epoch"] == [1, 2] and np.isfinite(hist["val_loss"]).all()
    assert net.config["name"] == "rot-fno" and net.config["modes"] == 3
    loaded = ck.load_model(ck.save_model(net, tmp_path / "rot_fno"))
    x = torch.from_numpy(data.values[None, :2])
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net(x), rtol=1e-6, atol=1e-6)


def test_forecast_through_the_xarray_pipeline_is_exactly_rotation_equivariant(cf_dataset):
    """Square windows on a non-square domain: the window layout rotates with the data, so the
    whole-domain forecast of rotated data is the rotated forecast (the plain FNO's is not)."""
    from xequi.forecast import forecast

    ds = cf_dataset(nt=3, ny=20, nx=28)
    net = tiny_model("rot-fno", widths=(2, 2), modes=3)
    fc = forecast(ds, net, steps=2, window=16, progress=False)
    assert fc.sizes["lead_time"] == 2 and float(fc["u"].std()) > 0.01
    assert bool(np.isfinite(fc["u"]).all())
    kw = dict(steps=2, forecast_kwargs={"window": 16})
    err = ds.equi.equivariance_error(net, "rot90", k=1, **kw)
    assert float(err.max()) < EXACT_TOL, err.values
    plain = ds.equi.equivariance_error(tiny_model("fno", modes=3), "rot90", k=1, **kw)
    assert float(plain.min()) > PLAIN_MIN, plain.values


def test_doctests():
    res = doctest.testmod(fno_module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0 and res.attempted > 0
