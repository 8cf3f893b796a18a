"""Validation of the Rayleigh–Bénard simulator (xequi.datasets.rayleigh_benard).

Physics checks (each can fail if the solver is wrong):
1. onset of convection: KE growth rate changes sign across Ra_c = 1707.76 (k_c = 3.117), and the
   grid-extrapolated rate at Ra_c is ~0;
2. heat transport at Ra = 1e4, Pr = 1, aspect 2: two independent Nusselt estimates agree with each
   other and with the reference Nu = 2.649 within 3%;
3. energy: kinetic energy bounded, discrete divergence at round-off;
4. output contract: CF attributes, units, determinism, quiet mode, errors.
"""

from __future__ import annotations

import doctest
import importlib
import math
import time

import numpy as np
import pytest
import scipy.fft as sfft

from xequi.datasets import (
    K_CRITICAL,
    RA_CRITICAL,
    NumericalInstabilityError,
    growth_rate,
    nusselt,
    rayleigh_benard,
)
from xequi.errors import ParameterError, XequiError

rbmod = importlib.import_module("xequi.datasets.rayleigh_benard")

NU_REFERENCE_1E4 = 2.649

# small, fast run used by the contract tests (Ra = 1e4, 16 x 32 grid)
TINY = dict(Ra=1e4, Pr=1.0, aspect=2.0, nx=32, ny=16, spinup=5.0, frames=4, frame_interval=0.5,
            progress=False)


@pytest.fixture(scope="module")
def tiny():
    return rayleigh_benard(**TINY)


@pytest.fixture(scope="module")
def steady_1e4():
    """Statistically steady convection at Ra = 1e4, Pr = 1, aspect 2 (one pair of rolls)."""
    return rayleigh_benard(Ra=1e4, Pr=1.0, aspect=2.0, nx=64, ny=32, spinup=150.0, frames=20,
                           frame_interval=1.0, amplitude=0.05, progress=False)


@pytest.fixture(scope="module")
def unsteady_1e5():
    """Ra = 1e5 run from rest through the growth and saturation of convection."""
    return rayleigh_benard(Ra=1e5, Pr=1.0, aspect=2.0, nx=64, ny=32, spinup=0.0, frames=61,
                           frame_interval=1.0, progress=False)


# -------------------------------------------------------------------------------------------
# 1. onset


def test_onset_growth_rate_changes_sign_at_critical_rayleigh():
    aspect = 2 * math.pi / K_CRITICAL
    below = growth_rate(0.9 * RA_CRITICAL, aspect=aspect, nx=16, ny=24)
    above = growth_rate(1.1 * RA_CRITICAL, aspect=aspect, nx=16, ny=24)
    assert below < 0 < above
    # rates are clearly resolved, not noise around zero
    assert below < -0.02 and above > 0.02


def test_onset_extrapolated_rate_vanishes_at_critical_rayleigh():
    # second-order grid convergence: rate(h) = rate_0 + c h^2; rate_0 at Ra_c must be ~0
    r16 = growth_rate(RA_CRITICAL, nx=16, ny=16)
    r24 = growth_rate(RA_CRITICAL, nx=16, ny=24)
    r0 = (r24 * 24**2 - r16 * 16**2) / (24**2 - 16**2)
    above = growth_rate(1.1 * RA_CRITICAL, nx=16, ny=24)
    assert abs(r0) < 0.1 * above, (r16, r24, r0, above)


# -------------------------------------------------------------------------------------------
# 2. heat transport


def test_nusselt_1e4_matches_reference(steady_1e4):
    est = nusselt(steady_1e4)
    assert abs(est.wall - est.volume) / est.volume < 0.03
    assert abs(est.wall - NU_REFERENCE_1E4) / NU_REFERENCE_1E4 < 0.03
    assert abs(est.volume - NU_REFERENCE_1E4) / NU_REFERENCE_1E4 < 0.03
    assert abs(est.bottom - est.top) / est.wall < 0.01  # both plates carry the same flux
    # the simulator's own (simulation-grid) measurement, stored in attrs
    for key in ("nusselt", "nusselt_wall", "nusselt_volume"):
        assert abs(steady_1e4.attrs[key] - NU_REFERENCE_1E4) / NU_REFERENCE_1E4 < 0.03
    # statistically steady: frames no longer change
    assert float(steady_1e4.u.std("time").max()) < 1e-4


def test_nusselt_is_one_without_convection():
    ds = rayleigh_benard(Ra=0.8 * RA_CRITICAL, aspect=2.0, nx=32, ny=16, spinup=20.0, frames=2,
                         progress=False)
    est = nusselt(ds)
    assert abs(est.wall - 1) < 1e-3 and abs(est.volume - 1) < 1e-3


