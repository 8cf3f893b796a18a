"""Tests of xequi.skill: references, skill with paired bootstrap, effective resolution, report."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from xequi import diagnostics
from xequi.errors import (
    MissingDataError,
    ParameterError,
    VariableNotFoundError,
    XequiError,
)
from xequi.skill import (
    band_spectrum_error,
    climatology,
    effective_resolution,
    lag_autocorrelation,
    reference_forecast,
    skill,
    skill_report,
    wall_error_ratio,
)

PHI = 0.7


def _coords(nt, ny, nx, dt="1h"):
    step = np.timedelta64(1, "h") if dt == "1h" else np.timedelta64(1, "D")
    t = np.datetime64("2020-01-01", "ns") + np.arange(nt) * step
    return {"time": ("time", t, {"standard_name": "time", "axis": "T"}),
            "y": ("y", np.arange(ny) * 10.0, {"units": "km", "axis": "Y"}),
            "x": ("x", np.arange(nx) * 10.0, {"units": "km", "axis": "X"})}


def ar1(nt=300, ny=8, nx=8, phi=PHI, seed=0, mean=(0.5, -0.2), scalar=False, dt="1h"):
    """u, v (and optionally a scalar) each an AR(1) in time, white in space, unit variance."""
    rng = np.random.default_rng(seed)
    names = ["u", "v"] + (["temp"] if scalar else [])
    data = {}
    for i, n in enumerate(names):
        x = np.empty((nt, ny, nx))
        x[0] = rng.standard_normal((ny, nx))
        for t in range(1, nt):
            x[t] = phi * x[t - 1] + np.sqrt(1 - phi ** 2) * rng.standard_normal((ny, nx))
        m = mean[i] if i < len(mean) else 15.0
        attrs = {"units": "degC"} if n == "temp" else {
            "units": "m s-1", "standard_name": ["eastward_sea_water_velocity",
                                                "northward_sea_water_velocity"][i]}
        data[n] = (("time", "y", "x"), x + m, attrs)
    return xr.Dataset(data, coords=_coords(nt, ny, nx, dt))


def perfect(truth, inits, steps):
    """The truth itself laid out as a forecast."""
    fc = reference_forecast(truth, "persistence", inits, steps=steps)
    names = list(fc.data_vars)
    fc[names] = truth[names].sel(time=fc.valid_time).drop_vars("time")
    return fc.assign_attrs(model="truth")


@pytest.fixture(scope="module")
def data():
    ds = ar1()
    return ds.isel(time=slice(0, 200)), ds.isel(time=slice(200, None))


# --------------------------------------------------------------------------------------------
# (a), (b): perfect forecast and persistence against itself
# --------------------------------------------------------------------------------------------
def test_truth_as_forecast_has_skill_one_and_zero_width_interval(data):
    _, test = data
    fc = perfect(test, test.time.values[:40], steps=3)
    s = skill(fc, test, n_boot=300)
    assert s.skill.dims == ("lead_time",)
    np.testing.assert_array_equal(s.skill.values, 1.0)
    np.testing.assert_array_equal(s.ci_low.values, 1.0)
    np.testing.assert_array_equal(s.ci_high.values, 1.0)
    np.testing.assert_array_equal(s.rmse.values, 0.0)
    assert (s.rmse_reference > 0).all()
    assert s.attrs["n_init"] == 40 and s.attrs["n_boot"] == 300 and s.attrs["ci"] == 0.95
    assert s.attrs["seed"] == "0" and s.attrs["reference"] == "persistence"
    assert "x(t0)" in s.attrs["reference_definition"]
    assert s.attrs["variable"] == "velocity" and s.rmse.attrs["units"] == "m s-1"
    assert s.attrs["model"] == "truth"
    np.testing.assert_array_equal(s.lead_time.values, fc.lead_time.values)


def test_persistence_against_persistence_has_skill_zero(data):
    _, test = data
    fc = reference_forecast(test, "persistence", test.time.values[:30], steps=2)
    s = skill(fc, test, reference="persistence", n_boot=200)
    np.testing.assert_array_equal(s.skill.values, 0.0)
    np.testing.assert_array_equal(s.ci_low.values, 0.0)
    np.testing.assert_array_equal(s.ci_high.values, 0.0)
    np.testing.assert_allclose(s.rmse.values, s.rmse_reference.values)


def test_rmse_pooled_like_diagnostics_rmse(data):
    _, test = data
    rng = np.random.default_rng(5)
    fc = perfect(test, test.time.values[:10], steps=2)
    fc = fc + xr.Dataset({n: (fc[n].dims, 0.3 * rng.standard_normal(fc[n].shape))
                          for n in ("u", "v")})
    s = skill(fc, test, n_boot=0)
    tr = test[["u", "v"]].sel(time=fc.valid_time).drop_vars("time")
    want = diagnostics.rmse(fc.drop_vars("valid_time"), tr.drop_vars("valid_time"),
                            dims=["x", "y", "init_time"])
    np.testing.assert_allclose(s.rmse.values, want.velocity.values, rtol=1e-12)
    assert np.isnan(s.ci_low).all() and np.isfinite(s.skill).all()
    # a single variable is scored alone and gives its own rmse
    su = skill(fc, test, n_boot=0, variables=["u", "velocity"])
    assert su.skill.dims == ("variable", "lead_time")
    np.testing.assert_allclose(su.rmse.sel(variable="u").values, want.u.values, rtol=1e-12)


# --------------------------------------------------------------------------------------------
# (c): climatology and damped persistence
# --------------------------------------------------------------------------------------------
def test_damped_persistence_fits_the_ar1_autocorrelation_and_beats_persistence():
    ds = ar1(nt=700, ny=12, nx=12, seed=1)
    train, test = ds.isel(time=slice(0, 500)), ds.isel(time=slice(500, None))
    r = lag_autocorrelation(train, np.array([1, 2, 3], "timedelta64[h]"))
    np.testing.assert_allclose(r.velocity.values, PHI ** np.arange(1, 4), atol=0.03)
    inits = test.time.values[:150]
    damped = reference_forecast(test, "damped_persistence", inits, steps=2, train=train)
    assert damped.u.dims == ("init_time", "lead_time", "y", "x")
    rfit = np.array(damped.attrs["damping_autocorrelation_velocity"])
    np.testing.assert_allclose(rfit, r.velocity.values[:2])
    # the formula: clim + r(L) (x(t0) - clim), clim = the training time mean
    clim = train.u.mean("time")
    x0 = test.u.sel(time=inits[3])
    np.testing.assert_allclose(damped.u.isel(init_time=3, lead_time=1).values,
                               (clim + rfit[1] * (x0 - clim)).values, rtol=1e-12)
    s = skill(damped, test, reference="persistence", n_boot=500)
    theory = 1 - np.sqrt((1 - PHI ** 2) / (2 * (1 - PHI)))  # 0.078 at lead 1
    assert abs(float(s.skill[0]) - theory) < 0.03
    assert (s.ci_low > 0).all(), s
    assert "beats persistence" in skill_report(s).splitlines()[0]
    assert "damped persistence" in damped.attrs["reference_definition"]


def test_climatology_reference_and_its_kind(data):
    train, test = data
    ref = reference_forecast(test, "climatology", test.time.values[:5], steps=2, train=train)
    np.testing.assert_allclose(ref.u.isel(init_time=2, lead_time=1).values,
                               train.u.mean("time").values)
    assert ref.attrs["climatology_kind"] == "mean"
    assert "time mean" in ref.attrs["reference_definition"]
    xr.testing.assert_identical(ref.valid_time,
                                reference_forecast(test, "persistence", test.time.values[:5],
                                                   steps=2).valid_time)
    # the climatology may be given as a Dataset, and is converted to the truth's units
    c = climatology(train)
    cm = c.copy()
    for n in ("u", "v"):
        cm[n] = (c[n] * 100).assign_attrs(units="cm s-1")
    ref2 = reference_forecast(test, "climatology", test.time.values[:5], steps=2, train=cm)
    np.testing.assert_allclose(ref2.u.values, ref.u.values, rtol=1e-12)


def test_monthly_climatology_when_the_period_allows():
    ds = ar1(nt=800, ny=3, nx=4, dt="1D", phi=0.5)
    month = ds.time.dt.month
    ds["u"] = ds.u + 10.0 * (month == 7)  # a July signal
    train, test = ds.isel(time=slice(0, 740)), ds.isel(time=slice(740, None))
    c = climatology(train)
    assert c.attrs["climatology_kind"] == "month" and c.sizes["month"] == 12
    assert "monthly" in c.attrs["climatology_definition"]
    ref = reference_forecast(test, "climatology", test.time.values[:3], steps=2, train=train)
    vt = ref.valid_time.values[0, 0]
    m = int(xr.DataArray(vt).dt.month)
    np.testing.assert_allclose(ref.u.values[0, 0], c.u.sel(month=m).values)
    assert climatology(train.isel(time=slice(0, 100))).attrs["climatology_kind"] == "mean"
    assert climatology(train, kind="mean").attrs["climatology_kind"] == "mean"
    with pytest.raises(MissingDataError, match="no value for month"):
        reference_forecast(test, "climatology", test.time.values[:3], steps=2,
                           train=train.isel(time=slice(200, 300)), climatology="month")


# --------------------------------------------------------------------------------------------
# (d): the paired bootstrap
# --------------------------------------------------------------------------------------------
def _noisy(test, n_init, seed=3, scale=0.8):
    fc = perfect(test, test.time.values[:n_init], steps=2)
    rng = np.random.default_rng(seed)
    return fc + xr.Dataset({n: (fc[n].dims, scale * rng.standard_normal(fc[n].shape))
                            for n in ("u", "v")})


def test_interval_contains_the_estimate_and_narrows_with_more_init_times():
    ds = ar1(nt=260, ny=6, nx=6, seed=2)
    few = skill(_noisy(ds, 8), ds, n_boot=800)
    many = skill(_noisy(ds, 200), ds, n_boot=800)
    for s in (few, many):
        assert (s.ci_low <= s.skill).all() and (s.skill <= s.ci_high).all()
    wf = (few.ci_high - few.ci_low).values
    wm = (many.ci_high - many.ci_low).values
    assert (wm < 0.6 * wf).all(), (wf, wm)
    # reproducible by seed, different with another seed
    again = skill(_noisy(ds, 8), ds, n_boot=800)
    xr.testing.assert_identical(few, again)
    other = skill(_noisy(ds, 8), ds, n_boot=800, seed=1)
    assert not np.array_equal(other.ci_low.values, few.ci_low.values)
    wider = skill(_noisy(ds, 8), ds, n_boot=800, ci=0.99)
    assert (wider.ci_high - wider.ci_low >= few.ci_high - few.ci_low).all()


def test_bootstrap_is_paired_over_init_times():
    """The interval equals a by-hand paired bootstrap of the per-init squared errors."""
    ds = ar1(nt=40, ny=4, nx=4, seed=4)
    fc = _noisy(ds, 12)
    s = skill(fc, ds, n_boot=400, seed=7)
    pers = reference_forecast(ds, "persistence", fc.init_time.values, steps=2)
    tr = ds[["u", "v"]].sel(time=fc.valid_time).drop_vars("time")
    sse_m = ((fc.u - tr.u) ** 2 + (fc.v - tr.v) ** 2).sum(["y", "x"]).values
    sse_r = ((pers.u - tr.u) ** 2 + (pers.v - tr.v) ** 2).sum(["y", "x"]).values
    rng = np.random.default_rng(7)
    idx = rng.integers(0, 12, size=(400, 12))
    boot = 1 - np.sqrt(sse_m[idx].sum(1) / sse_r[idx].sum(1))
    lo, hi = np.percentile(boot, [2.5, 97.5], axis=0)
    np.testing.assert_allclose(s.ci_low.values, lo, rtol=1e-10)
    np.testing.assert_allclose(s.ci_high.values, hi, rtol=1e-10)
    np.testing.assert_allclose(s.skill.values, 1 - np.sqrt(sse_m.sum(0) / sse_r.sum(0)))


# --------------------------------------------------------------------------------------------
# (e): same cells for model and reference
# --------------------------------------------------------------------------------------------
def test_nan_cells_of_the_reference_are_masked_in_the_model_too(data):
    train, test = data
    land = train.copy(deep=True)
    land["u"][:, 0, :3] = np.nan  # three cells of u never observed in training: clim NaN there
    fc = _noisy(test, 20)
    s = skill(fc, test, reference="climatology", train=land, n_boot=0)
    plain = skill(fc, test, reference="climatology", train=train, n_boot=0)
    tr = test[["u", "v"]].sel(time=fc.valid_time).drop_vars("time")
    ok = np.ones(fc.u.shape, bool)
    ok[:, :, 0, :3] = False
    d2 = ((fc.u - tr.u) ** 2 + (fc.v - tr.v) ** 2).values
    want = np.sqrt(np.where(ok, d2, 0).sum((0, 2, 3)) / ok.sum((0, 2, 3)) / 2)
    np.testing.assert_allclose(s.rmse.values, want, rtol=1e-12)
    assert not np.allclose(s.rmse.values, plain.rmse.values)
    assert (s.n_cells.values == 20 * (64 - 3)).all()
    assert (plain.n_cells.values == 20 * 64).all()
    assert np.isfinite(s.skill).all()
    assert not np.isnan(fc.u).any()  # the caller's forecast is not modified


def test_several_references_and_inputs_untouched(data):
    train, test = data
    fc = _noisy(test, 15)
    before = fc.copy(deep=True), test.copy(deep=True), train.copy(deep=True)
    s = skill(fc, test, reference=["persistence", "climatology", "damped_persistence"],
              train=train, n_boot=100)
    assert s.skill.dims == ("reference", "lead_time")
    assert list(s.reference.values) == ["persistence", "climatology", "damped_persistence"]
    # the model's rmse does not depend on the reference (same cells for all)
    np.testing.assert_allclose(s.rmse.values, np.broadcast_to(s.rmse.values[:1], s.rmse.shape))
    assert "clim" in s.attrs["reference_definition"]
    lines = skill_report(s).splitlines()
    assert len(lines) == 3 * 2 and any("vs damped_persistence" in ln for ln in lines)
    for a, b in zip(before, (fc, test, train)):
        xr.testing.assert_identical(a, b)
    # a reference given as a Dataset (another model's forecast)
    other = _noisy(test, 15, seed=9).assign_attrs(model="other-model")
    s2 = skill(fc, test, reference=other, n_boot=50)
    assert s2.attrs["reference"] == "other-model"


def test_scalars_are_scored_as_their_own_variable():
    ds = ar1(nt=30, ny=4, nx=4, scalar=True)
    fc = perfect(ds, ds.time.values[:6], steps=2)
    s = skill(fc, ds, n_boot=50)
    assert list(s.variable.values) == ["velocity", "temp"]
    assert s.rmse.dims == ("variable", "lead_time")
    assert "velocity, lead 1 hour: skill 1.00 [1.00, 1.00]" in skill_report(s)
    # two DataArrays: one scalar field
    one = skill(fc.temp, ds.temp, n_boot=50)
    assert one.attrs["variable"] == "temp" and one.skill.values.tolist() == [1.0, 1.0]
    with pytest.raises(VariableNotFoundError, match="no variable"):
        skill(fc, ds, reference=fc[["u"]], n_boot=0)


# --------------------------------------------------------------------------------------------
# (f): effective resolution and the band-limited spectrum error
# --------------------------------------------------------------------------------------------
def _lowpass(ds, kc_cycles_per_km):
    out = ds.copy(deep=True)
    ny, nx = ds.sizes["y"], ds.sizes["x"]
    k = np.hypot(np.fft.fftfreq(ny, 10.0)[:, None], np.fft.fftfreq(nx, 10.0)[None, :])
    keep = k < kc_cycles_per_km
    for n in ("u", "v"):
        out[n].values = np.real(np.fft.ifft2(np.fft.fft2(ds[n].values) * keep))
    return out


@pytest.mark.parametrize("cut_cells", [8.0, 5.0])
def test_effective_resolution_of_a_low_pass_filtered_field(cut_cells):
    rng = np.random.default_rng(0)
    ds = xr.Dataset({n: (("time", "y", "x"), rng.standard_normal((6, 32, 32)),
                         {"units": "m s-1"}) for n in ("u", "v")}, coords=_coords(6, 32, 32))
    kc = 1.0 / (cut_cells * 10.0)  # cut at a wavelength of cut_cells cells, cycles per km
    fc = perfect(_lowpass(ds, kc), ds.time.values[:4], steps=2)
    er = effective_resolution(fc, ds)
    dk = 1.0 / 320.0
    assert er.attrs["units"] == "km" and er.attrs["grid_cell_size"] == 10.0
    assert np.all(np.abs(1.0 / er.values - kc) <= dk), (1 / er.values, kc)
    np.testing.assert_allclose(er.n_cells.values, er.values / 10.0)
    # a perfect forecast reaches the resolved band's end: shell 15 of dk = 1/320 km-1, the last
    # one wholly inside the Nyquist wavenumber 16 dk (2 cells)
    same = effective_resolution(perfect(ds, ds.time.values[:4], steps=2), ds)
    np.testing.assert_allclose(same.values, 320.0 / 15)
    np.testing.assert_allclose(same.n_cells.values, 32.0 / 15)
    assert same.attrs["band_end_cells"] == pytest.approx(32.0 / 15)
    # factor: x1.2 in velocity (x1.44 in energy) stays within 2; x0.5 (x0.25) is out everywhere
    up = perfect(ds, ds.time.values[:4], steps=2)
    up[["u", "v"]] = up[["u", "v"]] * 1.2
    np.testing.assert_allclose(effective_resolution(up, ds).n_cells.values, 32.0 / 15)
    down = up.copy()
    down[["u", "v"]] = up[["u", "v"]] / 2.4
    assert np.isnan(effective_resolution(down, ds).values).all()
    np.testing.assert_allclose(effective_resolution(down, ds, factor=5.0).n_cells.values, 32.0 / 15)


def test_band_spectrum_error_default_is_the_resolved_band(data):
    _, test = data
    fc = _noisy(test, 5, scale=2.0)
    e = band_spectrum_error(fc, test)
    tr = test[["u", "v"]].sel(time=fc.valid_time).drop_vars("time")
    want = diagnostics.spectrum_error(fc.drop_vars("valid_time"), tr.drop_vars("valid_time"))
    np.testing.assert_allclose(e.values, want.mean("init_time").values, rtol=1e-10)
    assert e.dims == ("lead_time",) and e.attrs["units"] == "1"
    # shells of dk = 0.0125 km-1 up to the last one wholly inside Nyquist (0.05 km-1 = 4 dk)
    assert e.attrs["band"].startswith("wavenumbers 0.0125 .. 0.0375 km-1")
    assert e.attrs["wavelength_band"] == "26.6667 .. 80 km"
    narrow = band_spectrum_error(fc, test, k_min=0.03, k_max=0.05)
    assert narrow.attrs["band"].startswith("wavenumbers 0.0375 .. 0.05")
    with pytest.raises(ParameterError, match="holds no wavenumber shell"):
        band_spectrum_error(fc, test, k_min=0.2)


def test_wall_error_ratio_reads_the_extra_error_at_the_walls():
    truth = ar1(nt=12, ny=10, nx=6)
    inits = truth.time.values[:5]
    fc = perfect(truth, inits, steps=3)
    rng = np.random.default_rng(5)
    noise = xr.DataArray(rng.standard_normal(fc.u.shape), dims=fc.u.dims, coords=fc.u.coords)
    even = fc.copy()
    even[["u", "v"]] = fc[["u", "v"]] + 0.1 * noise
    r = wall_error_ratio(even, truth)
    assert r.dims == ("lead_time",) and r.attrs["units"] == "1"
    assert np.all(np.abs(r.values - 1) < 0.35)  # same error everywhere: about 1
    walls = fc.copy()
    at_wall = fc.y.isin([fc.y.values[0], fc.y.values[-1]])
    walls[["u", "v"]] = fc[["u", "v"]] + 0.1 * noise * xr.where(at_wall, 4.0, 1.0)
    assert np.all(wall_error_ratio(walls, truth).values > 2.5)
    two = wall_error_ratio(walls, truth, width=2)  # two rows per wall: half of them 4x
    assert np.all(two.values < wall_error_ratio(walls, truth).values)
    assert two.attrs["wall_rows"] == "2 row(s) at each end of 'y'"
    assert np.isfinite(wall_error_ratio(walls, truth, dim="x").values).all()
    before = walls.u.values.copy()
    with pytest.raises(ParameterError, match="width"):
        wall_error_ratio(walls, truth, width=5)
    np.testing.assert_array_equal(walls.u.values, before)


# --------------------------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------------------------
def test_report_says_plainly_whether_the_model_beats_the_reference():
    lead = np.array([1, 2, 3], "timedelta64[D]")
    r = xr.Dataset({"skill": ("lead_time", [0.21, 0.05, -0.4]),
                    "ci_low": ("lead_time", [0.14, -0.02, -0.6]),
                    "ci_high": ("lead_time", [0.30, 0.1, -0.2])},
                   coords={"lead_time": lead}, attrs={"reference": "persistence"})
    lines = skill_report(r).splitlines()
    assert lines == [
        "lead 1 day: skill 0.21 [0.14, 0.30] vs persistence — beats persistence",
        "lead 2 days: skill 0.05 [-0.02, 0.10] vs persistence — does not beat persistence "
        "(interval includes 0)",
        "lead 3 days: skill -0.40 [-0.60, -0.20] vs persistence — loses to persistence"]
    num = r.assign_coords(lead_time=("lead_time", [0.5, 1.0, 1.5], {"units": "s"}))
    assert skill_report(num).splitlines()[0].startswith("lead 0.5 s: skill 0.21")
    h = r.assign_coords(lead_time=np.array([6, 30, 90], "timedelta64[m]"))
    assert [ln.split(":")[0] for ln in skill_report(h).splitlines()] == [
        "lead 6 minutes", "lead 30 minutes", "lead 90 minutes"]
    none = r.assign(ci_low=r.ci_low * np.nan, ci_high=r.ci_high * np.nan)
    assert "not judged" in skill_report(none)
    with pytest.raises(ParameterError, match="not a skill"):
        skill_report(xr.Dataset())


# --------------------------------------------------------------------------------------------
# (g): errors
# --------------------------------------------------------------------------------------------
def test_errors_for_bad_input(data):
    train, test = data
    fc = _noisy(test, 4)
    with pytest.raises(ParameterError, match="at least 2 init times") as err:
        skill(fc.isel(init_time=[0]), test)
    assert "n_boot=0" in str(err.value)
    assert np.isfinite(skill(fc.isel(init_time=[0]), test, n_boot=0).skill).all()
    cases = [
        (dict(reference="climatologie"), ParameterError, "unknown reference"),
        (dict(reference="climatology"), ParameterError, "needs the training period"),
        (dict(reference=[]), ParameterError, "no reference"),
        (dict(n_boot=-1), ParameterError, "n_boot"),
        (dict(n_boot=2.5), ParameterError, "n_boot"),
        (dict(ci=1.5), ParameterError, "ci must be"),
        (dict(ci=0), ParameterError, "ci must be"),
        (dict(variables=["speed"]), VariableNotFoundError, "cannot score 'speed'"),
        (dict(reference="climatology", train=train, climatology="weekly"), ParameterError,
         "climatology kind"),
        (dict(reference="climatology", train=train.u), ParameterError, "Dataset"),
    ]
    for kw, cls, msg in cases:
        with pytest.raises(cls, match=msg) as err:
            skill(fc, test, **kw)
        assert err.value.fix, kw
    with pytest.raises(ParameterError, match="lead_time"):
        skill(fc.isel(lead_time=0), test)
    with pytest.raises(MissingDataError, match="not in the truth"):
        skill(fc, test.isel(time=slice(0, 5)), n_boot=0)
    with pytest.raises(ParameterError, match="training data itself"):
        reference_forecast(test, "damped_persistence", test.time.values[:2], steps=1,
                           train=climatology(train))
    with pytest.raises(MissingDataError, match="no pair of training times"):
        lag_autocorrelation(train.isel(time=slice(0, 5)), [np.timedelta64(10, "h")])
    with pytest.raises(ParameterError, match="factor must be"):
        effective_resolution(fc, test, factor=1.0)
    with pytest.raises(ParameterError, match="datetime"):
        climatology(train.assign_coords(time=np.arange(200.0)), kind="month")
    with pytest.raises(ParameterError, match="dims"):
        skill(fc.expand_dims(member=2), test)
    with pytest.raises(VariableNotFoundError, match="share no 2-D variable"):
        skill(fc.rename(u="a", v="b"), test)
    assert issubclass(ParameterError, XequiError)


# --------------------------------------------------------------------------------------------
# end to end: a forecast made by a (tiny, untrained) model
# --------------------------------------------------------------------------------------------
def test_end_to_end_with_a_model_forecast(cf_dataset):
    import torch

    from xequi import models
    from xequi.forecast import as_forecast_model, forecast

    torch.manual_seed(0)
    net = models.create("resnet", t_in=2, widths=(4, 4))
    model = as_forecast_model(net, dx="10 km", dt="1 h", units="m s-1")
    ds = cf_dataset(nt=14, ny=16, nx=16)
    train, test = ds.isel(time=slice(0, 6)), ds.isel(time=slice(6, None))
    fc = forecast(test, model, steps=3, init_time=list(test.time.values[1:5]), window=16,
                  progress=False)
    s = skill(fc, test, reference=["persistence", "climatology"], train=train, n_boot=200)
    assert s.skill.dims == ("reference", "lead_time") and s.sizes["lead_time"] == 3
    assert s.attrs["n_init"] == 4 and s.attrs["model"] == "resnet"
    assert np.isfinite(s.skill).all() and np.isfinite(s.rmse).all()
    assert (s.ci_low <= s.skill + 1e-12).all() and (s.skill <= s.ci_high + 1e-12).all()
    report = skill_report(s)
    assert report.count("vs persistence") == 3 and report.count("vs climatology") == 3
    assert all(("beats" in ln) or ("does not beat" in ln) or ("loses" in ln)
               for ln in report.splitlines())
    er = effective_resolution(fc, test)
    assert er.dims == ("lead_time",) and er.attrs["units"] == "km"
    assert ((er.n_cells >= 2) | np.isnan(er.n_cells)).all()
