"""Open real ocean-current files (e.g. GlobCurrent) as a CF-labelled, lazily loaded Dataset.

:func:`open_dataset` turns a set of per-day netCDF files with incomplete, non-CF metadata into a
dataset the rest of xequi can use, repairing and *reporting* (never silently guessing):

* ``standard_name`` of the velocity components (``eastward...`` ->
  ``surface_eastward_sea_water_velocity``, ``northward...`` ->
  ``surface_northward_sea_water_velocity``; a caller's mapping overrides);
* ``units`` from the caller's explicit word, else a ``units`` attribute, else a non-standard
  ``Unit`` / ``unit`` / ``UNITS`` / ``Units`` attribute. A velocity without any of them is a
  :class:`~xequi.errors.UnitsError` naming the variable and the fix;
* the time axis decoded to ``datetime64`` (from a ``Unit``-style ``"days since 1900-1-1"`` when CF
  decoding did not happen, or from ``time_units=``);
* latitude / longitude with ``axis``, ``standard_name`` and ``units`` (``degrees_north``,
  ``degrees_east``);
* duplicate times, non-monotonic times, and *identical fields at different times* reported (a
  warning naming the times, and the global attrs ``duplicate_times``, ``identical_fields``,
  ``non_monotonic_times``); ``drop_duplicate_times="drop"`` removes the later copies (keeping
  the first), ``"error"`` raises;
* the land mask as a ``land_mask`` coordinate (``lat``, ``lon``; ``flag_values`` /
  ``flag_meanings``): cells that are NaN at every time;
* provenance in the global attrs: ``source_directory``, ``source_files``, and a ``history`` line
  per repair.

The files are read, never modified. :func:`latlon_rotation_error` measures how far a rotation on
the lat/lon *index* grid is from a physical rotation on the domain (see ``docs/ocean.md``).
"""

from __future__ import annotations

import datetime as _dt
import glob as _glob
import math
import os
import warnings
from pathlib import Path
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np
import xarray as xr

from xequi.errors import (
    GridError,
    ParameterError,
    UnitsError,
    VariableNotFoundError,
    XequiError,
)
from xequi.fields import (
    AXIS_NAMES,
    EARTH_RADIUS,
    GEOGRAPHIC_NAMES,
    find_axes,
    find_velocity,
    parse_units,
)
from xequi.geostrophy import geostrophic_velocity  # noqa: F401

__all__ = [
    "open_dataset",
    "geostrophic_velocity",
    "globcurrent_dir",
    "latlon_rotation_error",
    "DataFilesNotFoundError",
    "GLOBCURRENT_ENV",
    "UNIT_ATTRS",
]

#: environment variable naming the GlobCurrent Agulhas 2002 folder
GLOBCURRENT_ENV = "XEQUI_GLOBCURRENT_DIR"

#: attribute names read as units when ``units`` is absent (in this order)
UNIT_ATTRS: tuple[str, ...] = ("Unit", "unit", "UNITS", "Units", "UNIT")

_DUP_CHOICES = ("report", "drop", "error")
# Dimension names, derived from the one list in xequi.fields (AXIS_NAMES). They differ on
# purpose: the files are on a lat/lon grid whose coordinates get degrees units here, so a
# geographic name comes first and a plain "y" / "x" last, never the index names of curvilinear
# grids (nj, yc, ...) that fields also tries; time is the files' record dimension, which
# "valid_time" (a forecast's verification time, in fields' list for forecast-like data) is not.
_LAT_NAMES = (*GEOGRAPHIC_NAMES["Y"], "y")
_LON_NAMES = (*GEOGRAPHIC_NAMES["X"], "x")
_TIME_NAMES = tuple(n for n in AXIS_NAMES["T"] if n != "valid_time")


class DataFilesNotFoundError(XequiError, FileNotFoundError):
    """No data files were found where the caller pointed (missing path, empty folder or glob)."""


# ---------------------------------------------------------------------------------------------
# paths
# ---------------------------------------------------------------------------------------------


def globcurrent_dir(path: str | os.PathLike | None = None) -> Path:
    """The GlobCurrent Agulhas 2002 folder.

    Resolution order: ``path``; the environment variable ``XEQUI_GLOBCURRENT_DIR``; the shared
    folder ``../shared/data/globcurrent_agulhas_2002`` beside the repository (a development
    checkout).

    Parameters
    ----------
    path : str or path-like, optional
        An explicit folder (wins over the environment variable).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    DataFilesNotFoundError
        If the folder does not exist.

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> globcurrent_dir(d) == Path(d)
    True
    """
    candidates: list[tuple[str, Path]] = []
    if path is not None and str(path).strip():
        candidates.append(("argument", Path(path).expanduser()))
    else:
        env = os.environ.get(GLOBCURRENT_ENV, "").strip()
        if env:
            candidates.append((f"${GLOBCURRENT_ENV}", Path(env).expanduser()))
        else:
            repo = Path(__file__).resolve().parents[1]
            candidates.append(("default", repo.parent / "shared" / "data"
                               / "globcurrent_agulhas_2002"))
    where, p = candidates[0]
    if not p.is_dir():
        raise DataFilesNotFoundError(
            f"the GlobCurrent folder {str(p)!r} (from {where}) does not exist.",
            fix=f"set {GLOBCURRENT_ENV} to the folder holding the GlobCurrent *.nc files, or pass "
                "the path explicitly")
    return p


