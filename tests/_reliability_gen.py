"""Generators of badly-formed datasets for the reliability tests (tests/test_reliability*.py).

Not a test module: imported by ``tests/test_reliability_fuzz.py``. Every case is small (at most a
few thousand cells) so that the property test runs in seconds.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from hypothesis import strategies as st

DTYPES = ["float64", "float32", "float16", "int32", "int64", "bool", "object", "complex64"]
VAR_UNITS = ["m s-1", "m/s", "cm s-1", "knots", "km h-1", None, "", "kg", "not a unit",
             "degC", "m", "1"]
COORD_UNITS = ["km", "m", None, "", "kg", "furlong", "degrees_east", "bogus!", "s"]
DIM_NAMES = [("y", "x"), ("lat", "lon"), ("j", "i"), ("Y", "X"), ("nj", "ni"),
             ("y dim", "x-dim"), ("ü", "ß"), ("0", "1")]
VAR_NAMES = [("u", "v"), ("uo", "vo"), ("U", "V"), ("a", "b"), ("u v", "v/u"), ("time_u", "t")]
STD_NAMES = [("eastward_sea_water_velocity", "northward_sea_water_velocity"),
             ("sea_water_x_velocity", "sea_water_y_velocity"), ("x_wind", "y_wind"),
             None, ("eastward_sea_water_velocity", "eastward_sea_water_velocity"),
             ("air_temperature", "nonsense")]
SIZES = [(1, 1), (1, 5), (2, 2), (5, 1), (6, 8), (9, 7), (16, 16), (600, 4), (3000, 1), (1, 3000)]
TIME_KINDS = ["datetime", "seconds", "none", "nonuniform", "descending", "duplicate", "notime"]
VALUES = ["normal", "nan_one", "inf_one", "all_nan", "huge", "zero"]


def _mostly(good, bad, k=4):
    """``good`` k times out of (k + 1), else one of ``bad``."""
    return st.one_of(*([st.just(good)] * k), st.sampled_from(bad))


GOOD = dict(nt=4, size=(6, 8), dimnames=DIM_NAMES[0], names=VAR_NAMES[0], std=STD_NAMES[0],
            vunits=VAR_UNITS[0], cunits=COORD_UNITS[0], dtype=DTYPES[0], values=VALUES[0],
            time=TIME_KINDS[0], spacing=10.0, coords=True)
CHOICES = dict(nt=[1, 2, 3], size=SIZES, dimnames=DIM_NAMES, names=VAR_NAMES, std=STD_NAMES,
               vunits=VAR_UNITS, cunits=COORD_UNITS, dtype=DTYPES, values=VALUES,
               time=TIME_KINDS, spacing=[10000.0, 1.0, 0.0, -10.0], coords=[False])


@st.composite
def bad_datasets(draw, single: bool | None = None):
    """(description dict, Dataset). ``single=True``: a good dataset with exactly one defect (and
    random dims order / axis attrs), which reaches the code behind the first validation;
    ``False``: every property drawn independently (defects compound); None: either."""
    if single is None:
        single = draw(st.booleans())
    if single:
        key = draw(st.sampled_from(sorted(CHOICES)))
        p = dict(GOOD)
        p[key] = draw(st.sampled_from(CHOICES[key]))
    else:
        p = {k: draw(_mostly(GOOD[k], CHOICES[k], 2)) for k in sorted(GOOD)}
    nt = p["nt"]
    ny, nx = p["size"]
    ydim, xdim = p["dimnames"]
    un, vn = p["names"]
    std, vunits, cunits, dtype = p["std"], p["vunits"], p["cunits"], p["dtype"]
    values, tkind, spacing, with_coords = p["values"], p["time"], p["spacing"], p["coords"]
    axis_attrs = draw(st.booleans())
    order = draw(st.permutations(["time", ydim, xdim]))
    seed = draw(st.integers(0, 2**16))
    desc = dict(nt=nt, ny=ny, nx=nx, dims=order, names=(un, vn), std=std, vunits=vunits,
                cunits=cunits, axis=axis_attrs, dtype=dtype, values=values, time=tkind,
                spacing=spacing, coords=with_coords)
    return desc, build(desc, seed)


def build(desc, seed=0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    nt, ny, nx = desc["nt"], desc["ny"], desc["nx"]
    order = list(desc["dims"])
    tdim = "time"
    spatial = {d for d in order if d != tdim}
    ydim, xdim = next(p for p in DIM_NAMES if set(p) == spatial)  # which one is y
    base = (tdim, ydim, xdim)
    shape = (nt, ny, nx)
    coords = {}
    if desc["coords"]:
        sp = desc["spacing"]
        yattrs, xattrs = {}, {}
        if desc["cunits"] is not None:
            yattrs["units"] = xattrs["units"] = desc["cunits"]
        if desc["axis"]:
            yattrs["axis"], xattrs["axis"] = "Y", "X"
        coords[ydim] = (ydim, sp * np.arange(ny), yattrs)
        coords[xdim] = (xdim, sp * np.arange(nx), xattrs)
    tk = desc["time"]
    if tk == "datetime":
        coords[tdim] = (tdim, np.datetime64("2020-01-01", "ns")
                        + np.arange(nt) * np.timedelta64(1, "h"), {"axis": "T"} if desc["axis"] else {})
    elif tk == "seconds":
        coords[tdim] = (tdim, 3600.0 * np.arange(nt), {"units": "s"})
    elif tk == "nonuniform":
        coords[tdim] = (tdim, np.datetime64("2020-01-01", "ns")
                        + np.cumsum(np.arange(nt) ** 2) * np.timedelta64(1, "h"))
    elif tk == "descending":
        coords[tdim] = (tdim, np.datetime64("2020-01-01", "ns")
                        - np.arange(nt) * np.timedelta64(1, "h"))
    elif tk == "duplicate":
        coords[tdim] = (tdim, np.full(nt, np.datetime64("2020-01-01", "ns")))
    data_vars = {}
    std = desc["std"]
    for i, n in enumerate(desc["names"]):
        vals = rng.standard_normal(shape)
        kind = desc["values"]
        if kind == "nan_one":
            vals.flat[rng.integers(vals.size)] = np.nan
        elif kind == "inf_one":
            vals.flat[rng.integers(vals.size)] = np.inf
        elif kind == "all_nan":
            vals[:] = np.nan
        elif kind == "huge":
            vals *= 1e30
        elif kind == "zero":
            vals[:] = 0.0
        dt = desc["dtype"]
        if dt == "object":
            vals = vals.astype(object)
        elif dt == "bool":
            vals = vals > 0
        elif dt.startswith("int"):
            vals = np.nan_to_num(vals, nan=0, posinf=0, neginf=0).clip(-1e6, 1e6).astype(dt)
        else:
            with np.errstate(over="ignore", invalid="ignore"):
                vals = vals.astype(dt)
        attrs = {}
        if std is not None:
            attrs["standard_name"] = std[i]
        if desc["vunits"] is not None:
            attrs["units"] = desc["vunits"]
        data_vars[n] = xr.DataArray(vals, dims=base, attrs=attrs).transpose(*order)
    if desc["time"] == "notime":
        data_vars = {k: v.isel(time=0, drop=True) for k, v in data_vars.items()}
        coords.pop(tdim, None)
    return xr.Dataset(data_vars, coords=coords, attrs={"title": "fuzz"})
