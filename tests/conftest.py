"""Shared pytest fixtures: small synthetic CF-labelled datasets (no downloads).

``make_cf_dataset`` is a factory fixture; call it with keywords to get the dataset you need.
Other modules' tests may add fixtures here: keep them generic and small.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
import xarray as xr

# Hermetic tests: simulations are cached in a fresh directory of this test session, never in the
# user's ~/.cache/xequi (tests that check the cache itself point XEQUI_CACHE_DIR elsewhere).
os.environ["XEQUI_CACHE_DIR"] = tempfile.mkdtemp(prefix="xequi-test-cache-")


def make_cf_dataset(
    nt: int = 4,
    ny: int = 6,
    nx: int = 8,
    *,
    latlon: bool = False,
    y_ascending: bool = True,
    x_ascending: bool = True,
    dims: tuple[str, ...] | None = None,
    names: tuple[str, str] = ("u", "v"),
    standard_names: tuple[str, str] | None = ("eastward_sea_water_velocity",
                                              "northward_sea_water_velocity"),
    units: str | None = "m s-1",
    xy_units: str = "km",
    spacing: float = 10.0,
    lat0: float = 40.0,
    dt_hours: float = 1.0,
    scalars: tuple[str, ...] = (),
    seed: int = 0,
    uniform: tuple[float, float] | None = None,
) -> xr.Dataset:
    """A small CF dataset with velocity (and optional scalars) on a regular grid.

    Parameters
    ----------
    nt, ny, nx : sizes (``nt=0``: no time dimension).
    latlon : lat/lon grid (``degrees_north``/``degrees_east``, spacing in degrees) instead of
        projected ``x``/``y`` coordinates in ``xy_units``.
    y_ascending, x_ascending : coordinate direction along the index.
    dims : data dims order, using the names ``"time"`` and the spatial names (``lat``/``lon`` or
        ``y``/``x``); default ``(time, y, x)``.
    names, standard_names, units : velocity variables (``None`` leaves the attr out).
    spacing : grid spacing (degrees or ``xy_units``); ``dt_hours``: time step.
    scalars : names of extra scalar variables (``units = "degC"``).
    uniform : if given, a uniform flow (u, v) instead of random values.
    """
    rng = np.random.default_rng(seed)
    yname, xname = ("lat", "lon") if latlon else ("y", "x")
    if latlon:
        yc = lat0 + spacing * (np.arange(ny) - (ny - 1) / 2)
        xc = -30.0 + spacing * np.arange(nx)
        yattrs = {"units": "degrees_north", "standard_name": "latitude", "axis": "Y"}
        xattrs = {"units": "degrees_east", "standard_name": "longitude", "axis": "X"}
    else:
        yc = spacing * np.arange(ny)
        xc = spacing * np.arange(nx)
        yattrs = {"units": xy_units, "standard_name": "projection_y_coordinate", "axis": "Y"}
        xattrs = {"units": xy_units, "standard_name": "projection_x_coordinate", "axis": "X"}
    if not y_ascending:
        yc = yc[::-1]
    if not x_ascending:
        xc = xc[::-1]
    coords = {yname: (yname, yc, yattrs), xname: (xname, xc, xattrs)}
    base = ["time", yname, xname] if nt else [yname, xname]
    if nt:
        coords["time"] = ("time", np.datetime64("2020-01-01T00", "ns")
                          + (np.arange(nt) * dt_hours * 3600e9).astype("timedelta64[ns]"),
                          {"standard_name": "time", "axis": "T"})
    order = list(dims) if dims is not None else base
    shape = [{"time": nt, yname: ny, xname: nx}[d] for d in base]
    data_vars = {}
    for i, n in enumerate(names):
        vals = np.full(shape, uniform[i]) if uniform is not None else rng.standard_normal(shape)
        attrs = {"long_name": f"velocity component {i}"}
        if standard_names is not None:
            attrs["standard_name"] = standard_names[i]
        if units is not None:
            attrs["units"] = units
        data_vars[n] = xr.DataArray(vals, dims=base, attrs=attrs).transpose(*order)
    for s in scalars:
        data_vars[s] = xr.DataArray(15 + rng.standard_normal(shape), dims=base,
                                    attrs={"units": "degC", "standard_name": "sea_water_temperature"}
                                    ).transpose(*order)
    return xr.Dataset(data_vars, coords=coords, attrs={"title": "synthetic xequi test data"})


def load_script(relpath: str, name: str | None = None):
    """A script of the repository (``benchmarks/skill.py``, ``scripts/gen_cli_docs.py``, ...)
    imported as a module, registered in ``sys.modules`` under ``name`` (default: the file's
    stem) so that its dataclasses and pickles resolve."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / relpath
    spec = importlib.util.spec_from_file_location(name or path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def tiny_model(name: str = "resnet", t_in: int = 2, seed: int = 0, dx="10 km", dt="1 h",
               units: str = "m s-1", **kw):
    """An untrained small model of ``xequi.models.create`` with a minimal forecast card.

    Seeded (``torch.manual_seed(seed)``), widths ``(2, 2)`` for rotation / scale families and
    ``(4, 4)`` otherwise unless ``widths=`` is given; ``residual=False`` unless given;
    ``scalars``, ``scale`` and ``offset`` go to
    :func:`xequi.forecast.as_forecast_model`, every other keyword to ``models.create``. Import it
    with ``from conftest import tiny_model``.
    """
    import torch

    from xequi import models
    from xequi.forecast import as_forecast_model

    torch.manual_seed(seed)
    # the full-state form by default: an untrained increment model starts as persistence, which
    # is exactly equivariant and would hide a broken pipeline in the tests that use this factory
    kw.setdefault("residual", False)
    widths = kw.pop("widths", (2, 2) if ("rot" in name or "scale" in name) else (4, 4))
    card = {k: kw.pop(k) for k in ("scalars", "scale", "offset") if k in kw}
    net = models.create(name, t_in=t_in, widths=widths, **kw)
    return as_forecast_model(net, dx=dx, dt=dt, units=units, **card)


@pytest.fixture
def cf_dataset():
    """Factory fixture: ``cf_dataset(**kw)`` -> :func:`make_cf_dataset` (see its parameters)."""
    return make_cf_dataset


@pytest.fixture(scope="session")
def rbc_default():
    """The catalog's default Rayleigh–Bénard dataset, simulated once per test session (~30 s)."""
    import xequi

    return xequi.catalog().rayleigh_benard(preset="default").read()
