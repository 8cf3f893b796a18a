"""Tests of xequi.regrid: square metric grid and back, vector rotation, ROMS angle rotation."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest
import xarray as xr

from xequi.errors import GridError, ParameterError, UnitsError, VariableNotFoundError
from xequi.fields import EARTH_RADIUS, grid_spacing, warn_rotation_on_anisotropic_grid
from xequi.regrid import from_metric_grid, rotate_to_east_north, rotate_to_grid, to_metric_grid

L_EDDY = 600e3  # e-folding radius of the analytic eddy (24 cells of 25 km)


def eddy(nt=2, land=True):
    """A Gaussian eddy (east/north velocity) on a 0.25 deg, 41 x 81 lat/lon box at 35 S, with a
    land patch, like GlobCurrent's Agulhas grid."""
    lat = -40 + 0.25 * np.arange(41)
    lon = 10 + 0.25 * np.arange(81)
    LON, LAT = np.meshgrid(lon, lat)
    x = EARTH_RADIUS * np.cos(np.deg2rad(-35)) * np.deg2rad(LON - 20)
    y = EARTH_RADIUS * np.deg2rad(LAT + 35)
    psi = np.exp(-(x ** 2 + y ** 2) / L_EDDY ** 2)
    u, v = 2 * y / L_EDDY * psi, -2 * x / L_EDDY * psi
    if land:
        u[5:9, 5:12] = np.nan
        v[5:9, 5:12] = np.nan
    scale = np.arange(1, nt + 1)[:, None, None]
    time = np.datetime64("2002-01-01", "ns") + np.arange(nt) * np.timedelta64(1, "D")
    return xr.Dataset(
        {"uo": (("time", "lat", "lon"), u * scale,
                {"standard_name": "eastward_sea_water_velocity", "units": "m s-1"}),
         "vo": (("time", "lat", "lon"), v * scale,
                {"standard_name": "northward_sea_water_velocity", "units": "m s-1"}),
         "note": ("time", np.arange(nt, dtype=float))},
        coords={"time": time, "lat": ("lat", lat, {"units": "degrees_north"}),
                "lon": ("lon", lon, {"units": "degrees_east"})},
        attrs={"title": "eddy"})


@pytest.fixture(scope="module")
def ds():
    return eddy()


@pytest.fixture(scope="module")
def out(ds):
    return to_metric_grid(ds)


def test_metric_grid_has_square_cells_and_metadata(ds, out):
    g = grid_spacing(out)
    assert abs(g.anisotropy - 1) < 1e-6
    assert not warn_rotation_on_anisotropic_grid(g, ["rot90"])
    assert out.uo.dims == ("time", "y", "x") and out.x.attrs["units"] == "m"
    assert out.x.attrs["axis"] == "X" and out.y.attrs["axis"] == "Y"
    assert out.lat.dims == ("y", "x") and out.lon.attrs["units"] == "degrees_east"
    assert out.uo.attrs["standard_name"] == "sea_water_x_velocity"
    assert out.vo.attrs["standard_name"] == "sea_water_y_velocity"
    assert "+proj=aeqd" in out.attrs["xequi_regrid_proj"] and out.attrs["title"] == "eddy"
    assert "note" in out and out.note.dims == ("time",)
    # default spacing: mean of the native dy (27.8 km) and dx at 35 S (22.8 km)
    dy = EARTH_RADIUS * np.deg2rad(0.25)
    assert abs(float(out.x[1] - out.x[0]) - dy * (1 + np.cos(np.deg2rad(35))) / 2) < 50
    assert ds.uo.attrs["standard_name"] == "eastward_sea_water_velocity"  # input untouched


