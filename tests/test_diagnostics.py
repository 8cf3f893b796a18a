"""Tests of xequi.diagnostics: spectra (Parseval, analytic modes), ESE, RMSE, ACC, evaluate."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import xarray as xr

import xequi  # noqa: F401  (registers .equi)
from xequi import diagnostics as D
from xequi.errors import (
    GridError,
    MissingDataError,
    ParameterError,
    VariableNotFoundError,
    XequiError,
)


def grid_ds(nt=3, ny=16, nx=24, dx=2.0, dy=3.0, units="km", seed=0, mean=0.0, dims_extra=None):
    rng = np.random.default_rng(seed)
    coords = {"x": ("x", dx * np.arange(nx), {"units": units, "axis": "X"}),
              "y": ("y", dy * np.arange(ny), {"units": units, "axis": "Y"})}
    shape = (ny, nx)
    dims = ("y", "x")
    if nt:
        coords["time"] = ("time", np.datetime64("2020-01-01", "ns")
                          + np.arange(nt) * np.timedelta64(1, "h"))
        shape, dims = (nt, *shape), ("time", *dims)
    ds = xr.Dataset({n: (dims, mean + rng.standard_normal(shape),
                         {"units": "m s-1", "standard_name": sn})
                     for n, sn in (("u", "eastward_sea_water_velocity"),
                                   ("v", "northward_sea_water_velocity"))}, coords=coords)
    return ds


def ke(ds):
    return 0.5 * (ds.u ** 2 + ds.v ** 2).mean(("y", "x"))


def forecast_like(truth, inits, nlead, noise=0.1, seed=1):
    """A synthetic forecast: the truth at valid time plus noise, (init_time, lead_time, y, x)."""
    rng = np.random.default_rng(seed)
    dt = truth.time.values[1] - truth.time.values[0]
    leads = np.arange(1, nlead + 1) * dt
    vt = xr.DataArray(inits[:, None] + leads[None, :], dims=("init_time", "lead_time"))
    fc = truth.sel(time=vt).drop_vars("time")
    fc = fc + noise * rng.standard_normal(fc.u.shape)
    for n in ("u", "v"):
        fc[n].attrs = dict(truth[n].attrs)
    fc = fc.assign_coords(
        init_time=("init_time", inits, {"standard_name": "forecast_reference_time"}),
        lead_time=("lead_time", leads, {"standard_name": "forecast_period"}))
    return fc.assign_coords(valid_time=fc.init_time + fc.lead_time)


# ------------------------------------------------------------------ spectrum


@pytest.mark.parametrize("dx,dy,ny,nx", [(2.0, 3.0, 16, 24), (1.0, 1.0, 15, 15), (5.0, 1.0, 9, 32)])
def test_parseval_random(dx, dy, ny, nx):
    ds = grid_ds(nt=3, ny=ny, nx=nx, dx=dx, dy=dy, mean=0.3)
    E = D.spectrum(ds)
    rel = np.abs(E.sum("wavenumber") - ke(ds)) / ke(ds)
    assert float(rel.max()) < 1e-10
    assert E.dims == ("time", "wavenumber")
    assert int(E.n_modes.sum()) == ny * nx
    assert E.wavenumber.attrs["units"] == "m-1"
    assert "cycles" in E.wavenumber.attrs["convention"]
    assert E.attrs["units"] == "m2 s-2"
    assert "energy per wavenumber bin" in E.attrs["spectral_convention"]


def test_single_mode_and_sum_of_modes():
    n, L = 32, 32 * 1000.0
    x = np.arange(n) * 1000.0
    X, Y = np.meshgrid(x, x)
    u = 2.0 * np.cos(2 * np.pi * 5 * X / L)  # KE = 1/2 * 2^2/2 = 1
    v = 1.0 * np.sin(2 * np.pi * 3 * Y / L) + 0.5 * np.cos(2 * np.pi * (4 * X + 3 * Y) / L)
    c = {"x": ("x", x, {"units": "m"}), "y": ("y", x, {"units": "m"})}
    ds = xr.Dataset({"u": (("y", "x"), u, {"units": "m s-1"}),
                     "v": (("y", "x"), v, {"units": "m s-1"})}, coords=c)
    E = D.spectrum(ds)
    k = E.wavenumber.values * L  # in cycles per domain
    e = dict(zip(np.round(k).astype(int), E.values))
    # mode 5 (u) and |(4, 3)| = 5 (v, amplitude 0.5 -> 0.0625) share the shell k = 5
    assert e[5] == pytest.approx(1.0 + 0.0625, rel=1e-12)
    assert e[3] == pytest.approx(0.25, rel=1e-12)
    assert sum(val for kk, val in e.items() if kk not in (3, 5)) < 1e-20
    # cycles per km and radians
    Ek = D.spectrum(ds, length_units="km")
    assert Ek.wavenumber.attrs["units"] == "km-1"
    assert float(Ek.wavenumber[int(np.argmax(Ek.values))]) == pytest.approx(5 / 32.0)
    Er = D.spectrum(ds, convention="radians")
    assert float(Er.wavenumber[5]) == pytest.approx(2 * np.pi * 5 / L)
    np.testing.assert_allclose(Er.values, E.values)
    assert "radians" in Er.wavenumber.attrs["convention"]


def test_anisotropic_modes_land_in_physical_shells():
    # Lx = 30 x 2 km = 60 km, Ly = 16 x 3 km = 48 km -> dk = max(1/60, 1/48) = 1/48 km-1
    x, y = 2.0 * np.arange(30), 3.0 * np.arange(16)
    X, Y = np.meshgrid(x, y)
    u = np.cos(2 * np.pi * 5 * X / 60.0)  # k = 5/60 = 4/48 km-1 -> shell 4
    v = np.sin(2 * np.pi * 2 * Y / 48.0)  # k = 2/48 km-1 -> shell 2
    ds = xr.Dataset({"u": (("y", "x"), u, {"units": "m s-1"}),
                     "v": (("y", "x"), v, {"units": "m s-1"})},
                    coords={"x": ("x", x, {"units": "km"}), "y": ("y", y, {"units": "km"})})
    E = D.spectrum(ds, length_units="km")
    assert E.attrs["wavenumber_bin_width"] == pytest.approx(1 / 48)
    np.testing.assert_allclose(E.values[[2, 4]], [0.25, 0.25], rtol=1e-12)
    assert float(E.sum()) - 0.5 == pytest.approx(0.0, abs=1e-14)
    # explicit dims and a grid-index (no coordinate) grid
    bare = xr.Dataset({"a": (("j", "i"), u), "b": (("j", "i"), v)})
    Eb = D.spectrum(bare, u="a", v="b", x="i", y="j")
    assert Eb.wavenumber.attrs["units"] == "1" and "units" not in Eb.attrs
    assert float(Eb.sum()) == pytest.approx(0.5, rel=1e-12)


def test_density_conversion_and_units():
    ds = grid_ds(nt=2)
    E = D.spectrum(ds)
    Dn = D.spectrum(ds, density=True)
    dk = E.attrs["wavenumber_bin_width"]
    np.testing.assert_allclose((Dn * dk).sum("wavenumber"), ke(ds), rtol=1e-10)
    assert Dn.attrs["units"] == "m3 s-2"
    assert Dn.attrs["spectral_convention"].startswith("spectral density")
    conv = D.convert_spectrum(E, "density")
    np.testing.assert_allclose(conv.values, Dn.values)
    assert conv.attrs["units"] == "m3 s-2"
    back = D.convert_spectrum(conv, "energy")
    np.testing.assert_allclose(back.values, E.values)
    assert back.attrs["units"] == "m2 s-2"


def test_dims_kept_and_no_mutation():
    ds = grid_ds(nt=2).expand_dims(member=[0, 1])
    before = ds.copy(deep=True)
    E = D.spectrum(ds)
    assert set(E.dims) == {"member", "time", "wavenumber"}
    assert "time" in E.coords and "member" in E.coords
    xr.testing.assert_identical(ds, before)
    E1 = D.spectrum(ds.u)  # a single component: 1/2 |u_hat|^2
    np.testing.assert_allclose(E1.sum("wavenumber"), 0.5 * (ds.u ** 2).mean(("y", "x")),
                               rtol=1e-10)


def test_latlon_and_cm_units():
    lat = np.linspace(30, 40, 11)
    lon = np.linspace(-20, -5, 16)
    rng = np.random.default_rng(3)
    ds = xr.Dataset({"uo": (("lat", "lon"), rng.standard_normal((11, 16)), {"units": "cm/s"}),
                     "vo": (("lat", "lon"), rng.standard_normal((11, 16)), {"units": "m s-1"})},
                    coords={"lat": ("lat", lat, {"units": "degrees_north"}),
                            "lon": ("lon", lon, {"units": "degrees_east"})})
    E = D.spectrum(ds)
    assert "central latitude" in E.attrs["grid_approximation"]
    assert E.attrs["units"] == "cm2 s-2"
    expect = 0.5 * ((ds.uo ** 2) + (100 * ds.vo) ** 2).mean()
    assert float(E.sum()) == pytest.approx(float(expect), rel=1e-10)
    assert E.wavenumber.attrs["units"] == "m-1"


def test_land_zero_fill_parseval_over_ocean_and_rectangle():
    ds = grid_ds(nt=2, ny=16, nx=16, dx=1, dy=1)
    land = np.zeros((16, 16), bool)
    land[:4, :6] = True
    land[12:, 10:] = True
    dsl = ds.where(~xr.DataArray(land, dims=("y", "x")))
    E = D.spectrum(dsl)
    assert np.isfinite(E).all()
    ocean_ke = 0.5 * (dsl.u ** 2 + dsl.v ** 2).mean(("y", "x"), skipna=True)
    np.testing.assert_allclose(E.sum("wavenumber"), ocean_ke, rtol=1e-10)
    Er = D.spectrum(dsl, land="rectangle")
    assert np.isfinite(Er).all()
    assert int(Er.n_modes.sum()) == 8 * 16  # rows 4..11 are all ocean
    with pytest.raises(MissingDataError, match="land"):
        D.spectrum(dsl, land="error")
    # an all-land frame is NaN, not an error
    allnan = dsl.copy()
    allnan["u"] = allnan.u.where(allnan.time != allnan.time[0])
    En = D.spectrum(allnan)
    assert bool(np.isnan(En.isel(time=0)).all()) and bool(np.isfinite(En.isel(time=1)).all())


def test_largest_rectangle():
    ocean = np.ones((5, 7), bool)
    ocean[2, 3] = False
    sy, sx = D._largest_rectangle(ocean)
    assert (sy.stop - sy.start) * (sx.stop - sx.start) == 15
    assert ocean[sy, sx].all()
    rng = np.random.default_rng(0)  # against brute force on small random masks
    for _ in range(40):
        ny, nx = rng.integers(1, 6, 2)
        o = rng.random((ny, nx)) < 0.75
        best = max([(b - a) * (d - c) for a in range(ny) for b in range(a + 1, ny + 1)
                    for c in range(nx) for d in range(c + 1, nx + 1) if o[a:b, c:d].all()],
                   default=0)
        sy, sx = D._largest_rectangle(o)
        assert (sy.stop - sy.start) * (sx.stop - sx.start) == best


def test_detrend_and_window():
    n = 32
    x = np.arange(n, dtype=float)
    X, Y = np.meshgrid(x, x)
    rng = np.random.default_rng(5)
    noise_u, noise_v = rng.standard_normal((2, n, n))
    c = {"x": ("x", x, {"units": "km"}), "y": ("y", x, {"units": "km"})}
    ds = xr.Dataset({"u": (("y", "x"), 3 + 0.2 * X - 0.1 * Y + noise_u, {"units": "m s-1"}),
                     "v": (("y", "x"), -1 + 0.05 * Y + noise_v, {"units": "m s-1"})}, coords=c)
    El = D.spectrum(ds, detrend="linear")
    assert float(El.isel(wavenumber=0)) < 1e-20  # mean (and plane) removed
    # Parseval with the detrended field: total = KE of the residual
    resid = 0.5 * (noise_u.var() + noise_v.var())
    assert float(El.sum()) == pytest.approx(resid, rel=0.02)
    Ec = D.spectrum(ds, detrend="constant")
    assert float(Ec.isel(wavenumber=0)) < 1e-20
    # window energy loss compensated: white noise keeps its total on average (20 frames)
    pure = grid_ds(nt=20, ny=32, nx=32, dx=1, dy=1, seed=7)
    for w in ("hann", ("tukey", 0.5)):
        Ew = D.spectrum(pure, window=w)
        assert float(Ew.sum("wavenumber").mean()) == pytest.approx(float(ke(pure).mean()),
                                                                   rel=0.03)
        assert Ew.attrs["window"] == str(w)
    Ewl = D.spectrum(ds, detrend="linear", window="hann")
    assert float(Ewl.sum()) == pytest.approx(resid, rel=0.15)


def test_spectrum_errors():
    ds = grid_ds(nt=0)
    with pytest.raises(ParameterError, match="detrend"):
        D.spectrum(ds, detrend="quadratic")
    with pytest.raises(ParameterError, match="land"):
        D.spectrum(ds, land="drop")
    with pytest.raises(ParameterError, match="convention"):
        D.spectrum(ds, convention="degrees")
    with pytest.raises(ParameterError, match="window"):
        D.spectrum(ds, window="no-such-window")
    with pytest.raises(VariableNotFoundError):
        D.spectrum(ds.rename(u="a", v="b").drop_vars("b"))
    with pytest.raises(ParameterError):
        D.convert_spectrum(ds.u, "density")


# ------------------------------------------------------------------ TKE spectrum and ESE


def test_tke_spectrum_and_ese():
    ds = grid_ds(nt=5, ny=16, nx=16, dx=1, dy=1)
    S = D.tke_spectrum(ds)
    assert S.dims == ("wavenumber",)
    assert int(S.wavenumber[0]) == 1  # radius 0 dropped
    assert int(S.wavenumber[-1]) == int(np.floor(np.hypot(8, 8)))
    assert S.attrs["units"] == "m4 s-4"
    # a manual computation: TKE, |fft|^2, average per floor(index radius)
    T = 0.5 * (ds.u.var("time") + ds.v.var("time")).values
    P = np.abs(np.fft.fft2(T) / 256) ** 2
    i = np.fft.fftfreq(16) * 16
    r = np.floor(np.hypot(i[:, None], i[None, :])).astype(int)
    assert float(S.sel(wavenumber=3)) == pytest.approx(P[r == 3].mean(), rel=1e-12)
    assert float(D.ese(ds, ds)) == 0.0
    assert float(D.ese(ds * 10, ds)) == pytest.approx(4.0)
    # per sample: a forecast (init_time, lead_time, y, x) gives one ESE per init_time
    truth = grid_ds(nt=12, ny=8, nx=8, dx=1, dy=1)
    fc = forecast_like(truth, truth.time.values[[0, 3]], 4)
    tr = truth.sel(time=fc.valid_time).drop_vars(["time", "valid_time"])
    fcv = fc.drop_vars("valid_time")
    e = D.ese(fcv, tr)
    assert e.dims == ("init_time",) and bool((e > 0).all())
    # the released code's aggregation: mean log10 spectrum over samples, then the RMSE
    pooled = D.ese(fcv, tr, sample_dims="init_time")
    lf = np.log10(D.tke_spectrum(fcv)).mean("init_time")
    lt = np.log10(D.tke_spectrum(tr)).mean("init_time")
    assert float(pooled) == pytest.approx(float(np.sqrt(((lf - lt) ** 2).mean())), rel=1e-12)
    ev = D.evaluate(fc, truth, metrics=["ese"])
    assert float(ev.ese) == pytest.approx(float(pooled), rel=1e-12)


def test_log_spectrum_rmse_and_spectrum_error():
    ds = grid_ds(nt=2)
    se = D.spectrum_error(ds * 10, ds)
    np.testing.assert_allclose(se.values, 2.0)
    assert se.dims == ("time",) and se.attrs["units"] == "1"
    with pytest.raises(GridError):
        D.spectrum_error(ds.isel(x=slice(0, 10)), ds)


# ------------------------------------------------------------------ RMSE / ACC


def test_rmse_is_a_root_and_skips_land():
    truth = grid_ds(nt=2)
    fc = truth.copy()
    fc["u"] = truth.u + 3.0
    fc["v"] = truth.v - 4.0
    r = D.rmse(fc, truth)
    np.testing.assert_allclose(r.u, 3.0)
    np.testing.assert_allclose(r.v, 4.0)
    np.testing.assert_allclose(r.velocity, np.sqrt((9 + 16) / 2))
    assert r.u.attrs["units"] == "m s-1" and r.velocity.attrs["units"] == "m s-1"
    land = truth.where(truth.x > 10)
    r2 = D.rmse(fc, land)
    np.testing.assert_allclose(r2.u, 3.0)  # NaN skipped, not propagated
    # cm/s forecast is converted to the truth's m/s
    fcm = fc.copy()
    fcm["u"] = fc.u * 100
    fcm["u"].attrs["units"] = "cm s-1"
    np.testing.assert_allclose(D.rmse(fcm, truth).u, 3.0)
    with pytest.raises(GridError):
        D.rmse(fc.assign_coords(x=fc.x + 1), truth)


def test_acc():
    truth = grid_ds(nt=3)
    clim = truth.mean("time")
    a = D.acc(truth, truth, clim)
    np.testing.assert_allclose(a.velocity, 1.0)
    b = D.acc(2 * truth - clim, truth, clim)  # anomalies doubled: still 1
    np.testing.assert_allclose(b.u, 1.0)
    c = D.acc(2 * clim - truth, truth, clim)  # anomalies reversed
    np.testing.assert_allclose(c.v, -1.0)


# ------------------------------------------------------------------ persistence / evaluate


def test_persistence_forecast_layout():
    truth = grid_ds(nt=8)
    inits = truth.time.values[[1, 4]]
    p = D.persistence_forecast(truth, inits, steps=3)
    assert p.u.dims == ("init_time", "lead_time", "y", "x")
    assert p.lead_time.attrs["standard_name"] == "forecast_period"
    assert p.init_time.attrs["standard_name"] == "forecast_reference_time"
    assert p.valid_time.dims == ("init_time", "lead_time")
    assert p.valid_time.values[1, 2] == truth.time.values[7]
    np.testing.assert_array_equal(p.u.isel(init_time=0, lead_time=2), truth.u.isel(time=1))
    assert p.u.attrs["units"] == "m s-1"
    with pytest.raises(MissingDataError, match="init time"):
        D.persistence_forecast(truth, np.datetime64("1999-01-01", "ns"), steps=2)
    with pytest.raises(ParameterError):
        D.persistence_forecast(truth, inits)


def test_evaluate_forecast_and_persistence():
    truth = grid_ds(nt=12, ny=8, nx=12)
    before = truth.copy(deep=True)
    fc = forecast_like(truth, truth.time.values[[0, 2, 5]], 4, noise=0.1)
    ev = D.evaluate(fc, truth)
    assert set(ev.data_vars) == {"u", "v", "velocity", "ese"}
    assert ev.velocity.dims == ("metric", "lead_time")
    assert list(ev.metric.values) == ["rmse", "acc", "spectrum_error"]
    np.testing.assert_allclose(ev.u.sel(metric="rmse"), 0.1, rtol=0.15)  # a real root
    assert ev.u.attrs["units_rmse"] == "m s-1" and ev.u.attrs["units_acc"] == "1"
    assert ev.ese.dims == ()
    assert ev.lead_time.attrs["standard_name"] == "forecast_period"
    xr.testing.assert_identical(truth, before)
    # the persistence forecast has no TKE: its ESE is an infinite log error, not round-off noise
    pers = D.persistence_forecast(truth, fc.init_time, lead_time=fc.lead_time)
    assert float(D.evaluate(pers, truth, metrics=["ese"]).ese) == np.inf
    # with persistence
    evp = D.evaluate(fc, truth, metrics=("rmse",), reference="persistence")
    assert evp.velocity.dims == ("model", "metric", "lead_time")
    assert evp.u.attrs["units"] == "m s-1"
    r = evp.velocity.sel(metric="rmse")
    assert bool((r.sel(model="forecast") < r.sel(model="persistence")).all())
    # persistence scored alone through the same path: random frames -> rmse ~ sqrt(2)
    p = D.persistence_forecast(truth, fc.init_time, lead_time=fc.lead_time)
    evq = D.evaluate(p, truth, metrics=["rmse"])
    np.testing.assert_allclose(evq.velocity.sel(metric="rmse"),
                               r.sel(model="persistence"), rtol=1e-12)
    # keep init_time
    evk = D.evaluate(fc, truth, metrics=["rmse", "ese"], keep_init_time=True)
    assert evk.u.dims == ("metric", "init_time", "lead_time")
    assert evk.ese.dims == ("init_time",)


def test_evaluate_errors():
    truth = grid_ds(nt=6)
    fc = forecast_like(truth, truth.time.values[[0, 1]], 3)
    with pytest.raises(ParameterError, match="valid metrics"):
        D.evaluate(fc, truth, metrics=["crps"])
    with pytest.raises(MissingDataError, match="valid time"):
        D.evaluate(fc, truth.isel(time=slice(0, 3)))
    with pytest.raises(ParameterError, match="lead_time"):
        D.evaluate(fc.isel(lead_time=0), truth)
    with pytest.raises(GridError):
        D.evaluate(fc.isel(x=slice(0, 5)), truth)
    with pytest.raises(VariableNotFoundError):
        D.evaluate(fc.rename(u="a", v="b"), truth)
    with pytest.raises(XequiError):
        D.evaluate(fc, truth, reference="climatology")


def test_evaluate_numeric_lead_times_and_accessor():
    truth = grid_ds(nt=6)
    truth = truth.assign_coords(time=("time", np.arange(6) * 6.0, {"units": "hours"}))
    fc = D.persistence_forecast(truth, [0.0, 6.0], steps=2)
    assert fc.lead_time.attrs["units"] == "hours"
    np.testing.assert_allclose(fc.valid_time.values, [[6, 12], [12, 18]])
    ev = fc.equi.evaluate(truth, metrics=["rmse"])
    assert ev.velocity.dims == ("metric", "lead_time")
    E = truth.equi.spectrum()
    assert "wavenumber" in E.dims
    assert "wavenumber" in truth.equi.tke_spectrum().dims
    assert set(fc.equi.rmse(fc).data_vars) == {"u", "v", "velocity"}
    assert "wavenumber" in truth.u.equi.spectrum().dims
    assert float(truth.u.equi.rmse(truth.u).max()) == 0.0


def test_doctests():
    res = doctest.testmod(D, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0 and res.attempted > 10


def test_spectrum_error_compares_shells_up_to_nyquist_by_default():
    """Corner shells (k above the smaller axis Nyquist) hold no energy in a dealiased field; a
    forecast with grid-scale noise there must not dominate the default spectrum error."""
    rng = np.random.default_rng(3)
    n = 32
    x = np.arange(n) * 1000.0
    k = np.fft.fftfreq(n, 1000.0)
    kk = np.hypot(k[:, None], k[None, :])
    nyq = 0.5 / 1000.0

    def field(noise_corners):
        spec = (rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))) / (1 + kk * 1e4)
        spec = np.where(kk <= nyq, spec, noise_corners)
        return np.real(np.fft.ifft2(spec))

    coords = {"y": ("y", x, {"units": "m", "axis": "Y"}), "x": ("x", x, {"units": "m", "axis": "X"})}
    truth = xr.Dataset({c: (("y", "x"), field(0.0), {"units": "m s-1"}) for c in "uv"}, coords=coords)
    noisy = truth + xr.Dataset({c: (("y", "x"), 1e-6 * rng.standard_normal((n, n)), {"units": "m s-1"})
                                for c in "uv"}, coords=coords)
    default = float(D.spectrum_error(noisy, truth))
    every = float(D.spectrum_error(noisy, truth, k_max=None))
    assert default < 0.05 < every
    E = D.spectrum(truth)
    assert E.attrs["nyquist_wavenumber"] == pytest.approx(nyq)
    with pytest.raises(ParameterError, match="k_max"):
        D.spectrum_error(noisy, truth, k_max="corners")


def test_float_valid_times_match_the_truth_within_rounding():
    """init + lead on a float time axis can miss the truth's label in the last bits."""
    t = np.round(np.arange(12) * 0.1 + 60.0, 12)  # labels as a simulator writes them
    rng = np.random.default_rng(0)
    coords = {"time": ("time", t, {"units": "1"}), "y": ("y", np.arange(4.0), {"units": "1"}),
              "x": ("x", np.arange(4.0), {"units": "1"})}
    truth = xr.Dataset({c: (("time", "y", "x"), rng.standard_normal((12, 4, 4)), {"units": "1"})
                        for c in "uv"}, coords=coords)
    fc = D.persistence_forecast(truth, [t[2], t[5]], steps=3)
    lead = fc["lead_time"].values
    fc = fc.assign_coords(valid_time=fc["init_time"] + fc["lead_time"] + 1e-13)  # rounding noise
    assert not np.isin(fc["valid_time"].values.ravel(), t).all()
    out = D.evaluate(fc, truth, metrics=("rmse",))
    assert np.isfinite(out["velocity"]).all() and out.sizes["lead_time"] == lead.size
    with pytest.raises(MissingDataError, match="not in the truth"):
        D.evaluate(fc.assign_coords(valid_time=fc["valid_time"] + 0.05), truth, metrics=("rmse",))