def _resolve_paths(paths) -> list[Path]:
    if paths is None:
        raise DataFilesNotFoundError("no path given.",
                                     fix="pass a folder, a glob such as 'dir/*.nc', or a list of "
                                         "files")
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not items:
        raise DataFilesNotFoundError("the list of files is empty.",
                                     fix="pass at least one netCDF file, a folder or a glob")
    files: list[Path] = []
    for item in items:
        s = str(item)
        if not s.strip():
            raise DataFilesNotFoundError("an empty string was given as a path.",
                                         fix="pass a folder, a glob or a file path")
        p = Path(s).expanduser()
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix in (".nc", ".nc4", ".netcdf")
                           and q.is_file())
            if not found:
                raise DataFilesNotFoundError(f"the folder {s!r} holds no netCDF files (*.nc).",
                                             fix="point to the folder with the *.nc files")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        elif any(c in s for c in "*?["):
            found = sorted(Path(q) for q in _glob.glob(os.path.expanduser(s)) if Path(q).is_file())
            if not found:
                raise DataFilesNotFoundError(f"the pattern {s!r} matches no file.",
                                             fix="check the folder and the pattern")
            files.extend(found)
        else:
            raise DataFilesNotFoundError(f"{s!r} does not exist.",
                                         fix=f"check the path (or set {GLOBCURRENT_ENV})")
    return files


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _unit_from_attrs(var: xr.Variable | xr.DataArray) -> tuple[str | None, str | None]:
    """(units, attribute name) from ``units`` or a non-standard ``Unit``-style attribute."""
    if var.attrs.get("units") not in (None, ""):
        return str(var.attrs["units"]), "units"
    if "units" in var.encoding:
        return str(var.encoding["units"]), "units"
    for k in UNIT_ATTRS:
        if var.attrs.get(k) not in (None, ""):
            return str(var.attrs[k]), k
    return None, None


def _guess_standard_name(name: str) -> str | None:
    n = name.lower()
    if any(w in n for w in ("current", "velocity", "sea_water", "water")):
        if "eastward" in n:
            return "surface_eastward_sea_water_velocity"
        if "northward" in n:
            return "surface_northward_sea_water_velocity"
    return None


def _fmt_time(t) -> str:
    try:
        return str(np.datetime_as_string(np.datetime64(t, "s"), unit="D")) \
            if np.datetime64(t, "s") == np.datetime64(t, "D") else str(np.datetime64(t, "s"))
    except (TypeError, ValueError):
        return str(t)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _find_dim(ds: xr.Dataset, names: Sequence[str]) -> str | None:
    for n in names:
        if n in ds.dims:
            return n
    return None


# ---------------------------------------------------------------------------------------------
# open_dataset
# ---------------------------------------------------------------------------------------------


def open_dataset(paths, *, units: str | Mapping[str, str] | None = None,
                 standard_names: Mapping[str, str] | None = None,
                 time_units: str | None = None, calendar: str = "standard",
                 drop_duplicate_times: str = "report", chunks: Any = None,
                 engine: str | None = None, parallel: bool = False) -> xr.Dataset:
    """Open gridded current files as one CF-labelled, lazily loaded Dataset.

    Parameters
    ----------
    paths : str, path-like or sequence
        A folder (all ``*.nc`` in it, sorted by name), a glob (``"dir/2002*.nc"``), a file, or a
        list of any of these. Files are concatenated along time in that order.
    units : str or mapping, optional
        The caller's explicit word on units. A mapping is keyed by variable name (or ``"u"`` /
        ``"v"`` for the velocity components), e.g. ``{"u": "cm s-1"}``; a string applies to
        both velocity components. Overrides what the files say (recorded in ``history``).
    standard_names : mapping, optional
        ``{variable: standard_name}``, overriding the built-in recognition of ``eastward...`` /
        ``northward...`` variables.
    time_units : str, optional
        CF time units (``"days since 1900-01-01"``) for a numeric time axis whose files carry
        none (or to override a ``Unit``-style attribute).
    calendar : str, default "standard"
        Calendar used with ``time_units`` / a ``Unit``-style time attribute.
    drop_duplicate_times : {"report", "drop", "error"}
        Repeated time stamps and identical fields at different times: warn and record them in
        the attrs (default), remove the later copies (keeping the first, and sort by time), or
        raise :class:`~xequi.errors.GridError`. Non-monotonic times are reported in every mode
        (and sorted with ``"drop"``).
    chunks : optional
        dask chunks for :func:`xarray.open_mfdataset` (default ``{}``: one chunk per file).
    engine : str, optional
        xarray backend (default: xarray's choice).
    parallel : bool, default False
        Open the files in parallel with dask.

    Returns
    -------
    xarray.Dataset
        dask-backed; dims ``(time, lat, lon)`` as in the files, velocity with ``standard_name``
        and ``units``, coordinates with ``axis`` / ``standard_name`` / ``units``, a ``land_mask``
        coordinate (1 = land: NaN at every time) and provenance in the global attrs.

    Raises
    ------
    DataFilesNotFoundError
        Missing path, empty folder, pattern matching nothing.
    UnitsError
        A velocity component without units and no ``units=`` word; unparseable units; a numeric
        time axis without usable units.
    GridError
        Duplicate / identical / non-monotonic times with ``drop_duplicate_times="error"``.
    ParameterError
        Invalid arguments.

    Examples
    --------
    >>> ds = open_dataset("/path/to/globcurrent_agulhas_2002")  # doctest: +SKIP
    >>> ds["eastward_eulerian_current_velocity"].attrs["standard_name"]  # doctest: +SKIP
    'surface_eastward_sea_water_velocity'
    """
    _check_open_args(drop_duplicate_times, units, standard_names)
    files = _resolve_paths(paths)
    history = _History(_now())
    ds, tdim, first_attrs = _open_files(files, chunks=chunks, engine=engine, parallel=parallel)
    lat, lon = _find_dim(ds, _LAT_NAMES), _find_dim(ds, _LON_NAMES)
    ds = _label_latlon(ds, lat, lon, history)
    has_time = tdim in ds.coords
    if has_time:
        ds = _decode_time(ds, tdim, time_units, calendar, history)
    ds = _label_standard_names(ds, dict(standard_names or {}), history)
    try:
        un, vn = find_velocity(ds)
    except VariableNotFoundError:
        un = vn = None
    vel = [n for n in (un, vn) if n is not None]
    ds = _decode_time_variables(ds, vel, units, history)
    ds = _label_units(ds, units, un, vn, history)
    report: dict[str, str] = {}
    land = None
    if has_time:
        check = vel or [n for n in ds.data_vars if tdim in ds[n].dims]
        ds, land = _check_times(ds, files, tdim, lat, lon, check, drop_duplicate_times, history,
                                report)
    if land is not None and lat is not None and lon is not None:
        ds = _add_land_mask(ds, land, lat, lon, vel[0] if vel else list(ds.data_vars)[0], history)
    ds.attrs = _global_attrs(first_attrs, files, history, report, drop_duplicate_times)
    return ds


