"""Regrid onto a local square-celled metric grid (and back), so that a 90-degree rotation of the
index grid is a physical rotation; turn grid-relative (ROMS) velocities to east/north and back.

On a lat/lon grid a cell is ``R cos(lat) dλ`` wide and ``R dφ`` tall, so a rotation model's
90-degree turn of the index grid is a rotation plus a stretch (``xequi.fields.
warn_rotation_on_anisotropic_grid``). :func:`to_metric_grid` projects the domain with pyproj onto a
plane and interpolates every field onto a uniform grid with ``dx == dy`` in metres;
:func:`from_metric_grid` brings a result (e.g. a forecast) back onto the user's grid.

**Projection.** An azimuthal-equidistant projection (``+proj=aeqd``) centred on the domain, on the
sphere of radius ``xequi.fields.EARTH_RADIUS`` (the metric every other xequi module uses).
Distances and directions from the centre are exact and its distortion is the same in every
direction around the centre (scale ``c / sin c`` across the radius at angular distance ``c``: +0.6 %
at 1100 km), so a rotation about the domain centre maps the distortion onto itself. A
transverse-Mercator projection is conformal but its scale grows with the distance from the central
meridian only (+1 % at 900 km): a preferred axis, which a 90-degree rotation does not respect.

**Vectors.** Velocities (east/north) are rotated into the projection's x/y axes by the grid
convergence angle from pyproj (``Proj.get_factors(...).meridian_convergence``, checked in the
tests against differencing the projected coordinates): the east direction lies at that angle
counter-clockwise from the x axis.

**Interpolation.** Bilinear (or nearest) by xarray's ``.interp`` (scipy) in the source grid's
index space: the fractional index of every target point comes from ``numpy.interp`` on 1-D lat/lon
axes, or from scipy's Delaunay-based ``LinearNDInterpolator`` on a curvilinear grid. Land (NaN)
is neither spread nor filled: a target point is NaN when its nearest source cell is NaN (or the
point is outside the source domain), and otherwise the interpolation weights are renormalised over
the valid source cells (``interp(f m) / interp(m)``, ``m`` the valid mask), which is plain linear
interpolation wherever all neighbours are valid.
"""

from __future__ import annotations

import numbers
import warnings
from typing import NamedTuple

import numpy as np
import xarray as xr

from xequi.errors import GridError, ParameterError, UnitsError, VariableNotFoundError
from xequi.fields import EARTH_RADIUS, _is_lat, _is_lon, find_velocity
from xequi.units import registry

__all__ = ["to_metric_grid", "from_metric_grid", "rotate_to_east_north", "rotate_to_grid"]

#: common names of latitude / longitude coordinates tried when cf-xarray finds none
_LAT_NAMES = ("lat", "latitude", "nav_lat", "lat_rho", "LAT", "Latitude", "XLAT")
_LON_NAMES = ("lon", "longitude", "nav_lon", "lon_rho", "LON", "Longitude", "XLONG")
_METHODS = ("linear", "nearest")
#: the attrs key holding the projection (a PROJ string) of a metric grid
PROJ_ATTR = "xequi_regrid_proj"


class _Source(NamedTuple):
    """The source grid, resolved: dimension names and lat/lon arrays (degrees)."""

    ydim: str
    xdim: str
    lat: np.ndarray  # 1-D (regular) or 2-D (curvilinear, (ydim, xdim))
    lon: np.ndarray
    curvilinear: bool
    latname: str
    lonname: str


# ---------------------------------------------------------------------------------------------
# public functions
# ---------------------------------------------------------------------------------------------