def test_nusselt_result_is_tuple_and_mapping(tiny):
    est = nusselt(tiny)
    wall, volume, bottom, top = est
    assert dict(est.items()) == {"wall": wall, "volume": volume, "bottom": bottom, "top": top}
    assert est["volume"] == est.volume == volume
    assert all(isinstance(v, float) for v in est)


def test_nusselt_does_not_mutate(tiny):
    before = tiny.copy(deep=True)
    nusselt(tiny)
    assert tiny.identical(before)


def test_nusselt_rejects_foreign_dataset(tiny):
    with pytest.raises(ParameterError, match="rayleigh_benard"):
        nusselt(tiny.drop_vars("temperature"))


# -------------------------------------------------------------------------------------------
# 3. energy and divergence

DIVERGENCE_RTOL = 1e-5  # max |div u| relative to max |du/dx| (float32 output, refine=1)


def _kinetic_energy(ds):
    return (0.5 * (ds.u**2 + ds.v**2)).mean(("x", "y")).values


def test_kinetic_energy_bounded(unsteady_1e5, steady_1e4):
    ke = _kinetic_energy(unsteady_1e5)
    assert np.isfinite(ke).all()
    assert ke[0] < 1e-6  # starts from (nearly) rest
    assert ke.max() > 1e-3  # convection developed
    # bounded: rms velocity well below the free-fall velocity; no growth at the end
    assert ke.max() < 0.125
    assert ke[-10:].max() < 2 * ke[-30:-10].mean()
    ke_s = _kinetic_energy(steady_1e4)
    assert np.ptp(ke_s) < 1e-4 * ke_s.mean()


def test_divergence_free_to_roundoff(unsteady_1e5):
    ds = unsteady_1e5.isel(time=slice(-5, None))
    u = ds.u.values.astype(np.float64)
    v = ds.v.values.astype(np.float64)
    lx = float(ds.attrs["aspect"])
    k = 2 * np.pi / lx * sfft.rfftfreq(u.shape[-1], d=1.0 / u.shape[-1])
    dudx = sfft.irfft(1j * k * sfft.rfft(u, axis=-1), n=u.shape[-1], axis=-1)
    dy = float(ds.y[1] - ds.y[0])
    dvdy = (v[:, 2:] - v[:, :-2]) / (2 * dy)  # centred, interior rows
    div = dudx[:, 1:-1] + dvdy
    scale = np.abs(dudx).max()
    assert scale > 1e-2
    assert np.abs(div).max() < DIVERGENCE_RTOL * scale
    # the check can fail: a non-solenoidal field gives a large divergence
    assert np.abs((dudx + np.gradient(u, dy, axis=1))[:, 1:-1]).max() > 1e3 * DIVERGENCE_RTOL * scale


def test_blow_up_raises_clear_error(monkeypatch):
    monkeypatch.setattr(rbmod, "CFL_ADVECTION", 40.0)
    monkeypatch.setattr(rbmod, "CFL_DIFFUSION", 40.0)
    with pytest.raises(NumericalInstabilityError) as info:
        rayleigh_benard(Ra=1e5, nx=64, ny=32, spinup=20.0, frames=2, progress=False)
    assert isinstance(info.value, XequiError)
    assert "unstable" in str(info.value) and info.value.fix


# -------------------------------------------------------------------------------------------
# 4. output contract


def test_dims_coords_and_cf_attributes(tiny):
    ds = tiny
    for name in ("u", "v", "temperature"):
        assert ds[name].dims == ("time", "y", "x")
        assert ds[name].dtype == np.float32
        assert ds[name].attrs["units"] == "1"
        assert ds[name].attrs["long_name"]
    assert ds.u.attrs["standard_name"] == "sea_water_x_velocity"
    assert ds.v.attrs["standard_name"] == "sea_water_y_velocity"
    assert "vertical" in ds.v.attrs["long_name"] and "along y" in ds.v.attrs["long_name"]
    assert "standard_name" not in ds.temperature.attrs  # non-dimensional: no misleading name
    assert "non-dimensional" in ds.temperature.attrs["long_name"]
    assert ds.x.attrs["axis"] == "X" and ds.x.attrs["standard_name"] == "projection_x_coordinate"
    assert ds.y.attrs["axis"] == "Y" and ds.y.attrs["standard_name"] == "height"
    assert ds.y.attrs["long_name"] == "height above the bottom plate"
    assert ds.time.attrs["axis"] == "T" and ds.time.attrs["standard_name"] == "time"
    for c in ("x", "y", "time"):
        assert ds[c].attrs["units"] == "1" and ds[c].attrs["long_name"]
    assert ds.sizes == {"time": 4, "y": 16, "x": 32}
    # uniform cell-centred grid, walls excluded
    np.testing.assert_allclose(np.diff(ds.y), 1 / 16)
    np.testing.assert_allclose(ds.y[[0, -1]], [1 / 32, 1 - 1 / 32])
    np.testing.assert_allclose(np.diff(ds.x), 2 / 32)
    np.testing.assert_allclose(np.diff(ds.time), 0.5)
    a = ds.attrs
    assert a["Conventions"] == "CF-1.10"
    assert a["source"].startswith("xequi Rayleigh–Bénard simulator")
    for key in ("title", "Ra", "Pr", "aspect", "nx", "ny", "refine", "spinup", "frames",
                "frame_interval", "seed", "dt_policy", "method", "xequi_version", "preset",
                "nusselt", "grid"):
        assert key in a, key
    assert a["Ra"] == 1e4 and a["nx"] == 32 and a["frames"] == 4 and a["seed"] == 0
    assert "modified" in a["preset"]
    # cf-xarray finds the axes
    import cf_xarray  # noqa: F401

    assert ds.cf["X"].name == "x" and ds.cf["Y"].name == "y" and ds.cf["T"].name == "time"