class _History(list):
    """The repairs of one :func:`open_dataset` call: one ``history`` line each, with its stamp."""

    def __init__(self, stamp: str):
        super().__init__()
        self.stamp = stamp

    def note(self, text: str) -> None:
        self.append(f"{self.stamp} xequi.open_dataset: {text}")


def _check_open_args(drop_duplicate_times, units, standard_names) -> None:
    if drop_duplicate_times not in _DUP_CHOICES:
        raise ParameterError(
            f"drop_duplicate_times must be one of {_DUP_CHOICES}, got {drop_duplicate_times!r}.",
            fix="pass 'report' (warn), 'drop' (keep the first) or 'error'")
    if units is not None and not isinstance(units, (str, Mapping)):
        raise ParameterError(f"units must be a string or a mapping, got {type(units).__name__}.",
                             fix="pass e.g. units={'u': 'm s-1', 'v': 'm s-1'}")
    if standard_names is not None and not isinstance(standard_names, Mapping):
        raise ParameterError("standard_names must be a mapping {variable: standard_name}.",
                             fix="pass e.g. standard_names={'uo': 'eastward_sea_water_velocity'}")


def _open_files(files: list[Path], *, chunks, engine, parallel) -> tuple[xr.Dataset, str, dict]:
    """The files concatenated along their time dimension (undecoded times, no global attrs),
    that dimension's name, and the first file's global attrs."""
    open_kw: dict[str, Any] = dict(combine="nested", concat_dim=None, data_vars="minimal",
                                   coords="minimal", compat="override", join="override",
                                   combine_attrs="override", parallel=parallel,
                                   chunks={} if chunks is None else chunks)
    if engine is not None:
        open_kw["engine"] = engine
    # first file: find the time dimension (concatenation axis)
    try:
        with xr.open_dataset(files[0], decode_times=False, **({"engine": engine} if engine
                                                                 else {})) as first:
            tdim = _find_dim(first, _TIME_NAMES)
            first_attrs = dict(first.attrs)
    except (OSError, ValueError) as err:
        raise DataFilesNotFoundError(f"cannot read {str(files[0])!r} as netCDF: {err}",
                                     fix="pass netCDF files") from None
    if tdim is None:
        raise VariableNotFoundError(f"no time dimension ({', '.join(_TIME_NAMES)}) in "
                                    f"{files[0].name!r}.",
                                    fix="these files need a time dimension to be concatenated")
    open_kw["concat_dim"] = tdim
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=xr.SerializationWarning)
        try:
            ds = xr.open_mfdataset([str(f) for f in files], **open_kw)
        except (OSError, ValueError) as err:
            raise DataFilesNotFoundError(f"cannot open the {len(files)} files as one dataset: "
                                         f"{err}", fix="check that all files share one grid") \
                from None
    ds.attrs = {}
    return ds, tdim, first_attrs


def _label_latlon(ds: xr.Dataset, lat, lon, history: _History) -> xr.Dataset:
    """Latitude / longitude coordinates with CF ``units``, ``standard_name``, ``axis``."""
    for name, sn, cf_units, axis, long in ((lat, "latitude", "degrees_north", "Y", "latitude"),
                                           (lon, "longitude", "degrees_east", "X", "longitude")):
        if name is None or name not in ds.coords:
            continue
        c = ds[name]
        found, attr = _unit_from_attrs(c.variable)
        f = (found or "").lower().replace(" ", "")
        if found is None:
            history.note(f"{name!r} had no units; set {cf_units!r} from its name")
        elif f in ("degrees", "degree", "deg", "degrees_north", "degrees_east", "degree_north",
                   "degree_east", "degrees_n", "degrees_e"):
            if attr != "units" or found != cf_units:
                history.note(f"{name!r} units {found!r} (from attribute {attr!r}) written as CF "
                             f"{cf_units!r}")
        else:
            raise UnitsError(f"coordinate {name!r} has units {found!r}, not degrees.",
                             fix="pass files on a latitude/longitude grid in degrees")
        attrs = {k: v for k, v in c.attrs.items() if k not in UNIT_ATTRS}
        attrs.update(units=cf_units, standard_name=sn, axis=axis,
                     long_name=attrs.get("long_name", long))
        ds = ds.assign_coords({name: xr.DataArray(np.asarray(c.values), dims=c.dims,
                                                  attrs=attrs)})
    return ds


