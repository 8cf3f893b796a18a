"""Equivariance of every registered model to every symmetry it claims (eval mode, CPU, small).

Exact elements (90-degree rotations, any c for UM, any λ > 0 for Mag) must give a relative
error below 1e-4 in float32, over one step and over a 3-step rollout; the plain baseline of the
same backbone must fail the same check (error > 1e-2), so the test can fail. Approximate
elements (45 degrees for C8, scale, translation) are measured against stated bounds.

Models predict the increment by default (``residual=True``: output = last frame + increment).
The last frame alone is exactly equivariant, so the checks are also made on the increment
(output minus last frame): equivariant, and UM-*invariant*, for every model; not for the plain
baseline. ``residual=False`` models are compared bit for bit with the code before increment
prediction (commit 3e64983).
"""

from __future__ import annotations

import pytest
import torch

from xequi import symmetry
from xequi.models import available, create, equivariance_error, rollout
from xequi.models.backbones import RESIDUAL_INIT_SCALE
from xequi.models.registry import REGISTRY

torch.set_num_threads(1)

T_IN = 3
N_SCALARS = 1
EXACT_TOL = 1e-4
PLAIN_MIN = 1e-2

EXACT = {
    "rot90": [dict(k=1), dict(k=2), dict(k=3)],
    "uniform_motion": [dict(c=(0.5, -1.0)), dict(c=(100.0, -300.0)), dict(c=(1e-3, 2e-3))],
    "magnitude": [dict(lam=1e-3), dict(lam=0.37), dict(lam=5.0), dict(lam=1e3)],
    "mirror": [dict(flip=True)],
}


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random biases and BatchNorm statistics (the init has zero biases, unit statistics), so the
    check covers trained-like networks; e2cnn parameters stay in their equivariant subspace.
    A residual model's projection gets its full-size init back (undoing RESIDUAL_INIT_SCALE):
    its increment is then as large as a next-frame model's output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        if getattr(model, "residual", False):
            for name, p in model.named_parameters():
                if name.startswith("project."):
                    p.div_(RESIDUAL_INIT_SCALE)
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn(b.shape, generator=g))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=g))
    model.train()
    model.eval()  # e2cnn re-expands its cached filters and biases
    return model


_CACHE: dict = {}


def model(name: str, **kw):
    key = (name, tuple(sorted(kw.items())))
    if key not in _CACHE:
        torch.manual_seed(0)
        _CACHE[key] = randomize(create(name, t_in=T_IN, n_scalars=N_SCALARS, **kw))
    return _CACHE[key]


def smooth_input(h: int, batch: int = 2, seed: int = 0, coarse: int = 8) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, T_IN * (2 + N_SCALARS), coarse, coarse, generator=g)
    x = torch.nn.functional.interpolate(x, size=(h, h), mode="bicubic", align_corners=False)
    return x.reshape(batch, T_IN, 2 + N_SCALARS, h, h)


def increment_error(net, x: torch.Tensor, kind: str, crop: int = 0, **params) -> float:
    """One-step relative equivariance error of the increment ``d(x) = f(x) - x[:, -1]``:
    ``d(g x)`` against ``g d(x)``, or against ``d(x)`` for uniform motion (the increment of a
    residual model is UM-invariant; ``x[:, -1] + c`` carries ``c``)."""
    vec = (0, 1) if getattr(net, "velocity", True) else None

    def g(t):
        return symmetry.apply(t, kind, vector=vec, **params)

    was = net.training
    net.eval()
    try:
        with torch.no_grad():
            d = net(x) - x[:, -1]
            gx = g(x)
            dg = net(gx) - gx[:, -1]
    finally:
        net.train(was)
    want = d if kind == "uniform_motion" else g(d)
    if crop:
        dg, want = dg[..., crop:-crop, crop:-crop], want[..., crop:-crop, crop:-crop]
    return float((dg - want).double().norm() / want.double().norm())


@pytest.fixture(scope="module")
def x16():
    g = torch.Generator().manual_seed(1)
    return torch.randn(2, T_IN, 2 + N_SCALARS, 16, 16, generator=g) + 0.3


def _cases():
    for name in available():
        sym = REGISTRY[name]["symmetries"]
        for kind in EXACT:
            if kind in sym:
                for params in EXACT[kind]:
                    yield pytest.param(name, kind, params, id=f"{name}-{kind}-{list(params.values())[0]}")


