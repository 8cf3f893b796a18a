"""Geostrophic velocity from sea-surface height (``xequi.geostrophy``, ``xequi.ocean``)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from xequi.errors import GridError, ParameterError, UnitsError, VariableNotFoundError
from xequi.fields import EARTH_RADIUS, find_velocity, parse_units
from xequi.geostrophy import OMEGA, STANDARD_GRAVITY, geostrophic_velocity

A, L = 0.2, 100e3  # eddy amplitude (m) and e-folding radius (m)
LAT0, LON0 = -30.0, 20.0


def _latlon_eddy(step=0.04, half=3.0, nt=2, lat0=LAT0):
    """A Gaussian eddy on a lat/lon box, with its exact geostrophic velocity on the sphere."""
    lat = np.arange(lat0 - half, lat0 + half + step / 2, step)
    lon = np.arange(LON0 - half, LON0 + half + step / 2, step)
    phi, lam = np.deg2rad(lat)[:, None], np.deg2rad(lon)[None, :]
    X = EARTH_RADIUS * np.cos(np.deg2rad(lat0)) * (lam - np.deg2rad(LON0))
    Y = EARTH_RADIUS * (phi - np.deg2rad(lat0))
    eta = A * np.exp(-(X ** 2 + Y ** 2) / L ** 2)
    deta_dlam = eta * (-2 * X / L ** 2) * EARTH_RADIUS * np.cos(np.deg2rad(lat0))
    deta_dphi = eta * (-2 * Y / L ** 2) * EARTH_RADIUS
    f = 2 * OMEGA * np.sin(phi)
    u = -STANDARD_GRAVITY / f * deta_dphi / EARTH_RADIUS
    v = STANDARD_GRAVITY / f * deta_dlam / (EARTH_RADIUS * np.cos(phi))
    scale = 1.0 + 0.1 * np.arange(nt)[:, None, None]
    ds = xr.Dataset(
        {"adt": (("time", "lat", "lon"), scale * eta,
                 {"standard_name": "sea_surface_height_above_geoid", "units": "m"})},
        coords={"time": np.arange(nt).astype("datetime64[D]"),
                "lat": ("lat", lat, {"units": "degrees_north", "standard_name": "latitude"}),
                "lon": ("lon", lon, {"units": "degrees_east", "standard_name": "longitude"})},
        attrs={"title": "synthetic altimetry"})
    exact = xr.Dataset({"u": (("time", "lat", "lon"), scale * u),
                        "v": (("time", "lat", "lon"), scale * v)}, coords=ds.coords)
    return ds, exact


def _rel_error(out, exact, margin=2):
    inner = dict(lat=slice(margin, -margin), lon=slice(margin, -margin))
    speed = float(np.hypot(exact.u, exact.v).max())
    return max(float(abs(out[c] - exact[c]).isel(**inner).max()) for c in ("u", "v")) / speed


def _projected_eddy(n=81, dx_km=5.0, units="km"):
    x = (np.arange(n) - n // 2) * dx_km
    X, Y = np.meshgrid(x * 1e3, x * 1e3)
    eta = A * np.exp(-(X ** 2 + Y ** 2) / L ** 2)
    f = 2 * OMEGA * np.sin(np.deg2rad(LAT0))
    u = -STANDARD_GRAVITY / f * eta * (-2 * Y / L ** 2)
    v = STANDARD_GRAVITY / f * eta * (-2 * X / L ** 2)
    factor = {"km": 1.0, "m": 1e3}[units]
    ds = xr.Dataset({"ssh": (("y", "x"), eta, {"units": "m"})},
                    coords={"x": ("x", x * factor, {"units": units, "axis": "X"}),
                            "y": ("y", x * factor, {"units": units, "axis": "Y"})})
    return ds, xr.Dataset({"u": (("y", "x"), u), "v": (("y", "x"), v)})


# --------------------------------------------------------------------------------------------
# (1) analytic Gaussian eddy
# --------------------------------------------------------------------------------------------
def test_gaussian_eddy_on_latlon_matches_analytic_geostrophy():
    ds, exact = _latlon_eddy()
    out = geostrophic_velocity(ds)
    err = _rel_error(out, exact)
    assert err < 5e-3, err  # measured 1.5e-3 (0.04 deg ~ 4 km cells, L = 100 km)
    coarse, exact2 = _latlon_eddy(step=0.08, nt=1)  # second order: twice the step, ~4x the error
    assert 3 < _rel_error(geostrophic_velocity(coarse), exact2) / err < 5
    assert float(np.hypot(exact.u, exact.v).max()) > 0.2  # a real eddy, not a null test
    # southern hemisphere, high in the centre: counter-clockwise (v > 0 east of the centre)
    assert float(out.v.sel(lat=LAT0, lon=LON0 + 0.4, method="nearest").isel(time=0)) > 0


def test_gaussian_eddy_on_projected_f_plane_matches_analytic():
    ds, exact = _projected_eddy()
    out = geostrophic_velocity(ds, lat=LAT0)
    err = _rel_error(out.rename(y="lat", x="lon"), exact.rename(y="lat", x="lon"))
    assert err < 5e-3, err  # measured 1.9e-3 (5 km cells, L = 100 km)
    assert out.u.attrs["standard_name"] == "surface_geostrophic_sea_water_x_velocity"
    # the same field with x / y in metres, and with a 2-D latitude coordinate
    same = geostrophic_velocity(_projected_eddy(units="m")[0], lat=LAT0)
    xr.testing.assert_allclose(out.drop_vars(["x", "y"]), same.drop_vars(["x", "y"]))
    lat2d = xr.DataArray(np.full((81, 81), LAT0), dims=("y", "x"),
                         attrs={"units": "degrees_north"})
    curvi = geostrophic_velocity(ds.assign_coords(lat=lat2d))
    np.testing.assert_allclose(curvi.u.values, out.u.values)


def test_global_longitude_is_periodic():
    lat = np.arange(-59.0, 60.0, 2.0)
    lon = np.arange(0.0, 360.0, 2.0)
    eta = 0.1 * np.cos(np.deg2rad(lat))[:, None] * np.sin(np.deg2rad(lon))[None, :]
    ds = xr.Dataset({"zos": (("lat", "lon"), eta, {"units": "m"})},
                    coords={"lat": ("lat", lat, {"units": "degrees_north"}),
                            "lon": ("lon", lon, {"units": "degrees_east"})})
    v = geostrophic_velocity(ds).v
    # d(eta)/dlon = 0.1 cos(lat) cos(lon): the edges are as accurate as the interior
    exact = (STANDARD_GRAVITY / (2 * OMEGA * np.sin(np.deg2rad(lat)))[:, None]
             * 0.1 * np.cos(np.deg2rad(lon))[None, :] / EARTH_RADIUS)
    ok = np.abs(lat) >= 5
    err = np.abs(v.values - exact)[ok]
    assert err.max() < 1e-3 * np.abs(exact[ok]).max()


# --------------------------------------------------------------------------------------------
# (2) units, (3) equator, (4) land
# --------------------------------------------------------------------------------------------
def test_centimetres_give_the_same_result_as_metres():
    ds, _ = _latlon_eddy(step=0.1, nt=1)
    cm = ds.copy()
    cm["adt"] = (ds.adt * 100).assign_attrs(ds.adt.attrs, units="cm")
    xr.testing.assert_allclose(geostrophic_velocity(cm)[["u", "v"]],
                               geostrophic_velocity(ds)[["u", "v"]], rtol=1e-12)
    # units= for a variable without units attribute
    bare = cm.copy()
    bare["adt"] = cm.adt.copy()
    del bare["adt"].attrs["units"]
    xr.testing.assert_allclose(geostrophic_velocity(bare, units={"adt": "cm"}).u,
                               geostrophic_velocity(ds).u)


def test_equatorial_band_is_nan_and_only_it():
    lat = np.arange(-10.0, 10.01, 0.5)
    lon = np.arange(0.0, 10.01, 0.5)
    eta = 0.1 * np.sin(np.deg2rad(4 * lon))[None, :] + 0.01 * lat[:, None] ** 2 / 100
    ds = xr.Dataset({"ssh": (("lat", "lon"), eta, {"units": "m"})},
                    coords={"lat": ("lat", lat, {"units": "degrees_north"}),
                            "lon": ("lon", lon, {"units": "degrees_east"})})
    for band in (5.0, 2.0):
        out = geostrophic_velocity(ds, equator_band=band)
        inside = (np.abs(lat) < band)[:, None] & np.ones(lon.size, bool)
        for c in ("u", "v"):
            assert np.array_equal(np.isnan(out[c].values), inside), (c, band)


def test_land_nans_spread_to_neighbours_only():
    ds, _ = _latlon_eddy(step=0.1, nt=1)
    land = np.zeros((ds.sizes["lat"], ds.sizes["lon"]), bool)
    land[20:24, 30:33] = True
    land[40, 0] = True  # on the domain edge
    wet = ds.copy()
    wet["adt"] = ds.adt.where(~land)
    before = wet.copy(deep=True)
    out = geostrophic_velocity(wet)
    xr.testing.assert_identical(wet, before)  # the input is not modified
    near_y = land | np.roll(land, 1, 0) | np.roll(land, -1, 0)
    near_x = land | np.roll(land, 1, 1) | np.roll(land, -1, 1)
    near_x[40, -1] = False  # np.roll wraps; the grid does not
    assert np.array_equal(np.isnan(out.u.values[0]), near_y)
    assert np.array_equal(np.isnan(out.v.values[0]), near_x)


# --------------------------------------------------------------------------------------------
# (5) CF names, units, dims, discovery
# --------------------------------------------------------------------------------------------
def test_output_is_cf_labelled_and_found_as_velocity():
    ds, _ = _latlon_eddy(step=0.2, nt=3)
    out = geostrophic_velocity(ds)
    assert out.u.attrs["standard_name"] == "surface_geostrophic_eastward_sea_water_velocity"
    assert out.v.attrs["standard_name"] == "surface_geostrophic_northward_sea_water_velocity"
    for c in ("u", "v"):
        assert parse_units(out[c].attrs["units"], c, "velocity") == parse_units("m/s", c)
        assert out[c].dims == ("time", "lat", "lon")
    assert find_velocity(out) == ("u", "v")
    assert out.time.equals(ds.time) and out.attrs["title"] == "synthetic altimetry"
    assert "geostrophic" in out.attrs["history"]
    # a sea-level anomaly gives the anomaly variant; a DataArray works too; so does dask
    sla = ds.adt.assign_attrs(standard_name="sea_surface_height_above_sea_level").rename("sla")
    anom = geostrophic_velocity(sla)
    assert anom.u.attrs["standard_name"].endswith("_assuming_sea_level_for_geoid")
    assert find_velocity(anom) == ("u", "v")
    xr.testing.assert_allclose(anom.u, out.u)
    lazy = geostrophic_velocity(ds.chunk({"time": 1}))
    xr.testing.assert_allclose(lazy.compute().v, out.v)


def test_ocean_reexports_it():
    from xequi import ocean

    assert ocean.geostrophic_velocity is geostrophic_velocity


# --------------------------------------------------------------------------------------------
# (6) errors
# --------------------------------------------------------------------------------------------
def _small():
    ds, _ = _latlon_eddy(step=0.5, nt=1)
    return ds


def test_no_ssh_variable_names_what_was_found():
    ds = _small().rename(adt="h")
    ds["h"].attrs.pop("standard_name")
    with pytest.raises(VariableNotFoundError, match=r"no sea-surface height.*'h'") as e:
        geostrophic_velocity(ds)
    assert "ssh=" in e.value.fix
    assert geostrophic_velocity(ds, ssh="h").u.notnull().any()
    with pytest.raises(VariableNotFoundError, match="ssh='nope'"):
        geostrophic_velocity(ds, ssh="nope")


def test_unit_errors():
    ds = _small()
    bad = ds.copy()
    bad["adt"] = ds.adt.assign_attrs(units="m s-1")
    with pytest.raises(UnitsError, match="'adt'.*a length"):
        geostrophic_velocity(bad)
    bare = ds.copy()
    bare["adt"] = ds.adt.copy()
    del bare["adt"].attrs["units"]
    with pytest.raises(UnitsError, match="no units") as e:
        geostrophic_velocity(bare)
    assert "units=" in e.value.fix
    with pytest.raises(ParameterError, match="units= has keys"):
        geostrophic_velocity(ds, units={"sst": "K"})
    with pytest.raises(UnitsError, match="not an acceleration"):
        geostrophic_velocity(ds, g="9.81 m s-1")
    proj, _ = _projected_eddy(n=9)
    with pytest.raises(UnitsError, match="not a length"):
        geostrophic_velocity(proj.assign_coords(x=proj.x.assign_attrs(units="1")), lat=-30)


def test_grid_errors():
    proj, _ = _projected_eddy(n=9)
    with pytest.raises(VariableNotFoundError, match="no latitude") as e:
        geostrophic_velocity(proj)
    assert "lat=" in e.value.fix
    ds = _small()
    degrees = ds.assign_coords(lat=ds.lat.assign_attrs(units="degrees", standard_name="y"),
                               lon=ds.lon.assign_attrs(units="degrees", standard_name="x"))
    with pytest.raises(GridError, match="angle"):
        geostrophic_velocity(degrees)
    # declaring the coordinates as lat / lon fixes it
    xr.testing.assert_allclose(geostrophic_velocity(degrees, lat="lat", lon="lon").u,
                               geostrophic_velocity(ds).u)
    half = ds.assign_coords(lon=("lon", ds.lon.values * 100e3, {"units": "m"}))
    with pytest.raises(GridError, match="half a lat/lon grid"):
        geostrophic_velocity(half)
    with pytest.raises(ParameterError, match="equatorial band"):
        geostrophic_velocity(proj, lat=2.0)
    with pytest.raises(ParameterError, match="equator_band"):
        geostrophic_velocity(ds, equator_band=-1)
    with pytest.raises(GridError, match="at least 3"):
        geostrophic_velocity(ds.isel(lon=slice(0, 2)))