def _decode_time(ds: xr.Dataset, tdim: str, time_units, calendar: str,
                 history: _History) -> xr.Dataset:
    """The time coordinate as ``datetime64`` with CF attrs (a numeric one decoded from its
    ``Unit``-style attribute or ``time_units=``)."""
    tc = ds[tdim]
    tvals = np.asarray(tc.values)
    tattrs = {k: v for k, v in tc.attrs.items() if k not in UNIT_ATTRS and k != "units"}
    if not np.issubdtype(tvals.dtype, np.number):
        tattrs.update(standard_name="time", axis="T")
        enc = dict(tc.encoding)
        ds = ds.assign_coords({tdim: tc.assign_attrs(tattrs)})
        ds[tdim].encoding.update({k: v for k, v in enc.items() if k in ("units", "calendar")})
        return ds
    found, attr = _unit_from_attrs(tc.variable)
    tu = time_units if time_units is not None else found
    if tu is None or "since" not in str(tu):
        raise UnitsError(
            f"the time coordinate {tdim!r} is numeric ({tvals[:1]}...) without usable "
            f"units ({tu!r}).",
            fix="pass time_units='days since 1900-01-01' (the reference of your files)")
    try:
        decoded = xr.coding.times.decode_cf_datetime(tvals, str(tu), calendar=calendar)
    except Exception as err:
        raise UnitsError(f"cannot decode the time coordinate {tdim!r} with units "
                         f"{tu!r}: {err}.",
                         fix="pass time_units='days since YYYY-MM-DD'") from None
    decoded = np.asarray(decoded)
    if decoded.dtype == object:
        raise UnitsError(f"time {tdim!r} decodes to non-standard dates ({calendar}).",
                         fix="pass calendar='standard'")
    src = "the time_units argument" if time_units is not None else f"attribute {attr!r}"
    history.note(f"time {tdim!r} decoded from {tu!r} ({src})")
    tattrs.update(standard_name="time", axis="T", long_name=tattrs.get("long_name", "time"))
    newt = xr.DataArray(decoded.astype("datetime64[ns]"), dims=(tdim,), attrs=tattrs)
    newt.encoding.update(units=str(tu), calendar=calendar)
    return ds.assign_coords({tdim: newt})


def _label_standard_names(ds: xr.Dataset, names_map: dict, history: _History) -> xr.Dataset:
    """``standard_name`` of each variable: the caller's, the file's, else guessed from its name."""
    for name in list(ds.data_vars):
        sn = names_map.get(name) or ds[name].attrs.get("standard_name") or \
            _guess_standard_name(str(name))
        if sn and ds[name].attrs.get("standard_name") != sn:
            why = "the standard_names argument" if name in names_map else "its variable name"
            history.note(f"{name!r} standard_name {sn!r} (from {why})")
            ds[name].attrs["standard_name"] = sn
    for k in names_map:
        if k not in ds.data_vars:
            raise VariableNotFoundError(f"standard_names names {k!r}, not a variable "
                                        f"({sorted(map(str, ds.data_vars))}).",
                                        fix="key standard_names by the files' variable names")
    return ds


def _label_units(ds: xr.Dataset, word, un, vn, history: _History) -> xr.Dataset:
    """``units`` of each variable: the caller's word, else the files' (a ``Unit``-style attribute
    moved to ``units``); a velocity without any is refused."""
    vel = [n for n in (un, vn) if n is not None]
    if isinstance(word, Mapping):
        for k in word:
            if k not in ds.data_vars and k not in ("u", "v"):
                raise VariableNotFoundError(f"units names {k!r}, not a variable "
                                            f"({sorted(map(str, ds.data_vars))}).",
                                            fix="key units by variable name (or 'u', 'v')")
    for name in list(ds.data_vars):
        given = None
        if isinstance(word, str) and name in vel:
            given = word
        elif isinstance(word, Mapping):
            label = {un: "u", vn: "v"}.get(name)
            given = word.get(name, word.get(label) if label else None)
        final = _variable_units(ds[name], str(name), given, name in vel, history)
        attrs = {k: v for k, v in ds[name].attrs.items() if k not in UNIT_ATTRS}
        if final is not None:
            attrs["units"] = final
        ds[name].attrs = attrs
    return ds


def _decode_time_variables(ds: xr.Dataset, vel, word, history: _History) -> xr.Dataset:
    """Data variables with CF time units (``forecast_reference_time``: ``"days since ..."``),
    decoded by xarray to datetime64 as the time coordinate is; one that cannot be decoded is
    left as it is (the forecast reads only the velocity and the fields it is given)."""
    named = set(word) if isinstance(word, Mapping) else set()
    for name in list(ds.data_vars):
        found, _ = _unit_from_attrs(ds[name].variable)
        if name in vel or name in named or not isinstance(found, str) or \
                " since " not in f" {found} ":
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                dec = xr.decode_cf(ds[[name]].reset_coords(drop=True), mask_and_scale=False,
                                   decode_coords=False, concat_characters=False)[name]
        except Exception:  # noqa: BLE001 - metadata the forecast does not need: keep it
            history.note(f"{name!r} units {found!r} are time units xarray cannot decode; "
                         "left as they are")
            continue
        if np.issubdtype(dec.dtype, np.datetime64) or dec.dtype == object:
            ds = ds.assign({name: dec})
            history.note(f"{name!r} decoded as times from its units {found!r}")
    return ds