def to_metric_grid(ds: xr.Dataset, spacing=None, u: str | None = None, v: str | None = None,
                   lat: str | None = None, lon: str | None = None,
                   method: str = "linear") -> xr.Dataset:
    """Interpolate ``ds`` onto a local uniform x/y grid in metres with square cells.

    Parameters
    ----------
    ds : xarray.Dataset
        On a regular lat/lon grid (1-D latitude / longitude coordinates in degrees) or a
        curvilinear one (2-D latitude / longitude coordinates, e.g. ROMS ``lat_rho`` /
        ``lon_rho``), found by cf-xarray (``standard_name`` or ``degrees_north`` units), by common
        name, or named with ``lat=`` / ``lon=``. Never modified.
    spacing : float, str or pint.Quantity, optional
        Cell size; a number is in metres, a string / quantity any length (``"20 km"``). Default:
        the mean of the native dy and dx at the domain centre.
    u, v : str, optional
        The east / north velocity components (found with ``xequi.fields.find_velocity``
        otherwise; a dataset without a velocity is regridded as scalars). Grid-relative ROMS
        components must first be turned with :func:`rotate_to_east_north`.
    lat, lon : str, optional
        Names of the latitude / longitude coordinates.
    method : {"linear", "nearest"}
        Interpolation method.

    Returns
    -------
    xarray.Dataset
        Dims ``(..., y, x)``: ``x`` / ``y`` in ``m`` (ascending, CF axis attrs), 2-D auxiliary
        ``lat`` / ``lon`` of the new points; the velocity rotated into x/y with x/y standard names;
        every variable without the horizontal dims kept; attrs ``xequi_regrid_proj`` (the PROJ
        string; ``crs_wkt`` too) for :func:`from_metric_grid`. Cells outside the source domain or
        on land are NaN.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> lat = np.arange(-40.0, -29.9, 0.25); lon = np.arange(15.0, 35.1, 0.25)
    >>> ds = xr.Dataset({"t": (("lat", "lon"), np.ones((lat.size, lon.size)))},
    ...     coords={"lat": ("lat", lat, {"units": "degrees_north"}),
    ...             "lon": ("lon", lon, {"units": "degrees_east"})})
    >>> out = to_metric_grid(ds, spacing="25 km")
    >>> out.t.dims, out.x.attrs["units"], float(out.x[1] - out.x[0])
    (('y', 'x'), 'm', 25000.0)
    >>> from xequi.fields import grid_spacing
    >>> grid_spacing(out).anisotropy
    1.0
    """
    _check_method(method)
    if not isinstance(ds, xr.Dataset):
        raise ParameterError(f"ds must be an xarray.Dataset, got {type(ds).__name__}.",
                             fix="pass a Dataset, e.g. da.to_dataset(name='sst')")
    src = _find_source(ds, lat, lon)
    vel = _find_vectors(ds, u, v)
    proj = _projection(src)
    xs, ys = _source_xy(src, proj)
    step = _spacing(spacing, src, xs, ys)
    x, y = _axis(xs, step), _axis(ys, step)
    X, Y = np.meshgrid(x, y)
    tlon, tlat = proj(X, Y, inverse=True)
    fy, fx = _locate(src, proj, tlat, tlon, X, Y, xs, ys)
    out = _sample(ds, src, fy, fx, ("y", "x"), method)
    out = out.assign_coords(x=("x", x, {"units": "m", "axis": "X", "standard_name":
                                        "projection_x_coordinate", "long_name": "x (aeqd)"}),
                            y=("y", y, {"units": "m", "axis": "Y", "standard_name":
                                        "projection_y_coordinate", "long_name": "y (aeqd)"}))
    out = out.assign_coords(lat=(("y", "x"), tlat, {"units": "degrees_north",
                                                    "standard_name": "latitude"}),
                            lon=(("y", "x"), tlon, {"units": "degrees_east",
                                                    "standard_name": "longitude"}))
    if vel is not None:
        _warn_grid_relative(ds, src, vel)
        theta = _convergence(proj, tlon, tlat, ("y", "x"))
        out = _turn(out, vel, theta, to_xy=True)
    out.attrs = dict(ds.attrs)
    out.attrs.update({PROJ_ATTR: proj.srs, "crs_wkt": proj.crs.to_wkt(),
                      "xequi_regrid_spacing_m": float(step)})
    return out


