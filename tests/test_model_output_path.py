"""The whole path for regional model output, on a synthetic ROMS-like file (issue 16): a
curvilinear grid turned 20 degrees (2-D lat_rho / lon_rho), grid-relative u, v at rho points with
an `angle` variable and distinct land masks, one `s_rho` level, fill values, hourly times in
"hours since" and an unparseable metadata variable; opened, turned to east/north, regridded onto
square metric cells, a tiny rotation model fitted and run there, brought back and turned back to
the grid's axes."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import xequi
from xequi.regrid import from_metric_grid, rotate_to_east_north, rotate_to_grid, to_metric_grid

from test_regrid import curvilinear

torch = pytest.importorskip("torch")
torch.set_num_threads(1)


def _write_roms_like(path, nt=24):
    grid = curvilinear(20.0)
    ny, nx = grid.sizes["eta_rho"], grid.sizes["xi_rho"]
    jj, ii = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    t = np.arange(nt)[:, None, None]
    # an eddy drifting along xi, in grid-relative components
    r2 = (ii - 12 - 0.4 * t) ** 2 + (jj - 15) ** 2
    psi = 0.3 * np.exp(-r2 / 40.0)
    u = -np.gradient(psi, axis=1)
    v = np.gradient(psi, axis=2)
    u[:, :3, :5] = np.nan  # u land (staggered grids: u and v masks differ)
    v[:, :4, :4] = np.nan
    ds = xr.Dataset(
        {"u": (("ocean_time", "s_rho", "eta_rho", "xi_rho"), u[:, None].astype("float32"),
               {"units": "meter second-1", "long_name": "u-momentum component"}),
         "v": (("ocean_time", "s_rho", "eta_rho", "xi_rho"), v[:, None].astype("float32"),
               {"units": "meter second-1", "long_name": "v-momentum component"}),
         "angle": (("eta_rho", "xi_rho"), np.full((ny, nx), np.deg2rad(20.0)),
                   {"units": "radians", "long_name": "angle between XI-axis and EAST"}),
         "forecast_reference_time": ((), 0.0, {"units": "days since 1970-01-01 00:00:00 +00:00"})},
        coords={"ocean_time": ("ocean_time", np.arange(nt, dtype=float),
                               {"units": "hours since 2002-06-01", "standard_name": "time"}),
                "s_rho": ("s_rho", [-0.0125], {"standard_name": "ocean_s_coordinate_g2"}),
                "lat_rho": grid.lat_rho, "lon_rho": grid.lon_rho})
    ds.to_netcdf(path, encoding={n: {"_FillValue": 1e37} for n in ("u", "v")})


def test_roms_like_file_to_forecast_and_back(tmp_path):
    _write_roms_like(tmp_path / "roms.nc")
    raw = xr.open_dataset(tmp_path / "roms.nc")
    en = rotate_to_east_north(raw, angle="angle")
    assert en.u.attrs["standard_name"] == "eastward_sea_water_velocity"
    metric = to_metric_grid(en, lat="lat_rho", lon="lon_rho")
    assert abs(xequi.fields.grid_spacing(metric).anisotropy - 1) < 1e-6
    assert metric.u.sizes["s_rho"] == 1  # one level, carried; fit and forecast squeeze it
    model, _ = xequi.fit("rot-resnet", metric.isel(ocean_time=slice(0, 16)), t_in=2, epochs=1,
                         rollout_steps=1, batch_size=4, window=16, val_fraction=0.25,
                         progress=False, device="cpu", model_kwargs={"widths": (2,)},
                         fields_kwargs={"fill": "zero"})
    inits = list(metric.ocean_time.values[17:20])
    fc = metric.equi.forecast(model, steps=2, init_time=inits, fill="zero", progress=False)
    assert "s_rho" in fc.attrs.get("forecast_squeezed_dims", "")
    lead1 = fc.isel(lead_time=0).drop_vars("valid_time").rename(init_time="ocean_time")
    back = rotate_to_grid(from_metric_grid(lead1, en.isel(ocean_time=slice(17, 20))), angle=raw.angle)
    # back on the ROMS grid: the u land is u's, the v land is v's
    u_land = raw.u.isel(ocean_time=0, s_rho=0).isnull().values
    v_land = raw.v.isel(ocean_time=0, s_rho=0).isnull().values
    bu = back.u.squeeze().values
    bv = back.v.squeeze().values
    assert np.isnan(bu[:, u_land]).all() and np.isnan(bv[:, v_land]).all()
    assert np.isfinite(bu[:, ~u_land & ~v_land]).mean() > 0.8
    err = metric.equi.equivariance_error(model, "rot90", init_time=inits[:1], k=1,
                                         forecast_kwargs={"fill": "zero"})
    assert float(err.max()) < 1e-5
