"""Tests of xequi.fields: discovery, grid checks, units, mask, model frame round trip."""

from __future__ import annotations

import copy
import doctest
import math

import numpy as np
import pytest
import torch
import xarray as xr

import xequi  # noqa: F401  (registers .equi)
from xequi import fields as F
from xequi import symmetry as sym
from xequi.errors import (
    GridError,
    MissingDataError,
    ParameterError,
    UnitsError,
    VariableNotFoundError,
)

# ------------------------------------------------------------------------------------------------
# velocity discovery
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pair", F.VELOCITY_STANDARD_NAMES)
def test_find_velocity_by_standard_name(cf_dataset, pair):
    ds = cf_dataset(names=("aa", "bb"), standard_names=pair)
    assert F.find_velocity(ds) == ("aa", "bb")


@pytest.mark.parametrize("pair", F.VELOCITY_COMMON_NAMES)
def test_find_velocity_by_common_name(cf_dataset, pair):
    ds = cf_dataset(names=pair, standard_names=None)
    assert F.find_velocity(ds) == pair


def test_find_velocity_explicit_and_partner(cf_dataset):
    ds = cf_dataset(names=("east", "north"))
    assert F.find_velocity(ds, u="north", v="east") == ("north", "east")
    assert F.find_velocity(ds, u="east") == ("east", "north")
    assert F.find_velocity(ds, v="north") == ("east", "north")
    with pytest.raises(VariableNotFoundError, match="'nope'"):
        F.find_velocity(ds, u="nope", v="north")


def test_find_velocity_errors(cf_dataset):
    ds = cf_dataset(names=("a", "b"), standard_names=None)
    with pytest.raises(VariableNotFoundError, match="no velocity found") as err:
        F.find_velocity(ds)
    assert "Fix:" in str(err.value) and "u= and v=" in str(err.value)
    one = cf_dataset().drop_vars("v")
    with pytest.raises(VariableNotFoundError, match="only one velocity component.*'u'"):
        F.find_velocity(one)
    one_common = cf_dataset(names=("uo", "zz"), standard_names=None).drop_vars("zz")
    with pytest.raises(VariableNotFoundError, match="only one velocity component.*'uo'"):
        F.find_velocity(one_common)
    amb = cf_dataset()
    amb["u2"] = amb["u"].copy()
    with pytest.raises(ParameterError, match="ambiguous"):
        F.find_velocity(amb)
    with pytest.raises(ParameterError, match="Dataset"):
        F.find_velocity(amb["u"])


# ------------------------------------------------------------------------------------------------
# axes
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("latlon", [False, True])
@pytest.mark.parametrize("order", [("time", 0, 1), (1, "time", 0), (0, 1, "time")])
def test_find_axes_any_order(cf_dataset, latlon, order):
    y, x = ("lat", "lon") if latlon else ("y", "x")
    dims = tuple({0: y, 1: x}.get(d, d) for d in order)
    ds = cf_dataset(latlon=latlon, dims=dims)
    assert F.find_axes(ds) == F.Axes(x, y, "time")
    assert F.find_axes(ds["u"]) == F.Axes(x, y, "time")


def test_find_axes_without_attrs_and_explicit():
    da = xr.DataArray(np.zeros((2, 3, 4)), dims=("a", "b", "c"),
                      coords={"b": ("b", [0., 1., 2.], {"axis": "Y"}),
                              "c": ("c", [0., 1., 2., 3.], {"standard_name": "longitude"})})
    assert F.find_axes(da) == F.Axes("c", "b", None)
    assert F.find_axes(da, t="a") == F.Axes("c", "b", "a")
    with pytest.raises(VariableNotFoundError, match="no X axis"):
        F.find_axes(xr.DataArray(np.zeros((2, 2)), dims=("p", "q")))
    with pytest.raises(VariableNotFoundError, match="'zz' is not a dimension"):
        F.find_axes(da, x="zz")


def test_axis_names_one_list_for_discovery():
    # find_axes falls back on fields.AXIS_NAMES (the one list; xequi.ocean reads it too), in its
    # order, for dims that carry no CF metadata; the geographic names are among them
    for ax in ("X", "Y"):
        assert set(F.GEOGRAPHIC_NAMES[ax]) <= set(F.AXIS_NAMES[ax])
    for i, (xn, yn) in enumerate(zip(F.AXIS_NAMES["X"], F.AXIS_NAMES["Y"])):
        tn = F.AXIS_NAMES["T"][i % len(F.AXIS_NAMES["T"])]
        # dims "x"/"y"/"t"/"time" get guessed by cf-xarray as well; every name is found
        da = xr.DataArray(np.zeros((2, 3, 4)), dims=(tn, yn, xn))
        assert F.find_axes(da) == F.Axes(xn, yn, tn)
    with pytest.raises(TypeError):
        F.AXIS_NAMES["X"] = ("x",)  # read-only: one list, not a copy per caller


