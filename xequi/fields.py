"""Find and normalize what a model needs: velocity, axes, grid spacing, units, mask, model frame.

The public path is :func:`to_model_frame` (Dataset -> :class:`ModelFrame`, a float32
``(time, channel, y, x)`` DataArray in image orientation plus everything needed to go back) and
:func:`from_model_frame` (model output -> Dataset with the user's names, units, orientation and
coordinates). The building blocks are public too: :func:`find_velocity`, :func:`find_axes`,
:func:`grid_spacing` / :func:`check_grid` (-> :class:`GridInfo`), :func:`nan_mask`,
:func:`parse_units`.

Conventions
-----------
* Model frame (``docs/architecture.md``): channels ``[u, v, *scalars]``, u along +x (increasing
  column), v along +y; row 0 is the *largest* y. A dataset whose y increases with row index
  (latitude ascending) is flipped along y on the way in and back on the way out; an x that
  decreases with column index is flipped along x. Values are never negated.
* Units: parsed with the one pint registry, :func:`xequi.units.registry` (cf-xarray's), which
  reads CF strings (``m s-1``, ``cm/s``, ``degrees_north``); converted with pint-xarray.
* Lat/lon grids: spacings in degrees are converted to metres at the domain's central latitude
  ``lat0``: ``dx = R cos(lat0) dλ``, ``dy = R dφ``, ``R = 6371 km`` (mean Earth radius); the
  per-latitude ``dx`` is :attr:`GridInfo.dx_per_y`.
* Uniform spacing: ``max |Δ - mean(Δ)| <= rtol · |mean(Δ)|`` with ``rtol = 1e-3`` by default.
* The input dataset is never modified.
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping, NamedTuple, Sequence

import cf_xarray  # noqa: F401  (registers .cf; never import cf_xarray.datasets: it downloads)
import numpy as np
import xarray as xr

from xequi.errors import (
    GridError,
    MissingDataError,
    ParameterError,
    UnitsError,
    VariableNotFoundError,
)
from xequi.units import registry

__all__ = [
    "EARTH_RADIUS",
    "VELOCITY_STANDARD_NAMES",
    "VELOCITY_COMMON_NAMES",
    "AXIS_NAMES",
    "GEOGRAPHIC_NAMES",
    "Axes",
    "GridInfo",
    "ModelFrame",
    "find_velocity",
    "find_axes",
    "parse_units",
    "grid_spacing",
    "check_grid",
    "nan_mask",
    "to_model_frame",
    "from_model_frame",
]

#: mean Earth radius used for lat/lon spacings, metres
EARTH_RADIUS = 6_371_000.0

#: (x-component, y-component) CF standard names, in order of preference
VELOCITY_STANDARD_NAMES: tuple[tuple[str, str], ...] = (
    ("sea_water_x_velocity", "sea_water_y_velocity"),
    ("eastward_sea_water_velocity", "northward_sea_water_velocity"),
    ("surface_sea_water_x_velocity", "surface_sea_water_y_velocity"),
    ("surface_eastward_sea_water_velocity", "surface_northward_sea_water_velocity"),
    ("surface_geostrophic_sea_water_x_velocity", "surface_geostrophic_sea_water_y_velocity"),
    ("surface_geostrophic_eastward_sea_water_velocity",
     "surface_geostrophic_northward_sea_water_velocity"),
    ("surface_geostrophic_eastward_sea_water_velocity_assuming_sea_level_for_geoid",
     "surface_geostrophic_northward_sea_water_velocity_assuming_sea_level_for_geoid"),
    ("geostrophic_eastward_sea_water_velocity", "geostrophic_northward_sea_water_velocity"),
    ("sea_water_x_velocity_due_to_tides", "sea_water_y_velocity_due_to_tides"),
    ("x_wind", "y_wind"),
    ("eastward_wind", "northward_wind"),
    ("surface_eastward_wind", "surface_northward_wind"),
)

#: common (u, v) variable names tried when no standard name matches
VELOCITY_COMMON_NAMES: tuple[tuple[str, str], ...] = (
    ("u", "v"), ("uo", "vo"), ("ugos", "vgos"), ("U", "V"), ("ux", "uy"), ("vx", "vy"),
    ("uvel", "vvel"), ("UVEL", "VVEL"), ("water_u", "water_v"),
)

#: dimension names that mean longitude / latitude (geographic axes in degrees), in order of
#: preference; a subset of :data:`AXIS_NAMES`
GEOGRAPHIC_NAMES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "X": ("lon", "longitude", "nav_lon", "LON", "Longitude"),
    "Y": ("lat", "latitude", "nav_lat", "LAT", "Latitude"),
})

#: common dimension names of the X, Y and T axes, tried in this order when cf-xarray finds no
#: axis (:func:`find_axes`); the one list of axis names (``xequi.ocean`` reads it too)
AXIS_NAMES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "X": ("x", "lon", "longitude", "nav_lon", "xc", "ni", "i", "xh", "xq", "nx", "LON",
          "Longitude"),
    "Y": ("y", "lat", "latitude", "nav_lat", "yc", "nj", "j", "yh", "yq", "ny", "LAT",
          "Latitude"),
    "T": ("time", "t", "time_counter", "valid_time", "Time", "TIME"),
})

_LON_UNITS = {"degrees_east", "degree_east", "degrees_e", "degree_e", "degreee", "degreese"}
_LAT_UNITS = {"degrees_north", "degree_north", "degrees_n", "degree_n", "degreen", "degreesn"}


class Axes(NamedTuple):
    """Dimension names of the X, Y and (optional) T axes."""

    x: str
    y: str
    t: str | None


# ---------------------------------------------------------------------------------------------
# discovery
# ---------------------------------------------------------------------------------------------


def _check_dataset(ds, name="ds"):
    if not isinstance(ds, xr.Dataset):
        raise ParameterError(f"{name} must be an xarray.Dataset, got {type(ds).__name__}.",
                             fix="pass a Dataset, e.g. da.to_dataset(name='u')")


def find_velocity(ds: xr.Dataset, u: str | None = None, v: str | None = None) -> tuple[str, str]:
    """Names of the (x/east, y/north) velocity components of ``ds``.

    Search order: explicit ``u=``/``v=``; CF ``standard_name`` pairs
    (:data:`VELOCITY_STANDARD_NAMES`, e.g. ``sea_water_x_velocity``,
    ``eastward_sea_water_velocity``, ``surface_...``, geostrophic variants, ``x_wind``,
    ``eastward_wind``) through cf-xarray; then common names (:data:`VELOCITY_COMMON_NAMES`:
    ``u``/``v``, ``uo``/``vo``, ``ugos``/``vgos``, ``U``/``V``, ...). The first pair found wins.

    Parameters
    ----------
    ds : xarray.Dataset
    u, v : str, optional
        Explicit variable names (both or either; the other is searched).

    Returns
    -------
    (str, str)
        Variable names of the x (east) and y (north) components.

    Raises
    ------
    VariableNotFoundError
        No velocity pair, only one component of a pair, or an explicit name not in ``ds``.
    ParameterError
        A standard name is carried by several variables (ambiguous).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"uo": (("y", "x"), np.zeros((2, 2))), "vo": (("y", "x"), np.zeros((2, 2)))})
    >>> find_velocity(ds)
    ('uo', 'vo')
    """
    _check_dataset(ds)
    for label, name in (("u", u), ("v", v)):
        if name is not None and name not in ds.data_vars:
            raise VariableNotFoundError(
                f"velocity variable {label}={name!r} is not a data variable of the dataset "
                f"(variables: {sorted(map(str, ds.data_vars))}).",
                fix=f"pass {label}= one of the dataset's variable names")
    if u is not None and v is not None:
        if u == v:
            raise ParameterError(f"u and v name the same variable {u!r}.",
                                 fix="pass the two velocity components")
        return u, v
    std = ds.cf.standard_names
    if u is not None or v is not None:  # one given: find its partner
        given, label = (u, "v") if u is not None else (v, "u")
        sn = ds[given].attrs.get("standard_name")
        pairs = [p for p in VELOCITY_STANDARD_NAMES if sn in p] if sn else []
        for su, sv in pairs:
            other = sv if label == "v" else su
            cands = [n for n in std.get(other, []) if n in ds.data_vars and n != given]
            if len(cands) == 1:
                return (given, cands[0]) if label == "v" else (cands[0], given)
        for nu, nv in VELOCITY_COMMON_NAMES:
            other = nv if label == "v" else nu
            if (nu if label == "v" else nv) == given and other in ds.data_vars:
                return (given, other) if label == "v" else (other, given)
        raise VariableNotFoundError(
            f"only one velocity component given ({'u' if label == 'v' else 'v'}={given!r}); its "
            f"partner {label} was not found by standard_name or common name.",
            fix=f"pass {label}= the other component's variable name")
    for su, sv in VELOCITY_STANDARD_NAMES:
        cu = [n for n in std.get(su, []) if n in ds.data_vars]
        cv = [n for n in std.get(sv, []) if n in ds.data_vars]
        if not cu and not cv:
            continue
        if not cu or not cv:
            have, missing = (cu, sv) if cu else (cv, su)
            raise VariableNotFoundError(
                f"only one velocity component found: {have[0]!r} has standard_name "
                f"{(su if cu else sv)!r}, but no variable has standard_name {missing!r}.",
                fix=f"add the other component with standard_name {missing!r}, or pass u= and v= "
                    "explicitly")
        for label, cands, sn in (("u", cu, su), ("v", cv, sv)):
            if len(cands) > 1:
                raise ParameterError(
                    f"several variables have standard_name {sn!r}: {sorted(cands)}; the velocity "
                    "is ambiguous.", fix=f"pass {label}= one of {sorted(cands)}")
        return cu[0], cv[0]
    for nu, nv in VELOCITY_COMMON_NAMES:
        hu, hv = nu in ds.data_vars, nv in ds.data_vars
        if hu and hv:
            return nu, nv
        if hu or hv:
            raise VariableNotFoundError(
                f"only one velocity component found: {(nu if hu else nv)!r} but no "
                f"{(nv if hu else nu)!r}.", fix="add the other component, or pass u= and v=")
    raise VariableNotFoundError(
        f"no velocity found: no variable has a velocity standard_name (e.g. "
        f"'eastward_sea_water_velocity', 'sea_water_x_velocity', 'x_wind') or a common velocity "
        f"name ('u'/'v', 'uo'/'vo', ...); variables: {sorted(map(str, ds.data_vars))}.",
        fix="set the standard_name attrs of the velocity components, or pass u= and v=")


def check_real(obj: xr.Dataset | xr.DataArray, names: Sequence[str] | None = None) -> None:
    """Raise :class:`ParameterError` unless the variables are real numbers (int or float).

    bool, complex, object and string fields are refused rather than cast silently (a complex
    velocity would lose its imaginary part, a bool one is not a velocity). Reads dtypes only.
    """
    items = [(obj.name, obj)] if isinstance(obj, xr.DataArray) else \
        [(n, obj[n]) for n in (names if names is not None else obj.data_vars)]
    for n, da in items:
        dt = da.dtype
        if not np.issubdtype(dt, np.number) or np.issubdtype(dt, np.complexfloating):
            raise ParameterError(f"variable {n!r} is not real numeric ({dt}); xequi computes "
                                 "with real float fields.",
                                 fix=f"convert it first, e.g. ds[{n!r}].astype('float64') (or "
                                     "take .real of a complex field)")


def _units_attr(obj) -> str | None:
    u = obj.attrs.get("units")
    if u is None and "units" in getattr(obj, "encoding", {}):
        u = obj.encoding["units"]
    return None if u is None else str(u)


def _is_lon(coord) -> bool:
    units = (_units_attr(coord) or "").lower().replace(" ", "")
    return coord.attrs.get("standard_name") == "longitude" or units in _LON_UNITS


def _is_lat(coord) -> bool:
    units = (_units_attr(coord) or "").lower().replace(" ", "")
    return coord.attrs.get("standard_name") == "latitude" or units in _LAT_UNITS


def _units_mapping(units, ds: xr.Dataset | None = None) -> dict:
    """``units=`` as a dict; a clear error for a bare string (a common slip) and, with ``ds``,
    for keys that are neither variables nor dimensions of ``ds`` (nor ``"u"`` / ``"v"``): a
    misspelt key would otherwise be ignored silently."""
    if units is None:
        return {}
    if not isinstance(units, Mapping):
        raise ParameterError(f"units must be a mapping {{variable or dimension: units}}, got "
                             f"{units!r}.", fix="pass e.g. units={'u': 'cm/s', 'v': 'cm/s', "
                                                "'x': 'km'}")
    if ds is not None:
        known = set(map(str, ds.variables)) | set(map(str, ds.dims)) | {"u", "v"}
        unknown = sorted(str(k) for k in units if str(k) not in known)
        if unknown:
            raise ParameterError(
                f"units= names {unknown}, neither variables nor dimensions of the data.",
                fix=f"key units= by the data's names: variables {sorted(map(str, ds.data_vars))}"
                    f", dimensions {sorted(map(str, ds.dims))} (or 'u' / 'v' for the velocity "
                    "components)")
    return dict(units)


def _time_like(coord) -> bool:
    """A coordinate that cannot be a spatial axis: datetime / timedelta, or named like a time."""
    return (np.issubdtype(coord.dtype, np.datetime64) or np.issubdtype(coord.dtype, np.timedelta64)
            or "time" in str(coord.name).lower())


def find_axes(obj: xr.Dataset | xr.DataArray, x: str | None = None, y: str | None = None,
              t: str | None = None) -> Axes:
    """Dimension names of the X, Y and T axes of ``obj``.

    Searched through cf-xarray (``axis`` attrs, standard names such as ``longitude``,
    ``latitude``, ``projection_x_coordinate``, ``time``; then ``guess_coord_axis`` on a copy of
    the coordinates), then by common dimension names (``x``/``lon``/``longitude``...). An axis
    found on a 1-D coordinate gives that coordinate's dimension. Explicit names win.

    Parameters
    ----------
    obj : xarray.Dataset or xarray.DataArray
    x, y, t : str, optional
        Explicit dimension names.

    Returns
    -------
    Axes
        ``Axes(x, y, t)``; ``t`` is None when there is no time axis.

    Raises
    ------
    VariableNotFoundError
        When X or Y cannot be found, or an explicit name is not a dimension.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(np.zeros((3, 2, 4)), dims=("lon", "time", "lat"))
    >>> find_axes(da)
    Axes(x='lon', y='lat', t='time')
    """
    if not isinstance(obj, (xr.Dataset, xr.DataArray)):
        raise ParameterError(f"expected an xarray Dataset or DataArray, got {type(obj).__name__}.",
                             fix="wrap your data in xarray with dims and coordinates")
    dims = [str(d) for d in obj.dims]
    for label, name in (("x", x), ("y", y), ("t", t)):
        if name is not None and name not in dims:
            raise VariableNotFoundError(f"{label}={name!r} is not a dimension (dims: {dims}).",
                                        fix=f"pass {label}= one of {dims}")
    coords = xr.Dataset(coords={k: c.variable.copy(deep=True) for k, c in obj.coords.items()
                                if c.ndim <= 1})
    # dimensions without a coordinate variable: an index only
    for d in dims:
        if d not in coords.coords:
            coords = coords.assign_coords({d: np.arange(obj.sizes[d])})

    def from_cf(c: xr.Dataset, guessed: bool = False) -> dict[str, str]:
        found: dict[str, str] = {}
        keys = {"X": ["X", "longitude"], "Y": ["Y", "latitude"], "T": ["T", "time"]}
        axes, crds = c.cf.axes, c.cf.coordinates
        for ax, ks in keys.items():
            for k in ks:
                for name in axes.get(k, []) + crds.get(k, []):
                    cd = c[name]
                    if cd.ndim == 1 and str(cd.dims[0]) in dims:
                        if guessed and ax in ("X", "Y") and _time_like(cd):
                            # cf-xarray's guess matches name prefixes ('i' in 'init_time')
                            continue
                        found.setdefault(ax, str(cd.dims[0]))
        return found

    found = from_cf(coords)
    if not {"X", "Y", "T"} <= set(found):
        try:
            guessed = from_cf(coords.cf.guess_coord_axis(), guessed=True)
        except Exception:  # pragma: no cover - cf-xarray heuristics failing is not fatal
            guessed = {}
        for k, val in guessed.items():
            found.setdefault(k, val)
    for ax, names in AXIS_NAMES.items():
        if ax not in found:
            for n in names:
                if n in dims:
                    found[ax] = n
                    break
    out_x = x or found.get("X")
    out_y = y or found.get("Y")
    out_t = t or found.get("T")
    for label, name in (("X", out_x), ("Y", out_y)):
        if name is None:
            raise VariableNotFoundError(
                f"no {label} axis found among the dimensions {dims}.",
                fix=f"set attrs axis='{label}' (or a standard_name) on the {label} coordinate, or "
                    f"pass {label.lower()}= the dimension name")
    if len({out_x, out_y, out_t} - {None}) < len([n for n in (out_x, out_y, out_t) if n]):
        raise GridError(f"the X, Y and T axes are not distinct dimensions: x={out_x!r}, "
                        f"y={out_y!r}, t={out_t!r}.", fix="pass x=, y=, t= explicitly")
    return Axes(out_x, out_y, out_t)


# ---------------------------------------------------------------------------------------------
# units
# ---------------------------------------------------------------------------------------------


#: examples of units named in the fixes of :func:`parse_units`, by the kind of quantity
_UNITS_EXAMPLES = {"velocity": "'m s-1'", "length": "'m' or 'km'",
                   "time": "'s' or 'hours since 2000-01-01'", "": "'K', 'm' or '1'"}


def parse_units(units: str | None, name: str, kind: str | None = None):
    """Parse a CF units string with cf-xarray's registry and check its dimensionality.

    Parameters
    ----------
    units : str or None
        CF units (``"m s-1"``, ``"cm/s"``, ``"km"``, ``"degrees_north"``, ``"1"``).
    name : str
        The variable / dimension the units belong to (named in errors).
    kind : {"velocity", "length", "time"}, optional
        Required dimensionality; non-dimensional ``"1"`` is accepted for velocity, length and
        time (non-dimensional simulations such as the Rayleigh–Bénard default).

    Returns
    -------
    pint.Unit

    Raises
    ------
    UnitsError
        Missing, unparseable, or of the wrong dimensionality.

    Examples
    --------
    >>> str(parse_units("m s-1", "u", "velocity"))
    'meter / second'
    """
    ureg = registry()
    example = _UNITS_EXAMPLES.get(kind or "", _UNITS_EXAMPLES[""])
    if units is None or (isinstance(units, str) and units.strip() == "" and kind is not None):
        raise UnitsError(f"{name!r} has no units attribute.",
                         fix=f"set ds[{name!r}].attrs['units'] (e.g. {example}), or pass "
                             f"units={{{name!r}: '...'}}")
    try:
        unit = ureg.Unit(str(units)) if not isinstance(units, ureg.Unit) else units
    except Exception:
        try:
            unit = ureg.Quantity(1, str(units)).units
        except Exception as err:
            raise UnitsError(f"units {units!r} of {name!r} cannot be parsed ({err}).",
                             fix=f"use a CF/udunits string such as {example}, or pass "
                                 f"units={{{name!r}: '...'}}") from None
    want = {"velocity": "[length] / [time]", "length": "[length]", "time": "[time]"}.get(kind or "")
    if want:
        dim = ureg.Quantity(1, unit).dimensionality
        ok = dim == ureg.Quantity(1, "m").dimensionality if kind == "length" else \
            dim == ureg.Quantity(1, "m/s").dimensionality if kind == "velocity" else \
            dim == ureg.Quantity(1, "s").dimensionality
        if not ok and not (kind in ("velocity", "length", "time") and dim == ureg.Quantity(1, "1").dimensionality
                           and "degree" not in str(unit)):
            raise UnitsError(f"units {str(units)!r} of {name!r} have dimensionality {dim}, but a "
                             f"{kind} needs {want}.",
                             fix=f"check that {name!r} is a {kind}; fix its units attribute or pass "
                                 f"units={{{name!r}: '...'}}")
    return unit


# ---------------------------------------------------------------------------------------------
# grid
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GridInfo:
    """Spacing, orientation and metric of a regular grid (from :func:`grid_spacing`).

    Attributes
    ----------
    axes : Axes
        Dimension names.
    dx, dy : pint.Quantity
        Positive spacings; metres on a lat/lon grid (at ``central_lat`` for dx), otherwise in the
        coordinate's units (e.g. ``km``, or dimensionless).
    dt : pint.Quantity or None
        Time step (seconds for datetime coordinates), None without a time axis of length ≥ 2.
    x_ascending, y_ascending : bool
        Whether the coordinate increases with the index.
    is_latlon : bool
    central_lat : float or None
        Mean of the latitude range, degrees (lat/lon grids).
    anisotropy : float
        ``dx / dy`` (1 for square cells; ``cos(lat0)`` on an equal-degree lat/lon grid).
    dx_per_y : xarray.DataArray or None
        Lat/lon grids: the metric x spacing ``R cos(lat) dλ`` in metres at each latitude.
    nx, ny, nt : int
        Sizes.
    """

    axes: Axes
    dx: Any
    dy: Any
    dt: Any
    x_ascending: bool
    y_ascending: bool
    is_latlon: bool
    central_lat: float | None
    anisotropy: float
    nx: int
    ny: int
    nt: int
    dx_per_y: xr.DataArray | None = field(default=None, repr=False, compare=False)


def _coord_1d(obj, dim: str) -> xr.DataArray:
    if dim in obj.coords:
        return obj.coords[dim]
    return xr.DataArray(np.arange(obj.sizes[dim], dtype=float), dims=(dim,), name=dim)


def _spacing(values, name: str, rtol: float, kind: str) -> tuple[float, bool]:
    """Mean step (signed) of a 1-D axis; checks monotonic and uniform."""
    vals = np.asarray(values)
    if vals.size < 2:
        raise GridError(f"the {kind} axis {name!r} has {vals.size} point(s); a spacing needs at "
                        "least 2.", fix=f"select at least 2 points along {name!r}")
    if np.issubdtype(vals.dtype, np.datetime64) or np.issubdtype(vals.dtype, np.timedelta64):
        d = np.diff(vals) / np.timedelta64(1, "s")
    else:
        d = np.diff(vals)
        if d.dtype == object:  # cftime -> datetime.timedelta
            try:
                d = np.array([s.total_seconds() for s in d], dtype=float)
            except AttributeError:
                d = d.astype(float)
        d = d.astype(float)
    if not np.all(np.isfinite(d)):
        raise GridError(f"the {kind} coordinate {name!r} has NaN/inf values.",
                        fix=f"fill or drop the missing values of {name!r}")
    if not (np.all(d > 0) or np.all(d < 0)):
        raise GridError(f"the {kind} coordinate {name!r} is not strictly monotonic.",
                        fix=f"sort it, e.g. ds.sortby({name!r}), and drop duplicates")
    mean = float(d.mean())
    dev = float(np.max(np.abs(d - mean)))
    if dev > rtol * abs(mean):
        raise GridError(
            f"the {kind} coordinate {name!r} is not uniformly spaced: steps vary by up to "
            f"{dev:.3g} around the mean {mean:.6g} (relative {dev / abs(mean):.2g} > rtol={rtol}).",
            fix=f"regrid/interpolate {name!r} to a uniform spacing, or raise rtol")
    return mean, mean > 0


def grid_spacing(obj: xr.Dataset | xr.DataArray, x: str | None = None, y: str | None = None,
                 t: str | None = None, rtol: float = 1e-3,
                 units: Mapping[str, str] | None = None) -> GridInfo:
    """Spacing, orientation and metric of the grid of ``obj``, as pint quantities.

    Parameters
    ----------
    obj : xarray.Dataset or xarray.DataArray
    x, y, t : str, optional
        Dimension names (found with :func:`find_axes` otherwise).
    rtol : float, default 1e-3
        Uniformity tolerance relative to the mean spacing (see module docstring).
    units : mapping, optional
        Units for coordinates that lack them, keyed by dimension name, e.g. ``{"x": "km"}``.

    Returns
    -------
    GridInfo

    Raises
    ------
    GridError
        Non-monotonic or non-uniform axis, fewer than 2 points along x or y.
    UnitsError
        Missing or wrong units of the x/y (length or degrees) or numeric time coordinate.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(np.zeros((3, 4)), dims=("lat", "lon"),
    ...     coords={"lat": ("lat", [1., 0., -1.], {"units": "degrees_north"}),
    ...             "lon": ("lon", [0., 1., 2., 3.], {"units": "degrees_east"})})
    >>> g = grid_spacing(da)
    >>> round(float(g.dy.to("km").magnitude), 2), g.y_ascending, g.is_latlon
    (111.19, False, True)
    """
    if not rtol > 0:
        raise ParameterError(f"rtol must be > 0, got {rtol}.", fix="pass e.g. rtol=1e-3")
    ureg = registry()
    units = _units_mapping(units)
    ax = find_axes(obj, x=x, y=y, t=t)
    cx, cy = _coord_1d(obj, ax.x), _coord_1d(obj, ax.y)
    mx, x_asc = _spacing(cx.values, ax.x, rtol, "x")
    my, y_asc = _spacing(cy.values, ax.y, rtol, "y")
    lon, lat = _is_lon(cx) and ax.x not in units, _is_lat(cy) and ax.y not in units
    is_latlon = lon and lat
    central_lat = None
    dx_per_y = None
    if is_latlon:
        central_lat = float((float(cy.min()) + float(cy.max())) / 2.0)
        dphi, dlam = math.radians(abs(my)), math.radians(abs(mx))
        dy = ureg.Quantity(EARTH_RADIUS * dphi, "m")
        dx = ureg.Quantity(EARTH_RADIUS * math.cos(math.radians(central_lat)) * dlam, "m")
        dx_per_y = xr.DataArray(EARTH_RADIUS * np.cos(np.radians(cy.values.astype(float))) * dlam,
                                dims=(ax.y,), coords={ax.y: cy.values},
                                attrs={"units": "m", "long_name": "metric x spacing"})
    elif lon or lat:
        which = ax.x if lon else ax.y
        raise UnitsError(f"{which!r} is in degrees but the other horizontal axis is not: a "
                         "half lat/lon grid has no metric spacing.",
                         fix="use a full lat/lon grid, or pass units={...} for both axes")
    else:
        ux = parse_units(units.get(ax.x, _units_attr(cx)), ax.x, "length")
        uy = parse_units(units.get(ax.y, _units_attr(cy)), ax.y, "length")
        dx = ureg.Quantity(abs(mx), ux)
        dy = ureg.Quantity(abs(my), uy)
    if dx.dimensionality != dy.dimensionality:
        raise UnitsError(f"x ({dx.units}) and y ({dy.units}) spacings have different dimensions.",
                         fix="give both axes length units")
    anis = float((dx / dy).to("dimensionless").magnitude)
    dt, nt = None, 1
    if ax.t is not None:
        ct = _coord_1d(obj, ax.t)
        nt = int(obj.sizes[ax.t])
        if nt >= 2:
            mt, t_asc = _spacing(ct.values, ax.t, rtol, "time")
            if not t_asc:
                raise GridError(f"the time coordinate {ax.t!r} decreases.",
                                fix=f"sort it: ds.sortby({ax.t!r})")
            if np.issubdtype(np.asarray(ct.values).dtype, np.number):
                tu = units.get(ax.t, _units_attr(ct))
                ut = parse_units(tu, ax.t, "time") if tu is not None and "since" not in str(tu) \
                    else None
                if ut is None:
                    raise UnitsError(f"the time coordinate {ax.t!r} is numeric without usable "
                                     f"units ({tu!r}).",
                                     fix=f"decode times (xr.decode_cf) or pass units={{{ax.t!r}: 's'}}")
                dt = ureg.Quantity(mt, ut)
            else:
                dt = ureg.Quantity(mt, "s")
    return GridInfo(axes=ax, dx=dx, dy=dy, dt=dt, x_ascending=x_asc, y_ascending=y_asc,
                    is_latlon=is_latlon, central_lat=central_lat, anisotropy=anis,
                    nx=int(obj.sizes[ax.x]), ny=int(obj.sizes[ax.y]), nt=nt, dx_per_y=dx_per_y)


#: a cell aspect ratio dx/dy further than this from 1 makes a 90-degree turn of the index grid
#: a rotation plus a stretch (1 %: the error of rot90 on such a grid is of that order or more)
ANISOTROPY_TOL = 0.01


def warn_rotation_on_anisotropic_grid(grid: GridInfo, symmetries, what: str = "forecast") -> bool:
    """Warn when a model built to be exact under 90-degree rotations meets a grid on which a
    90-degree turn of the index grid is not a physical rotation (cells not square: lat/lon grids
    away from the equator, projected grids with dx != dy). Returns whether it warned.

    The warning gives the measured geometry (the cell aspect ratio ``dx / dy``: an index-grid
    rotation stretches the field by it) and the fix. On the GlobCurrent Agulhas grid (aspect
    0.82 at its centre, 35 S) the index-grid rotation of the real currents differs from the
    physical one by 1.02 relative (``xequi.ocean.latlon_rotation_error``, docs/ocean.md).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({n: (("y", "x"), np.zeros((4, 4)), {"units": "m s-1"}) for n in "uv"},
    ...                 coords={"x": ("x", np.arange(4) * 2.0, {"units": "km"}),
    ...                         "y": ("y", np.arange(4) * 1.0, {"units": "km"})})
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     warn_rotation_on_anisotropic_grid(grid_spacing(ds), ["rot90"])
    True
    >>> "dx/dy = 2" in str(w[0].message)
    True
    """
    if "rot90" not in set(symmetries or ()) or abs(grid.anisotropy - 1.0) <= ANISOTROPY_TOL:
        return False
    where = (f"a lat/lon grid centred at {grid.central_lat:.3g} deg" if grid.is_latlon
             else "this grid")
    warnings.warn(
        f"a model exact under 90-degree rotations of the index grid is used to {what} on {where}, "
        f"whose cells are not square (dx/dy = {grid.anisotropy:.3g}): there a 90-degree turn of the "
        f"index grid is a rotation plus a stretch by {1 / grid.anisotropy:.3g}, not a physical "
        "rotation, so the model's rotation symmetry is not the flow's (on the GlobCurrent Agulhas "
        "grid, dx/dy 0.82, the two differ by 1.02 relative: xequi.ocean.latlon_rotation_error "
        "measures it on your data). Fix: regrid onto a local metric grid with square cells "
        "(dx == dy) first, or use a model without rotation symmetry (e.g. 'resnet', or "
        "'relaxed-rot-resnet').", UserWarning, stacklevel=3)
    return True


def check_grid(obj: xr.Dataset | xr.DataArray, min_time: int | None = None,
               min_size: tuple[int, int] | None = None, **kwargs) -> GridInfo:
    """:func:`grid_spacing` plus size checks: enough time steps and grid points.

    Parameters
    ----------
    obj : xarray.Dataset or xarray.DataArray
    min_time : int, optional
        Required number of time steps (e.g. the model's input history T_in).
    min_size : (int, int), optional
        Required ``(ny, nx)``.
    **kwargs
        Passed to :func:`grid_spacing` (``x``, ``y``, ``t``, ``rtol``, ``units``).

    Returns
    -------
    GridInfo

    Raises
    ------
    GridError
        Everything :func:`grid_spacing` raises, too few time steps or grid points.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> da = xr.DataArray(np.zeros((2, 3, 3)), dims=("time", "y", "x"), coords={
    ...     "x": ("x", [0., 1., 2.], {"units": "km"}), "y": ("y", [0., 1., 2.], {"units": "km"}),
    ...     "time": ("time", [0., 3600.], {"units": "s"})})
    >>> check_grid(da, min_time=2).dt
    <Quantity(3600.0, 'second')>
    """
    info = grid_spacing(obj, **kwargs)
    if min_time is not None:
        if info.axes.t is None:
            raise GridError(f"no time axis found, but {min_time} time steps are required.",
                            fix="add a time dimension (axis='T'), or pass t= its name")
        if info.nt < int(min_time):
            raise GridError(f"too few time steps along {info.axes.t!r}: {info.nt} < {min_time} "
                            "required (the model's input history).",
                            fix=f"select at least {min_time} consecutive time steps")
    if min_size is not None:
        ny, nx = min_size
        if info.ny < ny or info.nx < nx:
            raise GridError(f"grid ({info.axes.y}={info.ny}, {info.axes.x}={info.nx}) is smaller "
                            f"than the required {tuple(min_size)}.", fix="select a larger region")
    return info


def nan_mask(ds: xr.Dataset | xr.DataArray, names: Sequence[str] | None = None) -> xr.DataArray:
    """Boolean mask, True where any of the variables is NaN or ±inf.

    Parameters
    ----------
    ds : xarray.Dataset or xarray.DataArray
    names : sequence of str, optional
        Variables to combine (default: all data variables).

    Returns
    -------
    xarray.DataArray
        bool, over the union of the variables' dims, named ``"mask"``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> int(nan_mask(xr.DataArray([1.0, np.nan, np.inf])).sum())
    2
    """
    if isinstance(ds, xr.DataArray):
        return (~np.isfinite(ds)).rename("mask")
    names = list(ds.data_vars) if names is None else list(names)
    masks = [~np.isfinite(ds[n]) for n in names]
    if not masks:
        raise ParameterError("nan_mask needs at least one variable.", fix="pass names=[...]")
    out = masks[0]
    for m in masks[1:]:
        out = out | m
    out = out.rename("mask")
    out.attrs = {"long_name": "missing or non-finite value (land)", "flag_values": "True = missing"}
    return out


# ---------------------------------------------------------------------------------------------
# orientation: the one place that maps the data's y/x direction to the model frame's
# ---------------------------------------------------------------------------------------------


class Orientation(NamedTuple):
    """Whether the data's x and y coordinates increase with the index (no units needed)."""

    x_ascending: bool
    y_ascending: bool

    @property
    def flip_y(self) -> bool:
        """True when the data must be flipped along y to reach the model frame (row 0 = top)."""
        return self.y_ascending

    @property
    def flip_x(self) -> bool:
        """True when the data must be flipped along x (x must increase with the column)."""
        return not self.x_ascending


def orientation(obj: xr.Dataset | xr.DataArray, ax: Axes) -> Orientation:
    """The direction of ``obj``'s x and y coordinates (a dim without coordinate is ascending).

    Raises :class:`GridError` for a coordinate that is not strictly monotonic.
    """
    def ascending(dim):
        if dim not in obj.coords or obj.sizes[dim] < 2:
            return True
        d = np.diff(np.asarray(obj[dim].values))
        if np.issubdtype(d.dtype, np.timedelta64):
            d = d / np.timedelta64(1, "s")
        d = d.astype(float)
        if not (np.all(d > 0) or np.all(d < 0)):
            raise GridError(f"the coordinate {dim!r} is not strictly monotonic.",
                            fix=f"sort it: ds.sortby({dim!r})")
        return bool(d[0] > 0)

    return Orientation(x_ascending=ascending(ax.x), y_ascending=ascending(ax.y))


def orient(arr: np.ndarray, flip_y: bool, flip_x: bool) -> np.ndarray:
    """``arr`` (``(..., y, x)``) flipped along y and/or x: the map between the data's orientation
    and the model frame's, its own inverse (a view, no copy).

    >>> orient(np.arange(4).reshape(2, 2), flip_y=True, flip_x=False).tolist()
    [[2, 3], [0, 1]]
    """
    if flip_y:
        arr = arr[..., ::-1, :]
    if flip_x:
        arr = arr[..., ::-1]
    return arr


# ---------------------------------------------------------------------------------------------
# model frame
# ---------------------------------------------------------------------------------------------


@dataclass
class ModelFrame:
    """A dataset in the model frame, with what :func:`from_model_frame` needs to go back.

    Attributes
    ----------
    data : xarray.DataArray
        float32, dims ``(*extra, "time", "channel", "y", "x")``, channels ``[u, v, *scalars]``
        (coordinate ``channel`` holds the variable names), image orientation (row 0 = largest y).
    mask : xarray.DataArray
        bool, dims ``(*extra, "time", "y", "x")`` in the same orientation, True where any
        channel was NaN/inf (filled per ``fill``).
    names : tuple of str
        Variable names in channel order.
    axes : Axes
        The input's dimension names.
    grid : GridInfo
    units_in : dict
        Units string of each variable as found (or given).
    units_model : dict
        Units string of each channel in ``data``.
    attrs : dict
        Attrs of each variable; ``dataset_attrs`` of the Dataset.
    flip_y, flip_x : bool
        Whether y / x were reversed to reach image orientation.
    n_velocity : {2, 0}
        Leading velocity channels (0 for a scalar-only frame, ``velocity=False``).
    coords : xarray.Dataset
        The input's coordinates (without the data).
    dim_order : dict
        Each variable's original dimension order.
    """

    data: xr.DataArray
    mask: xr.DataArray
    names: tuple[str, ...]
    axes: Axes
    grid: GridInfo
    units_in: dict
    units_model: dict
    attrs: dict
    dataset_attrs: dict
    flip_y: bool
    flip_x: bool
    coords: xr.Dataset
    dim_order: dict
    added_time: bool = False
    n_velocity: int = 2
    #: ``(channel, y, x)`` in the model frame: True where that channel was missing at every time
    #: (each variable's own land: u and v masks differ on staggered grids); None: use ``mask``
    channel_land: np.ndarray | None = None


def _convert(da: xr.DataArray, src, dst) -> xr.DataArray:
    """Convert values with pint-xarray from unit ``src`` to ``dst`` (pint Units)."""
    import pint_xarray  # noqa: F401  (registers .pint)

    ureg = registry()
    if src == dst:
        return da
    try:
        q = da.pint.quantify(src, unit_registry=ureg)
        return q.pint.to(dst).pint.dequantify().assign_attrs(da.attrs)
    except Exception as err:
        raise UnitsError(f"cannot convert {da.name!r} from {src} to {dst}: {err}.",
                         fix="give target units of the same dimensionality") from None


def to_model_frame(ds: xr.Dataset, u: str | None = None, v: str | None = None,
                   scalars: Sequence[str] = (), units: Mapping[str, str] | None = None,
                   target_units: str | Mapping[str, str] | None = None, fill: str = "error",
                   min_time: int | None = None, rtol: float = 1e-3, x: str | None = None,
                   y: str | None = None, t: str | None = None, velocity: bool = True) -> ModelFrame:
    """Map a Dataset to the model frame ``(*extra, time, channel, y, x)``, float32.

    Parameters
    ----------
    ds : xarray.Dataset
        Any dimension order; extra dims (e.g. depth) become leading dims.
    u, v : str, optional
        Velocity component names (:func:`find_velocity` otherwise).
    scalars : sequence of str
        Extra scalar channels (e.g. ``["temperature"]``), in this order after u, v.
    units : mapping, optional
        Units of variables or coordinates whose attrs lack them (or to override), keyed by
        variable / dimension name, e.g. ``{"u": "cm/s", "v": "cm/s", "x": "km"}``.
    target_units : str or mapping, optional
        Units of the model: a string applies to u and v; a mapping is keyed by variable name
        (or ``"u"``/``"v"``/``"velocity"``). Default: keep the input units.
    fill : {"error", "zero"}
        NaN/inf handling: raise :class:`MissingDataError` (default), or set to 0 (zero velocity:
        the land convention). The mask is returned either way.
    min_time : int, optional
        Required number of time steps.
    rtol : float, default 1e-3
        Grid uniformity tolerance.
    x, y, t : str, optional
        Explicit dimension names.
    velocity : bool, default True
        ``False``: a scalar-only frame, channels ``[*scalars]`` (``scalars`` must name at least
        one variable; u and v are not looked for), for models built with ``velocity=False``.
        A string ``target_units`` is then refused (it names the velocity's units).

    Returns
    -------
    ModelFrame

    Raises
    ------
    VariableNotFoundError, GridError, UnitsError, MissingDataError, ParameterError

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset(
    ...     {"u": (("time", "lat", "lon"), np.ones((2, 3, 4)), {"units": "cm/s"}),
    ...      "v": (("time", "lat", "lon"), np.zeros((2, 3, 4)), {"units": "cm/s"})},
    ...     coords={"lat": ("lat", [0., 1., 2.], {"units": "degrees_north"}),
    ...             "lon": ("lon", [0., 1., 2., 3.], {"units": "degrees_east"}),
    ...             "time": np.array(["2020-01-01", "2020-01-02"], dtype="datetime64[ns]")})
    >>> mf = to_model_frame(ds, target_units="m/s")
    >>> mf.data.dims, round(float(mf.data[0, 0, 0, 0]), 6), mf.flip_y
    (('time', 'channel', 'y', 'x'), 0.01, True)
    >>> back = from_model_frame(mf.data, mf)
    >>> bool(np.allclose(back["u"], ds["u"])), back["u"].attrs["units"]
    (True, 'cm/s')
    """
    _check_dataset(ds)
    if fill not in ("error", "zero"):
        raise ParameterError(f"fill must be 'error' or 'zero', got {fill!r}.",
                             fix="pass fill='zero' to treat NaN (land) as zero velocity")
    units = _units_mapping(units, ds)
    scalars = [scalars] if isinstance(scalars, str) else list(scalars)
    un, vn = _frame_velocity(ds, u, v, scalars, target_units, velocity)
    _check_scalars(ds, scalars, un, vn)
    names = (un, vn, *scalars) if velocity else tuple(scalars)
    check_real(ds, names)
    grid = check_grid(ds[list(names)], min_time=min_time, rtol=rtol, x=x, y=y, t=t,
                      units={k: val for k, val in units.items() if k in ds.dims})
    ax = grid.axes
    channels = _read_channels(ds, names, ax, units, _target_units(target_units, un, vn), un, vn)
    if velocity:
        _check_velocity_units(channels.units_model, un, vn)
    stack = _stack_channels(channels.variables, ax)
    way = Orientation(x_ascending=grid.x_ascending, y_ascending=grid.y_ascending)
    vals, bad = _fill_missing(orient(stack.values, way.flip_y, way.flip_x), names, fill)
    coords = _frame_coords(ds, ax, stack.extra, names)
    data = xr.DataArray(vals.astype(np.float32), dims=(*stack.extra, "time", "channel", "y", "x"),
                        coords=coords, name="model_input",
                        attrs=_frame_attrs(names, channels.units_model, velocity))
    mask = xr.DataArray(bad.any(axis=-3), dims=(*stack.extra, "time", "y", "x"),
                        coords={k: val for k, val in coords.items() if k != "channel"}, name="mask")
    keep_coords = ds.drop_vars(list(ds.data_vars)).coords.to_dataset()
    return ModelFrame(data=data, mask=mask, names=tuple(names), axes=ax, grid=grid,
                      units_in=channels.units_in, units_model=channels.units_model,
                      attrs={n: copy.deepcopy(dict(ds[n].attrs)) for n in names},
                      dataset_attrs=copy.deepcopy(dict(ds.attrs)), flip_y=way.flip_y,
                      flip_x=way.flip_x, coords=keep_coords.copy(deep=True),
                      dim_order={n: tuple(map(str, ds[n].dims)) for n in names},
                      added_time=stack.added_time, n_velocity=2 if velocity else 0,
                      channel_land=bad.all(axis=tuple(range(bad.ndim - 4)) + (bad.ndim - 4,))
                      if bad.any() else None)


def _frame_velocity(ds, u, v, scalars, target_units, velocity) -> tuple:
    """The velocity names of a model frame, or ``(None, None)`` for a valid scalar-only one."""
    if velocity:
        return find_velocity(ds, u=u, v=v)
    if not scalars:
        raise ParameterError("a scalar-only model frame (velocity=False) needs at least one "
                             "scalar variable.", fix="pass scalars=['temperature'] (the "
                                                     "variables to stack as channels)")
    if isinstance(target_units, str):
        raise ParameterError(f"target_units={target_units!r} names the velocity's units, but "
                             "this frame has no velocity (velocity=False).",
                             fix="pass a mapping {variable: units}")
    return None, None


def _check_scalars(ds, scalars, un, vn) -> None:
    """Every scalar channel is a data variable and not a velocity component."""
    for s in scalars:
        if s not in ds.data_vars:
            raise VariableNotFoundError(f"scalar variable {s!r} is not in the dataset "
                                        f"(variables: {sorted(map(str, ds.data_vars))}).",
                                        fix="pass scalars= names of data variables")
        if s in (un, vn):
            raise ParameterError(f"{s!r} is a velocity component, not a scalar.",
                                 fix="list only extra scalar channels in scalars=")


def _target_units(target_units, un, vn) -> dict:
    """``target_units=`` keyed by variable name (``"u"``, ``"v"``, ``"velocity"`` resolved)."""
    tgt = {}
    if isinstance(target_units, str):
        tgt = {un: target_units, vn: target_units}
    elif target_units is not None:
        for k, val in target_units.items():
            key = {"u": un, "v": vn}.get(k, k)
            if k == "velocity":
                tgt[un] = tgt[vn] = val
            else:
                tgt[key] = val
    return tgt


class _Channels(NamedTuple):
    """The channel variables of a model frame (in the model's units) and their units strings."""

    variables: list
    units_in: dict
    units_model: dict


def _read_channels(ds, names, ax: Axes, units: dict, tgt: dict, un, vn) -> _Channels:
    """Each channel's variable, its units as found (or given) and converted to ``tgt``'s."""
    variables, units_in, units_model = [], {}, {}
    label = {un: "u", vn: "v"}
    for n in names:
        da = ds[n]
        for need in (ax.x, ax.y):
            if need not in da.dims:
                raise GridError(f"variable {n!r} lacks the {need!r} dimension (dims {da.dims}).",
                                fix="pass variables defined on the same (y, x) grid")
        given = units.get(n, units.get(label.get(n, ""), None))
        raw = given if given is not None else _units_attr(da)
        kind = "velocity" if n in (un, vn) else None
        src = parse_units(raw, n, kind)
        if kind is None and raw is None:
            raw = "1"
        units_in[n] = str(raw)
        if n in tgt:
            dst = parse_units(tgt[n], f"target units of {n}", kind)
            da = _convert(da.astype("float64"), src, dst)
            units_model[n] = str(tgt[n])
        else:
            units_model[n] = str(raw)
        variables.append(da.variable.copy(deep=False).to_base_variable())
    return _Channels(variables, units_in, units_model)


def _check_velocity_units(units_model: dict, un: str, vn: str) -> None:
    """u and v must end up in the same units."""
    try:
        same = units_model[un] == units_model[vn] or \
            registry().Quantity(1, units_model[un]).to(units_model[vn]).magnitude == 1
    except Exception:
        same = False
    if not same:
        raise UnitsError(f"u {units_model[un]!r} and v {units_model[vn]!r} have different units.",
                         fix="give both components the same units (target_units='m/s')")


class _Stack(NamedTuple):
    """Channels stacked as ``(*extra, time, channel, y, x)`` float64 values, data orientation."""

    values: np.ndarray
    extra: list
    added_time: bool


def _stack_channels(variables, ax: Axes) -> _Stack:
    """Broadcast the channels to common dims (extra dims first, then time, y, x) and stack them;
    a dataset without time gets a length-1 ``time`` dim."""
    all_dims: list[str] = []
    for a in variables:
        for d in a.dims:
            if d not in all_dims:
                all_dims.append(d)
    extra = [d for d in all_dims if d not in (ax.x, ax.y, ax.t)]
    added_time = ax.t is None
    tdim = ax.t if ax.t is not None else "time"
    order = [*extra, tdim, ax.y, ax.x]
    vars_ = [xr.DataArray(a) for a in variables]
    if added_time:
        vars_ = [d.expand_dims(tdim) for d in vars_]
    vars_ = xr.broadcast(*vars_)
    stacked = xr.concat([d.transpose(*order) for d in vars_], dim="channel")
    stacked = stacked.transpose(*extra, tdim, "channel", ax.y, ax.x)
    return _Stack(np.asarray(stacked.values, dtype=np.float64), extra, added_time)


def _fill_missing(vals: np.ndarray, names, fill: str) -> tuple[np.ndarray, np.ndarray]:
    """``(values, bad)``: NaN/inf set to 0 with ``fill="zero"`` (refused with ``"error"``)."""
    bad = ~np.isfinite(vals)
    if bad.any():
        if fill == "error":
            counts = bad.reshape(bad.shape[:-3] + (bad.shape[-3], -1)).sum(axis=-1)
            per_var = counts.reshape(-1, len(names)).sum(axis=0)
            culprits = ", ".join(f"{n!r}: {int(c)} cells" for n, c in zip(names, per_var) if c)
            raise MissingDataError(
                f"NaN/inf values in {culprits} (e.g. land); a model cannot take them.",
                fix="pass fill='zero' to use zero velocity on land (the mask is kept in "
                    "ModelFrame.mask), or fill/drop the missing values first")
        vals = np.where(bad, 0.0, vals)
    return vals, bad


def _frame_coords(ds, ax: Axes, extra, names) -> dict[str, Any]:
    """Coordinates of the model-frame array: channel names, the times, the extra dims'."""
    coords: dict[str, Any] = {"channel": list(names)}
    if ax.t is not None and ax.t in ds.coords:
        coords["time"] = ds[ax.t].values
    for d in extra:
        if d in ds.coords:
            coords[d] = ds[d].values
    return coords


def _frame_attrs(names, units_model: dict, velocity: bool) -> dict:
    """Attrs of the model-frame array: the layout, each channel's units, the velocity channels."""
    return {"xequi_frame": "model frame: row 0 = largest y, channels [u, v, *scalars], u along "
                           "+x, v along +y" if velocity else
                           "model frame: row 0 = largest y, channels [*scalars] (no velocity)",
            "units": ", ".join(f"{n}: {units_model[n]}" for n in names),
            "n_velocity": 2 if velocity else 0}


def from_model_frame(array, frame: ModelFrame, dims: Sequence[str] | None = None,
                     units: str = "input", restore_mask: bool = True) -> xr.Dataset:
    """Map a model-frame array back to a Dataset with the user's names, units and orientation.

    Parameters
    ----------
    array : xarray.DataArray, numpy.ndarray or torch.Tensor
        Shape ``(..., channel, y, x)`` in the model frame with the channels of ``frame`` (or the
        first ones: a model that predicts only u, v returns 2 channels). A DataArray keeps its
        leading dims and coords (e.g. ``init_time``, ``lead_time``); for arrays the leading dims
        are named by ``dims`` (default: ``frame``'s leading dims when the shapes match, else
        ``dim_0, dim_1, ...``).
    frame : ModelFrame
        From :func:`to_model_frame`.
    dims : sequence of str, optional
        Names of the leading dims of a plain array.
    units : {"input", "model"}
        Convert back to the units the input had (default) or keep the model's.
    restore_mask : bool, default True
        Put NaN back where the input was missing at every time step (static land mask).

    Returns
    -------
    xarray.Dataset
        Variables named as in the input, dims ``(*leading, y_dim, x_dim)`` with the input's
        spatial dim names, coordinates and orientation, attrs (units included) restored.

    Raises
    ------
    ParameterError
        When the shape does not fit the frame.

    Examples
    --------
    See :func:`to_model_frame`.
    """
    if units not in ("input", "model"):
        raise ParameterError(f"units must be 'input' or 'model', got {units!r}.",
                             fix="pass units='input'")
    ax = frame.axes
    lead = _leading(array, frame, dims)
    C = _check_fits_frame(lead.values, frame)
    lead = _restore_time_dim(lead._replace(values=orient(lead.values, frame.flip_y, frame.flip_x)),
                             frame)
    land = _static_land(frame) if restore_mask else None
    out = {n: _restore_variable(lead.values[..., i, :, :], n, frame, lead.dims,
                                None if land is None else land[i], units)
           for i, n in enumerate(frame.names[:C])}
    ds = xr.Dataset(out)
    coords = dict(lead.coords)
    for d in (ax.y, ax.x):
        if d in frame.coords:
            coords[d] = frame.coords[d]
    for k, c in frame.coords.coords.items():
        if k not in coords and set(c.dims) <= {ax.x, ax.y} and k not in ds.dims:
            coords[k] = c
    ds = ds.assign_coords(coords)
    ds.attrs = dict(frame.dataset_attrs)
    return ds


class _Leading(NamedTuple):
    """Model output ``(..., channel, y, x)`` with the names and coords of its leading dims."""

    values: np.ndarray
    dims: list
    coords: dict


def _leading(array, frame: ModelFrame, dims) -> _Leading:
    """Read the model output and name its leading dims (a DataArray's own, else ``dims`` /
    the frame's when the shapes match / ``dim_0, dim_1, ...``)."""
    if isinstance(array, xr.DataArray):
        da = array
        if tuple(da.dims[-3:]) != ("channel", "y", "x"):
            raise ParameterError(f"array dims {da.dims} do not end with ('channel', 'y', 'x').",
                                 fix="transpose to (..., 'channel', 'y', 'x')")
        lead_dims = [str(d) for d in da.dims[:-3]]
        lead_coords = {k: c for k, c in da.coords.items()
                       if set(c.dims) <= set(lead_dims) and k not in ("channel",)}
        return _Leading(np.asarray(da.values), lead_dims, lead_coords)
    try:
        vals = array.detach().cpu().numpy() if hasattr(array, "detach") else np.asarray(array)
    except Exception:
        raise ParameterError(f"cannot read an array from {type(array).__name__}.",
                             fix="pass a DataArray, numpy array or torch tensor") from None
    nlead = vals.ndim - 3
    frame_lead = [str(d) for d in frame.data.dims[:-3]]
    if dims is not None:
        lead_dims = list(dims)
    elif tuple(vals.shape[:-3]) == tuple(frame.data.shape[:-3]):
        lead_dims = list(frame_lead)
    else:
        lead_dims = [f"dim_{i}" for i in range(nlead)]
    if len(lead_dims) != nlead:
        raise ParameterError(f"dims {lead_dims} do not match the {nlead} leading dims of an "
                             f"array of shape {vals.shape}.", fix="pass dims= one name each")
    lead_coords = {}
    if lead_dims == frame_lead:
        lead_coords = {k: c for k, c in frame.data.coords.items() if k != "channel"
                       and set(c.dims) <= set(lead_dims)}
    return _Leading(vals, lead_dims, lead_coords)


def _check_fits_frame(vals: np.ndarray, frame: ModelFrame) -> int:
    """The number of channels of ``vals``, after checking it fits the frame's grid and channels."""
    if vals.ndim < 3:
        raise ParameterError(f"array of shape {vals.shape} is not (..., channel, y, x).",
                             fix="pass the model output shaped (..., C, H, W)")
    ny, nx = frame.data.shape[-2:]
    C = vals.shape[-3]
    if vals.shape[-2:] != (ny, nx) or not 1 <= C <= len(frame.names):
        raise ParameterError(f"array of shape {vals.shape} does not fit the frame (channels "
                             f"{list(frame.names)}, grid {ny}×{nx}).",
                             fix="pass the model output on the frame's grid")
    return C


def _restore_time_dim(lead: _Leading, frame: ModelFrame) -> _Leading:
    """Give the time dim back as the input had it: dropped when :func:`to_model_frame` added it,
    renamed to the input's name, and with the input's coordinate (attrs) when the times match."""
    ax = frame.axes
    vals, lead_dims, lead_coords = lead.values, list(lead.dims), dict(lead.coords)
    if frame.added_time and "time" in lead_dims and vals.shape[lead_dims.index("time")] == 1:
        i = lead_dims.index("time")
        vals = np.take(vals, 0, axis=i)
        lead_dims.pop(i)
        lead_coords = {k: c for k, c in lead_coords.items() if "time" not in c.dims}
    if ax.t is not None and ax.t != "time" and "time" in lead_dims and ax.t not in lead_dims:
        lead_dims[lead_dims.index("time")] = ax.t  # restore the input's time dim name
        lead_coords = {(ax.t if k == "time" else k): (c.rename({"time": ax.t}) if "time" in c.dims
                                                       else c) for k, c in lead_coords.items()}
    if ax.t is not None and ax.t in lead_dims and ax.t in frame.coords.coords:
        orig = frame.coords[ax.t]
        cur = lead_coords.get(ax.t)
        if cur is not None and cur.size == orig.size and np.array_equal(np.asarray(cur.values),
                                                                         np.asarray(orig.values)):
            lead_coords[ax.t] = orig  # with its attrs
    return _Leading(vals, lead_dims, lead_coords)


def _static_land(frame: ModelFrame) -> np.ndarray | None:
    """``(channel, y, x)`` in the data's orientation: True where that channel's input was
    missing at every time, each variable with its own mask (None when nothing was missing)."""
    if not bool(frame.mask.any()):
        return None
    if frame.channel_land is not None:
        return orient(frame.channel_land, frame.flip_y, frame.flip_x)
    m = frame.mask.values.all(axis=tuple(range(frame.mask.ndim - 2)))
    return np.broadcast_to(orient(m, frame.flip_y, frame.flip_x),
                           (len(frame.names),) + m.shape)


def _restore_variable(vals: np.ndarray, n: str, frame: ModelFrame, lead_dims, land,
                      units: str) -> xr.DataArray:
    """One channel as the input's variable: NaN on land, its units (``"input"``) and attrs."""
    ax = frame.axes
    v = np.array(vals, dtype=np.float64)
    if land is not None:
        v = np.where(land, np.nan, v)
    var = xr.DataArray(v, dims=(*lead_dims, ax.y, ax.x))
    if units == "input" and frame.units_model[n] != frame.units_in[n]:
        var = _convert(var, parse_units(frame.units_model[n], n),
                       parse_units(frame.units_in[n], n))
        var = var.astype(np.float64)
    attrs = dict(frame.attrs[n])
    attrs["units"] = frame.units_in[n] if units == "input" else frame.units_model[n]
    var.attrs = attrs
    return var