def from_metric_grid(result: xr.Dataset, like: xr.Dataset, method: str = "linear") -> xr.Dataset:
    """Interpolate a :func:`to_metric_grid` result (or a forecast on that grid) back onto
    ``like``'s grid, velocities rotated back to east/north, ``like``'s names and attrs restored.

    Parameters
    ----------
    result : xarray.Dataset
        On the metric grid (dims ``y`` / ``x``, attrs ``xequi_regrid_proj``); other dims (time,
        lead_time, depth) are kept. Never modified.
    like : xarray.Dataset
        The original dataset (its lat/lon, velocity names and attrs). A cell that is NaN in
        ``like`` everywhere along its other dims (land) is NaN in the output.
    method : {"linear", "nearest"}

    Returns
    -------
    xarray.Dataset
        The variables of ``result`` on ``like``'s horizontal dims and coordinates.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> lat = np.arange(-40.0, -29.9, 0.25); lon = np.arange(15.0, 35.1, 0.25)
    >>> t = np.cos(np.deg2rad(lon))[None, :] * np.ones((lat.size, 1))
    >>> ds = xr.Dataset({"t": (("lat", "lon"), t)},
    ...     coords={"lat": ("lat", lat, {"units": "degrees_north"}),
    ...             "lon": ("lon", lon, {"units": "degrees_east"})})
    >>> back = from_metric_grid(to_metric_grid(ds), ds)
    >>> err = abs(back.t - ds.t)
    >>> back.t.dims, int(back.t.isnull().sum())
    (('lat', 'lon'), 0)
    >>> bool(err[1:-1, 1:-1].max() < 1e-4), bool(err.max() < 3e-3)  # interior; edge ring
    (True, True)
    """
    _check_method(method)
    for name, obj in (("result", result), ("like", like)):
        if not isinstance(obj, xr.Dataset):
            raise ParameterError(f"{name} must be an xarray.Dataset, got {type(obj).__name__}.",
                                 fix="pass Datasets (a DataArray: da.to_dataset())")
    proj = _result_projection(result)
    src = _find_source(like, None, None)
    lat2, lon2 = _latlon_2d(src)
    px, py = proj(lon2, lat2)
    x, y = np.asarray(result.x.values, float), np.asarray(result.y.values, float)
    fx = xr.DataArray(_frac_1d(px, x), dims=(src.ydim, src.xdim))
    fy = xr.DataArray(_frac_1d(py, y), dims=(src.ydim, src.xdim))
    meta = result.drop_vars([c for c in ("lat", "lon", "x", "y") if c in result.coords])
    out = _sample(meta, _Source("y", "x", y, x, False, "y", "x"), fy, fx,
                  (src.ydim, src.xdim), method, land=False)
    out = out.assign_coords({k: c for k, c in like.coords.items()
                             if set(c.dims) <= {src.ydim, src.xdim}})
    vel = _find_vectors(result, None, None)
    if vel is not None:
        theta = _convergence(proj, lon2, lat2, (src.ydim, src.xdim))
        out = _turn(out, vel, theta, to_xy=False)
        out = _restore_velocity_names(out, vel, like)
    out = _land_of(out, like, src)
    out.attrs = {k: a for k, a in result.attrs.items()
                 if k not in (PROJ_ATTR, "crs_wkt", "xequi_regrid_spacing_m")}
    return out


def rotate_to_east_north(ds: xr.Dataset, angle="angle", u: str | None = None,
                         v: str | None = None) -> xr.Dataset:
    """Turn grid-relative velocity components (ROMS ``u`` / ``v`` along xi / eta) to east/north.

    ``u_east = u cos(angle) - v sin(angle)``, ``v_north = u sin(angle) + v cos(angle)``, with
    ``angle`` the angle between the xi axis and east (counter-clockwise, the ROMS convention), in
    radians, or in degrees when its ``units`` attribute says so. u and v must be on the same points
    (average ROMS's staggered u / v to rho points first). The components keep their names; their
    standard names become eastward / northward. The input is not modified.

    Parameters
    ----------
    ds : xarray.Dataset
    angle : str, float or xarray.DataArray, default "angle"
        The name of the angle variable, a DataArray, or a number (radians).
    u, v : str, optional
        The grid-relative components (found with ``xequi.fields.find_velocity`` otherwise).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"u": ("x", [1.0]), "v": ("x", [0.0]),
    ...                  "angle": ("x", [90.0], {"units": "degrees"})})
    >>> out = rotate_to_east_north(ds)
    >>> round(float(out.u[0]), 6), round(float(out.v[0]), 6)  # xi points north
    (0.0, 1.0)
    """
    return _rotate_named(ds, angle, u, v, sign=1.0)