def _variable_units(da: xr.DataArray, name: str, given, is_vel: bool,
                    history: _History) -> str | None:
    """The units one variable ends up with (checked), each choice recorded in ``history``.

    Units of a variable that is neither a velocity component nor named by the caller are only
    read, never a reason to stop: one pint cannot parse is left as it is (noted in ``history``);
    :func:`xequi.forecast.forecast` checks the units of the fields it is given.
    """
    found, attr = _unit_from_attrs(da.variable)
    if given is None and not is_vel and np.issubdtype(da.dtype, np.datetime64):
        return None  # decoded times: their CF units live in the encoding
    if found is not None and given is None and not is_vel:
        try:
            parse_units(found, name)
        except UnitsError:
            history.note(f"{da.name!r} units {found!r} are not pint units; left as they are "
                         "(not a velocity component)")
            return found
    if given is not None:
        parse_units(given, name, "velocity" if is_vel else None)
        if found is not None and found != given:
            history.note(f"{da.name!r} units {given!r} from the caller (the files said "
                         f"{found!r} in {attr!r})")
        elif found is None:
            history.note(f"{da.name!r} units {given!r} from the caller (the files say none)")
        return given
    if found is not None:
        parse_units(found, name, "velocity" if is_vel else None)
        if attr != "units":
            history.note(f"{da.name!r} units {found!r} taken from the non-standard attribute "
                         f"{attr!r}")
        return found
    if is_vel:
        raise UnitsError(
            f"velocity variable {da.name!r} has no units (no 'units' attribute and none of "
            f"{list(UNIT_ATTRS)}); xequi does not guess them.",
            fix=f"pass units={{{name!r}: 'm s-1'}} (or units='m s-1' for both components)"
                " if that is what the data provider states")
    return None


class _TimeProblems(NamedTuple):
    """Indices of suspicious time steps (``(later, first)`` pairs for copies)."""

    duplicates: list  # same time stamp as an earlier step
    identical: list  # identical fields at a different, earlier time
    non_monotonic: list  # not after the previous step (duplicates excluded)


def _find_time_problems(ds, check, tdim: str, times: np.ndarray, fps) -> _TimeProblems:
    """Repeated stamps, identical fields at different times (fingerprints, then values), and
    times that do not increase."""
    nt = times.size
    dup_same = []
    seen: dict[Any, int] = {}
    for i, t in enumerate(times):
        if t in seen:
            dup_same.append((i, seen[t]))
        else:
            seen[t] = i
    ident = []
    groups: dict[tuple, list[int]] = {}
    for i in range(nt):
        groups.setdefault(tuple(np.round(fps[i], 12)), []).append(i)
    for idx in groups.values():
        if len(idx) > 1:
            base = idx[0]
            ref = _slice_values(ds, check, tdim, base)
            for j in idx[1:]:
                if times[j] == times[base]:
                    continue
                if all(np.array_equal(a, b, equal_nan=True) for a, b in
                       zip(ref, _slice_values(ds, check, tdim, j))):
                    ident.append((j, base))
    nonmono = [i for i in range(1, nt) if not times[i] > times[i - 1]]
    nonmono = [i for i in nonmono if all(i != d[0] for d in dup_same)]
    return _TimeProblems(dup_same, ident, nonmono)


def _describe_time_problems(problems: _TimeProblems, times, files: list[Path],
                            report: dict) -> list[str]:
    """One message per kind of problem (naming the times, and the files when there is one per
    time step); each also recorded in ``report`` (the global attrs)."""
    msgs = []
    one_per_file = len(files) == times.size

    def _file(i):
        return f" (file {files[i].name})" if one_per_file else ""

    if problems.duplicates:
        s = "; ".join(f"{_fmt_time(times[i])}{_file(i)}" for i, _ in problems.duplicates)
        report["duplicate_times"] = s
        msgs.append(f"repeated time stamps: {s}")
    if problems.identical:
        s = "; ".join(f"{_fmt_time(times[j])} is identical to {_fmt_time(times[b])}"
                      f"{_file(j)}{_file_comment(files[j]) if one_per_file else ''}"
                      for j, b in problems.identical)
        report["identical_fields"] = s
        msgs.append(f"identical fields at different times: {s}")
    if problems.non_monotonic:
        s = "; ".join(f"{_fmt_time(times[i])} after {_fmt_time(times[i - 1])}"
                      for i in problems.non_monotonic)
        report["non_monotonic_times"] = s
        msgs.append(f"times not increasing: {s}")
    return msgs


def _act_on_time_problems(ds, tdim: str, times, problems: _TimeProblems, msgs: list[str],
                          mode: str, history: _History, report: dict):
    """Raise (``"error"``), drop the later copies (``"drop"``) or keep them (``"report"``), with a
    warning. Returns the dataset and whether time steps were dropped."""
    text = "xequi.open_dataset: " + "; ".join(msgs)
    if mode == "error":
        raise GridError(text + ".", fix="pass drop_duplicate_times='drop' to keep the "
                                        "first of each, or 'report' to keep them all")
    drop = sorted({i for i, _ in problems.duplicates} | {j for j, _ in problems.identical})
    if mode != "drop":
        history.note("reported (not removed): " + "; ".join(msgs))
        # stacklevel: the caller of open_dataset (-> _check_times -> here)
        warnings.warn(text + ". Kept (drop_duplicate_times='report'); pass "
                      "drop_duplicate_times='drop' to remove the later copies.",
                      UserWarning, stacklevel=4)
        return ds, False
    ds = ds.isel({tdim: np.setdiff1d(np.arange(times.size), drop)})
    if problems.non_monotonic:
        ds = ds.sortby(tdim)
    dropped = ", ".join(_fmt_time(times[i]) for i in drop)
    history.note(f"dropped {len(drop)} later duplicate(s) ({dropped}), kept the first"
                 + ("; sorted by time" if problems.non_monotonic else ""))
    report["dropped_times"] = dropped or "none"
    warnings.warn(text + f". Dropped: {dropped or 'none'}.", UserWarning, stacklevel=4)
    return ds, bool(drop)


