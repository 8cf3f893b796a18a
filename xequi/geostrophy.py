"""Surface geostrophic currents from sea-surface height (altimetry SSH / ADT / SLA, model ``zos``).

Altimetry products give the height of the sea surface, not its velocity. Away from the equator the
surface current is close to geostrophic balance, so it follows from the slope of the surface:

``u = -(g/f) dη/dy``, ``v = (g/f) dη/dx``, ``f = 2 Ω sin(lat)``

with ``g = 9.80665`` m s-2 (standard gravity, :data:`STANDARD_GRAVITY`; ``g=`` changes it),
``Ω = 7.2921e-5`` s-1 (:data:`OMEGA`) and, on a longitude / latitude grid, the metric derivatives
``dx = R cos(lat) dλ`` and ``dy = R dφ`` on a sphere of radius ``R`` =
``xequi.fields.EARTH_RADIUS`` (6371 km, the mean Earth radius). Derivatives are centred
differences on the coordinates (``numpy.gradient``; non-uniform spacing allowed), one-sided at the
domain edges, periodic across a longitude axis that spans the globe.
:func:`geostrophic_velocity` is the public entry point (``xequi.ocean.geostrophic_velocity``
re-exports it).
"""

from __future__ import annotations

import numbers
from typing import Mapping, NamedTuple

import numpy as np
import xarray as xr

from xequi.errors import GridError, ParameterError, UnitsError, VariableNotFoundError
from xequi.fields import EARTH_RADIUS, _units_mapping, check_real, find_axes, parse_units
from xequi.routing import PLACEHOLDER, as_dataset
from xequi.units import registry

__all__ = [
    "geostrophic_velocity",
    "SSH_STANDARD_NAMES",
    "SSH_COMMON_NAMES",
    "OMEGA",
    "STANDARD_GRAVITY",
]

#: Earth's rotation rate (sidereal), s-1
OMEGA = 7.2921e-5

#: standard gravity, m s-2 (the default ``g``)
STANDARD_GRAVITY = 9.80665

#: CF standard names of sea-surface height, in order of preference (absolute dynamic topography
#: first, then sea-level anomalies, then heights above other datums)
SSH_STANDARD_NAMES: tuple[str, ...] = (
    "sea_surface_height_above_geoid",
    "sea_surface_height_above_geopotential_datum",
    "sea_surface_height_above_sea_level",
    "sea_surface_height_above_mean_sea_level",
    "sea_surface_height_above_reference_ellipsoid",
    "sea_surface_elevation",
    "sea_surface_height",
)

#: heights relative to a mean sea level: their geostrophic velocity is an anomaly
_ANOMALY_NAMES = ("sea_surface_height_above_sea_level", "sea_surface_height_above_mean_sea_level")

#: common SSH variable names tried when no standard name matches
SSH_COMMON_NAMES: tuple[str, ...] = ("adt", "ADT", "ssh", "SSH", "zos", "sla", "SLA", "zeta",
                                     "eta", "sossheig")

#: output standard names: (grid kind, anomaly) -> (u, v)
_OUT_NAMES = {
    ("latlon", False): ("surface_geostrophic_eastward_sea_water_velocity",
                        "surface_geostrophic_northward_sea_water_velocity"),
    ("latlon", True): ("surface_geostrophic_eastward_sea_water_velocity_assuming_sea_level_for_"
                       "geoid", "surface_geostrophic_northward_sea_water_velocity_assuming_sea_"
                                "level_for_geoid"),
    ("projected", False): ("surface_geostrophic_sea_water_x_velocity",
                           "surface_geostrophic_sea_water_y_velocity"),
}
_OUT_NAMES[("projected", True)] = _OUT_NAMES[("projected", False)]