def test_round_trip_error_and_masks(ds, out):
    back = from_metric_grid(out, ds)
    assert back.uo.dims == ds.uo.dims and back.uo.attrs == ds.uo.attrs
    assert back.attrs == ds.attrs
    np.testing.assert_array_equal(back.lat, ds.lat)
    # land stays land, no valid cell lost (not even at the domain edge)
    np.testing.assert_array_equal(back.uo.isnull(), ds.uo.isnull())
    speed = float(np.hypot(ds.uo, ds.vo).max())
    land = ds.uo.isel(time=0).isnull()
    near = land.rolling(lat=5, lon=5, center=True, min_periods=1).max().astype(bool)
    inner = ~near
    inner[[0, -1], :] = False
    inner[:, [0, -1]] = False
    err = max(float(abs(back[n] - ds[n]).where(inner).max()) for n in ("uo", "vo")) / speed
    assert err < 4e-3, err  # measured 2.9e-3 (linear interpolation twice, L / dx = 24)
    err_all = max(float(abs(back[n] - ds[n]).max()) for n in ("uo", "vo")) / speed
    assert err_all < 5e-2, err_all  # measured 3.1e-2 at the domain edge


def test_velocity_rotated_by_grid_convergence(ds, out):
    """A northward unit current becomes the direction of the projected meridian."""
    north = ds.assign(uo=ds.uo * 0, vo=ds.vo * 0 + 1)
    res = to_metric_grid(north)
    proj = pyproj.Proj(res.attrs["xequi_regrid_proj"])
    j, i = 20, 70  # east of the centre: in the south the meridians lean towards +x
    lon, lat = float(res.lon[j, i]), float(res.lat[j, i])
    x0, y0 = proj(lon, lat)
    x1, y1 = proj(lon, lat + 1e-4)
    want = np.array([x1 - x0, y1 - y0]) / np.hypot(x1 - x0, y1 - y0)
    got = np.array([float(res.uo[0, j, i]), float(res.vo[0, j, i])])
    assert want[0] > 0.05
    np.testing.assert_allclose(got, want, atol=2e-3)
    np.testing.assert_allclose(np.hypot(*got), 1, atol=1e-9)


def test_spacing_units_and_errors(ds):
    a = to_metric_grid(ds.isel(time=0), spacing="50 km")
    assert float(a.x[1] - a.x[0]) == pytest.approx(50e3)
    with pytest.raises(UnitsError, match="not a length"):
        to_metric_grid(ds, spacing="3 s")
    with pytest.raises(UnitsError):
        to_metric_grid(ds, spacing="3 furlongz")
    with pytest.raises(ParameterError, match="positive"):
        to_metric_grid(ds, spacing=-1)
    with pytest.raises(ParameterError, match="method"):
        to_metric_grid(ds, method="cubic")
    bare = ds.drop_vars(["lat", "lon"]).rename(lat="a", lon="b")
    with pytest.raises(VariableNotFoundError, match="Fix: pass lat="):
        to_metric_grid(bare)
    shuffled = ds.isel(lon=[0, 2, 1, 3, 4])
    with pytest.raises(GridError, match="monotonic"):
        to_metric_grid(shuffled)
    with pytest.raises(GridError, match="NaN"):
        to_metric_grid(ds.assign_coords(lat=ds.lat.where(ds.lat > -39)))
    with pytest.raises(GridError, match="to_metric_grid"):
        from_metric_grid(ds, ds)


def curvilinear(angle_deg=20.0):
    """A small ROMS-like rotated grid: 2-D lat_rho / lon_rho, 10 km cells turned by ``angle``."""
    ny, nx = 30, 40
    a = np.deg2rad(angle_deg)
    jj, ii = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    xe, yn = 10e3 * (ii * np.cos(a) - jj * np.sin(a)), 10e3 * (ii * np.sin(a) + jj * np.cos(a))
    proj = pyproj.Proj(f"+proj=aeqd +lat_0=-30 +lon_0=15 +R={EARTH_RADIUS:.0f} +units=m")
    lon, lat = proj(xe, yn, inverse=True)
    temp = 10 + 1e-6 * xe + 2e-6 * yn
    temp[:3, :4] = np.nan
    return xr.Dataset(
        {"temp": (("eta_rho", "xi_rho"), temp, {"units": "degC"}),
         "mask_rho": (("eta_rho", "xi_rho"), np.ones((ny, nx), dtype=int))},
        coords={"lat_rho": (("eta_rho", "xi_rho"), lat, {"units": "degree_north"}),
                "lon_rho": (("eta_rho", "xi_rho"), lon, {"units": "degree_east"})})