def test_units_parse_with_pint(tiny):
    from cf_xarray.units import units as ureg

    for name in ("u", "v", "temperature", "x", "y", "time"):
        unit = ureg.Unit(tiny[name].attrs["units"])
        assert unit.dimensionless


def test_dimensional_output():
    from cf_xarray.units import units as ureg

    phys = dict(depth=0.1, delta_T=1e-3, nu=1e-6, kappa=1.4e-7, alpha=2e-4)
    ra = 9.81 * 2e-4 * 1e-3 * 0.1**3 / (1e-6 * 1.4e-7)
    ds = rayleigh_benard(nx=32, ny=16, aspect=2.0, spinup=5.0, frames=2, physical=phys,
                         progress=False)
    assert ds.attrs["Ra"] == pytest.approx(ra) and ds.attrs["Pr"] == pytest.approx(1e-6 / 1.4e-7)
    expect = {"u": "m s-1", "v": "m s-1", "temperature": "K", "x": "m", "y": "m", "time": "s"}
    dims = {"m s-1": "meter / second", "K": "kelvin", "m": "meter", "s": "second"}
    for name, unit in expect.items():
        assert ds[name].attrs["units"] == unit
        assert ureg.Unit(unit).dimensionality == ureg.Unit(dims[unit]).dimensionality
    assert ds.temperature.attrs["standard_name"] == "sea_water_temperature"
    assert float(ds.y.max()) < 0.1 and float(ds.x.max()) < 0.2
    assert 293.15 - 5e-4 <= float(ds.temperature.min()) <= float(ds.temperature.max()) <= 293.15 + 5e-4
    # Nusselt is independent of the units
    nd = rayleigh_benard(Ra=ra, Pr=1e-6 / 1.4e-7, nx=32, ny=16, aspect=2.0, spinup=5.0, frames=2,
                         progress=False)
    assert nusselt(ds).volume == pytest.approx(nusselt(nd).volume, rel=1e-4)
    # explicit Ra inconsistent with physical -> error; consistent -> fine
    with pytest.raises(ParameterError, match="Ra"):
        rayleigh_benard(Ra=2 * ra, nx=32, ny=16, physical=phys, frames=1, progress=False)
    with pytest.raises(ParameterError, match="physical"):
        rayleigh_benard(physical=dict(depth=0.1), frames=1, progress=False)


def test_deterministic_for_seed(tiny):
    again = rayleigh_benard(**TINY)
    assert again.identical(tiny) or all(
        np.array_equal(again[v].values, tiny[v].values) for v in ("u", "v", "temperature"))
    other = rayleigh_benard(**{**TINY, "seed": 1})
    assert not np.array_equal(other.temperature.values, tiny.temperature.values)


def test_does_not_print_when_progress_false(capfd):
    rayleigh_benard(**{**TINY, "frames": 1})
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_progress_bar_shows(capfd):
    rayleigh_benard(**{**TINY, "frames": 1, "progress": True})
    _, err = capfd.readouterr()
    assert "rayleigh_benard" in err