class _Grid(NamedTuple):
    """The horizontal grid of the SSH field, resolved."""

    x: str  # dimension names
    y: str
    kind: str  # "latlon" or "projected"
    xs: np.ndarray  # coordinate values along x: radians (latlon) or metres (projected)
    ys: np.ndarray
    phi: object  # latitude in degrees for f: a DataArray or a float
    periodic: bool  # longitude spans the globe (latlon only)


def geostrophic_velocity(obj, ssh: str | None = None, *, lat=None, lon: str | None = None,
                         x: str | None = None, y: str | None = None, g=STANDARD_GRAVITY,
                         equator_band: float = 5.0,
                         units: Mapping[str, str] | None = None) -> xr.Dataset:
    """Surface geostrophic velocity ``(u, v)`` from sea-surface height.

    ``u = -(g/f) dη/dy``, ``v = (g/f) dη/dx`` with ``f = 2 Ω sin(lat)`` (see the module
    docstring for the constants and the metric). The SSH variable is found by CF
    ``standard_name`` (:data:`SSH_STANDARD_NAMES`: ``sea_surface_height_above_geoid`` (ADT),
    ``..._above_sea_level`` (SLA), ``..._above_reference_ellipsoid``, ...; the first in that order
    wins), then by common name (:data:`SSH_COMMON_NAMES`: ``adt``, ``ssh``, ``zos``, ``sla``,
    ...), or named with ``ssh=``. Its units (any length: m, cm, mm) are converted to metres with
    pint.

    Two grids are understood:

    * **longitude / latitude** (1-D coordinates in degrees, recognised by cf-xarray through their
      ``standard_name`` or ``degrees_north`` / ``degrees_east`` units, or named with ``lat=`` /
      ``lon=``): metric derivatives ``dx = R cos(lat) dλ``, ``dy = R dφ``; output standard names
      ``surface_geostrophic_eastward_sea_water_velocity`` / ``..._northward_...`` (the
      ``..._assuming_sea_level_for_geoid`` variants for a sea-level anomaly).
    * **projected** (1-D x / y coordinates in length units): derivatives along x and y; the
      latitude for ``f`` comes from a latitude coordinate (2-D ``lat`` of a curvilinear grid,
      found by cf-xarray or named with ``lat=``), a DataArray, or a number (an f-plane at that
      latitude). Output standard names ``surface_geostrophic_sea_water_x_velocity`` /
      ``..._y_velocity`` (components along the grid axes).

    Geostrophy fails at the equator (``f -> 0``): cells with ``|lat| < equator_band`` are NaN.
    Land (NaN) stays NaN and makes its neighbours along the derivative NaN (a difference across
    land is never filled); every cell with both neighbours valid keeps a value. At the edges of the
    domain the difference is one-sided; a longitude axis covering 360 degrees is periodic.

    Parameters
    ----------
    obj : xarray.Dataset or xarray.DataArray
        Holds the sea-surface height; other dimensions (time, ensemble member ...) are kept.
        Never modified.
    ssh : str, optional
        Name of the SSH variable in a Dataset (found by standard / common name otherwise).
    lat : str, float or xarray.DataArray, optional
        The latitude coordinate's name (declares it as latitude in degrees); on a projected grid
        also a reference latitude in degrees (f-plane) or a DataArray of latitudes.
    lon : str, optional
        The longitude coordinate's name (declares it as longitude in degrees).
    x, y : str, optional
        Dimension names of the horizontal axes (found with :func:`xequi.fields.find_axes`).
    g : float, str or pint.Quantity, default 9.80665
        Gravity; a number is in m s-2.
    equator_band : float, default 5
        Half-width in degrees of the equatorial band set to NaN.
    units : mapping, optional
        Units for the SSH variable or x / y coordinates that lack them, e.g. ``{"adt": "cm"}``.

    Returns
    -------
    xarray.Dataset
        ``u`` and ``v`` in ``m s-1`` with CF standard names, on the SSH field's dimensions and
        coordinates; ``xequi.fields.find_velocity`` finds them.

    Raises
    ------
    VariableNotFoundError
        No SSH variable, no latitude for ``f`` on a projected grid, a named coordinate missing.
    UnitsError
        SSH or x / y units missing or not a length, ``g`` not an acceleration.
    GridError
        Axes in degrees not identified as longitude / latitude, half a lat/lon grid, fewer than 3
        points, non-monotonic coordinates, latitudes outside [-90, 90].
    ParameterError
        Bad ``equator_band``, ``g`` or ``lat``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> lat = np.arange(-40.0, -19.9, 0.5); lon = np.arange(10.0, 30.1, 0.5)
    >>> eta = 0.1 * np.exp(-((lon[None, :] - 20) ** 2 + (lat[:, None] + 30) ** 2) / 4)
    >>> ds = xr.Dataset(
    ...     {"adt": (("lat", "lon"), eta, {"standard_name": "sea_surface_height_above_geoid",
    ...                                    "units": "m"})},
    ...     coords={"lat": ("lat", lat, {"units": "degrees_north"}),
    ...             "lon": ("lon", lon, {"units": "degrees_east"})})
    >>> out = geostrophic_velocity(ds)
    >>> out.u.attrs["standard_name"], out.u.attrs["units"]
    ('surface_geostrophic_eastward_sea_water_velocity', 'm s-1')
    >>> round(float(out.v.sel(lat=-30, lon=21)), 3)  # anticyclonic (counter-clockwise) in the south
    0.052
    """
    band = _check_band(equator_band)
    g_ms2 = _gravity(g)
    units = _units_mapping(units)
    name, eta = _find_ssh(obj, ssh)
    anomaly = eta.attrs.get("standard_name") in _ANOMALY_NAMES
    eta = _ssh_in_metres(eta, name, units)
    grid = _resolve_grid(eta, x=x, y=y, lat=lat, lon=lon, units=units)
    _check_unit_keys(units, eta, name, grid)
    phi = grid.phi
    if not isinstance(phi, xr.DataArray) and abs(phi) < band:
        raise ParameterError(f"the reference latitude lat={phi} is inside the equatorial band "
                             f"|lat| < {band}, where geostrophy fails (f -> 0).",
                             fix="pass the latitude of the region (|lat| >= equator_band), or a "
                                 "smaller equator_band")
    deta_dx = _derivative(eta, grid.x, grid.xs, grid.periodic)
    deta_dy = _derivative(eta, grid.y, grid.ys, False)
    if grid.kind == "latlon":
        coslat = np.cos(np.deg2rad(phi))
        deta_dx = (deta_dx / (EARTH_RADIUS * coslat)).where(coslat > 1e-12)
        deta_dy = deta_dy / EARTH_RADIUS
    f = 2.0 * OMEGA * np.sin(np.deg2rad(phi))
    keep = (abs(phi) >= band) & (f != 0)
    g_over_f = xr.where(keep, g_ms2 / xr.where(keep, f, 1.0), np.nan)
    u = (-g_over_f * deta_dy).transpose(*eta.dims)
    v = (g_over_f * deta_dx).transpose(*eta.dims)
    return _output(u, v, eta, name, grid, anomaly, band, g_ms2, obj)