def test_curvilinear_grid_round_trip():
    ds = curvilinear()
    out = to_metric_grid(ds)
    assert out.temp.dims == ("y", "x")
    assert abs(grid_spacing(out).anisotropy - 1) < 1e-6
    assert float(out.x[1] - out.x[0]) == pytest.approx(10e3, rel=1e-3)
    # the bounding-box corners outside the rotated grid are NaN
    assert int(out.temp.isnull().sum()) > 0.1 * out.temp.size
    back = from_metric_grid(out, ds)
    np.testing.assert_array_equal(back.temp.isnull(), ds.temp.isnull())
    err = abs(back.temp - ds.temp)
    assert float(err[1:-1, 1:-1].max()) < 5e-3  # measured 3.6e-3 (of a 7 degC range)
    assert float(err.max()) < 5e-2  # the outermost ring: weights over inside points only
    assert back.temp.attrs == ds.temp.attrs and "lat_rho" in back.coords


def test_rotate_roms_angle_known_case_and_round_trip():
    rng = np.random.default_rng(0)
    u, v, ang = rng.normal(size=(3, 4, 5))
    ds = xr.Dataset({"u": (("eta", "xi"), u, {"standard_name": "sea_water_x_velocity"}),
                     "v": (("eta", "xi"), v, {"standard_name": "sea_water_y_velocity"}),
                     "angle": (("eta", "xi"), ang, {"units": "radians"})})
    en = rotate_to_east_north(ds)
    np.testing.assert_allclose(en.u, u * np.cos(ang) - v * np.sin(ang))
    np.testing.assert_allclose(en.v, u * np.sin(ang) + v * np.cos(ang))
    assert en.u.attrs["standard_name"] == "eastward_sea_water_velocity"
    back = rotate_to_grid(en)
    np.testing.assert_allclose(back.u, u, atol=1e-12)
    np.testing.assert_allclose(back.v, v, atol=1e-12)
    assert back.v.attrs["standard_name"] == "sea_water_y_velocity"
    assert ds.u.attrs["standard_name"] == "sea_water_x_velocity"  # input untouched
    deg = ds.assign(angle=ds.angle * 0 + 90).assign(u=ds.u * 0 + 1, v=ds.v * 0)
    deg.angle.attrs["units"] = "degrees"
    turned = rotate_to_east_north(deg)  # xi points north: a current along xi flows north
    np.testing.assert_allclose(turned.u, 0, atol=1e-12)
    np.testing.assert_allclose(turned.v, 1)
    with pytest.raises(VariableNotFoundError, match="angle"):
        rotate_to_east_north(ds.drop_vars("angle"))
    with pytest.raises(UnitsError, match="not an angle"):
        rotate_to_east_north(ds.assign(angle=ds.angle.assign_attrs(units="m")))


def test_dateline_descending_latitude_and_roms_warning():
    lat = np.arange(-20.0, -30.1, -0.5)  # descending
    lon = np.arange(170.0, 190.1, 0.5)  # 0..360 across the date line
    f = np.sin(np.deg2rad(lon))[None, :] + np.cos(np.deg2rad(lat))[:, None]
    ds = xr.Dataset({"f": (("lat", "lon"), f)},
                    coords={"lat": ("lat", lat, {"units": "degrees_north"}),
                            "lon": ("lon", lon, {"units": "degrees_east"})})
    out = to_metric_grid(ds)
    assert out.f.notnull().sum() > 0.8 * out.f.size
    back = from_metric_grid(out, ds)
    assert back.f.notnull().all()
    assert float(abs(back.f - ds.f)[1:-1, 1:-1].max()) < 5e-4  # measured 1.5e-4
    roms = curvilinear().assign(
        u=(("eta_rho", "xi_rho"), np.ones((30, 40))), v=(("eta_rho", "xi_rho"), np.zeros((30, 40))),
        angle=(("eta_rho", "xi_rho"), np.full((30, 40), 0.3)))
    with pytest.warns(UserWarning, match="rotate_to_east_north"):
        to_metric_grid(roms)