def rotate_to_grid(ds: xr.Dataset, angle="angle", u: str | None = None,
                   v: str | None = None) -> xr.Dataset:
    """The inverse of :func:`rotate_to_east_north`: east/north components to the grid's xi / eta.

    ``u = u_east cos(angle) + v_north sin(angle)``, ``v = -u_east sin(angle) + v_north cos(angle)``;
    standard names become ``sea_water_x_velocity`` / ``sea_water_y_velocity`` style.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"u": ("x", [0.0]), "v": ("x", [1.0]), "angle": ("x", [np.pi / 2])})
    >>> out = rotate_to_grid(ds)
    >>> round(float(out.u[0]), 6), round(float(out.v[0]), 6)
    (1.0, 0.0)
    """
    return _rotate_named(ds, angle, u, v, sign=-1.0)


# ---------------------------------------------------------------------------------------------
# the source grid
# ---------------------------------------------------------------------------------------------


def _check_method(method) -> None:
    if method not in _METHODS:
        raise ParameterError(f"method must be one of {list(_METHODS)}, got {method!r}.",
                             fix="pass method='linear' (or 'nearest')")


def _pick(ds: xr.Dataset, name, label: str, cf_key: str, names, test) -> str:
    """The name of the latitude / longitude coordinate."""
    if name is not None:
        if name not in ds.variables:
            raise VariableNotFoundError(f"{label}={name!r} is not a variable or coordinate of the "
                                        f"dataset.", fix=f"pass {label}= one of "
                                                         f"{sorted(map(str, ds.variables))}")
        return name
    cands = [str(n) for n in ds.cf.coordinates.get(cf_key, [])]
    cands += [str(n) for n, c in ds.variables.items() if test(c) and str(n) not in cands]
    cands = [n for n in cands if ds[n].ndim in (1, 2)]
    if not cands:
        cands = [n for n in names if n in ds.variables]
    if len(cands) > 1:
        two_d = [n for n in cands if ds[n].ndim == 2]
        cands = two_d if len(two_d) == 1 else cands
    if len(cands) != 1:
        what = f"several ({cands})" if cands else "none"
        raise VariableNotFoundError(
            f"no unique {cf_key} coordinate found ({what}): regridding needs the {cf_key} of "
            f"every cell, in degrees.",
            fix=f"pass {label}= its name, or set attrs standard_name='{cf_key}' and units="
                f"'{'degrees_north' if label == 'lat' else 'degrees_east'}' on it")
    return cands[0]