# ---------------------------------------------------------------------------------------------
# arguments
# ---------------------------------------------------------------------------------------------


def _check_band(equator_band) -> float:
    try:
        band = float(equator_band)
    except (TypeError, ValueError):
        band = float("nan")
    if not (np.isfinite(band) and 0 <= band < 90):
        raise ParameterError(f"equator_band must be a number of degrees in [0, 90), got "
                             f"{equator_band!r}.",
                             fix="pass e.g. equator_band=5 (geostrophy fails near the equator)")
    return band


def _gravity(g) -> float:
    """``g`` in m s-2 (a number is taken as m s-2; a string or Quantity is converted)."""
    ureg = registry()
    if isinstance(g, numbers.Real) and not isinstance(g, bool):
        value = float(g)
    else:
        try:
            value = float(ureg.Quantity(g).to("m s-2").magnitude)
        except Exception as err:
            raise UnitsError(f"g={g!r} is not an acceleration ({err}).",
                             fix="pass g as a number in m s-2 or e.g. g='9.81 m s-2'") from None
    if not (np.isfinite(value) and value > 0):
        raise ParameterError(f"g must be a positive finite acceleration, got {g!r}.",
                             fix="pass e.g. g=9.80665 (m s-2)")
    return value


# ---------------------------------------------------------------------------------------------
# the SSH variable
# ---------------------------------------------------------------------------------------------