@pytest.mark.parametrize("name, kind, params", list(_cases()))
def test_exact_equivariance(name, kind, params, x16):
    net = model(name)
    assert kind in net.symmetries and net.residual
    for steps in (1, 3):
        err = equivariance_error(net, x16, kind, steps=steps, **params)
        assert err < EXACT_TOL, f"{name} {kind} {params} steps={steps}: {err:.2e}"
    # the increment alone (the last frame is exactly equivariant by itself)
    err = increment_error(net, x16, kind, **params)
    assert err < EXACT_TOL, f"{name} {kind} {params} increment: {err:.2e}"
    # the plain baseline of the same backbone is not equivariant: the test can fail
    # (a tiny c moves a plain network only a little: checked with the larger c values)
    if kind == "uniform_motion" and max(abs(v) for v in params["c"]) < 0.1:
        return
    # With the residual the output's error is diluted by the exactly equivariant last frame
    # (measured, plain resnet / unet: rot90 0.16-0.21 / 0.09-0.13, mirror 0.20 / 0.13, Mag
    # 0.05-64 / 0.07-94, UM c=(0.5, -1) 0.040 / 0.0026); the increment's error is not (rot90
    # 1.4-1.8 / 0.9-1.3, UM 0.38 / 0.030). UM is checked on the increment only.
    base = model("unet" if name.endswith("unet") else "resnet")
    if kind != "uniform_motion":
        err = equivariance_error(base, x16, kind, steps=1, **params)
        assert err > PLAIN_MIN, f"plain baseline unexpectedly equivariant to {kind}: {err:.2e}"
    err = increment_error(base, x16, kind, **params)
    assert err > PLAIN_MIN, f"plain baseline's increment unexpectedly equivariant to {kind}: {err:.2e}"


def test_every_model_claims_something_tested():
    for name in available():
        net = create(name, t_in=2)
        assert set(net.symmetries) <= set(symmetry.KINDS.values())
        assert "translate" in net.symmetries


