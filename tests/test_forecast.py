"""Tests of xequi.forecast: layout, units, grid checks, init times, windows, dask, symmetries."""

from __future__ import annotations

import copy
import doctest
import io
import json

import numpy as np
import pytest
import torch
import xarray as xr

import xequi.forecast as F
from xequi import models
from xequi.diagnostics import persistence_forecast
from xequi.errors import (
    GridError,
    MissingDataError,
    ModelError,
    ParameterError,
    UnitsError,
    VariableNotFoundError,
    XequiError,
)
from xequi.forecast import as_forecast_model, equivariance_error, forecast
from xequi.windows import plan_windows

from conftest import tiny_model

torch.set_num_threads(1)


tiny = tiny_model  # the shared factory of conftest.py


@pytest.fixture(scope="module")
def resnet():
    return tiny("resnet")


# --------------------------------------------------------------------------------------------
# layout
# --------------------------------------------------------------------------------------------
def test_layout_matches_persistence_and_keeps_input_labels(cf_dataset, resnet):
    ds = cf_dataset(nt=4, ny=40, nx=50)  # y ascending: flipped into the model frame and back
    fc = forecast(ds, resnet, steps=3, window=32, progress=False)
    assert fc.u.dims == ("init_time", "lead_time", "y", "x")
    assert fc.u.shape == (1, 3, 40, 50)
    xr.testing.assert_identical(fc.x, ds.x)
    xr.testing.assert_identical(fc.y, ds.y)
    assert fc.init_time.values[0] == ds.time.values[-1]
    assert np.issubdtype(fc.lead_time.dtype, np.timedelta64)
    assert (fc.lead_time.values == np.arange(1, 4) * np.timedelta64(1, "h")).all()
    assert (fc.valid_time.values[0] == ds.time.values[-1] + fc.lead_time.values).all()
    for n in ("u", "v"):
        assert fc[n].attrs["units"] == ds[n].attrs["units"]
        assert fc[n].attrs["standard_name"] == ds[n].attrs["standard_name"]
        assert np.isfinite(fc[n]).all()
    pers = persistence_forecast(ds, ds.time.values[-1:], steps=3)
    assert fc.u.dims == pers.u.dims
    for c in ("lead_time", "init_time", "valid_time"):
        assert fc[c].attrs == pers[c].attrs, c
        assert fc[c].dims == pers[c].dims
        np.testing.assert_array_equal(fc[c].values, pers[c].values)
    a = fc.attrs
    assert a["model"] == "resnet" and a["forecast_steps"] == 3
    assert a["model_weights_sha256"].startswith("sha256:")
    assert "translations" in a["model_symmetry_group"]
    assert a["xequi_version"] and a["created"]


def test_numeric_time_gives_numeric_lead_time(cf_dataset, resnet):
    ds = cf_dataset(nt=3, ny=20, nx=20)
    ds = ds.assign_coords(time=("time", np.arange(3) * 3600.0, {"units": "s", "axis": "T"}))
    fc = forecast(ds, resnet, steps=2, window=16, progress=False)
    np.testing.assert_array_equal(fc.lead_time.values, [3600.0, 7200.0])
    assert fc.lead_time.attrs["units"] == "s"
    assert fc.lead_time.attrs["standard_name"] == "forecast_period"
    assert fc.init_time.attrs["standard_name"] == "forecast_reference_time"


def test_any_domain_size_every_cell_covered(cf_dataset):
    m = tiny("resnet", t_in=1)
    ds = cf_dataset(nt=1 + 1, ny=200, nx=333)
    fc = forecast(ds, m, steps=1, progress=False)  # 64-cell windows from the default
    assert fc.attrs["forecast_window"] == [64, 64]
    assert fc.u.shape == (1, 1, 200, 333)
    xr.testing.assert_identical(fc.x, ds.x)
    xr.testing.assert_identical(fc.y, ds.y)
    assert np.isfinite(fc.u).all() and np.isfinite(fc.v).all()