def _find_ssh(obj, ssh: str | None) -> tuple[str, xr.DataArray]:
    """(name, DataArray) of the sea-surface height in ``obj``."""
    if not isinstance(obj, (xr.Dataset, xr.DataArray)):
        raise ParameterError(f"expected an xarray Dataset or DataArray of sea-surface height, got "
                             f"{type(obj).__name__}.",
                             fix="wrap the SSH in xarray with dims and lat/lon (or x/y) "
                                 "coordinates")
    routed = as_dataset(obj)
    ds = routed.ds
    if routed.was_dataarray:
        if ssh is not None and ssh != routed.name:
            raise ParameterError(f"ssh={ssh!r} was given with a DataArray named {routed.name!r}.",
                                 fix="pass a Dataset with ssh=, or the DataArray alone")
        name = routed.var
    elif ssh is not None:
        if ssh not in ds.data_vars:
            raise VariableNotFoundError(
                f"ssh={ssh!r} is not a data variable of the dataset (variables: "
                f"{sorted(map(str, ds.data_vars))}).", fix="pass ssh= one of the variable names")
        name = ssh
    else:
        name = _search_ssh(ds)
    check_real(ds[name])
    return name, ds[name]


def _search_ssh(ds: xr.Dataset) -> str:
    std = ds.cf.standard_names
    for sn in SSH_STANDARD_NAMES:
        cands = sorted(str(n) for n in std.get(sn, []) if n in ds.data_vars)
        if len(cands) > 1:
            raise ParameterError(f"several variables have standard_name {sn!r}: {cands}; the "
                                 "sea-surface height is ambiguous.",
                                 fix=f"pass ssh= one of {cands}")
        if cands:
            return cands[0]
    for n in SSH_COMMON_NAMES:
        if n in ds.data_vars:
            return n
    found = {str(n): ds[n].attrs.get("standard_name") for n in ds.data_vars}
    raise VariableNotFoundError(
        f"no sea-surface height found: no variable has a standard_name among "
        f"{list(SSH_STANDARD_NAMES)} or a common SSH name {list(SSH_COMMON_NAMES)}; variables "
        f"(standard_name): {found}.",
        fix="pass ssh='<variable name>', or set its standard_name, e.g. "
            "ds['h'].attrs['standard_name'] = 'sea_surface_height_above_geoid'")


def _ssh_in_metres(eta: xr.DataArray, name: str, units: dict) -> xr.DataArray:
    """``eta`` converted to metres with the pint registry (a new object; attrs kept, units m)."""
    text = units.get(name, eta.attrs.get("units"))
    if text is None:
        if name == PLACEHOLDER:
            raise UnitsError("the sea-surface height (an unnamed DataArray) has no units "
                             "attribute.", fix="set da.attrs['units'] = 'm' (or 'cm')")
        raise UnitsError(f"the sea-surface height {name!r} has no units attribute.",
                         fix=f"set ds[{name!r}].attrs['units'] = 'm' (or 'cm'), or pass "
                             f"units={{{name!r}: 'm'}}")
    factor = float(registry().Quantity(1, _length_unit(text, name)).to("m").magnitude)
    metres = eta * factor if factor != 1.0 else eta.copy()
    return metres.assign_attrs({**eta.attrs, "units": "m"})