def test_spectrum_error_skips_the_shell_straddling_nyquist():
    """A dealiased truth leaves the shell around the Nyquist wavenumber empty (1e-14 of the peak
    in the Rayleigh-Benard data); a forecast's tiny grid-scale energy there must not read as
    decades of error. ``resolved_k_max`` is the last shell wholly inside Nyquist."""
    rng = np.random.default_rng(4)
    n = 32
    k = np.hypot(np.fft.fftfreq(n)[:, None], np.fft.fftfreq(n)[None, :])
    dk, nyq = 1.0 / n, 0.5

    def smooth():
        spec = (rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))) / (1 + 30 * k) ** 3
        return np.real(np.fft.ifft2(np.where(k < nyq - dk / 2, spec, 0.0)))

    truth = xr.Dataset({c: (("y", "x"), smooth()) for c in "uv"})
    E = D.spectrum(truth)
    assert D.resolved_k_max(E) == pytest.approx(nyq - dk)
    assert float(E.sel(wavenumber=nyq, method="nearest")) < 1e-20 * float(E.max())
    noisy = truth + xr.Dataset({c: (("y", "x"), 1e-7 * rng.standard_normal((n, n))) for c in "uv"})
    default = D.spectrum_error(noisy, truth)
    with_nyquist_shell = D.spectrum_error(noisy, truth, k_max=nyq)
    assert float(default) < 0.5 < float(with_nyquist_shell)
    assert default.attrs["band"] == f"wavenumber 0 skipped, shells up to k = {nyq - dk:g}"