def _check_times(ds, files, tdim, lat, lon, check, mode, history: _History, report: dict):
    """Repeated times, identical fields and non-monotonic times reported / dropped / refused;
    returns the dataset and the land cells (NaN at every time)."""
    times = np.asarray(ds[tdim].values)
    fps, land, varying = _fingerprints(ds, check, tdim, lat, lon)
    problems = _find_time_problems(ds, check, tdim, times, fps)
    msgs = _describe_time_problems(problems, times, files, report)
    if msgs:
        ds, dropped = _act_on_time_problems(ds, tdim, times, problems, msgs, mode, history,
                                            report)
        if dropped:  # recompute the masks without the dropped steps
            _, land, varying = _fingerprints(ds, check, tdim, lat, lon)
    land = np.asarray(land)
    if varying is not None and bool((np.asarray(varying) & ~land).any()):
        n = int((np.asarray(varying) & ~land).sum())
        report["missing_varying_in_time"] = f"{n} cells are NaN at some times only"
        # stacklevel: the caller of open_dataset (-> here)
        warnings.warn(f"xequi.open_dataset: {n} cells are NaN at some times only (not "
                      "counted as land).", UserWarning, stacklevel=3)
    return ds, land


def _add_land_mask(ds: xr.Dataset, land: np.ndarray, lat: str, lon: str, ref: str,
                   history: _History) -> xr.Dataset:
    """The ``land_mask`` coordinate (1 where ``land``) on the (lat, lon) dims of ``ref``."""
    dims = tuple(d for d in ds[ref].dims if d in (lat, lon))
    ds = ds.assign_coords(land_mask=(dims, land.astype(np.int8), {
        "long_name": "land mask (cells whose velocity is missing at every time)",
        "flag_values": np.array([0, 1], dtype=np.int8),
        "flag_meanings": "ocean land",
        "comment": "models see zero velocity on land (xequi.fields.to_model_frame("
                   "fill='zero')); forecasts put NaN back; metrics and spectra skip land",
    }))
    history.note(f"land_mask coordinate from cells that are NaN at every time "
                 f"({int(land.sum())} of {land.size}, {100.0 * land.mean():.1f}%)")
    return ds


def _global_attrs(first_attrs: dict, files: list[Path], history: _History, report: dict,
                  drop_duplicate_times: str) -> dict[str, Any]:
    """The first file's global attrs plus CF conventions, provenance, history and the report."""
    attrs: dict[str, Any] = {k: v for k, v in first_attrs.items()}
    attrs.update(
        Conventions="CF-1.10",
        title=attrs.get("title", "ocean surface currents opened by xequi.open_dataset"),
        source_directory=str(Path(files[0]).resolve().parent),
        source_files="\n".join(f.name for f in files),
        source_file_count=len(files),
        history="\n".join(([str(first_attrs["history"])] if first_attrs.get("history") else [])
                          + list(history)),
        xequi_opened_with="xequi.open_dataset(drop_duplicate_times="
                          f"{drop_duplicate_times!r})",
    )
    attrs.update(report)
    return attrs


def _fingerprints(ds, names, tdim, lat, lon):
    """Per-time fingerprints (for identical-field detection) and NaN masks, one dask pass."""
    import dask

    sp = [d for d in (lat, lon) if d is not None]
    parts, alls, anys = [], [], []
    for n in names:
        da = ds[n]
        other = [d for d in da.dims if d != tdim]
        shape = [da.sizes[d] for d in other]
        rng = np.random.default_rng(12345)
        w = xr.DataArray(rng.standard_normal(shape), dims=other)
        filled = da.fillna(0.0)
        parts.append((filled * w).sum(other))
        parts.append((filled * filled).sum(other))
        isn = da.isnull()
        red = [d for d in da.dims if d not in sp]
        alls.append(isn.all(red) if red else isn)
        anys.append(isn.any(red) if red else isn)
    out = dask.compute(*parts, *alls, *anys)
    k = len(parts)
    fps = np.stack([np.asarray(p) for p in out[:k]], axis=-1)
    nall = out[k:k + len(alls)]
    nany = out[k + len(alls):]
    land = np.logical_or.reduce([np.asarray(a) for a in nall]) if nall else None
    varying = np.logical_or.reduce([np.asarray(a) for a in nany]) if nany else None
    return fps, land, varying


def _file_comment(path: Path) -> str:
    """' (the file says: ...)' from a file's global comment attribute, if any."""
    try:
        with xr.open_dataset(path, decode_times=False) as f:
            for k in ("Comment", "comment", "COMMENT"):
                if f.attrs.get(k):
                    return f"; the file says: {str(f.attrs[k])!r}"
    except (OSError, ValueError):  # pragma: no cover - it was just read
        pass
    return ""


def _slice_values(ds, names, tdim, i):
    return [np.asarray(ds[n].isel({tdim: i}).values) for n in names]


# ---------------------------------------------------------------------------------------------
# lat/lon rotation error
# ---------------------------------------------------------------------------------------------