# ------------------------------------------------------------------------------------------------
# grid
# ------------------------------------------------------------------------------------------------


def test_latlon_spacing_in_metres(cf_dataset):
    ds = cf_dataset(latlon=True, spacing=0.25, lat0=40.0, ny=5)
    g = F.grid_spacing(ds)
    R = 6371e3
    assert g.is_latlon and g.y_ascending and g.x_ascending
    assert math.isclose(g.central_lat, 40.0)
    assert math.isclose(g.dy.to("m").magnitude, R * math.radians(0.25), rel_tol=1e-9)
    assert math.isclose(g.dx.to("m").magnitude, R * math.cos(math.radians(40)) * math.radians(0.25),
                        rel_tol=1e-9)
    assert math.isclose(g.anisotropy, math.cos(math.radians(40)), rel_tol=1e-9)
    assert g.dt.to("hour").magnitude == pytest.approx(1.0)
    lat = ds.lat.values
    np.testing.assert_allclose(g.dx_per_y.values, R * np.cos(np.radians(lat)) * math.radians(0.25))


def test_projected_spacing_km_m_round_trip(cf_dataset):
    km = cf_dataset(xy_units="km", spacing=10.0)
    m = cf_dataset(xy_units="m", spacing=10000.0)
    gk, gm = F.grid_spacing(km), F.grid_spacing(m)
    assert str(gk.dx.units) == "kilometer"
    assert gk.dx.to("m").magnitude == pytest.approx(gm.dx.magnitude)
    assert gm.dy.to("km").magnitude == pytest.approx(10.0)
    assert not gk.is_latlon and gk.anisotropy == pytest.approx(1.0)
    assert km.equi.grid().dx == gk.dx


def test_grid_errors(cf_dataset):
    ds = cf_dataset()
    bad = ds.assign_coords(x=("x", ds.x.values * np.r_[1, 1, 1, 1, 1, 1, 1, 1.5], ds.x.attrs))
    with pytest.raises(GridError, match="'x' is not uniformly spaced") as err:
        F.grid_spacing(bad)
    assert "rtol" in str(err.value)
    F.grid_spacing(bad, rtol=3.0)  # a looser tolerance accepts it
    nm = ds.assign_coords(y=("y", ds.y.values[[0, 2, 1, 3, 4, 5]], ds.y.attrs))
    with pytest.raises(GridError, match="'y' is not strictly monotonic") as err:
        F.grid_spacing(nm)
    assert "sortby" in str(err.value)
    with pytest.raises(GridError, match="too few time steps along 'time': 4 < 24"):
        F.check_grid(ds, min_time=24)
    with pytest.raises(GridError, match="too few time steps"):
        F.to_model_frame(ds, min_time=5)
    F.check_grid(ds, min_time=4, min_size=(6, 8))
    with pytest.raises(GridError, match="smaller"):
        F.check_grid(ds, min_size=(64, 64))


def test_grid_units_errors(cf_dataset):
    ds = cf_dataset()
    no = ds.assign_coords(x=ds.x.copy().assign_attrs(units=None))
    no["x"].attrs.pop("units")
    with pytest.raises(UnitsError, match="'x' has no units") as err:
        F.grid_spacing(no)
    assert "units={'x'" in str(err.value)
    assert F.grid_spacing(no, units={"x": "km"}).dx.to("m").magnitude == pytest.approx(1e4)
    wrong = ds.assign_coords(x=ds.x.copy().assign_attrs(units="s"))
    with pytest.raises(UnitsError, match="'x'.*length"):
        F.grid_spacing(wrong)
    nondim = ds.assign_coords(x=ds.x.copy().assign_attrs(units="1"),
                              y=ds.y.copy().assign_attrs(units="1"))
    assert F.grid_spacing(nondim).dx.magnitude == pytest.approx(10.0)