def _check_unit_keys(units: dict, eta: xr.DataArray, name: str, grid: _Grid) -> None:
    """Every key of ``units=`` names the SSH variable or a horizontal axis (no silent ignore)."""
    known = {name, grid.x, grid.y} | {str(n) for n, c in eta.coords.items()
                                       if c.dims in ((grid.x,), (grid.y,))}
    unknown = sorted(set(map(str, units)) - known)
    if unknown:
        raise ParameterError(f"units= has keys {unknown} that are neither the sea-surface height "
                             f"{name!r} nor a horizontal axis.",
                             fix=f"key units= by one of {sorted(known)}")


def _length_unit(text, name: str):
    """The pint unit of ``text``; a UnitsError unless it is a length (not dimensionless)."""
    ureg = registry()
    unit = parse_units(text, name, "length")
    if ureg.Quantity(1, unit).dimensionality != ureg.Quantity(1, "m").dimensionality:
        raise UnitsError(f"units {str(text)!r} of {name!r} are not a length: geostrophy needs "
                         "heights and distances in length units (m, cm, km).",
                         fix=f"check that {name!r} is a height / distance and set its units "
                             f"attribute, or pass units={{{name!r}: 'm'}}")
    return unit


# ---------------------------------------------------------------------------------------------
# the grid
# ---------------------------------------------------------------------------------------------


def _declared(eta: xr.DataArray, label: str, name) -> xr.DataArray | None:
    """The coordinate named by ``lat=`` / ``lon=`` (when a name was given)."""
    if not isinstance(name, str):
        return None
    if name not in eta.coords:
        raise VariableNotFoundError(
            f"{label}={name!r} is not a coordinate of the sea-surface height (coordinates: "
            f"{sorted(map(str, eta.coords))}).", fix=f"pass {label}= one of the coordinate names")
    return eta.coords[name]


def _axis_coord(eta: xr.DataArray, dim: str, declared) -> xr.DataArray | None:
    """The 1-D coordinate along ``dim``: the declared one if it lies along it, else the index."""
    if declared is not None and declared.dims == (dim,):
        return declared
    if dim in eta.coords:
        return eta.coords[dim]
    along = [c for c in eta.coords.values() if c.dims == (dim,)]
    return along[0] if len(along) == 1 else None


def _resolve_grid(eta, x, y, lat, lon, units) -> _Grid:
    if lat is not None and not isinstance(lat, (str, numbers.Real, xr.DataArray)) \
            or isinstance(lat, bool):
        raise ParameterError(f"lat must be a coordinate name, a latitude in degrees or a "
                             f"DataArray, got {type(lat).__name__}.", fix="pass e.g. lat='lat'")
    dlat, dlon = _declared(eta, "lat", lat), _declared(eta, "lon", lon)
    if x is None and dlon is not None and dlon.ndim == 1:
        x = str(dlon.dims[0])
    if y is None and dlat is not None and dlat.ndim == 1:
        y = str(dlat.dims[0])
    ax = find_axes(eta, x=x, y=y)
    for d in (ax.x, ax.y):
        if eta.sizes[d] < 3:
            raise GridError(f"the sea-surface height has {eta.sizes[d]} point(s) along {d!r}; "
                            "centred differences need at least 3.",
                            fix=f"select a larger region along {d!r}")
    cx, cy = _axis_coord(eta, ax.x, dlon), _axis_coord(eta, ax.y, dlat)
    cf = eta.cf.coordinates
    is_lon = cx is not None and (cx is dlon or cx.name in cf.get("longitude", []))
    is_lat = cy is not None and (cy is dlat or cy.name in cf.get("latitude", []))
    if is_lon and is_lat:
        if lat is not None and not isinstance(lat, str):
            raise ParameterError("lat= a value is for projected grids; on a longitude / latitude "
                                 "grid f comes from the latitude coordinate.",
                                 fix="drop lat=, or pass lat= the latitude coordinate's name")
        return _latlon_grid(ax.x, ax.y, cx, cy)
    if is_lon or is_lat:
        which = cx.name if is_lon else cy.name
        raise GridError(f"{which!r} is a longitude / latitude but the other horizontal axis is "
                        "not: half a lat/lon grid has no metric.",
                        fix="use a full lat/lon grid, or x / y coordinates in length units")
    xs = _projected_axis(cx, ax.x, units)
    ys = _projected_axis(cy, ax.y, units)
    phi = _latitude_for_f(eta, lat, dlat, ax)
    return _Grid(ax.x, ax.y, "projected", xs, ys, phi, False)