def test_um_mag_scalar_convention(x16):
    """UM leaves scalars alone; Mag scales every channel (symmetry.magnitude(channels=None))."""
    net = model("um-mag-rot-resnet")
    with torch.no_grad():
        y = net(x16)
        y_um = net(symmetry.uniform_motion(x16, (2.0, -3.0)))
        y_mag = net(symmetry.magnitude(x16, 3.0))
    torch.testing.assert_close(y_um[:, 2:], y[:, 2:], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(y_mag, 3.0 * y, rtol=1e-4, atol=1e-4)


def test_equivariance_in_train_mode(x16):
    """UM / Mag hidden features are invariant, so batch statistics do not change: exact in train
    mode too. (equivariance_error switches to eval; call the model directly here.)"""
    net = create("um-mag-rot-resnet", t_in=T_IN, n_scalars=N_SCALARS).train()
    with torch.no_grad():
        y = net(x16)
        y_um = net(symmetry.uniform_motion(x16, (2.0, -3.0)))
        y_mag = net(symmetry.magnitude(x16, 0.2))
        y_rot = net(symmetry.rot90(x16, 1))
    torch.testing.assert_close(y_um, symmetry.uniform_motion(y, (2.0, -3.0)), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(y_mag, 0.2 * y, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(y_rot, symmetry.rot90(y, 1), rtol=1e-4, atol=1e-4)


def test_zero_input_mag():
    """A zero block has zero Mag scale: the output is exactly zero, no NaN (no eps needed)."""
    net = model("mag-resnet")
    with torch.no_grad():
        y = net(torch.zeros(1, T_IN, 2 + N_SCALARS, 8, 8))
    assert torch.equal(y, torch.zeros_like(y))


# --- approximate elements: measured errors (seeded), stated bounds --------------------------
# measured at the time of writing (32x32 smooth input, t_in 3, one scalar, crop 8, C8, one step):
#   rotate 45:  rot-resnet 0.031, rot-unet 0.065, um-mag-rot-resnet 0.066, um-mag-rot-unet 0.092;
#   plain resnet 0.78, unet 0.53. Bounds are about twice the measured values.
# With increment prediction (residual, default): outputs 0.031, 0.054, 0.065, 0.083, plain 0.10
# and 0.06 (diluted by the last frame); increments 0.031, 0.065, 0.066, 0.097, plain 0.78, 0.53.
APPROX_ROTATE = {"rot-resnet": 0.08, "rot-unet": 0.15, "um-mag-rot-resnet": 0.15, "um-mag-rot-unet": 0.2}


@pytest.mark.parametrize("name", list(APPROX_ROTATE))
def test_rotate_45_c8(name):
    x = smooth_input(32)
    net = model(name, group_order=8)
    assert "rotate" in net.symmetries
    err = equivariance_error(net, x, "rotate", angle=45.0, crop=8)
    assert err < APPROX_ROTATE[name], f"{name}: {err:.3f}"
    # the output's error is diluted by the last frame (plain resnet 0.10, unet 0.06): compare
    # the increments
    base_net = model("unet" if name.endswith("unet") else "resnet")
    base = increment_error(base_net, x, "rotate", angle=45.0, crop=8)
    inc = increment_error(net, x, "rotate", angle=45.0, crop=8)
    assert base > 0.5 and inc < base / 4, (inc, base)


# scale (64x64 smooth input, widths (6, 6), crop 16), measured (λ=0.5 / λ=2): scale-resnet
# 0.43 / 0.42, scale-unet 0.59 / 0.48; plain resnet 0.63 / 0.50, plain unet 0.88 / 0.50.
# The Scale family is only modestly better than the plain networks: a finite scale axis and
# grid interpolation keep it far from exact.
@pytest.mark.parametrize("name", ["scale-resnet", "scale-unet"])
@pytest.mark.parametrize("lam", [0.5, 2.0])
def test_scale_approximate(name, lam):
    x = smooth_input(64, batch=1)
    net = model(name, widths=(6, 6))
    assert "scale" in net.symmetries
    err = equivariance_error(net, x, "scale", lam=lam, crop=16)
    assert err < 0.7, f"{name} λ={lam}: {err:.3f}"


@pytest.mark.parametrize("name", ["resnet", "um-resnet", "mag-resnet", "rot-resnet", "um-mag-rot-resnet"])
def test_translate_interior_exact(name):
    """ResNets (no downsampling) commute with translations away from the boundary: exact on the
    interior that neither the periodic wrap nor the padding reaches (receptive radius + shift)."""
    net = model(name, widths=(4, 4))
    radius = 1 + 2 * 2 + 1  # lift, 2 blocks of two 3x3 convs, projection
    shift = (2, 3)
    x = torch.randn(1, T_IN, 2 + N_SCALARS, 32, 32, generator=torch.Generator().manual_seed(3))
    err = equivariance_error(net, x, "translate", shift=shift, crop=radius + max(shift))
    assert err < EXACT_TOL, f"{name}: {err:.2e}"


def test_rollout_shape_and_feedback(x16):
    net = model("resnet")
    with torch.no_grad():
        out = rollout(net, x16, 3)
        first = net(x16)
        second = net(torch.cat([x16[:, 1:], first[:, None]], 1))
    assert out.shape == (2, 3, 2 + N_SCALARS, 16, 16)
    torch.testing.assert_close(out[:, 0], first)
    torch.testing.assert_close(out[:, 1], second)


@pytest.mark.parametrize("name", available())
def test_export_agrees(name, x16):
    net = model(name)
    exp = net.export()
    assert not any(type(m).__module__.startswith("e2cnn") for m in exp.modules())
    with torch.no_grad():
        a = net(x16)
        b = exp(x16)
    torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    assert exp.config == net.config and exp.symmetries == net.symmetries
    assert not net.training or net.training == exp.training


# --------------------------------------------------------------------------------------------
# scalar-only models (velocity=False): channels [*scalars], e.g. temperature alone
# --------------------------------------------------------------------------------------------
SCALAR_CASES = [("rot-resnet", "rot90", dict(k=1)), ("rot-unet", "rot90", dict(k=3)),
                ("mag-resnet", "magnitude", dict(lam=0.37)), ("mag-unet", "magnitude", dict(lam=5.0))]


@pytest.mark.parametrize("name, kind, params", SCALAR_CASES)
def test_scalar_only_models_keep_their_symmetry(name, kind, params):
    torch.manual_seed(0)
    net = randomize(create(name, t_in=T_IN, n_scalars=1, velocity=False))
    assert net.channels == 1 and net.config["velocity"] is False
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, T_IN, 1, 16, 16, generator=g) + 0.3
    with torch.no_grad():
        assert net(x).shape == (2, 1, 16, 16)
    for steps in (1, 3):  # vector="auto" treats the one channel as a scalar
        err = equivariance_error(net, x, kind, steps=steps, **params)
        assert err < EXACT_TOL, f"{name} {kind}: {err:.2e}"
    torch.manual_seed(0)
    base = randomize(create("unet" if name.endswith("unet") else "resnet", t_in=T_IN, n_scalars=1,
                            velocity=False))
    assert equivariance_error(base, x, kind, **params) > PLAIN_MIN
    # the exported plain-torch copy computes the same
    with torch.no_grad():
        torch.testing.assert_close(net.export()(x), net(x), rtol=1e-5, atol=1e-5)


def test_scalar_only_rotation_treats_the_channel_as_a_scalar():
    """A rot model built for velocity rotates channels 0, 1 as a vector; the scalar-only one
    must not: rotating its input as a vector field breaks the check."""
    torch.manual_seed(0)
    net = randomize(create("rot-resnet", t_in=1, n_scalars=2, velocity=False))
    x = torch.randn(1, 1, 2, 16, 16, generator=torch.Generator().manual_seed(3))
    assert equivariance_error(net, x, "rot90", k=1) < EXACT_TOL
    assert equivariance_error(net, x, "rot90", k=1, vector=(0, 1)) > PLAIN_MIN


def test_scale_family_scalar_only_runs_and_keeps_the_scalar_unscaled():
    torch.manual_seed(0)
    net = create("scale-resnet", t_in=2, n_scalars=1, velocity=False, widths=(2, 2)).eval()
    x = torch.randn(1, 2, 1, 16, 16)
    with torch.no_grad():
        y = net(x)
    assert y.shape == (1, 1, 16, 16) and torch.isfinite(y).all()
    assert net.fam is not None and net.lift.conv.n_vel == 0


def test_scalar_only_argument_errors():
    from xequi.errors import ModelError, ParameterError

    with pytest.raises(ModelError, match=r"uniform-motion(.|\n)*\['resnet', 'mag-resnet'"):
        create("um-resnet", n_scalars=1, velocity=False)
    with pytest.raises(ModelError, match="uniform-motion(.|\n)*'rot-resnet', 'scale-resnet'"):
        create("um-mag-rot-resnet", n_scalars=1, velocity=False)
    with pytest.raises(ParameterError, match="n_scalars >= 1"):
        create("resnet", velocity=False)
    with pytest.raises(ParameterError, match="True or False"):
        create("resnet", n_scalars=1, velocity="no")
    net = create("resnet", t_in=1, n_scalars=1, velocity=False, widths=(4,))
    with pytest.raises(ModelError, match="1 scalar channel(.|\n)*n_scalars=3"):
        net(torch.zeros(1, 1, 3, 8, 8))


# --------------------------------------------------------------------------------------------
# mirror models (group averaging over x -> -x, u -> -u)
# --------------------------------------------------------------------------------------------
MIRROR_TOL = 1e-5


@pytest.mark.parametrize("name", ["mirror-rot-resnet", "mirror-rot-unet", "um-mag-mirror-rot-resnet"])
def test_mirror_rot_models_are_exactly_d4_equivariant(name, x16):
    """f_M = ½ (f + M f M) on a C4-equivariant f: mirror and every quarter turn exact (D4)."""
    net = model(name)
    assert {"mirror", "rot90"} <= set(net.symmetries)
    for steps in (1, 3):
        assert equivariance_error(net, x16, "mirror", steps=steps) < MIRROR_TOL
        for k in (1, 2, 3):
            assert equivariance_error(net, x16, "rot90", steps=steps, k=k) < MIRROR_TOL
    # the reflections of D4 that are not M itself: M∘R^k
    with torch.no_grad():
        for k in (1, 2, 3):
            g = lambda t: symmetry.mirror(symmetry.rot90(t, k))  # noqa: E731
            y, yg = net(x16), net(g(x16))
            assert float((yg - g(y)).norm() / g(y).norm()) < MIRROR_TOL
    assert equivariance_error(model("rot-resnet"), x16, "mirror") > PLAIN_MIN  # C4 alone is not


def test_mirror_model_exact_in_train_mode_and_keeps_um_mag(x16):
    net = create("um-mag-mirror-rot-resnet", t_in=T_IN, n_scalars=N_SCALARS).train()
    with torch.no_grad():
        y = net(x16)
        y_m = net(symmetry.mirror(x16))
        y_um = net(symmetry.uniform_motion(x16, (2.0, -3.0)))
        y_mag = net(symmetry.magnitude(x16, 0.2))
    torch.testing.assert_close(y_m, symmetry.mirror(y), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(y_um, symmetry.uniform_motion(y, (2.0, -3.0)), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(y_mag, 0.2 * y, rtol=1e-4, atol=1e-5)


def test_mirror_scalar_only_model_flips_without_negating():
    torch.manual_seed(0)
    net = randomize(create("mirror-resnet", t_in=T_IN, n_scalars=1, velocity=False))
    x = torch.randn(2, T_IN, 1, 16, 16, generator=torch.Generator().manual_seed(2))
    assert equivariance_error(net, x, "mirror") < MIRROR_TOL
    assert equivariance_error(net, x, "mirror", vector=None) < MIRROR_TOL


def test_mirror_through_the_dataset_accessor(cf_dataset):
    """``ds.equi.equivariance_error(model, "mirror")`` on a CF dataset: the exactly equivariant
    model below 1e-5 over a rollout, the plain ResNet above 1e-2 (the check can fail)."""
    from xequi.forecast import as_forecast_model

    ds = cf_dataset(nt=3, ny=32, nx=32, scalars=("temperature",))

    def wrap(name):
        torch.manual_seed(0)
        net = randomize(create(name, t_in=2, n_scalars=1, widths=(2, 2)))
        return as_forecast_model(net, dx="10 km", dt="1 h", scalars={"temperature": "degC"})

    err = ds.equi.equivariance_error(wrap("mirror-rot-resnet"), "mirror", steps=2,
                                     forecast_kwargs={"window": 32})
    assert err.sizes["lead_time"] == 2 and float(err.max()) < MIRROR_TOL, err.values
    rot = ds.equi.equivariance_error(wrap("mirror-rot-resnet"), "rot90", k=1,
                                     forecast_kwargs={"window": 32})
    assert float(rot.max()) < MIRROR_TOL, rot.values
    plain = ds.equi.equivariance_error(wrap("resnet"), "mirror", forecast_kwargs={"window": 32})
    assert float(plain.min()) > PLAIN_MIN, plain.values


# --------------------------------------------------------------------------------------------
# increment prediction (residual=True, the default): init, config, the models before it
# --------------------------------------------------------------------------------------------
#: one-step distance to persistence of the untrained (eval-mode) residual models, relative rms,
#: measured (x16, seed 0): rot / mirror-rot / um-mag-rot ResNets (C4) 0.021 (0.034 on the scalar
#: channel), every other model <= 0.0015; the same models with residual=False: 0.96-2.2
PERSISTENCE_TOL = {"resnet": 0.05}  # the rot ResNets (e2cnn init, eval-mode BatchNorm)
PERSISTENCE_TOL_DEFAULT = 0.005


@pytest.mark.parametrize("name", available())
def test_untrained_residual_model_forecasts_close_to_persistence(name, x16):
    torch.manual_seed(0)
    net = create(name, t_in=T_IN, n_scalars=N_SCALARS).eval()
    torch.manual_seed(0)
    direct = create(name, t_in=T_IN, n_scalars=N_SCALARS, residual=False).eval()
    last = x16[:, -1]
    with torch.no_grad():
        y, y_direct = net(x16), direct(x16)
    dist = float((y - last).norm() / last.norm())
    tol = PERSISTENCE_TOL["resnet"] if "rot-resnet" in name else PERSISTENCE_TOL_DEFAULT
    assert 0 < dist < tol, f"{name}: {dist:.2e}"  # close, yet a live network (not exactly zero)
    assert float((y_direct - last).norm() / last.norm()) > 0.5  # the check can fail
    # every channel is predicted as an increment, the scalar too
    scal = float((y[:, 2:] - last[:, 2:]).norm() / last[:, 2:].norm())
    assert scal < tol


@pytest.mark.parametrize("name", ["resnet", "um-mag-rot-unet", "scale-resnet", "mirror-rot-resnet"])
def test_residual_init_scales_the_projection_only(name):
    """Same seed: residual and next-frame models have the same weights except the projection,
    which the residual model multiplies by RESIDUAL_INIT_SCALE."""
    torch.manual_seed(0)
    a = create(name, t_in=T_IN, n_scalars=N_SCALARS)
    torch.manual_seed(0)
    b = create(name, t_in=T_IN, n_scalars=N_SCALARS, residual=False)
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    assert pa.keys() == pb.keys()
    for k in pa:
        want = pb[k] * RESIDUAL_INIT_SCALE if k.startswith("project.") else pb[k]
        torch.testing.assert_close(pa[k], want, rtol=1e-6, atol=0)


def test_residual_is_recorded_rebuilt_exported_and_validated(x16):
    from xequi.errors import ParameterError
    from xequi.models import ResNet

    net = model("um-mag-rot-resnet")
    assert net.config["residual"] is True and net.residual
    again = create(**net.config)
    assert again.residual and again.config == net.config
    old = create("um-mag-rot-resnet", t_in=T_IN, n_scalars=N_SCALARS, residual=False)
    assert old.config["residual"] is False and not create(**old.config).residual
    # the UM head adds the block mean back only when the network predicts the next frame
    assert not net.project.um and old.project.um and net.lift.um and old.lift.um
    exp = net.export()
    assert exp.residual
    with torch.no_grad():
        torch.testing.assert_close(exp(x16), net(x16), rtol=1e-5, atol=1e-5)
    assert ResNet(t_in=2, widths=(2,)).residual  # the backbone's default too
    with pytest.raises(ParameterError, match="residual must be True or False"):
        create("resnet", residual="yes")


#: the commit before increment prediction: residual=False must rebuild its models bit for bit
BEFORE_RESIDUAL = "3e649838653cc9ff84e00f229248f6c0a596e6ab"
_OLD_MODULES = ("layers", "families", "backbones", "mirror", "registry")


@pytest.fixture(scope="module")
def old_registry(tmp_path_factory):
    """``xequi/models`` at BEFORE_RESIDUAL (read with ``git show``) as a separate package."""
    import importlib
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    pkg = tmp_path_factory.mktemp("before") / "xequi_models_before_residual"
    pkg.mkdir()
    for mod in _OLD_MODULES:
        try:
            src = subprocess.run(["git", "show", f"{BEFORE_RESIDUAL}:xequi/models/{mod}.py"],
                                 cwd=root, capture_output=True, text=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError) as err:
            # the regression guard of increment prediction must run, not be skipped: the tests
            # are run from a git clone with its history (CI: a fresh `git clone`)
            pytest.fail(f"cannot read xequi/models/{mod}.py at {BEFORE_RESIDUAL} with git "
                        f"({err}): run the tests from a git clone with its full history "
                        "(not a shallow clone or an unpacked archive)")
        for other in _OLD_MODULES:
            src = src.replace(f"xequi.models.{other}", f"xequi_models_before_residual.{other}")
        (pkg / f"{mod}.py").write_text(src)
    (pkg / "__init__.py").write_text("")
    sys.path.insert(0, str(pkg.parent))
    try:
        return importlib.import_module("xequi_models_before_residual.registry")
    finally:
        sys.path.remove(str(pkg.parent))


#: the registry at BEFORE_RESIDUAL (checked against it below): the models that existed then
BEFORE_RESIDUAL_NAMES = ("resnet", "um-resnet", "mag-resnet", "unet", "um-unet", "mag-unet",
                         "rot-resnet", "rot-unet", "scale-resnet", "scale-unet",
                         "um-mag-rot-resnet", "um-mag-rot-unet", "mirror-resnet", "mirror-unet",
                         "mirror-rot-resnet", "mirror-rot-unet", "um-mag-mirror-rot-resnet")


def test_the_models_before_increment_prediction_are_all_compared(old_registry):
    assert sorted(old_registry.available()) == sorted(BEFORE_RESIDUAL_NAMES)
    assert set(BEFORE_RESIDUAL_NAMES) <= set(available())


@pytest.mark.parametrize("name", BEFORE_RESIDUAL_NAMES)
def test_residual_false_is_the_model_before_bit_for_bit(name, old_registry, x16):
    torch.manual_seed(0)
    old = old_registry.create(name, t_in=T_IN, n_scalars=N_SCALARS)
    torch.manual_seed(0)
    new = create(name, t_in=T_IN, n_scalars=N_SCALARS, residual=False)
    assert type(old).__module__ != type(new).__module__  # really the old code
    assert new.config == {**old.config, "residual": False}
    so, sn = old.state_dict(), new.state_dict()
    assert so.keys() == sn.keys()
    assert all(torch.equal(so[k], sn[k]) for k in so)
    with torch.no_grad():
        for mode in ("train", "eval"):  # train mode: same batch statistics, same running stats
            assert torch.equal(getattr(new, mode)()(x16), getattr(old, mode)()(x16)), mode
        assert torch.equal(new.export()(x16), old.export()(x16))
    # and the default (residual) model is another one: the comparison can fail
    torch.manual_seed(0)
    with torch.no_grad():
        assert not torch.equal(create(name, t_in=T_IN, n_scalars=N_SCALARS).eval()(x16), old(x16))