def latlon_rotation_error(ds: xr.Dataset, u: str | None = None, v: str | None = None,
                          times: int | Sequence[int] | slice | None = 12,
                          size: int | None = None) -> dict[str, float]:
    """How far a rotation on the lat/lon *index* grid is from a physical rotation.

    A model that treats the array as a square-celled image rotates a field by ``rot90`` on the
    index grid. On an equal-degree lat/lon grid a cell is ``dx = R cos(lat) dλ`` wide and
    ``dy = R dφ`` tall, so that image rotation is a physical rotation *plus a stretch* by
    ``dy / dx`` (and the stretch varies with latitude). Two measures:

    * geometry: the cell aspect ratio ``dx / dy = cos(lat)`` (equal spacings) at the centre,
      min and max over the domain, and its spread ``(max - min) / centre``;
    * on the data: in a centred square window of ``size`` × ``size`` cells, the field rotated by
      k × 90° on the index grid (grid and vector components) against the field rotated by k ×
      90° *in metric space* about the window centre (local tangent plane, ``x = R cos(lat)
      (λ - λ0)``, ``y = R (φ - φ0)``) and interpolated (bilinear) back onto the grid points.
      ``field_error_rot90`` / ``field_error_rot180`` are ``||index - metric|| / ||metric||`` over
      the ocean points where both exist (mean over the selected times). Interpolation of the
      smooth fields contributes little (checked with k = 0 and k = 4: exact).

    Parameters
    ----------
    ds : xarray.Dataset
        Velocity on a regular lat/lon grid (e.g. from :func:`open_dataset`).
    u, v : str, optional
        Velocity names (found by standard name otherwise).
    times : int, sequence of int, slice or None, default 12
        Which time steps to use: an int ``n`` takes ``n`` evenly spaced steps; None all.
    size : int, optional
        Side of the square window (default: the smaller grid dimension).

    Returns
    -------
    dict
        ``aspect_ratio_center``, ``aspect_ratio_min``, ``aspect_ratio_max``,
        ``aspect_ratio_spread``, ``index_rotation_stretch`` (``dy / dx - 1`` at the centre:
        how much an index rotation stretches lengths), ``field_error_rot90``,
        ``field_error_rot180``, ``valid_fraction_rot90`` (share of window ocean points where
        the metric rotation lands inside the window), ``window``, ``n_times``, ``central_lat``.

    Raises
    ------
    VariableNotFoundError
        No velocity pair found (pass ``u=``, ``v=``).
    ParameterError
        ``size`` outside ``[4, min(ny, nx)]``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> lat, lon = np.arange(-40, -30, 0.5), np.arange(15, 25, 0.5)
    >>> X, Y = np.meshgrid(lon, lat)
    >>> ds = xr.Dataset(
    ...     {"u": (("time", "lat", "lon"), np.sin(X / 2)[None].repeat(2, 0), {"units": "m s-1"}),
    ...      "v": (("time", "lat", "lon"), np.cos(Y / 2)[None].repeat(2, 0), {"units": "m s-1"})},
    ...     coords={"time": np.array(["2002-01-01", "2002-01-02"], dtype="datetime64[ns]"),
    ...             "lat": ("lat", lat, {"units": "degrees_north"}),
    ...             "lon": ("lon", lon, {"units": "degrees_east"})})
    >>> r = latlon_rotation_error(ds, times=2)
    >>> round(r["aspect_ratio_center"], 2), round(r["index_rotation_stretch"], 2)
    (0.82, 0.22)
    """
    un, vn = find_velocity(ds, u=u, v=v)
    sub, ax, sel = _select_times(ds, un, vn, times)
    lat = np.asarray(sub[ax.y].values, dtype=float)
    lon = np.asarray(sub[ax.x].values, dtype=float)
    ny, nx = lat.size, lon.size
    n = min(ny, nx) if size is None else int(size)
    if not 4 <= n <= min(ny, nx):
        raise ParameterError(f"size must be between 4 and {min(ny, nx)}, got {size}.",
                             fix="pass a smaller window size")
    win = _centred_window(sub, ax, un, vn, n)
    out: dict[str, float] = _cell_aspect_ratios(lat, lon)
    out.update(window=int(n), n_times=int(len(sel)))
    for k in (0, 1, 2, 4):
        errs, fracs = _rotation_errors(win, k)
        key = {0: "field_error_identity", 1: "field_error_rot90", 2: "field_error_rot180",
               4: "field_error_rot360"}[k]
        out[key] = float(np.nanmean(errs)) if errs else float("nan")
        if k == 1:
            out["valid_fraction_rot90"] = float(np.mean(fracs))
    return out


def _select_times(ds: xr.Dataset, un: str, vn: str, times):
    """The velocity at the selected time steps, its axes (a ``_t`` dim added when there is no
    time) and the selected indices."""
    ax = find_axes(ds[[un, vn]])
    if ax.t is not None and ax.t in ds[un].dims:
        nt = ds.sizes[ax.t]
        if isinstance(times, int):
            sel = np.unique(np.linspace(0, nt - 1, max(1, min(times, nt))).round().astype(int))
        elif times is None:
            sel = np.arange(nt)
        elif isinstance(times, slice):
            sel = np.arange(nt)[times]
        else:
            sel = np.asarray(list(times), dtype=int)
        return ds[[un, vn]].isel({ax.t: sel}), ax, sel
    return ds[[un, vn]].expand_dims("_t"), ax._replace(t="_t"), np.arange(1)


class _LatLonWindow(NamedTuple):
    """A square window of the velocity, ``(time, lat, lon)`` with latitude and longitude
    ascending (rows point north), and its coordinates in degrees."""

    u: np.ndarray
    v: np.ndarray
    lat: np.ndarray
    lon: np.ndarray