def _latlon_grid(x: str, y: str, cx: xr.DataArray, cy: xr.DataArray) -> _Grid:
    lam = _monotonic(cx, x)
    phi_deg = _monotonic(cy, y)
    if np.any(np.abs(phi_deg) > 90):
        raise GridError(f"the latitude {cy.name!r} has values outside [-90, 90] degrees.",
                        fix="check that it is a latitude in degrees")
    step = np.diff(lam)
    span = abs(lam[-1] - lam[0]) + abs(step.mean())
    periodic = bool(np.allclose(step, step.mean(), rtol=1e-3) and abs(span - 360.0) < 1e-3 *
                    abs(step.mean()))
    phi = xr.DataArray(phi_deg, dims=(y,))  # no index: combines with eta by dimension
    return _Grid(x, y, "latlon", np.deg2rad(lam), np.deg2rad(phi_deg), phi, periodic)


def _monotonic(coord: xr.DataArray, dim: str) -> np.ndarray:
    vals = np.asarray(coord.values, dtype=float)
    step = np.diff(vals)
    if not np.all(np.isfinite(vals)) or not (np.all(step > 0) or np.all(step < 0)):
        raise GridError(f"the coordinate {coord.name!r} along {dim!r} is not strictly monotonic "
                        "(or has NaN).", fix=f"sort it, e.g. ds.sortby({dim!r}), and drop "
                                             "duplicates / missing values")
    return vals


def _projected_axis(coord, dim: str, units: dict) -> np.ndarray:
    """Coordinate values along a projected axis, in metres."""
    if coord is None:
        raise UnitsError(f"the axis {dim!r} has no coordinate values, so the distances between "
                         "cells are unknown.",
                         fix=f"assign a coordinate in length units, e.g. ds.assign_coords({dim}="
                             f"('{dim}', np.arange(n) * 20.0, {{'units': 'km'}}))")
    text = units.get(dim, units.get(str(coord.name), coord.attrs.get("units")))
    if text is not None and _is_angle(text):
        raise GridError(
            f"the axis {dim!r} is in {text!r} (an angle) but is not recognised as longitude / "
            "latitude, so its metric is unknown.",
            fix="set attrs units='degrees_east' / 'degrees_north' (or standard_name "
                "'longitude' / 'latitude') on the coordinates, or pass lon= and lat= their names")
    unit = _length_unit(text, dim)
    factor = float(registry().Quantity(1, unit).to("m").magnitude)
    return _monotonic(coord, dim) * factor


def _is_angle(text) -> bool:
    ureg = registry()
    try:
        q = ureg.Quantity(1, str(text))
        q.to("radian")
    except Exception:
        return False
    return any(w in str(q.units) for w in ("degree", "radian", "arc"))