def test_rollout_is_whole_domain_per_step(cf_dataset, resnet):
    """Step 2 of a rollout == a 1-step forecast from the data extended by the stitched step 1."""
    ds = cf_dataset(nt=3, ny=40, nx=56)
    fc = forecast(ds, resnet, steps=2, window=32, progress=False)
    step1 = fc.isel(init_time=0, lead_time=0).drop_vars(["init_time", "lead_time", "valid_time"])
    t_next = ds.time.values[-1] + np.timedelta64(1, "h")
    ext = xr.concat([ds, step1.expand_dims(time=[t_next])], dim="time")
    ext["time"].attrs = ds.time.attrs
    again = forecast(ext, resnet, steps=1, window=32, progress=False)
    np.testing.assert_allclose(again.u.values[0, 0], fc.u.values[0, 1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(again.v.values[0, 0], fc.v.values[0, 1], rtol=1e-5, atol=1e-6)


def test_init_time_options(cf_dataset, resnet):
    ds = cf_dataset(nt=6, ny=16, nx=16)
    t = ds.time.values
    kw = dict(steps=1, window=16, progress=False)
    one = forecast(ds, resnet, init_time=t[3], **kw)
    np.testing.assert_array_equal(one.init_time.values, [t[3]])
    assert forecast(ds, resnet, init_time="2020-01-01T02", **kw).init_time.values[0] == t[2]
    assert forecast(ds, resnet, init_time=[t[2], t[5]], **kw).sizes["init_time"] == 2
    sl = forecast(ds, resnet, init_time=slice(t[2], t[4]), **kw)
    np.testing.assert_array_equal(sl.init_time.values, t[2:5])
    whole = forecast(ds, resnet, init_time=slice(None, None), **kw)  # from the first usable
    np.testing.assert_array_equal(whole.init_time.values, t[1:])
    # each init uses the t_in frames up to it: same result as cutting the data there
    cut = forecast(ds.isel(time=slice(0, 4)), resnet, **kw)
    np.testing.assert_allclose(sl.u.sel(init_time=t[3]).values, cut.u.values[0], rtol=1e-6)


def test_init_time_errors_name_time_and_first_usable(cf_dataset, resnet):
    ds = cf_dataset(nt=4, ny=16, nx=16)
    kw = dict(steps=1, window=16, progress=False)
    with pytest.raises(MissingDataError, match="2021-01-01.*first usable init time is "
                                               "2020-01-01T01"):
        forecast(ds, resnet, init_time="2021-01-01", **kw)
    with pytest.raises(MissingDataError, match="only 1 frame.*t_in = 2.*2020-01-01T01"):
        forecast(ds, resnet, init_time=ds.time.values[0], **kw)
    with pytest.raises(MissingDataError, match="first usable"):
        forecast(ds, resnet, init_time=slice("2020-01-01T00", "2020-01-01T02"), **kw)
    with pytest.raises(ModelError, match="t_in = 5.*1 time step"):
        forecast(ds.isel(time=[0]), tiny("resnet", t_in=5), **kw)


# --------------------------------------------------------------------------------------------
# units and grid
# --------------------------------------------------------------------------------------------
def test_km_and_cm_per_s_give_the_same_forecast_as_m_and_m_per_s(cf_dataset, resnet):
    a = cf_dataset(nt=3, ny=30, nx=40, xy_units="km", spacing=10.0, units="m s-1")
    b = cf_dataset(nt=3, ny=30, nx=40, xy_units="m", spacing=10000.0, units="cm s-1")
    b["u"] = b.u.copy(data=a.u.values * 100.0)
    b["v"] = b.v.copy(data=a.v.values * 100.0)
    fa = forecast(a, resnet, steps=2, window=32, progress=False)
    fb = forecast(b, resnet, steps=2, window=32, progress=False)
    assert fb.u.attrs["units"] == "cm s-1"
    np.testing.assert_allclose(fb.u.values / 100.0, fa.u.values, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fb.v.values / 100.0, fa.v.values, rtol=1e-5, atol=1e-6)


def test_grid_mismatch_is_refused(cf_dataset, resnet):
    kw = dict(steps=1, window=16, progress=False)
    with pytest.raises(GridError, match=r"relative tolerance 0.001.*dx = 20.* 10 km"):
        forecast(cf_dataset(nt=3, ny=16, nx=16, spacing=20.0), resnet, **kw)
    with pytest.raises(GridError, match="dt = 7200"):
        forecast(cf_dataset(nt=3, ny=16, nx=16, dt_hours=2.0), resnet, **kw)
    # within the tolerance: accepted
    forecast(cf_dataset(nt=3, ny=16, nx=16, spacing=10.005), resnet, **kw)


def test_scale_equivariant_model_rescales_by_pint_factor(cf_dataset):
    m = tiny("scale-resnet")
    small = cf_dataset(nt=3, ny=32, nx=32, spacing=10.0, dt_hours=1.0)
    big = cf_dataset(nt=3, ny=32, nx=32, spacing=20.0, dt_hours=4.0)  # λ = 2, λ² = 4
    big["u"], big["v"] = big.u.copy(data=small.u.values / 2), big.v.copy(data=small.v.values / 2)
    fb = forecast(big, m, steps=2, window=32, progress=False)
    fs = forecast(small, m, steps=2, window=32, progress=False)
    assert fb.attrs["forecast_scale_factor"] == pytest.approx(2.0)
    assert (fb.lead_time.values == np.array([4, 8]) * np.timedelta64(1, "h")).all()
    # w_model = λ w_data: the big-grid data are the small-grid data seen at scale 2
    np.testing.assert_allclose(fb.u.values * 2, fs.u.values, rtol=1e-5, atol=1e-6)
    with pytest.raises(GridError, match="inconsistent"):  # dt not ∝ dx²
        forecast(cf_dataset(nt=3, ny=32, nx=32, spacing=20.0, dt_hours=1.0), m, steps=1,
                 window=32, progress=False)


def test_units_and_variable_mismatch(cf_dataset, resnet):
    kw = dict(steps=1, window=16, progress=False)
    with pytest.raises(UnitsError, match="velocity|dimensionality"):
        forecast(cf_dataset(nt=3, ny=16, nx=16, units="degC"), resnet, **kw)
    nondim = tiny("resnet", dx="0.1 dimensionless", dt="1 dimensionless", units="1")
    with pytest.raises(UnitsError, match="cannot be converted to '1'"):
        forecast(cf_dataset(nt=3, ny=16, nx=16), nondim, **kw)
    with pytest.raises(GridError, match="cannot be compared"):
        forecast(cf_dataset(nt=3, ny=16, nx=16, units="1"), nondim, **kw)
    with_t = tiny("resnet", n_scalars=1, scalars={"temp": "degC"})
    with pytest.raises(VariableNotFoundError, match="scalar channel 'temp'"):
        forecast(cf_dataset(nt=3, ny=16, nx=16), with_t, **kw)
    ds_t = cf_dataset(nt=3, ny=16, nx=16, scalars=("temp",))
    fc = forecast(ds_t, with_t, **kw)
    assert set(fc.data_vars) == {"u", "v", "temp"} and fc.temp.attrs["units"] == "degC"
    with pytest.raises(ModelError, match="takes 2 channels"):
        forecast(ds_t, resnet, scalars=["temp"], **kw)
    with pytest.raises(VariableNotFoundError):
        forecast(cf_dataset(nt=3, ny=16, nx=16, names=("a", "b"), standard_names=None),
                 resnet, **kw)


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("steps", [0, -2, 1.5, True])
def test_steps_must_be_positive(cf_dataset, resnet, steps):
    with pytest.raises(ParameterError, match="steps"):
        forecast(cf_dataset(nt=3, ny=16, nx=16), resnet, steps=steps, progress=False)


def test_nan_needs_a_fill_choice_and_land_comes_back_nan(cf_dataset, resnet):
    ds = cf_dataset(nt=3, ny=20, nx=20)
    ds["u"][:, 3:6, 4:8] = np.nan
    ds["v"][:, 3:6, 4:8] = np.nan
    with pytest.raises(MissingDataError, match="fill='zero'"):
        forecast(ds, resnet, steps=1, window=16, progress=False)
    fc = forecast(ds, resnet, steps=2, window=16, fill="zero", progress=False)
    land = np.isnan(ds.u.isel(time=0).values)
    assert np.isnan(fc.u.values[0, :, land]).all()
    assert np.isfinite(fc.u.values[0, :, ~land]).all()


def test_model_without_card_and_unknown_model(cf_dataset):
    ds = cf_dataset(nt=3, ny=16, nx=16)
    with pytest.raises(ModelError, match="as_forecast_model"):
        forecast(ds, models.create("resnet", t_in=2, widths=(4,)), steps=1, progress=False)
    with pytest.raises(ModelError, match="no pretrained weights"):
        forecast(ds, "no-such-model", steps=1, progress=False)
    with pytest.raises(ModelError, match="model must be"):
        forecast(ds, 42, steps=1, progress=False)


def test_input_is_never_mutated(cf_dataset, resnet):
    ds = cf_dataset(nt=3, ny=20, nx=24, scalars=())
    ds["u"][0, 0, 0] = np.nan
    before = copy.deepcopy(ds)
    forecast(ds, resnet, steps=2, window=16, fill="zero", progress=False)
    xr.testing.assert_identical(ds, before)


def test_output_writing(cf_dataset, resnet, tmp_path):
    ds = cf_dataset(nt=3, ny=16, nx=16)
    kw = dict(steps=1, window=16, progress=False)
    p = tmp_path / "fc.zarr"
    fc = forecast(ds, resnet, out=p, **kw)
    back = xr.open_zarr(p).load()
    np.testing.assert_allclose(back.u.values, fc.u.values)
    assert back.lead_time.attrs["standard_name"] == "forecast_period"
    with pytest.raises(ParameterError, match="already exists"):
        forecast(ds, resnet, out=p, **kw)
    forecast(ds, resnet, out=p, overwrite=True, **kw)
    nc = tmp_path / "fc.nc"
    forecast(ds, resnet, out=nc, **kw)
    assert xr.open_dataset(nc).u.shape == (1, 1, 16, 16)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with pytest.raises(ParameterError, match="cannot be written"):
        forecast(ds, resnet, out=blocker / "fc.zarr", **kw)
    with pytest.raises(ParameterError, match="extension"):
        forecast(ds, resnet, out=tmp_path / "fc.txt", **kw)
    assert sorted(q.name for q in tmp_path.iterdir()) == ["a_file", "fc.nc", "fc.zarr"]


def test_dataarray_with_a_velocity_model_gives_a_clear_error(cf_dataset, resnet):
    da = cf_dataset(nt=3, ny=16, nx=16, scalars=("temp",))["temp"]
    with pytest.raises(ModelError, match="velocity.*first two channels(.|\n)*velocity=False"):
        da.equi.forecast(resnet, steps=1)


# --------------------------------------------------------------------------------------------
# scalar fields: scalar-only models (velocity=False) on a DataArray or a Dataset
# --------------------------------------------------------------------------------------------
def scalar_model(name="rot-resnet", units="K", **kw):
    """A one-channel scalar-only model for the ``temp`` of ``cf_dataset`` (15 ± 1 degC),
    standardised as fit would (the magnitude-equivariant one without an offset)."""
    offset = 0.0 if "mag" in name else {"K": 288.15, "degC": 15.0}[units]
    return tiny(name, velocity=False, n_scalars=1, scalars={"temp": units}, scale=[1.0],
                offset=[offset], **kw)


def test_dataarray_of_a_scalar_field_is_forecast(cf_dataset):
    m = scalar_model()  # trained (here: built) in kelvin; the data are in degC
    assert m.card["velocity"] is False and F.model_info(m)["n_velocity"] == 0
    ds = cf_dataset(nt=4, ny=20, nx=28, scalars=("temp",))
    da = ds["temp"]
    before = da.copy(deep=True)
    fc = da.equi.forecast(m, steps=3, window=16, progress=False)
    xr.testing.assert_identical(da, before)
    assert isinstance(fc, xr.DataArray) and fc.name == "temp"
    assert fc.dims == ("init_time", "lead_time", "y", "x") and fc.shape == (1, 3, 20, 28)
    assert fc.attrs["units"] == "degC" and fc.attrs["standard_name"] == "sea_water_temperature"
    assert fc.attrs["model"] == "rot-resnet" and fc.attrs["xequi_version"]
    assert fc["lead_time"].attrs["standard_name"] == "forecast_period" and "valid_time" in fc.coords
    assert np.isfinite(fc).all() and float(fc.std()) > 0.1
    # the same numbers through a Dataset, with or without the velocity beside the scalar
    via_ds = forecast(ds[["temp"]], m, steps=3, window=16, progress=False)
    xr.testing.assert_allclose(via_ds.temp, fc, rtol=1e-6)
    assert via_ds.temp.attrs["units"] == "degC"
    full = forecast(ds, m, steps=3, window=16, progress=False)
    assert list(full.data_vars) == ["temp"]
    np.testing.assert_allclose(full.temp.values, fc.values, rtol=1e-6)
    # units: the same data given in kelvin give the same forecast, in kelvin
    k = (da + 273.15).assign_attrs(units="K")
    fck = k.equi.forecast(m, steps=3, window=16, progress=False)
    assert fck.attrs["units"] == "K"
    np.testing.assert_allclose(fck.values - 273.15, fc.values, atol=2e-4)


def test_scalar_field_errors(cf_dataset):
    ds = cf_dataset(nt=3, ny=16, nx=16, scalars=("temp", "salt"))
    two = tiny("resnet", velocity=False, n_scalars=2, scalars={"temp": "degC", "salt": "degC"})
    with pytest.raises(ModelError, match="takes 2 scalar channels"):
        ds["temp"].equi.forecast(two, steps=1)
    assert list(forecast(ds, two, steps=1, window=16, progress=False).data_vars) == ["temp", "salt"]
    m = scalar_model(units="degC")
    with pytest.raises(ParameterError, match="scalar-only(.|\n)*drop u= and v="):
        forecast(ds, m, steps=1, u="u", v="v")
    with pytest.raises(ParameterError, match="DataArray is its one scalar field"):
        ds["temp"].equi.forecast(m, steps=1, scalars=["temp"])
    with pytest.raises(VariableNotFoundError, match="'temp'"):
        forecast(ds[["salt"]].rename(salt="other"), m, steps=1)
    with pytest.raises(ModelError, match="scalar-only model takes 1 channel"):
        forecast(ds, m, steps=1, scalars=["temp", "salt"])
    with pytest.raises(ModelError, match="scalars="):
        as_forecast_model(models.create("resnet", n_scalars=1, velocity=False, widths=(4,)))
    with pytest.raises(UnitsError, match="'temp'"):
        ds["temp"].assign_attrs(units="m s-1").equi.forecast(m, steps=1)


@pytest.mark.parametrize("name, kind, params", [
    ("rot-resnet", "rot90", {"k": 1}),
    ("mag-resnet", "magnitude", {"lam": 2.5}),
])
def test_scalar_field_pipeline_is_equivariant(cf_dataset, name, kind, params):
    da = cf_dataset(nt=3, ny=96, nx=96, scalars=("temp",))["temp"]
    m = scalar_model(name, units="degC", widths=(2, 2, 2, 2))
    assert float(da.equi.forecast(m, steps=1, progress=False).std()) > 0.01  # not a dead net
    err = da.equi.equivariance_error(m, kind, steps=2, **params)
    assert err.dims == ("lead_time",) and float(err.max()) < 1e-4, err.values
    assert err.attrs["model"] == name
    plain = scalar_model("resnet", units="degC", widths=(2, 2, 2, 2))
    assert float(equivariance_error(da, plain, kind, steps=1, **params).min()) > 1e-2


def test_scalar_field_lazy_and_written(cf_dataset, tmp_path):
    da = cf_dataset(nt=4, ny=16, nx=24, scalars=("temp",))["temp"]
    m = scalar_model(units="degC")
    eager = da.equi.forecast(m, steps=2, window=16, progress=False)
    lazy = da.chunk({"time": 1}).equi.forecast(m, steps=2, window=16, progress=False)
    assert lazy.chunks is not None
    np.testing.assert_allclose(lazy.compute(scheduler="synchronous").values, eager.values,
                               rtol=1e-6)
    out = tmp_path / "temp.zarr"
    da.equi.forecast(m, steps=2, window=16, progress=False, out=out)
    back = xr.open_zarr(out)
    np.testing.assert_allclose(back.temp.values, eager.values, rtol=1e-6)
    assert back.attrs["model"] == "rot-resnet"


def test_progress_bar(cf_dataset, resnet, capsys):
    ds = cf_dataset(nt=3, ny=16, nx=16)
    forecast(ds, resnet, steps=2, window=16, progress=False)
    assert capsys.readouterr().err == ""
    forecast(ds, resnet, steps=2, window=16, progress=True)
    assert "forecast resnet" in capsys.readouterr().err


def test_checkpoint_path_and_exported_model(cf_dataset, resnet, tmp_path):
    from xequi.checkpoint import save_model

    ds = cf_dataset(nt=3, ny=16, nx=16)
    p = save_model(resnet, tmp_path / "m")
    a = forecast(ds, str(p), steps=2, window=16, progress=False)
    b = forecast(ds, resnet, steps=2, window=16, progress=False)
    np.testing.assert_allclose(a.u.values, b.u.values, rtol=1e-6)
    assert a.attrs["model_weights_sha256"] == b.attrs["model_weights_sha256"]


# --------------------------------------------------------------------------------------------
# dask
# --------------------------------------------------------------------------------------------
def test_dask_is_lazy_and_equal_on_a_local_cluster(cf_dataset, resnet):
    import dask.array as dsa
    from dask.distributed import Client, LocalCluster

    ds = cf_dataset(nt=5, ny=24, nx=32)
    eager = forecast(ds, resnet, steps=2, init_time=ds.time.values[2:], window=16,
                     progress=False)
    from dask.callbacks import Callback

    computed = []
    with Callback(start=lambda dsk: computed.append(len(dsk))):
        lazy = forecast(ds.chunk({"time": 1}), resnet, steps=2, init_time=ds.time.values[2:],
                        window=16, progress=False)
    assert computed == []  # nothing computed when the forecast is built
    assert isinstance(lazy.u.data, dsa.Array) and isinstance(lazy.v.data, dsa.Array)
    assert lazy.u.data.chunks[0] == (1, 1, 1)  # one task per init time
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as cluster, Client(cluster):
        got = lazy.compute()
    xr.testing.assert_allclose(got, eager, rtol=1e-6, atol=1e-7)
    assert got.attrs["model"] == eager.attrs["model"]
    # NaN without a fill choice: the xequi error surfaces when the task runs
    bad = ds.copy(deep=True)
    bad["u"][-1, 0, 0] = np.nan
    lazy_bad = forecast(bad.chunk({"time": 1}), resnet, steps=1, window=16, progress=False)
    with pytest.raises(MissingDataError, match="fill='zero'"):
        lazy_bad.compute(scheduler="synchronous")


# --------------------------------------------------------------------------------------------
# symmetry of the whole pipeline
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def equi_models():
    # 4 residual blocks: receptive radius 10 cells, more than the 8 cells of context that crop
    # stitching guarantees with 64-cell windows, so the window layout matters for the result
    deep = {"widths": (2, 2, 2, 2)}
    return {"rot-resnet": tiny("rot-resnet", **deep), "um-resnet": tiny("um-resnet", **deep),
            "mag-resnet": tiny("mag-resnet", **deep), "resnet": tiny("resnet", **deep)}


@pytest.mark.parametrize("n", [96, 128])
@pytest.mark.parametrize("name, kind, params", [
    ("rot-resnet", "rot90", {"k": 1}),
    ("rot-resnet", "rot90", {"k": 2}),
    ("um-resnet", "uniform_motion", {"c": (0.7, -1.3)}),
    ("mag-resnet", "magnitude", {"lam": 2.5}),
    ("mag-resnet", "magnitude", {"lam": 0.3}),
])
def test_pipeline_is_equivariant_on_square_domains(cf_dataset, equi_models, n, name, kind,
                                                   params):
    ds = cf_dataset(nt=3, ny=n, nx=n)  # 64-cell windows: 96 is not a multiple of the window
    err = equivariance_error(ds, equi_models[name], kind, steps=2, **params)
    assert err.dims == ("lead_time",) and err.sizes["lead_time"] == 2
    assert float(err.max()) < 1e-4, err.values


def test_plain_resnet_fails_the_rotation_and_um_versions(cf_dataset, equi_models):
    ds = cf_dataset(nt=3, ny=96, nx=96)
    assert float(equivariance_error(ds, equi_models["resnet"], "rot90", k=1).min()) > 1e-2
    assert float(equivariance_error(ds, equi_models["resnet"], "um", c=(0.7, -1.3)).min()) > 1e-2


def test_rotation_on_non_square_domains(cf_dataset, equi_models):
    """Measured, documented in the module docstring: square windows keep rot90 exact on any
    rectangle (the per-axis layout depends on the axis length only); non-square windows do not
    once the receptive field exceeds the stitching context (here 32 x 48 windows: 4 and 6 cells
    of context against a receptive radius of 10)."""
    ds = cf_dataset(nt=3, ny=96, nx=130)
    m = equi_models["rot-resnet"]
    exact = equivariance_error(ds, m, "rot90", k=1, steps=2)
    assert float(exact.max()) < 1e-4, exact.values
    broken = equivariance_error(ds, m, "rot90", k=1, steps=2,
                                forecast_kwargs={"window": (32, 48)})
    assert float(broken.min()) > 1e-3, broken.values


def test_doctests():
    res = doctest.testmod(F, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0 and res.attempted > 0


def test_errors_are_xequi_errors(cf_dataset, resnet):
    with pytest.raises(XequiError):
        forecast(cf_dataset(nt=3, ny=16, nx=16), resnet, steps=1, batch_size=0)
    with pytest.raises(XequiError):
        forecast(cf_dataset(nt=3, ny=16, nx=16), resnet, steps=1, device="nonsense")


def test_parse_init_time_for_the_command_line(cf_dataset, resnet):
    ds = cf_dataset(nt=5, ny=16, nx=16)
    t = ds.time.values
    assert F.parse_init_time(None) is None and F.parse_init_time("last", ds) is None
    sl = F.parse_init_time("2020-01-01T02:00..2020-01-01T04", ds)
    fc = forecast(ds, resnet, init_time=sl, steps=1, window=16, progress=False)
    np.testing.assert_array_equal(fc.init_time.values, t[2:5])
    assert F.parse_init_time("2020-01-01T02,2020-01-01T03", ds) == [t[2], t[3]]
    num = ds.assign_coords(time=("time", np.arange(5) * 3600.0, {"units": "s"}))
    assert F.parse_init_time("..7200", num) == slice(None, 7200.0)
    with pytest.raises(ParameterError, match="cannot be read"):
        F.parse_init_time("noon", num)


def test_own_network_with_a_card_and_as_forecast_model(cf_dataset):
    class Persist(torch.nn.Module):
        def forward(self, x):
            return x[:, -1]

    ds = cf_dataset(nt=3, ny=20, nx=20)
    m = as_forecast_model(Persist(), dx="10 km", dt="1 h", t_in=2, name="persist")
    assert m.card["name"] == "persist" and m.card["symmetries"] == []
    fc = forecast(ds, m, steps=3, window=16, progress=False)
    # persistence through windows, stitching, units and orientation: the last frame, exactly
    for k in range(3):
        np.testing.assert_allclose(fc.u.values[0, k], ds.u.values[-1], rtol=1e-6, atol=1e-6)
    bare = Persist()
    bare.card = dict(m.card)  # a bare module carrying a card is wrapped
    fc2 = forecast(ds, bare, steps=1, window=16, progress=False)
    np.testing.assert_allclose(fc2.v.values[0, 0], ds.v.values[-1], rtol=1e-6, atol=1e-6)
    with pytest.raises(ModelError, match="t_in"):
        as_forecast_model(Persist(), dx="10 km")


def test_extra_dimensions_are_forecast_level_by_level(cf_dataset, resnet):
    """Issue 16: extra dimensions (depth levels, ensemble members) used to be refused; each
    entry is now forecast and the results stacked along the dimension, in order, with its
    coordinate, lazily too."""
    ds = cf_dataset(nt=3, ny=16, nx=16).expand_dims(depth=[0.0, 5.0]).transpose("time", "depth", ...)
    fc = forecast(ds, resnet, steps=1, window=16, progress=False)
    assert fc.u.dims[0] == "depth" and fc.depth.values.tolist() == [0.0, 5.0]
    one = forecast(ds.isel(depth=1), resnet, steps=1, window=16, progress=False)
    np.testing.assert_array_equal(fc.u.isel(depth=1).values, one.u.values)
    lazy = forecast(ds.chunk({"time": 1}), resnet, steps=1, window=16, progress=False)
    np.testing.assert_allclose(lazy.u.values, fc.u.values, rtol=1e-6, atol=1e-7)


def test_latlon_descending_grid_round_trips_orientation(cf_dataset):
    from xequi.fields import grid_spacing

    class Persist(torch.nn.Module):
        def forward(self, x):
            return x[:, -1]

    ds = cf_dataset(nt=3, ny=20, nx=24, latlon=True, spacing=0.25, y_ascending=False,
                    x_ascending=False)
    g = grid_spacing(ds)
    m = as_forecast_model(Persist(), dx=g.dx, dy=g.dy, dt="1 h", t_in=2)
    fc = forecast(ds, m, steps=1, window=16, progress=False)
    xr.testing.assert_identical(fc.lat, ds.lat)
    xr.testing.assert_identical(fc.lon, ds.lon)
    assert fc.u.dims == ("init_time", "lead_time", "lat", "lon")
    np.testing.assert_allclose(fc.u.values[0, 0], ds.u.values[-1], rtol=1e-6, atol=1e-6)
    with pytest.raises(GridError, match="dy"):  # the card's dy differs by 2 %
        forecast(ds, as_forecast_model(Persist(), dx=g.dx, dy=g.dy * 1.02, dt="1 h", t_in=2),
                 steps=1, window=16, progress=False)


def test_windows_stream_through_the_model_in_batches(cf_dataset):

    sizes = []

    class Spy(torch.nn.Module):
        def forward(self, x):
            sizes.append(x.shape[0])
            return x[:, -1]

    m = as_forecast_model(Spy(), dx="10 km", dt="1 h", t_in=2)
    ds = cf_dataset(nt=3, ny=100, nx=90)
    forecast(ds, m, steps=2, window=32, batch_size=3, progress=False)
    n = plan_windows((100, 90), window=32, pad="auto").n_windows  # the layout forecast uses
    assert max(sizes) == 3 and sum(sizes) == 2 * n  # every window, every step, 3 at a time
    assert len(sizes) == 2 * -(-n // 3)


def test_exported_model_is_cached_until_the_weights_change(cf_dataset):
    m = tiny("resnet")
    ds = cf_dataset(nt=3, ny=16, nx=16)
    kw = dict(steps=1, window=16, progress=False)
    a = forecast(ds, m, **kw)
    first = F._exported(m)
    assert F._exported(m) is first  # cached
    with torch.no_grad():
        m.model.project.conv.bias.data += 1.0  # a write through .data: no version bump
    assert F._exported(m) is not first
    b = forecast(ds, m, **kw)
    assert not np.allclose(a.u.values, b.u.values)


def test_lazy_from_a_zarr_store_matches_eager(cf_dataset, resnet, tmp_path):
    from xequi.io import write_dataset

    ds = cf_dataset(nt=4, ny=20, nx=24)
    write_dataset(ds, tmp_path / "in.zarr")
    lazy_in = xr.open_zarr(tmp_path / "in.zarr")
    kw = dict(steps=2, init_time=slice(None, None), window=16, progress=False)
    lazy = forecast(lazy_in, resnet, **kw)
    assert lazy.u.chunks is not None
    got = lazy.compute(scheduler="synchronous")
    xr.testing.assert_allclose(got, forecast(ds, resnet, **kw), rtol=1e-6, atol=1e-7)


# --------------------------------------------------------------------------------------------
# the forecast plan and the resumable writer, on their own
# --------------------------------------------------------------------------------------------
def test_resumable_write_of_a_plan_interrupted_and_resumed_is_bit_identical(
        cf_dataset, resnet, tmp_path, monkeypatch):
    ds = cf_dataset(nt=8, ny=20, nx=24)
    kw = dict(init_time=slice(None, None), window=16, progress=False)
    plan = F._plan_forecast(ds, resnet, 2, out=tmp_path / "fc.zarr", **kw)
    assert isinstance(plan, F.ForecastPlan) and len(plan.positions) == 7
    with pytest.raises(AttributeError):  # frozen: a plan is what will run, not a work area
        plan.overwrite = True
    full = F._forecast_resumable(plan.replace(out=tmp_path / "full.zarr")).load()

    real, calls = F._forecast_positions, []

    def dies_at_the_fourth_init_time(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(F, "_forecast_positions", dies_at_the_fourth_init_time)
    with pytest.raises(KeyboardInterrupt):
        F._forecast_resumable(plan)
    partial, record = F._partial_paths(plan.out)
    assert partial.exists() and not plan.out.exists()
    assert json.loads(record.read_text())["done"] == 3
    monkeypatch.setattr(F, "_forecast_positions", real)

    # a fresh plan of the same call (another `created` time) resumes after the third init time
    calls.clear()
    again = F._plan_forecast(ds, resnet, 2, out=tmp_path / "fc.zarr", **kw)
    counted = []
    monkeypatch.setattr(F, "_forecast_positions",
                        lambda *a, **k: counted.append(1) or real(*a, **k))
    resumed = F._forecast_resumable(again).load()
    assert len(counted) == 4  # only the init times not yet written
    for n in ("u", "v"):
        assert resumed[n].dtype == full[n].dtype
        np.testing.assert_array_equal(resumed[n].values, full[n].values)  # bit-identical
    for c in ("init_time", "lead_time", "valid_time", "x", "y"):
        np.testing.assert_array_equal(resumed[c].values, full[c].values)
    assert not partial.exists() and not record.exists()
    # and the same numbers as forecast() without writing
    eager = forecast(ds, resnet, steps=2, **kw)
    np.testing.assert_array_equal(resumed.u.values, eager.u.values)


def test_a_plan_of_another_run_is_not_resumed(cf_dataset, resnet, tmp_path, monkeypatch):
    ds = cf_dataset(nt=6, ny=16, nx=16)
    kw = dict(init_time=slice(None, None), window=16, progress=False, out=tmp_path / "f.zarr")
    plan = F._plan_forecast(ds, resnet, 1, **kw)
    real, calls = F._forecast_positions, []
    monkeypatch.setattr(F, "_forecast_positions",
                        lambda *a, **k: (calls.append(1), real(*a, **k))[1] if len(calls) < 1
                        else (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        F._forecast_resumable(plan)
    monkeypatch.setattr(F, "_forecast_positions", real)
    other = F._plan_forecast(ds, resnet, 2, **kw)  # more steps: other numbers
    with pytest.raises(ParameterError, match="different run"):
        F._forecast_resumable(other)


def test_windows_do_not_pad_across_walls(cf_dataset):
    """Root cause of the wall-row error (issue 14): mirror padding across a no-slip wall puts a
    kink into the field that training windows (inside the domain) never show; the demo's
    one-step wall-row error was 4x the interior's. A domain that fits in one window is now
    forecast as that one window, whatever the overlap, and windows stay inside the domain along
    non-periodic axes (padding only by wrapping along periodic ones)."""
    ds = cf_dataset(nt=3, ny=64, nx=64)
    m = tiny_model("resnet", t_in=2, seed=1, widths=(4, 4, 4, 4))
    a = forecast(ds, m, steps=2, window=64, overlap=16, progress=False)
    b = forecast(ds, m, steps=2, window=64, overlap=0, progress=False)
    np.testing.assert_array_equal(a["u"].values, b["u"].values)
    spec = plan_windows((64, 128), window=64, periodic=(False, True), pad="auto")
    assert spec.pad_width[0] == (0, 0) and spec.pad_width[1][0] > 0
    assert set(np.unique(spec.starts_y)) == {0}
    padded = plan_windows((64, 128), window=64, periodic=(False, True), pad=True)
    assert padded.pad_width[0][0] > 0  # the old layout reflected across the walls


# --------------------------------------------------------------------------------------------
# issue 16: staggered masks, non-square card windows
# --------------------------------------------------------------------------------------------
def _staggered(ds):
    """``ds`` with different land masks on u and v (a C grid: u and v land differ)."""
    u, v = ds.u.values.copy(), ds.v.values.copy()
    u[:, :6, :5] = np.nan
    v[:, :5, :7] = np.nan
    u[:, 20:22, -3:] = np.nan
    return ds.assign(u=(ds.u.dims, u, ds.u.attrs), v=(ds.v.dims, v, ds.v.attrs))


def test_distinct_u_v_masks_keep_rot90_exact_and_come_back_per_variable(cf_dataset):
    """Issue 16.1: the quarter turn used to give u and v the union of their masks (``NaN * 0``
    in the vector rotation), so g·ds lost valid cells and the error of an exactly equivariant
    model was 0.06-0.08 here (0.20 on a ROMS file); now 3e-7."""
    ds = _staggered(cf_dataset(nt=3, ny=32, nx=32))
    m = tiny("rot-resnet")
    kw = {"fill": "zero", "window": 32}
    for k in (1, 2):
        err = equivariance_error(ds, m, "rot90", k=k, steps=2, forecast_kwargs=kw)
        assert float(err.max()) <= 1e-5, (k, err.values)
    fc = forecast(ds, m, steps=1, progress=False, **kw)
    for n in ("u", "v"):  # each variable NaN on its own land only
        land = np.isnan(ds[n].isel(time=0).values)
        np.testing.assert_array_equal(np.isnan(fc[n].values[0, 0]), land)


def test_default_window_is_square_for_a_clipped_training_window(cf_dataset):
    """Issue 16.2: a card window clipped to a 61-row domain, (61, 64), was used as is and broke
    rot90 (error 0.33 for a 4-block rot-resnet on 61 x 81); the default is now square."""
    ds = cf_dataset(nt=3, ny=61, nx=81)
    m = tiny("rot-resnet", widths=(2, 2, 2, 2))
    m.card["window"] = [61, 64]
    fc = forecast(ds, m, steps=1, progress=False)
    assert fc.attrs["forecast_window"] == [61, 61]
    err = equivariance_error(ds, m, "rot90", k=1, steps=2)
    assert float(err.max()) <= 1e-5, err.values


def test_dimensional_currents_given_to_a_non_dimensional_model_say_so(cf_dataset):
    """Issue 16.5a: the shipped models (non-dimensional convection) given currents in m/s said
    to fix the units attribute; relabelling would not make the physics match."""
    ds = cf_dataset(nt=3, ny=16, nx=16)
    m = tiny("resnet", units="1", dx="1", dt="1")
    m.card["training"] = {"data": "Rayleigh-Benard convection simulated by xequi (preset x)"}
    with pytest.raises(UnitsError, match="trained on non-dimensional data") as ei:
        forecast(ds, m, steps=1, progress=False)
    msg = str(ei.value)
    assert "Rayleigh-Benard convection" in msg and "dimensional currents" in msg
    assert "fit(" in msg and "units attribute" not in msg


def test_unknown_units_keys_are_refused(cf_dataset, resnet):
    """Issue 16.5c: a misspelt key of units= was ignored silently."""
    ds = cf_dataset(nt=3, ny=16, nx=16)
    with pytest.raises(ParameterError, match=r"\['uu'\]") as ei:
        forecast(ds, resnet, steps=1, progress=False, window=16, units={"uu": "m s-1"})
    assert "'u', 'v'" in str(ei.value) and "'x'" in str(ei.value)
    fc = forecast(ds, resnet, steps=1, progress=False, window=16,
                  units={"u": "m s-1", "v": "m s-1", "x": "km"})  # valid keys still work
    assert fc.u.shape == (1, 1, 16, 16)


def test_domain_smaller_than_the_receptive_field_is_refused(cf_dataset, resnet):
    """Issue 16.5d: a 3 x 3 domain was forecast without a word from window padding alone."""
    assert F._receptive_radius(resnet) == 5  # 5 convolutions of 3 x 3 in the tiny resnet
    with pytest.raises(GridError, match=r"receptive field.*radius >= 5") as ei:
        forecast(cf_dataset(nt=3, ny=3, nx=3), resnet, steps=1, progress=False)
    assert "at least 6 cells" in str(ei.value)
    # a periodic axis wraps real data around: not refused along it
    with pytest.raises(GridError, match=r"'y' \(3 cells\)") as ei:
        forecast(cf_dataset(nt=3, ny=3, nx=12), resnet, steps=1, progress=False)
    assert "'x'" not in ei.value.problem.split("along")[-1]
    fc = forecast(cf_dataset(nt=3, ny=6, nx=6), resnet, steps=1, progress=False)
    assert fc.u.shape == (1, 1, 6, 6)


def test_progress_bar_is_not_redrawn_into_a_log(cf_dataset, capfd, monkeypatch):
    """Issue 16.8: with output to a file (``make demo > log 2>&1``) tqdm's ten redraws a second
    filled the log with hundreds of kB; on a stream that is not a terminal the bar is now drawn
    at its start and end only (at most one redraw a minute). capfd's stderr is not a terminal."""
    import time

    from xequi import io as xio

    class SlowPersist(torch.nn.Module):
        def forward(self, x):
            time.sleep(0.03)
            return x[:, -1]

    m = as_forecast_model(SlowPersist(), dx="10 km", dt="1 h", t_in=2, name="slow")
    ds = cf_dataset(nt=3, ny=16, nx=16)
    kw = dict(steps=4, window=8, batch_size=1)
    forecast(ds, m, progress=True, **kw)  # the demo's call: progress on, ~1 s of batches
    err = capfd.readouterr().err
    assert "forecast slow" in err and err.count("\r") <= 3, (err.count("\r"), len(err))
    # the bar as it was (tqdm's default redraws) would have written a line every 0.1 s
    monkeypatch.setattr(F, "progress_options", lambda enabled: {"disable": not enabled})
    forecast(ds, m, progress=True, **kw)
    assert capfd.readouterr().err.count("\r") > 5
    assert xio.progress_options(True, file=io.StringIO()) == {
        "disable": False, "mininterval": xio.LOG_REDRAW_SECONDS}
    assert xio.progress_options(False) == {"disable": True}


def test_fit_on_a_single_depth_level_then_forecast_it(cf_dataset):
    """Issue 16.3: fit took data with a size-1 depth dimension (extra dims are samples there)
    but forecast then refused it; a size-1 extra dimension is now squeezed, its value kept as a
    scalar coordinate and named in the attrs. A longer extra dimension is forecast level by
    level and stacked along it."""
    from xequi.train import fit

    ds = cf_dataset(nt=8, ny=16, nx=16).expand_dims(depth=[5.0])
    ds["depth"].attrs = {"units": "m", "positive": "down"}
    model, _ = fit("resnet", ds, t_in=2, epochs=1, window=16, rollout_steps=1,
                   val_fraction=0.0, model_kwargs={"widths": (4,)}, progress=False,
                   device="cpu")
    fc = forecast(ds, model, steps=2, progress=False)
    assert fc.u.dims == ("init_time", "lead_time", "y", "x") and np.isfinite(fc.u).all()
    assert float(fc["depth"]) == 5.0 and fc["depth"].attrs["units"] == "m"
    assert fc.attrs["forecast_squeezed_dims"] == "depth"
    same = forecast(ds.isel(depth=0), model, steps=2, progress=False)
    np.testing.assert_array_equal(fc.u.values, same.u.values)
    # a longer extra dimension: one forecast per level, stacked along it (issue 16)
    two = ds.isel(depth=[0, 0]).assign_coords(depth=[5.0, 10.0])
    two["u"] = two.u + xr.DataArray([0.0, 0.5], dims="depth", coords={"depth": two.depth})
    both = forecast(two, model, steps=2, progress=False)
    assert both.u.dims[0] == "depth" and both.depth.values.tolist() == [5.0, 10.0]
    assert both.attrs["forecast_looped_dims"] == "depth"
    for i in range(2):
        np.testing.assert_array_equal(
            both.u.isel(depth=i).values,
            forecast(two.isel(depth=i), model, steps=2, progress=False).u.values)
    assert not np.array_equal(both.u.isel(depth=0).values, both.u.isel(depth=1).values)
    with pytest.raises(ParameterError, match="resume"):
        forecast(two, model, steps=1, progress=False, resume=True, out="x.zarr")


def test_units_of_a_variable_the_model_does_not_read_are_accepted(cf_dataset, resnet):
    """units= may name any variable of the dataset (16.5c refuses only names that are not in
    it); the rollout frames hold the forecast variables alone."""
    ds = cf_dataset(nt=3, ny=16, nx=16, scalars=("temp",))
    fc = forecast(ds, resnet, steps=1, progress=False, window=16, units={"temp": "degC"})
    assert set(fc.data_vars) == {"u", "v"}