BAD = [
    (dict(Ra=0.0), "Ra"),
    (dict(Ra=-1e4), "Ra"),
    (dict(Pr=0.0), "Pr"),
    (dict(Pr=-1.0), "Pr"),
    (dict(Ra=float("nan")), "Ra"),
    (dict(Ra=float("inf")), "Ra"),
    (dict(Pr=float("nan")), "Pr"),
    (dict(aspect=float("nan")), "aspect"),
    (dict(aspect=0.0), "aspect"),
    (dict(spinup=float("inf")), "spinup"),
    (dict(spinup=-1.0), "spinup"),
    (dict(frame_interval=float("nan")), "frame_interval"),
    (dict(frame_interval=-0.5), "frame_interval"),
    (dict(frame_interval=0.0), "frame_interval"),
    (dict(frames=-1), "frames"),
    (dict(frames=0), "frames"),
    (dict(frames=2.5), "frames"),
    (dict(nx=32.0), "nx"),
    (dict(ny="16"), "ny"),
    (dict(nx=4), "nx"),
    (dict(ny=2), "ny"),
    (dict(refine=0), "refine"),
    (dict(seed=-1), "seed"),
    (dict(seed=1.5), "seed"),
    (dict(amplitude=float("nan")), "amplitude"),
    (dict(Ra=1e8), "too coarse for Ra"),  # resolution criterion: ny * refine >= 6 Nu
    (dict(nx=8, ny=16), "nx"),  # x spacing > 2 y spacing
    (dict(preset="nope"), "preset"),
    (dict(physical=dict(depth=0.1, delta_T=float("nan"), nu=1e-6, kappa=1e-7, alpha=2e-4)),
     "delta_T"),
]


@pytest.mark.parametrize(("override", "culprit"), BAD, ids=[str(b[0]) for b in BAD])
def test_bad_input_raises_parameter_error(override, culprit):
    kwargs = {**TINY, **override}
    with pytest.raises(ParameterError) as info:
        rayleigh_benard(**kwargs)
    assert culprit in str(info.value)
    assert info.value.fix
    assert "Fix:" in str(info.value)


def test_resolution_message_gives_valid_range():
    with pytest.raises(ParameterError, match=r"ny >= \d+"):
        rayleigh_benard(Ra=1e7, nx=128, ny=64, frames=1, progress=False)


def test_growth_rate_rejects_bad_input():
    with pytest.raises(ParameterError, match="Ra"):
        growth_rate(-5.0)
    with pytest.raises(ParameterError, match="t_end"):
        growth_rate(2000.0, t_start=10.0, t_end=5.0)


def test_presets_are_valid_and_documented():
    from xequi.datasets import PRESETS, preset_parameters

    assert set(PRESETS) >= {"default", "paper"}
    d = preset_parameters("default")
    assert (d["ny"], d["nx"]) == (64, 128) and 100 <= d["frames"] <= 300
    p = preset_parameters("paper")
    assert (p["ny"], p["nx"]) == (64, 448) and p["frames"] >= 2000 and p["cache"] is True
    for name, params in PRESETS.items():
        rbmod._validate(**{k: params[k] for k in rbmod._PARAM_NAMES}, amplitude=0.01)
        assert f'"{name}"' in rayleigh_benard.__doc__
    d["ny"] = 1  # a copy: the preset is unchanged
    assert PRESETS["default"]["ny"] == 64


def test_paper_preset_grid_short_run():
    # the paper preset's grid and attributes, on a very short run (never the full generation)
    ds = rayleigh_benard("paper", spinup=0.1, frames=2, frame_interval=0.05, cache=False,
                         progress=False)
    assert ds.sizes == {"time": 2, "y": 64, "x": 448}
    np.testing.assert_allclose(np.diff(ds.x), 7.0 / 448)
    assert ds.attrs["preset"].startswith("paper") and ds.attrs["aspect"] == 7.0
    assert np.isfinite(ds.u.values).all()


def test_docstring_examples_run():
    result = doctest.testmod(rbmod, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 4 and result.failed == 0


@pytest.mark.slow
def test_default_preset_under_a_minute_and_time_dependent():
    t0 = time.perf_counter()
    ds = rayleigh_benard(progress=False)
    elapsed = time.perf_counter() - t0
    assert elapsed < 60.0
    assert ds.sizes == {"time": 200, "y": 64, "x": 128}
    anomaly = ds.u - ds.u.mean("time")
    assert float(anomaly.std()) > 0.05 * float(np.sqrt((ds.u**2).mean()))


@pytest.mark.slow
def test_nusselt_1e4_converges_with_resolution():
    ds = rayleigh_benard(Ra=1e4, aspect=2.0, nx=96, ny=48, spinup=150.0, frames=10,
                         frame_interval=1.0, amplitude=0.05, progress=False)
    est = nusselt(ds)
    assert abs(est.wall - NU_REFERENCE_1E4) / NU_REFERENCE_1E4 < 0.01
    assert abs(est.volume - NU_REFERENCE_1E4) / NU_REFERENCE_1E4 < 0.01