def _centred_window(sub: xr.Dataset, ax, un: str, vn: str, n: int) -> _LatLonWindow:
    """The centred ``n`` × ``n`` window of ``sub``, turned to ascending latitude / longitude
    (the east-north frame the rotations below are written in; not the model frame)."""
    lat = np.asarray(sub[ax.y].values, dtype=float)
    lon = np.asarray(sub[ax.x].values, dtype=float)
    iy0, ix0 = (lat.size - n) // 2, (lon.size - n) // 2
    win = sub.isel({ax.y: slice(iy0, iy0 + n), ax.x: slice(ix0, ix0 + n)})
    win = win.transpose(ax.t, ax.y, ax.x)
    lat_w, lon_w = lat[iy0:iy0 + n], lon[ix0:ix0 + n]
    if lat_w[1] < lat_w[0]:  # work with ascending latitude / longitude
        win = win.isel({ax.y: slice(None, None, -1)})
        lat_w = lat_w[::-1]
    if lon_w[1] < lon_w[0]:
        win = win.isel({ax.x: slice(None, None, -1)})
        lon_w = lon_w[::-1]
    return _LatLonWindow(np.asarray(win[un].values, dtype=float),
                         np.asarray(win[vn].values, dtype=float), lat_w, lon_w)


def _cell_aspect_ratios(lat: np.ndarray, lon: np.ndarray) -> dict[str, float]:
    """Geometry over the whole domain: the cell aspect ratio ``dx / dy`` and its spread."""
    coslat = np.cos(np.radians(lat))
    dlat = abs(float(np.mean(np.diff(lat))))
    dlon = abs(float(np.mean(np.diff(lon))))
    ratio = coslat * dlon / dlat
    lat_c_dom = 0.5 * (lat.min() + lat.max())
    r_c = math.cos(math.radians(lat_c_dom)) * dlon / dlat
    return {
        "central_lat": float(lat_c_dom),
        "aspect_ratio_center": float(r_c),
        "aspect_ratio_min": float(ratio.min()),
        "aspect_ratio_max": float(ratio.max()),
        "aspect_ratio_spread": float((ratio.max() - ratio.min()) / r_c),
        "index_rotation_stretch": float(1.0 / r_c - 1.0),
    }


def _metric_sources(win: _LatLonWindow, k: int):
    """Where each grid point of the window comes from under a metric rotation by k × 90° about
    the window centre: ``(points (lat, lon) clipped to the window, inside the window)``."""
    lat_w, lon_w = win.lat, win.lon
    lat0 = 0.5 * (lat_w[0] + lat_w[-1])
    lon0 = 0.5 * (lon_w[0] + lon_w[-1])
    LAT, LON = np.meshgrid(lat_w, lon_w, indexing="ij")
    px = EARTH_RADIUS * np.cos(np.radians(LAT)) * np.radians(LON - lon0)
    py = EARTH_RADIUS * np.radians(LAT - lat0)
    th = k * math.pi / 2
    c, s = round(math.cos(th)), round(math.sin(th))
    # source point R^-1 P
    qx, qy = c * px + s * py, -s * px + c * py
    slat = lat0 + np.degrees(qy / EARTH_RADIUS)
    slon = lon0 + np.degrees(qx / (EARTH_RADIUS * np.cos(np.radians(slat))))
    inside = (slat >= lat_w[0] - 1e-9) & (slat <= lat_w[-1] + 1e-9) & \
             (slon >= lon_w[0] - 1e-9) & (slon <= lon_w[-1] + 1e-9)
    pts = np.stack([np.clip(slat, lat_w[0], lat_w[-1]),
                    np.clip(slon, lon_w[0], lon_w[-1])], axis=-1)
    return pts, inside


def _rotation_errors(win: _LatLonWindow, k: int) -> tuple[list, list]:
    """Per time step: ``||index - metric|| / ||metric||`` of a rotation by k × 90°, and the share
    of ocean points where both rotations exist."""
    from scipy.interpolate import RegularGridInterpolator

    U, V, lat_w, lon_w = win
    th = k * math.pi / 2
    c, s = round(math.cos(th)), round(math.sin(th))
    pts, inside = _metric_sources(win, k)
    errs, fracs = [], []
    for it in range(U.shape[0]):
        fu = RegularGridInterpolator((lat_w, lon_w), U[it], bounds_error=False)(pts)
        fv = RegularGridInterpolator((lat_w, lon_w), V[it], bounds_error=False)(pts)
        fu = np.where(inside, fu, np.nan)
        fv = np.where(inside, fv, np.nan)
        mu, mv = c * fu - s * fv, s * fu + c * fv
        # index rotation: CCW by k*90 deg in the physical (east, north) frame; arrays are
        # (lat ascending, lon ascending) so rows point north: rot90 on (row, col) with
        # axes (col, row) order gives a CCW rotation in the east-north plane
        iu = np.rot90(U[it], k=k, axes=(1, 0))
        iv = np.rot90(V[it], k=k, axes=(1, 0))
        ru, rv = c * iu - s * iv, s * iu + c * iv
        ok = np.isfinite(mu) & np.isfinite(mv) & np.isfinite(ru) & np.isfinite(rv)
        ocean = np.isfinite(U[it]) & np.isfinite(V[it])
        fracs.append(ok.sum() / max(1, ocean.sum()))
        if ok.sum() == 0:
            continue
        num = np.sqrt(np.mean((ru[ok] - mu[ok]) ** 2 + (rv[ok] - mv[ok]) ** 2))
        den = np.sqrt(np.mean(mu[ok] ** 2 + mv[ok] ** 2))
        errs.append(num / den if den > 0 else np.nan)
    return errs, fracs