def test_nondimensional_time_is_accepted():
    """Non-dimensional simulations (free-fall units) state time in units "1"."""
    ds = xr.Dataset(
        {"u": (("time", "y", "x"), np.zeros((3, 4, 4)), {"units": "1"}),
         "v": (("time", "y", "x"), np.zeros((3, 4, 4)), {"units": "1"})},
        coords={"time": ("time", [0.0, 0.5, 1.0], {"units": "1", "axis": "T"}),
                "y": ("y", np.arange(4.0), {"units": "1", "axis": "Y"}),
                "x": ("x", np.arange(4.0), {"units": "1", "axis": "X"})})
    grid = F.grid_spacing(ds)
    assert grid.dt.magnitude == pytest.approx(0.5) and grid.dt.dimensionless
    assert F.to_model_frame(ds).data.shape == (3, 2, 4, 4)
    with pytest.raises(UnitsError, match="'time'.*time"):
        F.grid_spacing(ds.assign_coords(time=ds.time.copy().assign_attrs(units="m")))


# ------------------------------------------------------------------------------------------------
# units and model frame
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dims", [None, ("x", "time", "y"), ("y", "x", "time")])
@pytest.mark.parametrize("y_ascending", [True, False])
def test_model_frame_round_trip_and_units(cf_dataset, dims, y_ascending):
    ds = cf_dataset(units="cm/s", dims=dims, y_ascending=y_ascending, scalars=("temperature",))
    before = copy.deepcopy(ds)
    mf = F.to_model_frame(ds, scalars=["temperature"], target_units={"velocity": "m/s"})
    xr.testing.assert_identical(ds, before)  # input untouched
    assert mf.data.dims == ("time", "channel", "y", "x") and mf.data.dtype == np.float32
    assert list(mf.data.channel.values) == ["u", "v", "temperature"]
    assert mf.flip_y == y_ascending
    # row 0 is the largest y: compare with the input at max y, in m/s
    top = ds["u"].sel(y=ds.y.max()).transpose("time", "x").values / 100.0
    np.testing.assert_allclose(mf.data[:, 0, 0, :].values, top, rtol=1e-6)
    back = F.from_model_frame(mf.data, mf)
    assert back["u"].attrs["units"] == "cm/s" and back["u"].attrs["standard_name"] == \
        ds["u"].attrs["standard_name"]
    xr.testing.assert_allclose(back[["u", "v", "temperature"]],
                               ds.transpose("time", "y", "x"), rtol=1e-5)
    assert back.attrs == ds.attrs


def test_units_conversion_cm_m_and_temperature(cf_dataset):
    ds = cf_dataset(units="m s-1", scalars=("temperature",))
    mf = F.to_model_frame(ds, scalars=["temperature"],
                          target_units={"u": "cm/s", "v": "cm/s", "temperature": "K"})
    np.testing.assert_allclose(mf.data[:, 0].values,
                               ds.u.transpose("time", "y", "x").values[:, ::-1] * 100, rtol=1e-6)
    np.testing.assert_allclose(mf.data[:, 2].values,
                               ds.temperature.transpose("time", "y", "x").values[:, ::-1] + 273.15,
                               atol=1e-4)
    back = F.from_model_frame(mf.data, mf)
    np.testing.assert_allclose(back.u.values, ds.u.values, rtol=1e-6)
    # float32 at ~288 K resolves ~3e-5 K
    np.testing.assert_allclose(back.temperature.values, ds.temperature.values, atol=1e-4)
    model_units = F.from_model_frame(mf.data, mf, units="model")
    assert model_units.u.attrs["units"] == "cm/s"


def test_scalar_only_model_frame(cf_dataset):
    """velocity=False: channels [*scalars]; no velocity needed; round trip with units."""
    full = cf_dataset(scalars=("temperature", "salinity"), y_ascending=True)
    ds = full[["temperature", "salinity"]]  # no u, v at all
    before = copy.deepcopy(ds)
    mf = F.to_model_frame(ds, scalars=["temperature", "salinity"], velocity=False,
                          target_units={"temperature": "K"})
    xr.testing.assert_identical(ds, before)
    assert mf.n_velocity == 0 and mf.data.attrs["n_velocity"] == 0
    assert list(mf.data.channel.values) == ["temperature", "salinity"]
    np.testing.assert_allclose(mf.data[:, 0].values,
                               ds.temperature.transpose("time", "y", "x").values[:, ::-1] + 273.15,
                               atol=1e-4)
    back = F.from_model_frame(mf.data, mf)
    assert back.temperature.attrs["units"] == "degC"
    xr.testing.assert_allclose(back, ds.transpose("time", "y", "x"), atol=1e-4)
    # with velocity present, velocity=False still leaves it out
    assert list(F.to_model_frame(full, scalars=["salinity"], velocity=False).names) == ["salinity"]
    assert F.to_model_frame(full, scalars=["salinity"]).n_velocity == 2
    with pytest.raises(ParameterError, match="at least one scalar"):
        F.to_model_frame(ds, velocity=False)
    with pytest.raises(ParameterError, match="no velocity(.|\n)*mapping"):
        F.to_model_frame(ds, scalars=["temperature"], velocity=False, target_units="K")
    with pytest.raises(VariableNotFoundError, match="'rain'"):
        F.to_model_frame(ds, scalars=["rain"], velocity=False)