def _find_source(ds: xr.Dataset, lat, lon) -> _Source:
    latn = _pick(ds, lat, "lat", "latitude", _LAT_NAMES, _is_lat)
    lonn = _pick(ds, lon, "lon", "longitude", _LON_NAMES, _is_lon)
    la, lo = ds[latn], ds[lonn]
    vals = [np.asarray(c.values, dtype=float) for c in (la, lo)]
    if not all(np.all(np.isfinite(a)) for a in vals):
        raise GridError(f"the coordinates {latn!r} / {lonn!r} have NaN or inf values.",
                        fix="fill the missing coordinates (e.g. from the grid file) first")
    if np.any(np.abs(vals[0]) > 90):
        raise GridError(f"{latn!r} has values outside [-90, 90] degrees.",
                        fix="check that it is a latitude in degrees, or pass lat=")
    if la.ndim == 1 and lo.ndim == 1 and la.dims != lo.dims:
        for c, a in ((la, vals[0]), (lo, vals[1])):
            step = np.diff(a)
            if a.size < 2 or not (np.all(step > 0) or np.all(step < 0)):
                raise GridError(f"the coordinate {c.name!r} is not strictly monotonic (or has "
                                "fewer than 2 points).",
                                fix=f"sort it, e.g. ds.sortby({c.name!r}), drop duplicates")
        return _Source(str(la.dims[0]), str(lo.dims[0]), vals[0], vals[1], False, latn, lonn)
    if la.ndim == 2 and la.dims == lo.dims and min(la.shape) >= 2:
        return _Source(str(la.dims[0]), str(la.dims[1]), vals[0], vals[1], True, latn, lonn)
    raise GridError(f"{latn!r} {la.dims} and {lonn!r} {lo.dims} are neither two 1-D axes nor a "
                    "2-D curvilinear grid on the same two dimensions (at least 2 x 2).",
                    fix="pass lat= / lon= the grid's coordinates (1-D axes, or 2-D arrays on the "
                        "same dims)")


def _latlon_2d(src: _Source) -> tuple[np.ndarray, np.ndarray]:
    if src.curvilinear:
        return src.lat, src.lon
    lon2, lat2 = np.meshgrid(src.lon, src.lat)
    return lat2, lon2


def _find_vectors(ds: xr.Dataset, u, v) -> tuple[str, str] | None:
    if u is None and v is None:
        try:
            return find_velocity(ds)
        except VariableNotFoundError:
            return None
    return find_velocity(ds, u=u, v=v)


def _warn_grid_relative(ds: xr.Dataset, src: _Source, vel) -> None:
    """A curvilinear grid with an ``angle`` variable and x / y velocity names: probably ROMS
    grid-relative components, which must be turned to east / north first."""
    sn = str(ds[vel[0]].attrs.get("standard_name", ""))
    if src.curvilinear and "angle" in ds.variables and "eastward" not in sn:
        warnings.warn(f"the velocity {vel} on the curvilinear grid is not labelled east / north "
                      f"(standard_name {sn!r}) and the dataset has an 'angle' variable: if the "
                      "components are grid-relative (ROMS), turn them first with "
                      "xequi.regrid.rotate_to_east_north(ds); to_metric_grid treats them as "
                      "east / north.", UserWarning, stacklevel=3)


# ---------------------------------------------------------------------------------------------
# projection and target grid
# ---------------------------------------------------------------------------------------------


def _projection(src: _Source):
    import pyproj

    lat2, lon2 = _latlon_2d(src)
    lat0 = float((lat2.min() + lat2.max()) / 2)
    z = np.exp(1j * np.deg2rad(lon2))  # circular mean of the longitude: safe across 180
    lon0 = float(np.rad2deg(np.angle(z.mean()))) if abs(z.mean()) > 1e-6 else 0.0
    return pyproj.Proj(f"+proj=aeqd +lat_0={lat0:.8g} +lon_0={lon0:.8g} +x_0=0 +y_0=0 "
                       f"+R={EARTH_RADIUS:.0f} +units=m +no_defs")


def _result_projection(result: xr.Dataset):
    import pyproj

    srs = result.attrs.get(PROJ_ATTR)
    if srs is None or "x" not in result.coords or "y" not in result.coords:
        raise GridError(f"result has no {PROJ_ATTR!r} attribute or no x / y coordinates: it is "
                        "not on a grid made by xequi.regrid.to_metric_grid.",
                        fix="pass the output of to_metric_grid (or a forecast made on it, with "
                            "its attrs and x / y coordinates kept)")
    return pyproj.Proj(srs)


def _source_xy(src: _Source, proj) -> tuple[np.ndarray, np.ndarray]:
    lat2, lon2 = _latlon_2d(src)
    xs, ys = proj(lon2, lat2)
    return np.asarray(xs), np.asarray(ys)


