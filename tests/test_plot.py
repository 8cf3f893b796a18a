"""Tests of xequi.plot: figures are built, saved as non-empty PNGs, labelled with units."""

from __future__ import annotations

import doctest

import matplotlib
import numpy as np
import pytest
import xarray as xr

from xequi import diagnostics as D
from xequi import plot as P
from xequi.errors import ParameterError


@pytest.fixture(scope="module")
def truth():
    rng = np.random.default_rng(0)
    nt, ny, nx = 10, 12, 16
    t = np.datetime64("2021-03-01", "ns") + np.arange(nt) * np.timedelta64(6, "h")
    data = {n: (("time", "y", "x"), rng.standard_normal((nt, ny, nx)),
                {"units": "m s-1", "standard_name": sn})
            for n, sn in (("u", "sea_water_x_velocity"), ("v", "sea_water_y_velocity"))}
    ds = xr.Dataset(data, coords={"time": t,
                                  "x": ("x", 5.0 * np.arange(nx), {"units": "km"}),
                                  "y": ("y", 5.0 * np.arange(ny), {"units": "km"})})
    land = xr.DataArray(np.zeros((ny, nx), bool), dims=("y", "x"))
    land[:3, :4] = True
    return ds.where(~land)


@pytest.fixture(scope="module")
def forecast(truth):
    p = D.persistence_forecast(truth, truth.time.values[[0, 2]], steps=4)
    f = p.copy()
    for n in ("u", "v"):
        f[n] = 0.5 * p[n] + 0.5 * truth[n].sel(time=p.valid_time).drop_vars(["time", "valid_time"])
        f[n].attrs = dict(truth[n].attrs)
    f.attrs["model"] = "synthetic"
    return f


def _png_ok(path):
    assert path.exists() and path.stat().st_size > 1000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_backend_untouched():
    before = matplotlib.get_backend()
    import importlib

    importlib.reload(P)
    assert matplotlib.get_backend() == before


@pytest.mark.parametrize("variable", ["speed", "u", "vorticity"])
def test_fields(truth, forecast, tmp_path, variable):
    path = tmp_path / f"fields_{variable}.png"
    fig = P.fields(truth, forecast, lead_times=[0, 3], variable=variable, save=path)
    from matplotlib.figure import Figure

    assert isinstance(fig, Figure)
    _png_ok(path)
    maps = [ax for ax in fig.axes if ax.get_title()]
    assert len(maps) == 6  # 3 rows x 2 lead times
    assert "[km]" in maps[0].get_xlabel() and "[km]" in maps[0].get_ylabel()
    assert "6 h" in maps[0].get_title() and "truth" in maps[0].get_title()
    labels = [ax.get_ylabel() for ax in fig.axes if not ax.get_title()]  # colour bars
    unit = "s-1" if variable == "vorticity" else "m s-1"
    assert all(f"[{unit}]" in lb for lb in labels) and len(labels) == 3
    # truth and forecast share colour limits
    qm = [ax.collections[0] for ax in maps]
    assert qm[0].get_clim() == qm[2].get_clim()


def test_fields_errors(truth, forecast):
    with pytest.raises(ParameterError, match="lead time"):
        P.fields(truth, forecast, lead_times=[np.timedelta64(5, "h")])
    with pytest.raises(ParameterError, match="lead_time"):
        P.fields(truth, forecast.isel(lead_time=0))


def test_spectra(truth, forecast, tmp_path):
    tr = truth.sel(time=forecast.valid_time).drop_vars(["time", "valid_time"])
    st = D.spectrum(tr, length_units="km")
    sf = D.spectrum(forecast.drop_vars("valid_time"), length_units="km")
    sp = D.spectrum(D.persistence_forecast(truth, forecast.init_time, lead_time=forecast.lead_time)
                    .drop_vars("valid_time"), length_units="km")
    path = tmp_path / "spectra.png"
    fig = P.spectra({"truth": st, "model": sf, "persistence": sp}, lead_times=[0, 1, 3], save=path)
    _png_ok(path)
    assert len(fig.axes) == 3
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert "[km-1]" in ax.get_xlabel() and "cycles" in ax.get_xlabel()
    assert ax.get_ylabel() == "E(k) [m2 s-2]"
    assert len(ax.get_lines()) == 3
    # a spectrum without lead_time (climatology of the truth) is drawn in every panel
    clim = D.spectrum(truth, length_units="km")
    fig2 = P.spectra({"truth": clim, "model": sf})
    assert all(len(a.get_lines()) == 2 for a in fig2.axes)


def test_metrics(truth, forecast, tmp_path):
    ev = D.evaluate(forecast, truth, metrics=["rmse", "acc"], reference="persistence")
    path = tmp_path / "metrics.png"
    fig = P.metrics(ev, metric="rmse", save=path)
    _png_ok(path)
    ax = fig.axes[0]
    assert ax.get_ylabel() == "rmse of velocity [m s-1]"
    assert ax.get_xlabel() == "lead time [hours]"
    assert {ln.get_label() for ln in ax.get_lines()} == {"synthetic", "persistence"}
    fig2 = P.metrics({"model": D.evaluate(forecast, truth, metrics=["acc"]),
                      "persistence": D.evaluate(D.persistence_forecast(
                          truth, forecast.init_time, lead_time=forecast.lead_time), truth,
                          metrics=["acc"])}, metric="acc", variable="u")
    assert fig2.axes[0].get_ylabel() == "acc of u [1]"
    with pytest.raises(ParameterError, match="metric"):
        P.metrics(ev, metric="crps")


def test_doctests():
    res = doctest.testmod(P, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0 and res.attempted > 5
