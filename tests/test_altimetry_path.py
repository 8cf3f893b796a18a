"""The whole path an altimetry user walks, on a synthetic file with the traits of a real one
(issue 16): a daily netCDF of sea-surface height only (CF standard name, cm, lat/lon at 0.25 deg,
land as fill values, "days since" times), opened, turned into geostrophic currents, regridded
onto square metric cells, a tiny rotation model fitted there, forecast, brought back onto the
user's lat/lon grid, scored against persistence, and its rotation equivariance measured."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

import xequi
from xequi.geostrophy import geostrophic_velocity
from xequi.regrid import from_metric_grid, to_metric_grid
from xequi.skill import skill

torch = pytest.importorskip("torch")
torch.set_num_threads(1)


def _write_ssh_file(path):
    """30 days of a westward-drifting anticyclone plus a weaker eddy, at 30-36 S, in cm, with a
    coast (land = _FillValue) in one corner."""
    lat = np.arange(-36.0, -29.99, 0.25)
    lon = np.arange(20.0, 27.99, 0.25)
    days = np.arange(30)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    ssh = np.empty((days.size, lat.size, lon.size))
    for t in days:
        c1, c2 = 25.0 - 0.12 * t, 22.0 + 0.05 * t
        ssh[t] = (20 * np.exp(-((lo - c1) ** 2 + (la + 33) ** 2) / 1.2)
                  - 12 * np.exp(-((lo - c2) ** 2 + (la + 34.5) ** 2) / 0.6))
    land = (la > -31.0) & (lo < 21.5)
    ssh[:, land] = np.nan
    ds = xr.Dataset(
        {"adt": (("time", "latitude", "longitude"), ssh.astype("float32"),
                 {"standard_name": "sea_surface_height_above_geoid", "units": "cm",
                  "long_name": "absolute dynamic topography"})},
        coords={"time": ("time", days, {"units": "days since 2002-01-01", "standard_name": "time",
                                        "calendar": "standard"}),
                "latitude": ("latitude", lat, {"units": "degrees_north", "standard_name": "latitude"}),
                "longitude": ("longitude", lon, {"units": "degrees_east",
                                                 "standard_name": "longitude"})})
    ds.to_netcdf(path, encoding={"adt": {"_FillValue": -32767.0}})
    return ds


def test_altimetry_file_to_forecast_and_back(tmp_path):
    _write_ssh_file(tmp_path / "adt.nc")
    raw = xr.open_dataset(tmp_path / "adt.nc")
    vel = geostrophic_velocity(raw)  # m s-1, east/north, NaN next to land
    assert vel.u.attrs["units"] == "m s-1" and float(np.nanmax(np.hypot(vel.u, vel.v))) > 0.05
    metric = to_metric_grid(vel)
    assert xequi.fields.grid_spacing(metric).anisotropy == pytest.approx(1.0, abs=1e-6)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*cells are not square")  # square: no warning
        model, hist = xequi.fit("rot-resnet", metric.isel(time=slice(0, 20)), t_in=2, epochs=1,
                                rollout_steps=1, batch_size=4, window=16, val_fraction=0.25,
                                progress=False, device="cpu", model_kwargs={"widths": (2,)},
                                fields_kwargs={"fill": "zero"})
    inits = list(metric.time.values[21:25])
    fc = metric.equi.forecast(model, steps=3, init_time=inits, fill="zero", progress=False)
    # back on the user's lat/lon grid, east/north again, land where the user's land is
    back = from_metric_grid(fc.isel(lead_time=0).drop_vars("valid_time").rename(init_time="time"),
                            vel.isel(time=slice(21, 25)))
    assert back.u.dims[-2:] == ("latitude", "longitude")
    user_land = vel.u.isel(time=21).isnull().values
    assert np.isnan(back.u.values[:, user_land]).all()
    assert np.isfinite(back.u.values[:, ~user_land]).mean() > 0.9
    sk = skill(fc, metric, reference="persistence", variables=["velocity"], n_boot=50)
    assert np.isfinite(sk.skill.values).all()
    # the same in one call: forecast(..., regrid=True) regrids, forecasts, and comes back
    once = vel.equi.forecast(model, steps=3, init_time=inits, fill="zero", progress=False,
                             regrid=True)
    by_hand = from_metric_grid(fc, vel)
    np.testing.assert_allclose(once.u.values, by_hand.u.values, rtol=1e-6, atol=1e-7)
    assert once.u.dims[-2:] == ("latitude", "longitude") and "forecast_regridded" in once.attrs
    err = metric.equi.equivariance_error(model, "rot90", init_time=inits[:1], k=1,
                                         forecast_kwargs={"fill": "zero"})
    assert float(err.max()) < 1e-5