def _spacing(spacing, src: _Source, xs, ys) -> float:
    if spacing is None:
        j, i = xs.shape[0] // 2, xs.shape[1] // 2
        j0, i0 = min(j, xs.shape[0] - 2), min(i, xs.shape[1] - 2)
        dx = np.hypot(xs[j, i0 + 1] - xs[j, i0], ys[j, i0 + 1] - ys[j, i0])
        dy = np.hypot(xs[j0 + 1, i] - xs[j0, i], ys[j0 + 1, i] - ys[j0, i])
        return float((dx + dy) / 2)
    ureg = registry()
    try:
        q = spacing if isinstance(spacing, ureg.Quantity) else (
            ureg.Quantity(float(spacing), "m") if isinstance(spacing, numbers.Real)
            else ureg.Quantity(str(spacing)))
        step = float(q.to("m").magnitude)
    except Exception as err:
        raise UnitsError(f"spacing={spacing!r} is not a length ({err}).",
                         fix="pass a number of metres or a length such as '20 km'") from None
    if not np.isfinite(step) or step <= 0:
        raise ParameterError(f"spacing must be positive, got {spacing!r}.",
                             fix="pass e.g. spacing='20 km'")
    return step


def _axis(vals: np.ndarray, step: float) -> np.ndarray:
    """A uniform axis with ``step`` covering ``vals``, centred on their range."""
    lo, hi = float(vals.min()), float(vals.max())
    n = int(np.ceil((hi - lo) / step - 1e-9)) + 1
    if n > 20000:
        raise ParameterError(f"spacing {step:g} m gives {n} points along one axis.",
                             fix="pass a larger spacing")
    return (lo + hi) / 2 + (np.arange(n) - (n - 1) / 2) * step


def _convergence(proj, lon, lat, dims) -> xr.DataArray:
    """Angle (radians, counter-clockwise) from the projection's x axis to east at each point."""
    f = proj.get_factors(np.asarray(lon, float), np.asarray(lat, float))
    return xr.DataArray(np.deg2rad(np.asarray(f.meridian_convergence)), dims=dims)


# ---------------------------------------------------------------------------------------------
# locating target points in the source grid, and sampling
# ---------------------------------------------------------------------------------------------