def test_units_errors(cf_dataset):
    none = cf_dataset(units=None)
    with pytest.raises(UnitsError, match="'u' has no units") as err:
        F.to_model_frame(none)
    assert "units={'u'" in str(err.value)
    mf = F.to_model_frame(none, units={"u": "cm/s", "v": "cm/s"}, target_units="m/s")
    assert mf.units_in["u"] == "cm/s"
    assert float(abs(mf.data[:, 0]).max()) < 0.1
    with pytest.raises(UnitsError, match="'u'.*velocity needs"):
        F.to_model_frame(cf_dataset(units="m"))
    with pytest.raises(UnitsError, match="cannot be parsed"):
        F.to_model_frame(cf_dataset(units="furlongs per fortnightz"))
    nondim = F.to_model_frame(cf_dataset(units="1"))
    assert nondim.units_model["u"] == "1"
    with pytest.raises(UnitsError):
        F.to_model_frame(cf_dataset(units="1"), target_units="m/s")


def test_nan_mask_and_fill(cf_dataset):
    ds = cf_dataset(y_ascending=True)
    ds["u"] = ds.u.where(~((ds.x == 0) & (ds.y == 0)))  # a land cell at (y=0, x=0), all times
    ds["v"] = ds.v.where(~((ds.x == 0) & (ds.y == 0)))
    before = copy.deepcopy(ds)
    m = F.nan_mask(ds, ["u", "v"])
    assert m.dtype == bool and int(m.sum()) == 4
    with pytest.raises(MissingDataError, match="'u': 4 cells, 'v': 4 cells") as err:
        F.to_model_frame(ds)
    assert "fill='zero'" in str(err.value)
    mf = F.to_model_frame(ds, fill="zero")
    xr.testing.assert_identical(ds, before)
    assert not np.isnan(mf.data.values).any()
    # y ascending: y=0 is the last row of the model frame
    assert bool(mf.mask[:, -1, 0].all()) and int(mf.mask.sum()) == 4
    assert float(mf.data[0, 0, -1, 0]) == 0.0
    back = F.from_model_frame(mf.data, mf)
    assert np.isnan(back.u.sel(x=0, y=0)).all() and int(back.u.isnull().sum()) == 4
    with pytest.raises(ParameterError, match="fill"):
        F.to_model_frame(ds, fill="mean")


def test_from_model_frame_leading_dims(cf_dataset):
    ds = cf_dataset(y_ascending=True, nt=3)
    mf = F.to_model_frame(ds)
    out = np.stack([mf.data.values[:2], mf.data.values[1:]])[:, :, :2]  # (init, lead, C=2, y, x)
    da = xr.DataArray(out, dims=("init_time", "lead_time", "channel", "y", "x"),
                      coords={"init_time": ds.time.values[:2],
                              "lead_time": np.array([1, 2], dtype="timedelta64[h]")})
    res = F.from_model_frame(da, mf)
    assert res.u.dims == ("init_time", "lead_time", "y", "x")
    np.testing.assert_allclose(res.u.isel(init_time=1, lead_time=0).values,
                               ds.u.isel(time=1).values, rtol=1e-6)
    assert list(res.y.values) == list(ds.y.values)
    t = F.from_model_frame(torch.as_tensor(out), mf, dims=("init_time", "lead_time"))
    np.testing.assert_allclose(t.v.values, res.v.values)
    with pytest.raises(ParameterError, match="does not fit"):
        F.from_model_frame(np.zeros((2, 2, 3, 3)), mf)


def test_extra_dims_and_no_time(cf_dataset):
    ds = cf_dataset().expand_dims(depth=[0.0, 5.0])
    mf = F.to_model_frame(ds)
    assert mf.data.dims == ("depth", "time", "channel", "y", "x")
    back = F.from_model_frame(mf.data, mf)
    np.testing.assert_allclose(back.u.values, ds.u.transpose("depth", "time", "y", "x").values,
                               rtol=1e-6)
    snap = cf_dataset(nt=0)
    mf0 = F.to_model_frame(snap)
    assert mf0.data.shape[0] == 1 and mf0.grid.dt is None
    assert F.from_model_frame(mf0.data, mf0).u.dims == ("y", "x")


