"""xequi.datasets.qg_ocean: two-layer QG turbulence from pyqg-jax, CF-labelled."""

from __future__ import annotations

import numpy as np
import pytest

import xequi
from xequi.catalog import QGOceanSource
from xequi.datasets import QG_PRESETS, qg_ocean, qg_preset_parameters
from xequi.errors import ParameterError
from xequi.fields import from_model_frame, grid_spacing, parse_units, to_model_frame

# small and quick configuration for the determinism / preset tests
SMALL = dict(nx=32, L=5.0e5, spinup="20D", frames=4, progress=False)


@pytest.fixture(scope="module")
def qg_default():
    return qg_ocean(progress=False, scalars=("pv", "streamfunction"))


def test_default_cf_attrs_and_units(qg_default):
    ds = qg_default
    assert ds.u.dims == ("time", "y", "x") and ds.u.shape == (200, 64, 64)
    assert ds.u.attrs["standard_name"] == "sea_water_x_velocity"
    assert ds.v.attrs["standard_name"] == "sea_water_y_velocity"
    for name, dim in (("u", "[length] / [time]"), ("v", "[length] / [time]"), ("pv", "1 / [time]"),
                      ("streamfunction", "[length] ** 2 / [time]")):
        assert str(parse_units(ds[name].attrs["units"], name).dimensionality) == dim
    for c, axis in (("x", "X"), ("y", "Y"), ("time", "T")):
        assert ds[c].attrs["axis"] == axis
    assert ds.x.attrs["units"] == "m" and "periodic" in ds.x.attrs["long_name"]
    assert np.issubdtype(ds.time.dtype, np.datetime64)
    assert (np.diff(ds.time.values) == np.timedelta64(1, "D")).all()
    assert ds.attrs["periodic"] == "x y" and "doubly periodic" in ds.attrs["geometry"]
    for k in ("nx", "L", "rd", "beta", "delta", "H1", "U1", "U2", "rek", "dt", "spinup", "seed",
              "frames", "frame_interval", "init_amplitude"):
        assert k in ds.attrs
    assert "pyqg-jax" in ds.attrs["source"]
    g = grid_spacing(ds)
    assert g.dx.to("km").magnitude == pytest.approx(15.625) and g.anisotropy == 1.0
    assert g.dt.to("h").magnitude == pytest.approx(24.0)


def test_energy_finite_and_bounded(qg_default):
    u, v = qg_default.u.values.astype(float), qg_default.v.values.astype(float)
    assert np.isfinite(u).all() and np.isfinite(v).all()
    speed = np.sqrt(u ** 2 + v ** 2)
    assert speed.max() < 2.0  # m/s; ocean eddies, no blow-up
    eke = 0.5 * (u ** 2 + v ** 2).mean(axis=(1, 2))
    assert eke.min() > 1e-5  # turbulent after the spin-up, not decayed
    assert eke.max() / eke.min() < 10  # statistically steady over the frames
    assert qg_default.attrs["eddy_kinetic_energy_mean"] == pytest.approx(eke.mean(), rel=1e-3)
    # u = -dpsi/dy (spectral derivative on the periodic grid)
    psi = qg_default.streamfunction.values[0].astype(float)
    k = 2 * np.pi * np.fft.fftfreq(64, d=float(qg_default.attrs["grid_spacing"]))
    dpsidy = np.real(np.fft.ifft(1j * k[:, None] * np.fft.fft(psi, axis=0), axis=0))
    np.testing.assert_allclose(-dpsidy, u[0], atol=0.02 * np.abs(u[0]).max())


def test_to_model_frame_accepts_it(qg_default):
    ds = qg_default.isel(time=slice(0, 5))
    mf = to_model_frame(ds, scalars=["pv"])
    assert mf.data.shape == (5, 3, 64, 64) and mf.flip_y and not bool(mf.mask.any())
    back = from_model_frame(mf.data, mf)
    np.testing.assert_allclose(back.u.values, ds.u.values, rtol=1e-6)


def test_deterministic_by_seed():
    a = qg_ocean(seed=3, **SMALL)
    b = qg_ocean(seed=3, **SMALL)
    c = qg_ocean(seed=4, **SMALL)
    np.testing.assert_array_equal(a.u.values, b.u.values)
    assert not np.allclose(a.u.values, c.u.values)
    assert a.attrs["seed"] == 3 and "modified" in a.attrs["preset"]


def test_new_domain_differs_in_its_parameter():
    base, new = qg_preset_parameters("experiment"), qg_preset_parameters("new_domain")
    changed = {k for k in base if base[k] != new[k]}
    assert {"rd", "beta"} <= changed and changed <= {"rd", "beta", "seed", "frames"}
    assert new["nx"] == base["nx"] and new["L"] == base["L"]
    ds = qg_ocean("new_domain", cache=False, **SMALL)
    assert ds.attrs["rd"] == 25e3 and ds.attrs["beta"] == 2e-11
    ref = qg_ocean("default", seed=1, **SMALL)
    assert ref.attrs["rd"] == 15e3 and not np.allclose(ds.u.values, ref.u.values)


def test_bad_parameters():
    with pytest.raises(ParameterError, match="preset"):
        qg_ocean("atlantic")
    with pytest.raises(ParameterError, match="multiple of dt"):
        qg_ocean(frame_interval="5h", progress=False)
    with pytest.raises(ParameterError, match="nx"):
        qg_ocean(nx=33, progress=False)
    with pytest.raises(ParameterError, match="scalar"):
        qg_ocean(scalars=("temperature",), progress=False)
    with pytest.raises(ParameterError, match="rd"):
        qg_ocean(rd=-1.0, progress=False)
    with pytest.raises(ParameterError, match="dt"):
        qg_ocean(dt="2D", progress=False)
    assert set(QG_PRESETS) == {"default", "experiment", "new_domain"}


def test_catalog_entry_and_cache():
    cat = xequi.catalog()
    assert "qg_ocean" in list(cat)
    src = cat.qg_ocean(preset="default")
    assert isinstance(src, QGOceanSource) and src.preset == "default"
    with pytest.raises(Exception, match="preset"):
        cat.qg_ocean(preset="nope").read()
    # cached path (small run, in the test session's cache directory)
    s = QGOceanSource(preset="default", cache=True, **SMALL)
    first = s.read()
    again = QGOceanSource(preset="default", cache=True, **SMALL).to_dask()
    assert again.u.chunks is not None
    np.testing.assert_array_equal(first.u.values, again.u.values)


def test_missing_optional_dependency_is_explained(monkeypatch):
    import builtins

    from xequi.errors import DependencyError

    real_import = builtins.__import__

    def no_pyqg_jax(name, *args, **kwargs):
        if name.startswith("pyqg_jax"):
            raise ImportError("No module named 'pyqg_jax'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyqg_jax)
    with pytest.raises(DependencyError, match=r"pyqg-jax[\s\S]*xequi\[ocean\]"):
        qg_ocean(progress=False, frames=2)