def _frac_1d(vals: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Fractional index of ``vals`` on a monotonic 1-D ``axis``; NaN outside it."""
    idx = np.arange(axis.size, dtype=float)
    if axis[0] > axis[-1]:
        axis, idx = axis[::-1], idx[::-1]
    out = np.interp(vals, axis, idx)
    return np.where((vals < axis[0]) | (vals > axis[-1]), np.nan, out)


def _locate(src: _Source, proj, tlat, tlon, X, Y, xs, ys):
    """Fractional (row, column) indices of the target points in the source grid."""
    dims = ("y", "x")
    if not src.curvilinear:
        lo = src.lon.min()
        tl = (tlon - lo) % 360.0 + lo  # the source's longitude range (0..360 or -180..180)
        return (xr.DataArray(_frac_1d(tlat, src.lat), dims=dims),
                xr.DataArray(_frac_1d(tl, src.lon), dims=dims))
    from scipy.interpolate import LinearNDInterpolator
    from scipy.spatial import cKDTree

    pts = np.column_stack([xs.ravel(), ys.ravel()])
    jj, ii = np.meshgrid(np.arange(xs.shape[0], dtype=float), np.arange(xs.shape[1], dtype=float),
                         indexing="ij")
    try:
        interp = LinearNDInterpolator(pts, np.column_stack([jj.ravel(), ii.ravel()]))
    except Exception as err:
        raise GridError(f"the curvilinear grid {src.latname!r} / {src.lonname!r} cannot be "
                        f"triangulated ({type(err).__name__}): duplicate or collinear points.",
                        fix="check the 2-D lat / lon arrays (no repeated points)") from None
    tgt = np.column_stack([X.ravel(), Y.ravel()])
    fj, fi = interp(tgt).T
    # outside the source domain where a concave edge was bridged by the triangulation
    dist, _ = cKDTree(pts).query(tgt)
    cell = max(np.hypot(np.diff(xs, axis=1), np.diff(ys, axis=1)).max(),
               np.hypot(np.diff(xs, axis=0), np.diff(ys, axis=0)).max())
    far = dist > cell
    fj[far], fi[far] = np.nan, np.nan
    return (xr.DataArray(fj.reshape(X.shape), dims=dims),
            xr.DataArray(fi.reshape(X.shape), dims=dims))


def _sample(ds: xr.Dataset, src: _Source, fy, fx, dims, method, land: bool = True) -> xr.Dataset:
    """Every variable on the source's two dims at the fractional indices ``fy`` / ``fx``
    (``land``: NaN where the nearest source cell is NaN)."""
    hor = {src.ydim, src.xdim}
    dropped = sorted(str(n) for n, a in ds.variables.items()
                     if hor & set(a.dims) and not hor <= set(a.dims) and n not in hor)
    if dropped:
        warnings.warn(f"regrid: dropped {dropped}: they lie along only one of the horizontal "
                      f"dims {sorted(hor)} (or along other horizontal dims).", UserWarning,
                      stacklevel=3)
    base = ds.drop_vars([n for n in ds.variables
                         if hor & set(ds[n].dims) and (n in ds.coords or n in dropped)])
    iy, ix = "__regrid_iy", "__regrid_ix"
    base = base.rename_dims({src.ydim: iy, src.xdim: ix})
    base = base.assign_coords({iy: np.arange(ds.sizes[src.ydim], dtype=float),
                               ix: np.arange(ds.sizes[src.xdim], dtype=float)})
    out = {}
    for n, da in base.data_vars.items():
        if not {iy, ix} <= set(da.dims):
            out[n] = ds[n]
            continue
        out[n] = _sample_one(da, iy, ix, fy, fx, method, land).transpose(
            *[d for d in da.dims if d not in (iy, ix)], *dims)
        out[n].attrs = dict(ds[n].attrs)
    coords = {k: c for k, c in ds.coords.items() if not hor & set(c.dims)}
    return xr.Dataset(out, coords=coords)


def _sample_one(da: xr.DataArray, iy, ix, fy, fx, method, land: bool) -> xr.DataArray:
    """NaN-aware interpolation: land is not spread (weights renormalised over valid cells) and
    not filled (with ``land``: NaN where the nearest source cell is NaN; always NaN outside the
    grid)."""
    da = da.astype(np.result_type(da.dtype, np.float32))
    valid = da.notnull()
    near = valid.astype(float).interp({iy: fy, ix: fx}, method="nearest")
    keep = near > 0.5 if land else near.notnull()
    if method == "nearest":
        vals = da.interp({iy: fy, ix: fx}, method="nearest")
    else:
        num = da.fillna(0).interp({iy: fy, ix: fx}, method="linear")
        den = valid.astype(da.dtype).interp({iy: fy, ix: fx}, method="linear")
        vals = num / den.where(den > 0)
    return vals.where(keep).drop_vars([iy, ix], errors="ignore")


# ---------------------------------------------------------------------------------------------
# vectors and names
# ---------------------------------------------------------------------------------------------


def _rotate(u, v, a):
    """``(u cos a - v sin a, u sin a + v cos a)``: the vector turned counter-clockwise by ``a``."""
    c, s = np.cos(a), np.sin(a)
    return u * c - v * s, u * s + v * c


def _xy_name(sn: str | None, axis: str) -> str:
    word = {"x": "eastward", "y": "northward"}[axis]
    if not sn or f"_{axis}_" in f"_{sn}_" or "velocity" not in sn and "wind" not in sn:
        return sn or f"sea_water_{axis}_velocity"
    sn = sn.replace(f"{word}_", "")
    return sn.replace("wind", f"{axis}_wind") if "wind" in sn else \
        sn.replace("velocity", f"{axis}_velocity")


def _en_name(sn: str | None, axis: str) -> str:
    word = {"x": "eastward", "y": "northward"}[axis]
    if not sn or word in sn:
        return sn or f"{word}_sea_water_velocity"
    sn = sn.replace(f"{axis}_velocity", "velocity").replace(f"{axis}_wind", "wind")
    return sn.replace("sea_water", f"{word}_sea_water") if "sea_water" in sn else f"{word}_{sn}"


def _turn(out: xr.Dataset, vel, theta: xr.DataArray, to_xy: bool) -> xr.Dataset:
    un, vn = vel
    a = theta if to_xy else -theta
    ru, rv = _rotate(out[un], out[vn], a)
    out = out.copy()
    for n, r, axis in ((un, ru, "x"), (vn, rv, "y")):
        attrs = dict(out[n].attrs)
        if to_xy:
            attrs["standard_name"] = _xy_name(attrs.get("standard_name"), axis)
        out[n] = r.transpose(*out[n].dims)
        out[n].attrs = attrs
    return out


def _restore_velocity_names(out: xr.Dataset, vel, like: xr.Dataset) -> xr.Dataset:
    """Give the east/north components ``like``'s velocity names and attrs."""
    lv = _find_vectors(like, None, None)
    if lv is None:
        return out
    out = out.rename({o: n for o, n in zip(vel, lv) if o != n and n not in out})
    for n in lv:
        if n in out:
            out[n].attrs = dict(like[n].attrs)
    return out


def _land_of(out: xr.Dataset, like: xr.Dataset, src: _Source) -> xr.Dataset:
    """NaN where ``like`` is NaN along all its other dims (land); ``like``'s attrs restored."""
    out = out.copy()
    hor = (src.ydim, src.xdim)
    for n in out.data_vars:
        if n in like.data_vars and set(hor) <= set(like[n].dims) and set(hor) <= set(out[n].dims):
            other = [d for d in like[n].dims if d not in hor]
            sea = like[n].notnull().any(other) if other else like[n].notnull()
            out[n] = out[n].where(sea.drop_vars(list(sea.coords)))
            out[n].attrs = dict(like[n].attrs)
    return out


def _rotate_named(ds: xr.Dataset, angle, u, v, sign: float) -> xr.Dataset:
    if not isinstance(ds, xr.Dataset):
        raise ParameterError(f"ds must be an xarray.Dataset, got {type(ds).__name__}.",
                             fix="pass a Dataset holding u, v and the angle")
    un, vn = find_velocity(ds, u=u, v=v)
    a = _angle_radians(ds, angle)
    ru, rv = _rotate(ds[un], ds[vn], sign * a)
    out = ds.copy()
    for n, r, axis in ((un, ru, "x"), (vn, rv, "y")):
        attrs = dict(ds[n].attrs)
        sn = attrs.get("standard_name")
        attrs["standard_name"] = _en_name(sn, axis) if sign > 0 else _xy_name(sn, axis)
        out[n] = r.transpose(*ds[n].dims) if set(r.dims) == set(ds[n].dims) else r
        out[n].attrs = attrs
    return out


def _angle_radians(ds: xr.Dataset, angle):
    if isinstance(angle, str):
        if angle not in ds.variables:
            raise VariableNotFoundError(
                f"no angle variable {angle!r} (the angle between the grid's xi axis and east).",
                fix="pass angle= its name (ROMS: 'angle'), a DataArray or a number in radians")
        angle = ds[angle]
    if isinstance(angle, numbers.Real) and not isinstance(angle, bool):
        return float(angle)
    if not isinstance(angle, xr.DataArray):
        raise ParameterError(f"angle must be a name, a DataArray or a number, got "
                             f"{type(angle).__name__}.", fix="pass angle='angle'")
    text = str(angle.attrs.get("units", "radian")).strip().lower()
    if text in ("", "1", "rad", "radian", "radians"):
        return angle
    try:
        factor = float(registry().Quantity(1, text).to("radian").magnitude)
    except Exception:
        raise UnitsError(f"units {text!r} of the angle {angle.name!r} are not an angle.",
                         fix="set its units attribute to 'radians' or 'degrees'") from None
    return angle * factor