def _latitude_for_f(eta, lat, dlat, ax):
    """Latitude (degrees) for the Coriolis parameter on a projected grid."""
    if isinstance(lat, numbers.Real):
        phi = float(lat)
        if not -90 <= phi <= 90:
            raise ParameterError(f"lat={lat!r} is not a latitude in degrees.",
                                 fix="pass a reference latitude in [-90, 90]")
        return phi
    if isinstance(lat, xr.DataArray):
        phi = lat
    elif dlat is not None:
        phi = dlat
    else:
        cands = sorted(str(n) for n in eta.cf.coordinates.get("latitude", [])
                       if n not in (ax.x, ax.y))
        if not cands:
            raise VariableNotFoundError(
                "no latitude for the Coriolis parameter f: the grid is projected (x / y in length "
                "units) and no coordinate is a latitude (standard_name 'latitude' or units "
                "'degrees_north').",
                fix="pass lat= a reference latitude in degrees (f-plane, e.g. lat=-30), the name "
                    "of a 2-D latitude coordinate, or a DataArray of latitudes")
        if len(cands) > 1:
            raise ParameterError(f"several latitude coordinates: {cands}.",
                                 fix=f"pass lat= one of {cands}")
        phi = eta.coords[cands[0]]
    extra = set(map(str, phi.dims)) - set(map(str, eta.dims))
    if extra:
        raise GridError(f"the latitude has dimensions {sorted(extra)} that the sea-surface height "
                        "does not have.", fix="give a latitude on the SSH field's dimensions")
    if bool((abs(phi) > 90).any()):
        raise GridError("the latitude has values outside [-90, 90] degrees.",
                        fix="check that it is a latitude in degrees")
    return phi


# ---------------------------------------------------------------------------------------------
# derivative and output
# ---------------------------------------------------------------------------------------------


def _derivative(eta: xr.DataArray, dim: str, coord: np.ndarray, periodic: bool) -> xr.DataArray:
    """d eta / d coord along ``dim``: centred (one-sided at the edges, or wrapped if periodic)."""
    if periodic:
        period = 2 * np.pi * np.sign(coord[-1] - coord[0])
        coord = np.concatenate([[coord[-1] - period], coord, [coord[0] + period]])

    def grad(a):
        if periodic:
            a = np.concatenate([a[..., -1:], a, a[..., :1]], axis=-1)
            return np.gradient(a, coord, axis=-1)[..., 1:-1]
        return np.gradient(a, coord, axis=-1)

    out = xr.apply_ufunc(grad, eta, input_core_dims=[[dim]], output_core_dims=[[dim]],
                         dask="parallelized", output_dtypes=[np.float64],
                         dask_gufunc_kwargs={"allow_rechunk": True})
    return out.transpose(*eta.dims)


def _output(u, v, eta, name, grid: _Grid, anomaly: bool, band: float, g: float, obj):
    sn_u, sn_v = _OUT_NAMES[(grid.kind, anomaly)]
    unit = format(registry().Unit("m/s"), "cf")
    along = ("eastward", "northward") if grid.kind == "latlon" else ("x", "y")
    how = (f"from {name!r}: u = -(g/f) d(eta)/dy, v = (g/f) d(eta)/dx, f = 2 Omega sin(lat), "
           f"g = {g} m s-2, Omega = {OMEGA} s-1"
           + (f", dx = R cos(lat) dlon, dy = R dlat, R = {EARTH_RADIUS} m"
              if grid.kind == "latlon" else "")
           + f"; NaN where |lat| < {band} degrees")
    dtype = eta.dtype if np.issubdtype(eta.dtype, np.floating) else np.float64
    data = {}
    for var, sn, word in (("u", sn_u, along[0]), ("v", sn_v, along[1])):
        da = (u if var == "u" else v).astype(dtype)
        da.attrs = {"standard_name": sn, "units": unit,
                    "long_name": f"surface geostrophic {word} sea water velocity"
                                 + (" anomaly" if anomaly else ""),
                    "comment": "geostrophic velocity " + how}
        data[var] = da
    attrs = dict(obj.attrs) if isinstance(obj, xr.Dataset) else {}
    line = f"xequi.geostrophic_velocity {how}"
    attrs["history"] = f"{attrs['history']}\n{line}" if attrs.get("history") else line
    return xr.Dataset(data, attrs=attrs)
