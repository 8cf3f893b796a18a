"""Opening real current files (GlobCurrent Agulhas 2002) with xequi.open_dataset.

The data live OUTSIDE the repository: ``$XEQUI_GLOBCURRENT_DIR``, else ``../shared/data/
globcurrent_agulhas_2002`` beside the repository root. A missing folder is an error, not a skip.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import intake
import numpy as np
import pytest
import xarray as xr

import xequi
from xequi.catalog import GlobCurrentSource, catalog_path
from xequi.errors import GridError, ParameterError, UnitsError, XequiError
from xequi.fields import from_model_frame, grid_spacing, to_model_frame
from xequi.ocean import DataFilesNotFoundError, latlon_rotation_error, open_dataset

N_FILES = 366


@pytest.fixture(scope="module")
def gc_dir() -> Path:
    env = os.environ.get("XEQUI_GLOBCURRENT_DIR", "").strip()
    path = Path(env) if env else (Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
                                  / "globcurrent_agulhas_2002").resolve()
    if not path.is_dir() or len(list(path.glob("*.nc"))) < N_FILES:
        raise FileNotFoundError(
            f"GlobCurrent test data not found at {path} (from "
            f"{'$XEQUI_GLOBCURRENT_DIR' if env else 'the default ../shared/data/...'}). The ocean "
            "tests need the 366 GlobCurrent Agulhas 2002 files: set XEQUI_GLOBCURRENT_DIR to "
            "their folder, or put shared/ beside the clone.")
    return path


def _checksums(folder: Path) -> dict[str, tuple[str, float]]:
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime)
            for p in sorted(folder.glob("*.nc"))}


@pytest.fixture(scope="module")
def gc_and_sums(gc_dir):
    before = _checksums(gc_dir)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        ds = open_dataset(gc_dir)
    return ds, before, [str(w.message) for w in rec]


@pytest.fixture(scope="module")
def gc(gc_and_sums):
    return gc_and_sums[0]


def test_metadata_repaired(gc):
    ds = gc
    assert ds.sizes["time"] == N_FILES and ds.sizes["lat"] == 41 and ds.sizes["lon"] == 81
    u, v = ds["eastward_eulerian_current_velocity"], ds["northward_eulerian_current_velocity"]
    assert u.attrs["standard_name"] == "surface_eastward_sea_water_velocity"
    assert v.attrs["standard_name"] == "surface_northward_sea_water_velocity"
    assert u.attrs["units"] == "m s-1" and "Unit" not in u.attrs
    assert xequi.fields.parse_units(u.attrs["units"], "u", "velocity") is not None
    assert u.chunks is not None  # lazy (dask)
    assert np.issubdtype(ds.time.dtype, np.datetime64)
    assert str(ds.time.values[0])[:10] == "2002-01-01" and str(ds.time.values[-1])[:10] == "2003-01-01"
    assert ds.time.attrs["axis"] == "T" and ds.time.attrs["standard_name"] == "time"
    assert ds.lat.attrs == {**ds.lat.attrs, "units": "degrees_north", "axis": "Y",
                            "standard_name": "latitude"}
    assert ds.lon.attrs["units"] == "degrees_east" and ds.lon.attrs["axis"] == "X"
    assert xequi.fields.find_velocity(ds) == (u.name, v.name)
    # provenance
    assert ds.attrs["source_file_count"] == N_FILES
    assert "20030101000000" in ds.attrs["source_files"]
    hist = ds.attrs["history"]
    assert "Unit" in hist and "days since 1900-1-1" in hist and "land_mask" in hist


def test_duplicate_field_reported(gc_and_sums):
    ds, _, messages = gc_and_sums
    assert "2003-01-01 is identical to 2002-01-01" in ds.attrs["identical_fields"]
    assert any("2003-01-01" in m and "identical" in m for m in messages)
    assert ds.sizes["time"] == N_FILES  # reported, not removed


def test_duplicates_drop_and_error(gc_dir):
    files = [gc_dir / "20020101000000-GLOBCURRENT-L4-CUReul_hs-ALT_SUM-v02.0-fv01.0.nc",
             gc_dir / "20020102000000-GLOBCURRENT-L4-CUReul_hs-ALT_SUM-v02.0-fv01.0.nc",
             gc_dir / "20020102000000-GLOBCURRENT-L4-CUReul_hs-ALT_SUM-v02.0-fv01.0.nc",
             gc_dir / "20030101000000-GLOBCURRENT-L4-CUReul_hs-ALT_SUM-v02.0-fv01.0.nc"]
    with pytest.warns(UserWarning, match="repeated time stamps: 2002-01-02"):
        rep = open_dataset(files)
    assert "2002-01-02" in rep.attrs["duplicate_times"] and rep.sizes["time"] == 4
    with pytest.warns(UserWarning, match="Dropped"):
        dropped = open_dataset(files, drop_duplicate_times="drop")
    assert [str(t)[:10] for t in dropped.time.values] == ["2002-01-01", "2002-01-02"]
    assert "dropped 2 later duplicate" in dropped.attrs["history"]
    with pytest.raises(GridError, match="identical fields"):
        open_dataset(files, drop_duplicate_times="error")
    with pytest.warns(UserWarning, match="not increasing"):
        back = open_dataset(files[::-1][:2])  # 2003-01-01 then 2002-01-02
    assert "non_monotonic_times" in back.attrs
    with pytest.raises(ParameterError, match="drop_duplicate_times"):
        open_dataset(files, drop_duplicate_times="maybe")


def test_land_mask_travels_and_model_frame(gc):
    ds = gc.isel(time=slice(0, 3))
    lm = ds["land_mask"]
    assert lm.dims == ("lat", "lon") and lm.attrs["flag_meanings"] == "ocean land"
    frac = float(lm.mean())
    assert 0.15 < frac < 0.30  # ~23% land, fixed in time
    u = ds["eastward_eulerian_current_velocity"]
    assert "land_mask" in u.coords  # travels with the variable
    land = lm.values == 1
    uv = u.values
    assert np.isnan(uv[:, land]).all() and np.isfinite(uv[:, ~land]).all()
    mf = to_model_frame(ds, fill="zero")
    assert mf.flip_y  # latitude ascending -> image orientation
    assert float(np.abs(mf.data.values[:, :, mf.mask.values[0]]).max()) == 0.0
    back = from_model_frame(mf.data, mf)
    np.testing.assert_array_equal(np.isnan(back[u.name].values), np.isnan(u.values))
    np.testing.assert_allclose(back[u.name].values, u.values, rtol=1e-6, equal_nan=True)
    # spectra ignore land (diagnostics fills land after detrending and renormalizes)
    from xequi.diagnostics import spectrum

    spec = spectrum(ds.isel(time=0))
    assert np.isfinite(spec.values).all()


def test_grid_spacing_per_latitude_and_anisotropy(gc):
    g = grid_spacing(gc)
    assert g.is_latlon and g.central_lat == pytest.approx(-35.125)
    assert g.dy.to("km").magnitude == pytest.approx(27.80, abs=0.01)
    assert g.dx.to("km").magnitude == pytest.approx(22.74, abs=0.01)
    assert g.anisotropy == pytest.approx(np.cos(np.radians(35.125)), rel=1e-9)
    dxy = g.dx_per_y
    assert dxy.sizes["lat"] == 41
    assert float(dxy.min()) == pytest.approx(21256, abs=2) and float(dxy.max()) == pytest.approx(24044, abs=2)
    assert g.dt.to("day").magnitude == pytest.approx(1.0)


def test_latlon_rotation_error(gc):
    err = latlon_rotation_error(gc, times=6)
    assert err["aspect_ratio_center"] == pytest.approx(0.8179, abs=1e-4)
    assert err["aspect_ratio_min"] == pytest.approx(0.7646, abs=1e-4)
    assert err["aspect_ratio_max"] == pytest.approx(0.8649, abs=1e-4)
    assert err["aspect_ratio_spread"] == pytest.approx(0.1226, abs=1e-3)
    assert err["field_error_identity"] == 0.0 and err["field_error_rot360"] == 0.0
    assert err["field_error_rot90"] > 0.3  # far from exact on this domain
    assert 0.0 < err["field_error_rot180"] < err["field_error_rot90"]


def test_latlon_rotation_error_small_near_equator():
    # control: square cells near the equator -> only interpolation error remains
    lat = np.linspace(-2.5, 2.5, 21)
    lon = np.linspace(10.0, 15.0, 21)
    LA, LO = np.meshgrid(lat, lon, indexing="ij")
    psi = np.sin(np.radians(LA) * 40) * np.cos(np.radians(LO - 12.5) * 30)
    u = -np.gradient(psi, axis=0)
    v = np.gradient(psi, axis=1)
    ds = xr.Dataset({"u": (("lat", "lon"), u, {"units": "m s-1",
                                                "standard_name": "eastward_sea_water_velocity"}),
                     "v": (("lat", "lon"), v, {"units": "m s-1",
                                                "standard_name": "northward_sea_water_velocity"})},
                    coords={"lat": ("lat", lat, {"units": "degrees_north"}),
                            "lon": ("lon", lon, {"units": "degrees_east"})})
    err = latlon_rotation_error(ds)
    assert err["field_error_rot90"] < 0.02 and err["aspect_ratio_spread"] < 0.01


def test_units_policy(tmp_path, gc_dir):
    src = xr.open_dataset(gc_dir / "20020101000000-GLOBCURRENT-L4-CUReul_hs-ALT_SUM-v02.0-fv01.0.nc",
                          decode_times=False).load()
    bad = src.copy()
    for n in bad.data_vars:
        bad[n].attrs = {}
    path = tmp_path / "nounits.nc"
    bad.to_netcdf(path)
    with pytest.raises(UnitsError, match="eastward_eulerian_current_velocity.*no units") as ei:
        open_dataset(path)
    assert "units=" in str(ei.value)
    ok = open_dataset(path, units="m s-1")
    assert ok["northward_eulerian_current_velocity"].attrs["units"] == "m s-1"
    assert "from the caller" in ok.attrs["history"]
    over = open_dataset(path, units={"u": "cm s-1", "v": "cm s-1"})
    assert over["eastward_eulerian_current_velocity"].attrs["units"] == "cm s-1"
    with pytest.raises(UnitsError, match="dimensionality"):
        open_dataset(path, units="kg")
    # user standard_names override; time units from the caller
    notime = src.copy()
    notime["time"].attrs = {}
    p2 = tmp_path / "notime.nc"
    notime.to_netcdf(p2)
    with pytest.raises(UnitsError, match="time_units="):
        open_dataset(p2)
    d2 = open_dataset(p2, time_units="days since 1900-01-01",
                      standard_names={"eastward_eulerian_current_velocity": "eastward_sea_water_velocity"})
    assert str(d2.time.values[0])[:10] == "2002-01-01"
    assert d2["eastward_eulerian_current_velocity"].attrs["standard_name"] == "eastward_sea_water_velocity"


def test_dim_names_come_from_fields(tmp_path):
    from xequi import fields, ocean

    # one list of axis names (xequi.fields); ocean's lat/lon/time names are derived from it
    assert ocean._LAT_NAMES == (*fields.GEOGRAPHIC_NAMES["Y"], "y")
    assert ocean._LON_NAMES == (*fields.GEOGRAPHIC_NAMES["X"], "x")
    assert ocean._TIME_NAMES == tuple(n for n in fields.AXIS_NAMES["T"] if n != "valid_time")
    rng = np.random.default_rng(0)
    ds = xr.Dataset(
        {n: (("TIME", "LAT", "LON"), rng.standard_normal((2, 3, 4)), {"units": "m s-1"})
         for n in ("eastward_current", "northward_current")},
        coords={"TIME": ("TIME", [0.0, 1.0], {"units": "days since 2002-01-01"}),
                "LAT": ("LAT", [-40.0, -39.5, -39.0]), "LON": ("LON", [15.0, 15.5, 16.0, 16.5])})
    ds.to_netcdf(tmp_path / "a.nc")
    out = open_dataset(tmp_path / "a.nc")
    assert out["LAT"].attrs["standard_name"] == "latitude" and out["LON"].attrs["axis"] == "X"
    assert out["land_mask"].dims == ("LAT", "LON")
    # and fields finds the same axes in what ocean returns
    assert fields.find_axes(out) == fields.Axes("LON", "LAT", "TIME")


def test_missing_paths(tmp_path):
    with pytest.raises(DataFilesNotFoundError, match="does not exist"):
        open_dataset(tmp_path / "nowhere")
    with pytest.raises(DataFilesNotFoundError, match="no netCDF"):
        open_dataset(tmp_path)
    with pytest.raises(DataFilesNotFoundError, match="matches no file"):
        open_dataset(str(tmp_path / "*.nc"))
    with pytest.raises(DataFilesNotFoundError, match="empty"):
        open_dataset([])
    with pytest.raises(XequiError):
        open_dataset("")
    assert issubclass(DataFilesNotFoundError, FileNotFoundError)


def test_catalog_entry(gc_dir, monkeypatch):
    monkeypatch.setenv("XEQUI_GLOBCURRENT_DIR", str(gc_dir))
    cat = intake.open_catalog(str(catalog_path()))
    assert "globcurrent_agulhas_2002" in list(cat)
    src = cat.globcurrent_agulhas_2002(pattern="200201*.nc")
    assert isinstance(src, GlobCurrentSource) and src.path == str(gc_dir)
    ds = src.to_dask()
    assert ds.sizes["time"] == 31 and ds["eastward_eulerian_current_velocity"].chunks is not None
    assert ds["eastward_eulerian_current_velocity"].attrs["units"] == "m s-1"
    # the same through xequi.catalog(), with the default taken from the environment
    assert xequi.catalog().globcurrent_agulhas_2002().path == str(gc_dir)
    monkeypatch.delenv("XEQUI_GLOBCURRENT_DIR")
    fallback = intake.open_catalog(str(catalog_path())).globcurrent_agulhas_2002(pattern="2002010[12]*.nc")
    assert fallback.path == ""
    default = Path(xequi.__file__).resolve().parents[1].parent / "shared" / "data" / "globcurrent_agulhas_2002"
    if default.is_dir():  # the ../shared fallback beside the repository
        assert fallback.to_dask().sizes["time"] == 2
    else:
        with pytest.raises(DataFilesNotFoundError, match="XEQUI_GLOBCURRENT_DIR"):
            fallback.to_dask()
    # a wrong folder is a clear error
    bad = cat.globcurrent_agulhas_2002(path=str(gc_dir / "missing"))
    with pytest.raises(DataFilesNotFoundError, match="missing"):
        bad.to_dask()


def test_inputs_never_modified(gc_and_sums, gc_dir):
    ds, before, _ = gc_and_sums
    ds.isel(time=slice(0, 2)).load()
    assert _checksums(gc_dir) == before


def test_the_shipped_globcurrent_model_forecasts_the_real_currents(gc):
    """One ocean model ships: trained on GlobCurrent Jan-Sep 2002, its card says so (data,
    split, selection on validation, budget, device, test skill with intervals, verdict), and it
    forecasts the real currents (land filled with zeros for the model, NaN in the output)."""
    import xequi

    names = [n for n in xequi.available_pretrained() if n.endswith("-globcurrent")]
    assert len(names) == 1, names
    model = xequi.load_model(names[0])
    card = model.card
    training = card["training"]
    assert "2002-01-01..2002-09-30" in training["data"] and "GlobCurrent" in training["data"]
    assert "validation" in training["selection"] and training["budget"]["device"].startswith("cpu")
    test = card["metrics"]["test"]
    assert test["period"] == "2002-10-01..2002-12-31" and test["verdict"]
    lo_hi = test["skill_vs_persistence"][0]
    assert lo_hi[1] <= lo_hi[0] <= lo_hi[2] and len(test["rmse"]) == len(test["persistence_rmse"])
    ds = gc.sel(time=slice("2002-10-10", "2002-10-20"))
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        fc = ds.equi.forecast(model, steps=2, init_time=[ds.time.values[5]], fill="zero",
                              progress=False)
    # a rotation model on the lat/lon grid is told that the index-grid turn is not physical
    told = [str(w.message) for w in rec if "cells are not square" in str(w.message)]
    assert bool(told) == ("rot90" in card["symmetries"])
    u = fc[[v for v in fc.data_vars if "east" in v or v == "u"][0]]
    assert u.attrs["units"] in ("m s-1", "m/s")
    ocean = np.isfinite(ds[u.name].isel(time=0)).values
    assert np.isfinite(u.values[..., ocean]).all() and np.isnan(u.values[..., ~ocean]).all()


def test_metadata_variables_with_odd_units_do_not_stop_open_dataset(tmp_path):
    """Issue 16.4: a ``forecast_reference_time`` variable in 'days since ... +00:00' (not pint
    units) stopped open_dataset with a UnitsError; it is now decoded as times, and other
    metadata in units pint cannot read is left as it is. The velocity is still checked."""
    rng = np.random.default_rng(0)
    ds = xr.Dataset(
        {n: (("time", "lat", "lon"), rng.standard_normal((3, 4, 5)), {"units": "m s-1"})
         for n in ("eastward_current", "northward_current")},
        coords={"time": ("time", [0.0, 1.0, 2.0], {"units": "hours since 2002-01-01"}),
                "lat": ("lat", [-40.0, -39.5, -39.0, -38.5]),
                "lon": ("lon", [15.0, 15.5, 16.0, 16.5, 17.0])})
    ds["forecast_reference_time"] = ("time", [11688.0] * 3,
                                     {"units": "days since 1970-01-01 00:00:00 +00:00"})
    ds["datum"] = ((), 0.0, {"units": "meters above mean sea level"})
    ds.to_netcdf(tmp_path / "odd.nc")
    out = open_dataset(tmp_path / "odd.nc")
    frt = out["forecast_reference_time"]
    assert np.issubdtype(frt.dtype, np.datetime64)
    assert str(frt.values[0])[:10] == "2002-01-01"
    assert out["datum"].attrs["units"] == "meters above mean sea level"
    assert "left as they are" in out.attrs["history"]
    mf = to_model_frame(out, target_units="m s-1")
    assert mf.names == ("eastward_current", "northward_current")
    bad = ds.copy()
    bad["eastward_current"].attrs["units"] = "days since 1970-01-01"
    bad.to_netcdf(tmp_path / "badvel.nc")
    with pytest.raises(UnitsError, match="eastward_current"):
        open_dataset(tmp_path / "badvel.nc")
