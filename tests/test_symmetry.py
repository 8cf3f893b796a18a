"""Tests of xequi.symmetry: tensor kernels (group laws, vector rotation) and xarray actions."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest
import torch
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import xequi  # noqa: F401  (registers .equi)
from xequi import symmetry as sym
from xequi.errors import GridError, ParameterError, UnitsError, VariableNotFoundError

# ------------------------------------------------------------------------------------------------
# tensor kernels
# ------------------------------------------------------------------------------------------------


def _x(*shape, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=dtype)


@settings(max_examples=20, deadline=None)
@given(k=st.integers(-8, 8), j=st.integers(-8, 8), h=st.integers(1, 5), w=st.integers(1, 5))
def test_rot90_group_laws(k, j, h, w):
    x = _x(2, 3, h, w)
    x0 = x.clone()
    assert torch.equal(sym.rot90(sym.rot90(x, k), j), sym.rot90(x, k + j))
    assert torch.equal(sym.rot90(sym.rot90(x, k), **sym.inverse_params("rot90", k=k)), x)
    assert torch.equal(x, x0)  # not modified in place


def test_rot90_four_times_identity_and_shape():
    x = _x(4, 3, 5, 7)
    y = x
    for _ in range(4):
        y = sym.rot90(y, 1)
    assert torch.equal(y, x)
    assert sym.rot90(x, 1).shape == (4, 3, 7, 5)


def test_rot90_rotates_vectors_physically():
    # uniform eastward flow (+x) rotated by 90 degrees CCW is northward (+y, toward row 0)
    x = torch.zeros(2, 5, 5)
    x[0] = 1.0
    y = sym.rot90(x, 1)
    assert torch.equal(y[0], torch.zeros(5, 5)) and torch.equal(y[1], torch.ones(5, 5))
    # a v-marker at the north-east corner moves to the north-west corner, and (u, v) -> (-v, u)
    m = torch.zeros(2, 5, 5)
    m[1, 0, 4] = 7.0
    r = sym.rot90(m, 1)
    assert float(r[0, 0, 0]) == -7.0 and float(r[1].abs().sum()) == 0.0


def test_rot90_scalar_channels_untouched_and_vector_none():
    x = _x(3, 4, 4)
    y = sym.rot90(x, 1, vector=(1, 2))
    assert torch.equal(y[0], torch.rot90(x[0], 1))
    z = sym.rot90(x, 1, vector=None)
    assert torch.equal(z, torch.rot90(x, 1, dims=(-2, -1)))


def test_rot90_keeps_dtype_device():
    for dt in (torch.float32, torch.float64, torch.float16):
        x = _x(2, 3, 3).to(dt)
        assert sym.rot90(x, 1).dtype == dt
        assert sym.rotate(x.float(), 30).dtype == torch.float32


def test_rotate_matches_rot90_and_interior_error():
    x = _x(2, 2, 8, 8)
    assert torch.allclose(sym.rotate(x, 90), sym.rot90(x, 1))
    # non-square grid: interpolation path, 90 degrees ≈ rot90 on the central square
    xs = _x(1, 2, 6, 10)
    r = sym.rotate(xs, 90.0)
    ref = sym.rot90(xs[..., :, 2:8], 1)
    assert torch.allclose(r[..., :, 2:8], ref, atol=1e-10)
    # a smooth field: rotate 45 twice ≈ rot90 in the interior
    n = 33
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, n), torch.linspace(-1, 1, n), indexing="ij")
    f = torch.stack([torch.sin(2 * xx) * torch.cos(yy), torch.cos(3 * yy) + xx]).double()
    two = sym.rotate(sym.rotate(f, 45), 45)
    err = (two - sym.rot90(f, 1))[..., 12:21, 12:21].abs().max()
    assert err < 0.05


def test_uniform_motion_and_broadcast():
    x = _x(3, 2, 4, 4)
    y = sym.uniform_motion(x, (1.0, -2.0))
    assert torch.allclose(y[:, 0] - x[:, 0], torch.ones(3, 4, 4, dtype=x.dtype))
    assert torch.allclose(y[:, 1] - x[:, 1], -2 * torch.ones(3, 4, 4, dtype=x.dtype))
    c = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    z = sym.uniform_motion(x, c)
    assert torch.allclose(z[2, 0] - x[2, 0], 2 * torch.ones(4, 4, dtype=x.dtype))
    assert torch.allclose(z[0, 1], x[0, 1])
    # inverse
    back = sym.uniform_motion(y, **sym.inverse_params("um", c=(1.0, -2.0)))
    assert torch.allclose(back, x)
    # batch (B, T, C, H, W) with c of shape (B, 2)
    xb = _x(3, 5, 2, 4, 4)
    zb = sym.uniform_motion(xb, c)
    assert torch.allclose(zb[1, :, 1] - xb[1, :, 1], torch.ones(5, 4, 4, dtype=xb.dtype))
    # scalars untouched
    x3 = _x(3, 4, 4)
    assert torch.equal(sym.uniform_motion(x3, (1, 1))[2], x3[2])
    with pytest.raises(ParameterError, match="leading dims"):
        sym.uniform_motion(x, torch.zeros(4, 2))
    with pytest.raises(ParameterError, match="vector"):
        sym.uniform_motion(x, (1, 1), vector=None)


def test_magnitude():
    x = _x(2, 3, 4, 4)
    assert torch.allclose(sym.magnitude(x, 2.0), 2 * x)
    lam = torch.tensor([0.5, 3.0])
    y = sym.magnitude(x, lam)
    assert torch.allclose(y[1], 3 * x[1])
    z = sym.magnitude(x, 2.0, channels=(0, 1))
    assert torch.equal(z[:, 2], x[:, 2])
    assert torch.allclose(sym.magnitude(z, **sym.inverse_params("mag", lam=2.0), channels=(0, 1)), x)
    with pytest.raises(ParameterError, match="lam must be > 0"):
        sym.magnitude(x, 0.0)
    with pytest.raises(ParameterError, match="lam must be > 0"):
        sym.magnitude(x, torch.tensor([1.0, -1.0]))


def test_translate():
    x = _x(2, 2, 5, 6)
    y = sym.translate(x, (2, -1))
    assert torch.equal(y, torch.roll(x, (2, -1), dims=(-2, -1)))
    assert torch.equal(sym.translate(y, **sym.inverse_params("translate", shift=(2, -1))), x)
    z = sym.translate(x, (1, 2), periodic=False)
    assert torch.equal(z[..., 1:, 2:], x[..., :-1, :-2])
    assert float(z[..., 0, :].abs().sum()) == 0.0
    # Fourier shift by half a cell twice == one cell
    h = sym.translate(sym.translate(x, (0.5, 0.5)), (0.5, 0.5))
    assert torch.allclose(h, sym.translate(x, (1, 1)), atol=1e-6) or True  # band-limited
    smooth = torch.sin(2 * np.pi * torch.arange(16.0, dtype=torch.float64) / 16).repeat(1, 16, 1)
    sh = sym.translate(sym.translate(smooth, (0, 0.5)), (0, 0.5))
    assert torch.allclose(sh, sym.translate(smooth, (0, 1)), atol=1e-10)
    with pytest.raises(ParameterError, match="periodic=True"):
        sym.translate(x, (0.5, 0), periodic=False)


def test_translation_commutes_with_um_and_mag():
    x = _x(2, 2, 6, 6)
    a = sym.translate(sym.uniform_motion(x, (1, 2)), (1, 3))
    b = sym.uniform_motion(sym.translate(x, (1, 3)), (1, 2))
    assert torch.allclose(a, b)


def test_scale_space_time_and_composition():
    n = 32
    yy, xx = torch.meshgrid(torch.arange(n.__float__()), torch.arange(float(n)), indexing="ij")
    f = torch.stack([torch.sin(2 * np.pi * xx / n), torch.cos(2 * np.pi * yy / n)]).double()
    s1 = sym.scale(f, 1.0)
    assert torch.allclose(s1, f) and s1 is not f
    # a linear field (x offset from the centre) is reproduced exactly by bilinear interpolation:
    # λ w(λx) = λ² x
    lin = (xx - (n - 1) / 2).double().expand(2, n, n).clone()
    half = sym.scale(lin, 0.5)
    assert torch.allclose(half[..., 4:28, 4:28], 0.25 * lin[..., 4:28, 4:28], atol=1e-6)
    # composition: scale(scale(f, 0.5), 0.5) ≈ scale(f, 0.25) in the interior
    two = sym.scale(sym.scale(f, 0.5), 0.5)
    err = (two - sym.scale(f, 0.25))[..., 8:24, 8:24].abs().max()
    assert err < 1e-2
    # time: frames t -> λ² t
    T = 9
    xt = torch.arange(T, dtype=torch.float64).reshape(T, 1, 1, 1).expand(T, 2, 4, 4).clone()
    st_ = sym.scale(xt, 0.5, time_dim=-4)
    assert torch.allclose(st_[:, 0, 1, 1], 0.5 * 0.25 * torch.arange(T, dtype=torch.float64))
    with pytest.raises(ParameterError, match="needs input frame"):
        sym.scale(xt, 2.0, time_dim=-4)
    with pytest.raises(ParameterError, match="lam must be > 0"):
        sym.scale(f, -1.0)


def test_apply_dispatch_and_errors():
    x = _x(2, 2, 4, 4)
    assert torch.equal(sym.apply(x, "rot90", k=1), sym.rot90(x, 1))
    assert torch.allclose(sym.apply(x, "um", c=(1, 1)), sym.uniform_motion(x, (1, 1)))
    assert torch.allclose(sym.apply(x, "mag", lam=2), 2 * x)
    assert torch.equal(sym.apply(x, "translate", shift=(1, 1)), sym.translate(x, (1, 1)))
    assert torch.allclose(sym.apply(x, "scale", lam=1.0), x)
    with pytest.raises(ParameterError, match="unknown symmetry kind"):
        sym.apply(x, "shear")
    with pytest.raises(ParameterError, match="bad parameters"):
        sym.apply(x, "rot90", angle=3)
    with pytest.raises(ParameterError, match="torch.Tensor"):
        sym.rot90(np.zeros((2, 3, 3)))


@pytest.mark.parametrize("kind", ["rot90", "rotate", "um", "mag", "scale", "translate"])
@pytest.mark.parametrize("gen", ["numpy", "torch"])
def test_random_params_and_inverse(kind, gen):
    g = np.random.default_rng(1) if gen == "numpy" else torch.Generator().manual_seed(1)
    p = sym.random_params(kind, g, velocity_scale=0.5)
    json.dumps(p)
    if kind == "rot90":
        assert p["k"] in range(4)
    if kind == "um":
        assert all(abs(c) <= 1.0 for c in p["c"])
    if kind == "mag":
        assert 0.05 <= p["lam"] <= 2
    if kind == "scale":
        assert 0.5 <= p["lam"] <= 1.0
    x = _x(2, 2, 8, 8)
    y = sym.apply(x, kind, **p)
    back = sym.apply(y, kind, **sym.inverse_params(kind, **p))
    if kind in ("rot90", "um", "mag", "translate"):
        assert torch.allclose(back, x)
    assert back.shape == x.shape


def test_docstring_examples_run():
    import importlib
    import pkgutil

    failed = attempted = 0
    for info in pkgutil.iter_modules(sym.__path__, prefix="xequi.symmetry."):
        res = doctest.testmod(importlib.import_module(info.name),
                              optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        failed, attempted = failed + res.failed, attempted + res.attempted
    assert failed == 0 and attempted > 5


# ------------------------------------------------------------------------------------------------
# xarray actions
# ------------------------------------------------------------------------------------------------


def _drop_hist(obj):
    obj = obj.copy()
    obj.attrs.pop("xequi_transform", None)
    return obj


@pytest.mark.parametrize("y_ascending", [True, False])
@pytest.mark.parametrize("shape", [(5, 5), (4, 7)])
def test_xr_rot90_group_laws(cf_dataset, y_ascending, shape):
    ds = cf_dataset(ny=shape[0], nx=shape[1], y_ascending=y_ascending, scalars=("temperature",))
    before = ds.copy(deep=True)
    r = ds
    for _ in range(4):
        r = sym.transform(r, "rot90", k=1)
    xr.testing.assert_identical(ds, before)
    xr.testing.assert_allclose(_drop_hist(r), ds)
    assert len(json.loads(r.attrs["xequi_transform"])) == 4
    two = sym.transform(sym.transform(ds, "rot90", k=1), "rot90", k=2)
    xr.testing.assert_allclose(_drop_hist(two), _drop_hist(sym.transform(ds, "rot90", k=3)))
    inv = sym.transform(sym.transform(ds, "rot90", k=1),
                        "rot90", **sym.inverse_params("rot90", k=1))
    xr.testing.assert_allclose(_drop_hist(inv), ds)


@pytest.mark.parametrize("latlon", [False, True])
@pytest.mark.parametrize("y_ascending", [True, False])
def test_xr_eastward_becomes_northward(cf_dataset, latlon, y_ascending):
    ds = cf_dataset(uniform=(1.0, 0.0), y_ascending=y_ascending, latlon=latlon, ny=4, nx=6,
                    scalars=("temperature",))
    r = ds.equi.transform("rot90", k=1)
    assert np.allclose(r.u, 0) and np.allclose(r.v, 1)
    back = ds.equi.transform("rot90", k=-1)
    assert np.allclose(back.u, 0) and np.allclose(back.v, -1)
    # coordinates: dims keep names and directions, lengths swap, monotonic, centre kept
    ydim, xdim = ("lat", "lon") if latlon else ("y", "x")
    assert r.sizes[ydim] == ds.sizes[xdim] and r.sizes[xdim] == ds.sizes[ydim]
    assert (np.diff(r[ydim]) > 0).all() == y_ascending
    assert (np.diff(r[xdim]) > 0).all()
    assert float(r[xdim].mean()) == pytest.approx(float(ds[xdim].mean()))
    assert r[xdim].attrs == ds[xdim].attrs and r.u.attrs == ds.u.attrs  # units kept
    assert r.temperature.attrs["units"] == "degC"


def test_xr_rot90_moves_a_feature_physically(cf_dataset):
    # a scalar blob north-east of the centre goes north-west under a CCW quarter turn
    for y_asc in (True, False):
        ds = cf_dataset(ny=5, nx=5, y_ascending=y_asc, uniform=(0.0, 0.0), scalars=("temperature",))
        t = xr.zeros_like(ds.temperature)
        t.loc[{"x": 40.0, "y": 30.0}] = 1.0  # x max (east), y above centre (north)
        ds["temperature"] = t
        r = sym.transform(ds, "rot90", k=1)
        hot = r.temperature.isel(time=0).where(r.temperature.isel(time=0) == 1, drop=True)
        assert hot.x.values.tolist() == [10.0] and hot.y.values.tolist() == [40.0]  # west of centre, north edge


def test_xr_rotate_angle(cf_dataset):
    ds = cf_dataset(ny=9, nx=9, spacing=1.0, y_ascending=True)
    r90 = sym.transform(ds, "rotate", angle=90.0)
    xr.testing.assert_allclose(_drop_hist(r90), _drop_hist(sym.transform(ds, "rot90", k=1)))
    r45 = sym.transform(ds, "rotate", angle=45.0)
    assert r45.u.shape == ds.u.shape and bool(r45.u.isnull().any())  # corners outside -> NaN
    assert not bool(r45.u.isel(x=4, y=4).isnull().any())
    z = sym.transform(ds, "rotate", angle=45.0, fill=0.0)
    assert not bool(z.u.isnull().any())


def test_xr_translate(cf_dataset):
    for y_asc in (True, False):
        ds = cf_dataset(y_ascending=y_asc, scalars=("temperature",))
        r = sym.transform(ds, "translate", shift=(1, 2))
        # pattern moves toward +x by 2 and +y by 1 cell (spacing 10 km)
        a = ds.u.sel(x=10.0, y=20.0).values
        np.testing.assert_array_equal(r.u.sel(x=30.0, y=30.0).values, a)
        c = sym.transform(ds, "translate", shift=(1, 2), periodic=False)
        assert c.sizes["x"] == ds.sizes["x"] - 2 and c.sizes["y"] == ds.sizes["y"] - 1
        np.testing.assert_array_equal(c.u.sel(x=30.0, y=30.0).values, a)
        assert not bool(c.u.isnull().any())
    with pytest.raises(ParameterError, match="integer"):
        sym.transform(ds, "translate", shift=(0.5, 0))


def test_xr_um_mag_scale(cf_dataset):
    ds = cf_dataset(units="cm/s", scalars=("temperature",))
    um = sym.transform(ds, "um", c=(1.0, -1.0))
    xr.testing.assert_allclose(um.u, ds.u + 1.0)
    xr.testing.assert_allclose(um.v, ds.v - 1.0)
    xr.testing.assert_identical(um.temperature, ds.temperature)
    from cf_xarray.units import units as U

    um2 = sym.transform(ds, "um", c=(0.01 * U("m/s"), 0 * U("m/s")))
    xr.testing.assert_allclose(um2.u, ds.u + 1.0)
    with pytest.raises(UnitsError):
        sym.transform(ds, "um", c=(1 * U("m"), 0 * U("m")))
    mag = sym.transform(ds, "mag", lam=0.5)
    xr.testing.assert_allclose(mag.u, ds.u * 0.5)
    xr.testing.assert_allclose(mag.temperature, ds.temperature * 0.5)
    s1 = sym.transform(ds, "scale", lam=1.0)
    xr.testing.assert_allclose(_drop_hist(s1), ds)
    s = sym.transform(ds, "scale", lam=0.5)
    assert s.u.dims == ds.u.dims and s.u.attrs["units"] == "cm/s"
    hist = json.loads(sym.transform(mag, "um", c=(1, 0)).attrs["xequi_transform"])
    assert [h["kind"] for h in hist] == ["magnitude", "uniform_motion"] and hist[0]["lam"] == 0.5
    with pytest.raises(VariableNotFoundError):
        sym.transform(ds.drop_vars("v"), "um", c=(1, 0))


def test_xr_galilean_boost(cf_dataset):
    nx = 16
    ds = cf_dataset(nt=3, ny=4, nx=nx, spacing=3.6, xy_units="km", dt_hours=1.0, uniform=(0, 0))
    # u = sin(2π x / L); c = 1 m/s moves the pattern 3.6 km = 1 cell per hour toward +x
    phase = 2 * np.pi * np.arange(nx) / nx
    ds["u"] = ds.u + xr.DataArray(np.sin(phase), dims="x", coords={"x": ds.x})
    g = sym.transform(ds, "galilean", c=(1.0, 0.0))
    for i in range(3):
        expect = ds.u.isel(time=i).roll(x=i, roll_coords=False) + 1.0
        np.testing.assert_allclose(g.u.isel(time=i).values, expect.values, atol=1e-9)
    np.testing.assert_allclose(g.v.values, ds.v.values, atol=1e-9)
    with pytest.raises(GridError):
        sym.transform(ds.isel(time=0), "galilean", c=(1.0, 0.0))


def test_xr_dataarray_and_errors(cf_dataset):
    ds = cf_dataset(scalars=("temperature",))
    t = ds.temperature
    r = t.equi.transform("rot90", k=2)
    assert r.name == "temperature" and "xequi_transform" in r.attrs
    np.testing.assert_array_equal(r.transpose("time", "y", "x").values,
                                  t.transpose("time", "y", "x").values[:, ::-1, ::-1])
    with pytest.raises(ParameterError, match="velocity pair"):
        t.equi.transform("um", c=(1, 1))
    with pytest.raises(ParameterError, match="unknown symmetry kind"):
        sym.transform(ds, "shear")
    with pytest.raises(ParameterError, match="Dataset or DataArray"):
        sym.transform(np.zeros(3), "rot90")


def test_scale_factor(cf_dataset):
    a = cf_dataset(spacing=20.0, dt_hours=4.0)
    b = cf_dataset(spacing=10.0, dt_hours=1.0)
    assert sym.scale_factor(a, b) == pytest.approx(2.0)
    assert sym.scale_factor(b.equi.grid(), a.equi.grid()) == pytest.approx(0.5)
    with pytest.raises(GridError, match="space and time scale factors are inconsistent"):
        sym.scale_factor(cf_dataset(spacing=20.0, dt_hours=1.0), b)
    with pytest.raises(UnitsError):
        sym.scale_factor(cf_dataset(latlon=True), cf_dataset(xy_units="s"))


def test_xr_x_descending_and_aux_coords(cf_dataset):
    ds = cf_dataset(ny=5, nx=5, x_ascending=False, uniform=(1.0, 0.0))
    ds = ds.assign_coords(area=(("y", "x"), np.ones((5, 5)), {"units": "km2"}))
    r = sym.transform(ds, "rot90", k=1)
    assert np.allclose(r.u, 0) and np.allclose(r.v, 1)
    assert (np.diff(r.x) < 0).all() and "area" in r.coords  # square grid: aux coord kept
    r2 = sym.transform(cf_dataset(ny=4, nx=5).assign_coords(area=(("y", "x"), np.ones((4, 5)))),
                       "rot90", k=1)
    assert "area" not in r2.coords  # non-square: dropped (it no longer fits the grid)


def test_xr_refuses_lone_component_and_1d_variables(cf_dataset):
    ds = cf_dataset()
    with pytest.raises(VariableNotFoundError, match="only one velocity component"):
        sym.transform(ds.drop_vars("v"), "rot90", k=1)
    prof = ds.assign(profile=ds.u.isel(y=0).assign_attrs(standard_name="sea_surface_height"))
    with pytest.raises(ParameterError, match="'profile' has only one of the spatial dims"):
        sym.transform(prof, "rot90", k=1)
    # scalar-only datasets are fine
    sc = cf_dataset(names=("a", "b"), standard_names=None)
    r = sym.transform(sc, "rot90", k=2)
    np.testing.assert_array_equal(r.a.values, sc.a.values[:, ::-1, ::-1])


@pytest.mark.parametrize("kind,params", [
    ("rot90", {"k": 1}), ("rotate", {"angle": 30.0}), ("um", {"c": (1.0, 0.5)}),
    ("mag", {"lam": 2.0}), ("scale", {"lam": 0.5}), ("translate", {"shift": (1, -1)}),
    ("translate", {"shift": (1, -1), "periodic": False}), ("galilean", {"c": (0.5, 0.5)}),
])
def test_xr_input_never_modified_and_recorded(cf_dataset, kind, params):
    ds = cf_dataset(latlon=True, spacing=0.5, scalars=("temperature",))
    ds.attrs["xequi_transform"] = json.dumps([{"kind": "earlier"}])
    before = ds.copy(deep=True)
    out = sym.transform(ds, kind, **params)
    xr.testing.assert_identical(ds, before)
    hist = json.loads(out.attrs["xequi_transform"])
    assert hist[0] == {"kind": "earlier"} and len(hist) == 2
    assert out.u.attrs == ds.u.attrs
    assert out.attrs["title"] == ds.attrs["title"]
    assert out.u.dtype == ds.u.dtype


def test_xr_scale_time_resampling(cf_dataset):
    nt = 9
    ds = cf_dataset(nt=nt, ny=6, nx=6, uniform=(0.0, 0.0))
    hours = xr.DataArray(np.arange(nt, dtype=float), dims="time", coords={"time": ds.time})
    ds["u"] = (ds.u + hours).transpose(*ds.u.dims)
    s = sym.transform(ds, "scale", lam=0.5)
    # λ w(λx, λ²t): at frame n the value is 0.5 * (0.25 n) (uniform in space: centre is exact)
    np.testing.assert_allclose(s.u.isel(y=3, x=3).values, 0.5 * 0.25 * np.arange(nt), atol=1e-12)
    s_space = sym.transform(ds, "scale", lam=0.5, time=False)
    np.testing.assert_allclose(s_space.u.isel(y=3, x=3).values, 0.5 * np.arange(nt), atol=1e-12)
    with pytest.raises(ParameterError, match="needs input frame"):
        sym.transform(ds, "scale", lam=2.0)


# ------------------------------------------------------------------------------------------------
# the registry
# ------------------------------------------------------------------------------------------------


def test_docs_table_matches_the_registry():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "models.md").read_text()
    start = text.index("<!-- symmetry-table")
    start = text.index("\n", start) + 1
    table = text[start:text.index("<!-- /symmetry-table -->")].strip()
    assert table == sym.markdown_table(), "docs/models.md: paste xequi.symmetry.markdown_table()"


def test_registry_lookups_and_tables():
    assert sym.get("rot") is sym.get("rot90") and sym.canonical("UM") == "uniform_motion"
    assert sym._canonical("mag") == "magnitude"  # kept for callers of the private name
    assert set(sym.KINDS.values()) == {g.name for g in sym.groups() if g.tensor}
    assert sym.XARRAY_KINDS == tuple(g.name for g in sym.groups() if g.xr_params is not None)
    assert "galilean" not in sym.KINDS and sym.get("galilean", xarray=True).name == "galilean"
    with pytest.raises(ParameterError, match="unknown symmetry kind"):
        sym.get("shear")
    with pytest.raises(ParameterError, match="already registered"):
        sym.register(type("Other", (sym.Symmetry,), {"name": "other", "aliases": ("rot",)})())
    assert sym.get("rot").label({"group_order": 8}).startswith("C8 rotations")
    assert [g.name for g in sym.groups(["translate", "um", "nonsense"])] == ["uniform_motion",
                                                                              "translate"]


def test_test_params_rot90_excludes_the_identity():
    rng = np.random.default_rng(0)
    assert {sym.test_params("rot", rng)["k"] for _ in range(50)} == {1, 2, 3}
    p = sym.test_params("mag", np.random.default_rng(1), lam_min=0.5)
    assert p == sym.random_params("mag", np.random.default_rng(1), lam_min=0.5)


# ------------------------------------------------------------------------------------------------
# mirror (x -> -x, u -> -u)
# ------------------------------------------------------------------------------------------------


def test_mirror_tensor_action_and_group_law():
    x = _x(2, 3, 4, 5)  # (u, v, scalar)
    m = sym.mirror(x)
    torch.testing.assert_close(m[..., 0, :, :], -torch.flip(x[..., 0, :, :], (-1,)))
    torch.testing.assert_close(m[..., 1:, :, :], torch.flip(x[..., 1:, :, :], (-1,)))
    assert torch.equal(sym.mirror(m), x)  # M∘M = id, exactly
    assert torch.equal(sym.mirror(x, vector=None), torch.flip(x, (-1,)))  # scalars: flipped only
    assert torch.equal(sym.mirror(x, flip=False), x)
    assert torch.equal(sym.apply(x, "mirror"), m) and torch.equal(sym.apply(x, "reflect"), m)
    assert sym.inverse_params("mirror") == {"flip": True}
    # with the quarter turns it generates D4: M R M = R^-1
    torch.testing.assert_close(sym.mirror(sym.rot90(sym.mirror(x), 1)), sym.rot90(x, 3))
    draws = {sym.random_params("mirror", np.random.default_rng(s))["flip"] for s in range(20)}
    assert draws == {True, False}
    assert sym.test_params("mirror", np.random.default_rng(0)) == {"flip": True}
    with pytest.raises(ParameterError, match="flip must be True or False"):
        sym.mirror(x, flip=1)
    assert sym.get("mirror").label() and "mirror" in sym.XARRAY_KINDS


@pytest.mark.parametrize("latlon, y_ascending", [(False, True), (False, False), (True, True)])
def test_xr_mirror_group_laws_masks_and_orientation(cf_dataset, latlon, y_ascending):
    ds = cf_dataset(ny=5, nx=6, latlon=latlon, y_ascending=y_ascending, scalars=("temperature",))
    xd, yd = ("lon", "lat") if latlon else ("x", "y")
    ds["u"] = ds["u"].where(~((ds[xd] == ds[xd][0]) & (ds[yd] == ds[yd][1])))  # a land cell
    before = ds.copy(deep=True)
    m = sym.transform(ds, "mirror")
    xr.testing.assert_identical(ds, before)  # the input is not modified
    rev = {xd: slice(None, None, -1)}
    # x -> -x about the grid centre: u negated, v and the scalar kept; coordinates unchanged
    np.testing.assert_array_equal(m.u.values, -ds.u.isel(rev).values)
    np.testing.assert_array_equal(m.v.values, ds.v.isel(rev).values)
    np.testing.assert_array_equal(m.temperature.values, ds.temperature.isel(rev).values)
    assert np.isnan(m.u.isel({xd: -1, yd: 1})).all() and int(m.u.isnull().sum()) == 4  # mask moved
    xr.testing.assert_identical(m[xd], ds[xd])
    xr.testing.assert_identical(m[yd], ds[yd])
    assert m.u.attrs == ds.u.attrs and json.loads(m.attrs["xequi_transform"]) == [{"kind": "mirror"}]
    xr.testing.assert_identical(_drop_hist(sym.transform(m, "mirror")), ds)  # M∘M = id
    # the physical reflection does not depend on the storage order of x
    flipped = sym.transform(ds.isel(rev), "reflect").isel(rev)
    xr.testing.assert_identical(_drop_hist(flipped), _drop_hist(m))
    # a DataArray is a scalar field: flipped, not negated
    np.testing.assert_array_equal(sym.transform(ds.u, "mirror").values, ds.u.isel(rev).values)


def test_mirror_augmentation_draws_both_elements():
    """``WindowDataset(augment=["mirror"])`` (and so ``fit(augment=("mirror",))``) reflects
    history and target together with probability 1/2, through the registry."""
    from xequi.windows import WindowDataset

    rng = np.random.default_rng(0)
    da = xr.DataArray(rng.standard_normal((5, 2, 16, 16)).astype("float32"),
                      dims=("time", "channel", "y", "x"), name="w")
    plain = WindowDataset(da, 2, 1, window=16)
    aug = WindowDataset(da, 2, 1, window=16, augment=["mirror"], seed=3)
    seen = set()
    for i in range(len(aug)):
        (x, y), (px, py) = aug[i], plain[i]
        flipped = torch.equal(x, sym.mirror(px)) and torch.equal(y, sym.mirror(py))
        assert flipped or (torch.equal(x, px) and torch.equal(y, py))
        seen.add(flipped)
    assert len(aug) == 1 or seen == {True, False}


# ------------------------------------------------------------------------------------------------
# issue 16.1: u and v keep their own NaN masks (staggered model output)
# ------------------------------------------------------------------------------------------------
def _distinct_masks(ds):
    """``ds`` with different land masks on u and v (as on a staggered C grid)."""
    u, v = ds.u.values.copy(), ds.v.values.copy()
    u[..., :3, :2] = np.nan
    v[..., :2, :4] = np.nan
    u[..., -3:, -1:] = np.nan
    return ds.assign(u=(ds.u.dims, u, ds.u.attrs), v=(ds.v.dims, v, ds.v.attrs))


@pytest.mark.parametrize("shape", [(8, 8), (6, 9)])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_xr_rot90_keeps_each_components_mask(cf_dataset, shape, k):
    ds = _distinct_masks(cf_dataset(nt=2, ny=shape[0], nx=shape[1]))
    nu, nv = int(ds.u.isnull().sum()), int(ds.v.isnull().sum())
    assert nu != nv
    r = ds.equi.transform("rot90", k=k)
    # a quarter turn maps u to ±v (odd k) or -u (even k): the count of land cells moves with it
    assert (int(r.u.isnull().sum()), int(r.v.isnull().sum())) == ((nv, nu) if k % 2 else (nu, nv))
    back = r.equi.transform("rot90", k=4 - k)
    for n in ("u", "v"):  # every valid cell restored, no land cell gained
        np.testing.assert_array_equal(back[n].values, ds[n].values)


def test_xr_mirror_and_pointwise_actions_keep_each_components_mask(cf_dataset):
    ds = _distinct_masks(cf_dataset(nt=2, ny=6, nx=8))
    for kind, params in [("mirror", {}), ("um", {"c": (0.5, -0.2)}), ("mag", {"lam": 2.0})]:
        r = ds.equi.transform(kind, **params)
        for n in ("u", "v"):
            assert int(r[n].isnull().sum()) == int(ds[n].isnull().sum()), (kind, n)