# ------------------------------------------------------------------------------------------------
# orientation (defect 7)
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("latlon", [True, False])
@pytest.mark.parametrize("y_ascending", [True, False])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_rotation_commutes_with_model_frame(cf_dataset, latlon, y_ascending, k):
    ds = cf_dataset(latlon=latlon, y_ascending=y_ascending, ny=5, nx=7, spacing=0.5)
    before = copy.deepcopy(ds)
    rotated = sym.transform(ds, "rot90", k=k)
    xr.testing.assert_identical(ds, before)
    a = F.to_model_frame(rotated).data
    b = sym.rot90(torch.as_tensor(F.to_model_frame(ds).data.values), k)
    np.testing.assert_array_equal(a.values, b.numpy())


def test_eastward_flow_rotates_to_northward_in_model_frame(cf_dataset):
    for y_asc in (True, False):
        ds = cf_dataset(uniform=(1.0, 0.0), y_ascending=y_asc, latlon=True, spacing=0.5)
        mf = F.to_model_frame(ds)
        r = sym.rot90(torch.as_tensor(mf.data.values), 1)
        back = F.from_model_frame(r.numpy(), _rotated_frame(ds))
        assert np.allclose(back.u, 0) and np.allclose(back.v, 1)


def _rotated_frame(ds):
    return F.to_model_frame(sym.transform(ds, "rot90", k=1))


def test_docstring_examples_run():
    res = doctest.testmod(F, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0 and res.attempted > 5


def test_time_dim_name_and_attrs_restored(cf_dataset):
    ds = cf_dataset(nt=3).rename(time="t")
    mf = F.to_model_frame(ds)
    assert mf.axes.t == "t" and mf.data.dims[0] == "time"
    back = F.from_model_frame(mf.data, mf)
    assert back.u.dims == ("t", "y", "x") and back.t.attrs == ds.t.attrs
    xr.testing.assert_allclose(back, ds, rtol=1e-6)
    assert ds.equi.fields().names == ("u", "v")


def test_missing_units_fix_suggests_units_of_the_right_kind(cf_dataset):
    """Issue 16.5b: a coordinate without units was told to use 'm s-1'; to_model_frame also
    refuses unknown keys of units= (16.5c)."""
    ds = cf_dataset(nt=2, ny=4, nx=5)
    ds["x"].attrs = {}
    with pytest.raises(UnitsError, match="'x' has no units") as ei:
        F.grid_spacing(ds)
    assert "'m' or 'km'" in str(ei.value) and "m s-1" not in str(ei.value)
    with pytest.raises(UnitsError) as ei:
        F.parse_units(None, "time", "time")
    assert "since" in ei.value.fix
    with pytest.raises(UnitsError) as ei:
        F.parse_units(None, "u", "velocity")
    assert "'m s-1'" in ei.value.fix
    with pytest.raises(ParameterError, match=r"\['xx'\]"):
        F.to_model_frame(ds, units={"xx": "km"})
    assert F.to_model_frame(ds, units={"x": "km"}).grid.dx is not None


def test_rotation_model_on_anisotropic_grid_warns_with_the_aspect_ratio():
    """A rot90-exact model on cells that are not square: the index-grid turn is not a physical
    rotation there; forecast and fit say so with the measured aspect ratio and the fix."""
    import warnings as _w

    from xequi.fields import grid_spacing, warn_rotation_on_anisotropic_grid

    def ds(dx):
        return xr.Dataset({n: (("y", "x"), np.zeros((4, 4)), {"units": "m s-1"}) for n in "uv"},
                          coords={"x": ("x", np.arange(4) * dx, {"units": "km"}),
                                  "y": ("y", np.arange(4) * 1.0, {"units": "km"})})

    with _w.catch_warnings(record=True) as rec:
        _w.simplefilter("always")
        assert warn_rotation_on_anisotropic_grid(grid_spacing(ds(0.79)), ["rot90", "translate"])
        assert not warn_rotation_on_anisotropic_grid(grid_spacing(ds(1.0)), ["rot90"])
        assert not warn_rotation_on_anisotropic_grid(grid_spacing(ds(0.79)), ["translate"])
    assert len(rec) == 1
    msg = str(rec[0].message)
    assert "dx/dy = 0.79" in msg and "regrid" in msg and "latlon_rotation_error" in msg
