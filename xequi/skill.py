"""Forecast skill against reference forecasts, with paired-bootstrap intervals over init times.

The evaluation contract (OceanBench style, formulas and choices in ``docs/skill.md``):

* :func:`reference_forecast` -- the references, laid out exactly like a model forecast
  ``(init_time, lead_time, y, x)`` with ``valid_time``: ``"persistence"`` (the truth at the init
  time, :func:`xequi.diagnostics.persistence_forecast`), ``"climatology"`` (of the training
  period: a time mean, a monthly or a day-of-year mean) and ``"damped_persistence"``
  (``clim + r(L) (x(t0) - clim)`` with ``r(L)`` the lag-``L`` autocorrelation of the training
  anomalies, :func:`lag_autocorrelation`).
* :func:`skill` -- ``1 - RMSE_model / RMSE_ref`` per lead time, both RMSEs on exactly the same
  cells and times (the union of the NaNs of forecast, truth and references is masked in all),
  with a paired bootstrap interval over init times.
* :func:`effective_resolution` -- the smallest wavelength down to which the forecast's
  kinetic-energy spectrum stays within a factor of the truth's.
* :func:`band_spectrum_error` -- the spectrum error over a stated wavenumber band (by default the
  resolved band, from the domain scale to the last shell wholly inside the grid's Nyquist
  wavenumber).
* :func:`wall_error_ratio` -- the forecast's error in the rows at the walls over the interior's.
* :func:`skill_report` -- one plain line per lead: does the model beat the reference?

Inputs are never modified; user mistakes raise :mod:`xequi.errors` classes.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import xarray as xr

from xequi.diagnostics import (
    _align_truth,
    _check_same_grid,
    _spatial,
    _spatial_grid,
    _time_dim,
    log_spectrum_rmse,
    persistence_forecast,
    resolved_k_max,
    rmse,
    spectrum,
)
from xequi.errors import MissingDataError, ParameterError, UnitsError, VariableNotFoundError
from xequi.fields import find_velocity, parse_units
from xequi.routing import as_dataset
from xequi.units import registry

__all__ = [
    "REFERENCES",
    "CLIMATOLOGIES",
    "climatology",
    "lag_autocorrelation",
    "reference_forecast",
    "skill",
    "skill_report",
    "effective_resolution",
    "band_spectrum_error",
    "wall_error_ratio",
]

#: reference forecasts understood by :func:`reference_forecast` and :func:`skill`
REFERENCES = ("persistence", "climatology", "damped_persistence")
#: climatology kinds: "auto" picks "month" when the training period allows, else "mean"
CLIMATOLOGIES = ("auto", "mean", "month", "dayofyear")

_INIT, _LEAD = "init_time", "lead_time"


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _cf_units(unit) -> str:
    s = f"{unit:cf}"
    return "1" if s in ("", "dimensionless") else s


def _to_units(da: xr.DataArray, target: str | None, name: str) -> xr.DataArray:
    """da converted to the units string ``target`` (unchanged when either is unknown)."""
    src = da.attrs.get("units")
    if src is None or target is None or str(src) == str(target):
        return da
    a, b = parse_units(str(src), name), parse_units(str(target), name)
    try:
        k = float(registry().Quantity(1.0, a).to(b).magnitude)
    except Exception:
        raise UnitsError(f"the training data's {name!r} has units {src!r}, which cannot be "
                         f"converted to the truth's {target!r}.",
                         fix=f"give the training {name!r} units compatible with {target!r}"
                         ) from None
    return (da * k).assign_attrs({**da.attrs, "units": str(target)})


def _groups(ds: xr.Dataset, names, u=None, v=None) -> dict[str, list[str]]:
    """{'velocity': [u, v]} when a pair is found, plus {name: [name]} for every other variable."""
    try:
        un, vn = find_velocity(ds, u=u, v=v)
    except (VariableNotFoundError, ParameterError):
        un = vn = None
    out: dict[str, list[str]] = {}
    if un in names and vn in names:
        out["velocity"] = [un, vn]
    for n in names:
        if n not in out.get("velocity", []):
            out[n] = [n]
    return out


def _time_values(ct: xr.DataArray) -> tuple[np.ndarray, float]:
    """(times as float64 or int64 ns, matching tolerance)."""
    vals = np.asarray(ct.values)
    if np.issubdtype(vals.dtype, np.datetime64):
        return vals.astype("datetime64[ns]").astype(np.int64), 0.0
    vals = vals.astype(np.float64)
    step = np.median(np.abs(np.diff(np.sort(vals)))) if vals.size > 1 else 1.0
    return vals, 1e-6 * float(step)


def _lag_pairs(ct: xr.DataArray, lag) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j) of times with t_j = t_i + lag (label matching, so gaps are allowed)."""
    t, tol = _time_values(ct)
    lag = np.asarray(lag)
    lag = lag.astype("timedelta64[ns]").astype(np.int64) if np.issubdtype(
        lag.dtype, np.timedelta64) else float(lag)
    order = np.argsort(t)
    srt = t[order]
    want = t + lag
    pos = np.clip(np.searchsorted(srt, want), 0, srt.size - 1)
    best = pos.copy()
    lower = np.clip(pos - 1, 0, srt.size - 1)
    closer = np.abs(srt[lower] - want) < np.abs(srt[pos] - want)
    best[closer] = lower[closer]
    ok = np.abs(srt[best] - want) <= tol
    return np.nonzero(ok)[0], order[best[ok]]


def _lead_index(lead_time) -> np.ndarray:
    return np.atleast_1d(np.asarray(getattr(lead_time, "values", lead_time)))


# ---------------------------------------------------------------------------------------------
# climatology and lag autocorrelation of the training period
# ---------------------------------------------------------------------------------------------


def _auto_kind(ct: xr.DataArray) -> str:
    if not np.issubdtype(ct.dtype, np.datetime64) or ct.size < 2:
        return "mean"
    span = (ct.values.max() - ct.values.min()) / np.timedelta64(1, "D")
    months = np.unique(ct.dt.month.values)
    return "month" if span >= 365 and months.size == 12 else "mean"


def climatology(train: xr.Dataset, kind: str = "auto", time: str | None = None,
                variables: Sequence[str] | None = None) -> xr.Dataset:
    """Climatology of a training period: time mean, monthly mean or day-of-year mean.

    Parameters
    ----------
    train : xarray.Dataset
        The training period's data, with a time dimension.
    kind : {"auto", "mean", "month", "dayofyear"}, default "auto"
        ``"auto"``: ``"month"`` when the time axis is datetime-like, spans at least 365 days and
        holds every calendar month, else ``"mean"`` (a time mean: the only choice for
        non-dimensional simulations).
    time : str, optional
        The time dimension (found otherwise).
    variables : sequence of str, optional
        Default: every data variable with the time dimension.

    Returns
    -------
    xarray.Dataset
        Without the time dimension; a ``month`` or ``dayofyear`` dimension for those kinds.
        attrs ``climatology_kind``, ``climatology_definition``, ``train_period``.

    Raises
    ------
    ParameterError
        Unknown ``kind``, or a seasonal kind on a non-datetime time axis.
    VariableNotFoundError
        No time dimension.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> t = np.datetime64("2020-01-01", "ns") + np.arange(4) * np.timedelta64(1, "D")
    >>> ds = xr.Dataset({"u": (("time", "y", "x"), np.arange(8.).reshape(4, 1, 2))},
    ...                 coords={"time": t})
    >>> c = climatology(ds)
    >>> c.u.values.tolist(), c.attrs["climatology_kind"]
    ([[3.0, 4.0]], 'mean')
    """
    if kind not in CLIMATOLOGIES:
        raise ParameterError(f"climatology kind must be one of {CLIMATOLOGIES}, got {kind!r}.",
                             fix="pass 'auto', 'mean', 'month' or 'dayofyear'")
    if not isinstance(train, xr.Dataset):
        raise ParameterError(f"train must be an xarray.Dataset, got {type(train).__name__}.",
                             fix="pass the training period's Dataset, e.g. ds.sel(time=slice("
                                 "None, '2019'))")
    t = _time_dim(train, time)
    ct = train[t]
    names = list(variables) if variables is not None else \
        [n for n in train.data_vars if t in train[n].dims]
    used = _auto_kind(ct) if kind == "auto" else kind
    if used != "mean" and not np.issubdtype(ct.dtype, np.datetime64):
        raise ParameterError(f"a {used!r} climatology needs a datetime time axis; {t!r} is "
                             f"{ct.dtype}.", fix="pass kind='mean' (a time mean)")
    data = train[names]
    if used == "mean":
        out = data.mean(t, keep_attrs=True)
    else:
        out = data.groupby(f"{t}.{used}").mean(t, keep_attrs=True)
    out = out.drop_vars([c for c in out.coords if t in out[c].dims or c == t], errors="ignore")
    period = f"{ct.values.min()} .. {ct.values.max()}"
    what = {"mean": "time mean", "month": "monthly mean (calendar month of each time)",
            "dayofyear": "day-of-year mean"}[used]
    out.attrs = {"climatology_kind": used, "train_period": period,
                 "climatology_definition": f"{what} of the training period {period} "
                                           f"({ct.size} times)"}
    return out


def _climatology_from(train, kind, tdim_truth, names):
    """(climatology Dataset, kind): ``train`` is training data (with time) or a climatology."""
    if not isinstance(train, xr.Dataset):
        raise ParameterError(f"train must be an xarray.Dataset (the training data or a "
                             f"climatology), got {type(train).__name__}.",
                             fix="pass train=ds.sel(time=slice(None, '2019')) or a climatology")
    missing = [n for n in names if n not in train.data_vars]
    if missing:
        raise VariableNotFoundError(f"train has no variable(s) {missing} (it has "
                                    f"{sorted(map(str, train.data_vars))}).",
                                    fix="pass training data with the truth's variable names")
    if _has_time(train):
        return climatology(train, kind=kind, variables=names)
    used = "month" if "month" in train.dims else "dayofyear" if "dayofyear" in train.dims \
        else "mean"
    if kind not in ("auto", used):
        raise ParameterError(f"climatology={kind!r} was asked, but train is a {used!r} "
                             f"climatology (no time dimension).",
                             fix="pass the training data instead, or climatology='auto'")
    out = train[names].copy()
    out.attrs = {"climatology_kind": used, "train_period": str(train.attrs.get(
        "train_period", "unknown")), "climatology_definition": str(train.attrs.get(
            "climatology_definition", f"{used} climatology given by the caller"))}
    return out


def _has_time(ds: xr.Dataset) -> bool:
    try:
        _time_dim(ds, None)
    except VariableNotFoundError:
        return False
    return True


def _clim_at(clim: xr.Dataset, times: xr.DataArray) -> xr.Dataset:
    """The climatology at the given times (broadcast over their dims)."""
    kind = clim.attrs["climatology_kind"]
    if kind == "mean":
        return clim
    if not np.issubdtype(times.dtype, np.datetime64):
        raise ParameterError(f"a {kind!r} climatology needs datetime valid times.",
                             fix="use climatology='mean'")
    key = getattr(times.dt, kind)
    have = set(np.asarray(clim[kind].values).tolist())
    absent = sorted(set(np.unique(key.values).tolist()) - have)
    if absent:
        raise MissingDataError(f"the {kind} climatology has no value for {kind} {absent[:5]} "
                               f"needed by the valid times.",
                               fix="train on a period covering the whole year, or "
                                   "climatology='mean'")
    out = clim.sel({kind: key})
    return out.drop_vars([kind], errors="ignore")


def lag_autocorrelation(train: xr.Dataset, lead_time, clim: xr.Dataset | None = None,
                        kind: str = "auto", time: str | None = None, u: str | None = None,
                        v: str | None = None) -> xr.Dataset:
    """Lag autocorrelation ``r(L)`` of the training anomalies, pooled over cells and times.

    ``r(L) = sum a(t) a(t + L) / sqrt(sum a(t)^2 sum a(t + L)^2)`` over every pair of training
    times ``L`` apart (matched by label, so gaps are allowed) and every cell where both are
    finite; ``a = x - clim`` the anomaly. The velocity components are pooled into one ``r``
    (``velocity``, rotation invariant); every other variable gets its own.

    Parameters
    ----------
    train : xarray.Dataset
        Training data with a time dimension.
    lead_time : array-like
        Lags (timedelta64 for a datetime axis, numbers in the time unit otherwise).
    clim : xarray.Dataset, optional
        The climatology (default :func:`climatology` of ``train`` with ``kind``).
    kind : str
        Climatology kind when ``clim`` is not given.
    time, u, v : str, optional

    Returns
    -------
    xarray.Dataset
        One variable per group (``velocity``, scalars) over ``lead_time``; ``n_pairs`` coord.

    Raises
    ------
    MissingDataError
        No pair of training times ``L`` apart.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> a = (-1.0) ** np.arange(6)  # a(t + 1) = -a(t)
    >>> ds = xr.Dataset({"s": (("time", "y", "x"), np.stack([a, 2 * a], 1)[:, None, :])},
    ...                 coords={"time": np.arange(6.0)})
    >>> r = lag_autocorrelation(ds, [1, 2], kind="mean")
    >>> r.s.values.round(3).tolist(), r.n_pairs.values.tolist()
    ([-1.0, 1.0], [5, 4])
    """
    t = _time_dim(train, time)
    names = [n for n in train.data_vars if t in train[n].dims]
    clim = climatology(train, kind, time=t, variables=names) if clim is None else clim
    anom = train[names] - _clim_at(clim, train[t])[names]
    groups = _groups(train, names, u, v)
    leads = _lead_index(lead_time)
    data = {g: np.full(leads.size, np.nan) for g in groups}
    npairs = np.zeros(leads.size, dtype=int)
    for k, lag in enumerate(leads):
        i, j = _lag_pairs(train[t], lag)
        if i.size == 0:
            raise MissingDataError(f"no pair of training times {lag} apart: the lag "
                                   f"autocorrelation cannot be fitted.",
                                   fix="train on a longer period with the forecast's time step")
        npairs[k] = i.size
        for g, members in groups.items():
            num = s0 = s1 = 0.0
            for n in members:
                a = np.moveaxis(np.asarray(anom[n].values, dtype=np.float64),
                                anom[n].dims.index(t), 0)
                a0, a1 = a[i], a[j]
                ok = np.isfinite(a0) & np.isfinite(a1)
                num += float((a0 * a1)[ok].sum())
                s0 += float((a0 ** 2)[ok].sum())
                s1 += float((a1 ** 2)[ok].sum())
            data[g][k] = num / np.sqrt(s0 * s1) if s0 > 0 and s1 > 0 else np.nan
    coords = {_LEAD: (_LEAD, leads), "n_pairs": (_LEAD, npairs)}
    out = xr.Dataset({g: (_LEAD, r, {"long_name": f"lag autocorrelation of the {g} anomalies",
                                     "units": "1"}) for g, r in data.items()}, coords=coords)
    out.attrs = {"climatology_definition": clim.attrs.get("climatology_definition", ""),
                 "definition": "r(L) = sum a(t) a(t+L) / sqrt(sum a(t)^2 sum a(t+L)^2), "
                               "pooled over cells, times (and velocity components)"}
    return out


# ---------------------------------------------------------------------------------------------
# reference forecasts
# ---------------------------------------------------------------------------------------------


def _definition(kind: str, clim=None, r=None) -> str:
    if kind == "persistence":
        return "persistence: x_ref(t0 + L) = x(t0), the truth at the init time"
    cdef = clim.attrs.get("climatology_definition", "") if clim is not None else ""
    if kind == "climatology":
        return f"climatology: x_ref(t0 + L) = clim(t0 + L), clim = {cdef}"
    rs = "; ".join(f"{g}: [{', '.join(f'{x:.3f}' for x in r[g].values)}]" for g in r.data_vars)
    return (f"damped persistence: x_ref(t0 + L) = clim(t0 + L) + r(L) (x(t0) - clim(t0)), r(L) the "
            f"lag-L autocorrelation of the training anomalies per lead ({rs}), clim = {cdef}")


def reference_forecast(truth: xr.Dataset, kind: str, init_time, steps: int | None = None,
                       lead_time=None, train: xr.Dataset | None = None,
                       climatology: str = "auto", time: str | None = None,
                       variables: Sequence[str] | None = None, u: str | None = None,
                       v: str | None = None) -> xr.Dataset:
    """A reference forecast laid out exactly like a model forecast.

    Dims ``(init_time, lead_time, <y>, <x>)`` with ``valid_time = init_time + lead_time``, the
    coordinates and attrs of :func:`xequi.diagnostics.persistence_forecast`, so that it is scored
    on the same cells and times as the model.

    * ``"persistence"``: ``x_ref(t0 + L) = x(t0)``.
    * ``"climatology"``: ``x_ref(t0 + L) = clim(t0 + L)``, the climatology of the training period
      (:func:`climatology`: a time mean, or a monthly / day-of-year mean when the period allows).
    * ``"damped_persistence"``: ``x_ref(t0 + L) = clim(t0 + L) + r(L) (x(t0) - clim(t0))``, with
      ``r(L)`` the lag-``L`` autocorrelation of the training anomalies
      (:func:`lag_autocorrelation`). It is the best linear forecast of an AR(1) process.

    Parameters
    ----------
    truth : xarray.Dataset
        The data the init frames come from (with a time dimension).
    kind : {"persistence", "climatology", "damped_persistence"}
    init_time : scalar or array-like
        Init times, each in ``truth``'s time coordinate.
    steps : int, optional
        Lead times ``dt, ..., steps dt`` (exactly one of ``steps`` and ``lead_time``).
    lead_time : array-like, optional
        Explicit lead times, e.g. a model forecast's ``lead_time``.
    train : xarray.Dataset, optional
        Needed by the climatology references: the training period's data (with time), or for
        ``"climatology"`` only, a climatology Dataset (no time dim; ``month`` or ``dayofyear``
        dims for seasonal ones).
    climatology : {"auto", "mean", "month", "dayofyear"}
        Kind of climatology computed from ``train``.
    time : str, optional
        The time dimension of ``truth`` (and ``train``).
    variables : sequence of str, optional
        Default: every data variable of ``truth`` with the time dimension.
    u, v : str, optional
        Velocity names (their lag autocorrelation is pooled).

    Returns
    -------
    xarray.Dataset
        attrs ``model`` (the kind), ``reference_definition``; ``climatology_kind`` and
        ``damping_autocorrelation_<group>`` where they apply.

    Raises
    ------
    ParameterError
        Unknown kind, ``train`` missing or unusable.
    MissingDataError
        An init time not in ``truth``; a seasonal climatology without the needed months.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> t = np.datetime64("2020-01-01", "ns") + np.arange(6) * np.timedelta64(1, "h")
    >>> truth = xr.Dataset({"s": (("time", "y", "x"), np.arange(6.)[:, None, None]
    ...                           * np.ones((6, 2, 2)))}, coords={"time": t})
    >>> ref = reference_forecast(truth, "climatology", t[3:5], steps=2, train=truth.isel(time=
    ...                          slice(0, 3)))
    >>> ref.s.dims, float(ref.s.max()), ref.attrs["climatology_kind"]
    (('init_time', 'lead_time', 'y', 'x'), 1.0, 'mean')
    """
    if kind not in REFERENCES:
        raise ParameterError(f"unknown reference {kind!r}; known: {list(REFERENCES)}.",
                             fix=f"pass one of {list(REFERENCES)}")
    if not isinstance(truth, xr.Dataset):
        raise ParameterError(f"truth must be an xarray.Dataset, got {type(truth).__name__}.",
                             fix="pass a Dataset, e.g. da.to_dataset(name='u')")
    tdim = _time_dim(truth, time)
    names = list(variables) if variables is not None else \
        [n for n in truth.data_vars if tdim in truth[n].dims]
    pers = persistence_forecast(truth, init_time, steps=steps, lead_time=lead_time, time=tdim,
                                variables=names)
    if kind == "persistence":
        return pers.assign_attrs(title="persistence forecast", reference_definition=_definition(
            kind))
    if train is None:
        raise ParameterError(f"the {kind!r} reference needs the training period's data.",
                             fix="pass train= the training data (e.g. ds.sel(time=slice(None, "
                                 "'2019'))) or, for 'climatology', a climatology Dataset")
    clim = _climatology_from(train, climatology, tdim, names)
    for n in names:
        clim[n] = _to_units(clim[n], truth[n].attrs.get("units"), n)
    xd, yd = _spatial(truth)
    _check_same_grid(clim, truth, xd, yd, what="train and truth")
    at_valid = _clim_at(clim, pers["valid_time"])[names]
    attrs = {"model": kind, "title": f"{kind.replace('_', ' ')} forecast",
             "climatology_kind": clim.attrs["climatology_kind"],
             "train_period": clim.attrs.get("train_period", "unknown")}
    if kind == "climatology":
        out = at_valid.broadcast_like(pers[names])
        attrs["reference_definition"] = _definition(kind, clim)
    else:
        if not _has_time(train):
            raise ParameterError("damped persistence needs the training data itself (to fit the "
                                 "lag autocorrelation), not a climatology.",
                                 fix="pass train= the training period's Dataset with its time "
                                     "dimension")
        groups = _groups(truth, names, u, v)
        vel = groups.get("velocity", [u, v])
        r = lag_autocorrelation(train[names], pers[_LEAD].values, clim=clim, u=vel[0],
                                v=vel[1])
        at_init = _clim_at(clim, pers[_INIT])[names]
        out = xr.Dataset()
        for g, members in groups.items():
            rg = r[g].reset_coords(drop=True).assign_coords({_LEAD: pers[_LEAD]})
            for n in members:
                out[n] = at_valid[n] + rg * (pers[n] - at_init[n])
            attrs[f"damping_autocorrelation_{g}"] = [float(x) for x in r[g].values]
        attrs["reference_definition"] = _definition(kind, clim, r)
    return _like(out, pers, names, attrs)


def _like(values: xr.Dataset, pers: xr.Dataset, names, attrs) -> xr.Dataset:
    """``pers`` (the layout) with its variables' values replaced by ``values``."""
    out = pers.copy()
    for n in names:
        da = values[n].transpose(*pers[n].dims)
        da = da.drop_vars([c for c in da.coords if c not in pers.coords], errors="ignore")
        out[n] = pers[n].copy(data=np.asarray(da.values, dtype=np.result_type(
            da.dtype, np.float32)))
    out.attrs = attrs
    return out


# ---------------------------------------------------------------------------------------------
# skill with a paired bootstrap
# ---------------------------------------------------------------------------------------------


def _check_inputs(forecast, truth, n_boot, ci):
    """(forecast Dataset, truth Dataset) after type and parameter checks."""
    if isinstance(forecast, xr.DataArray) and isinstance(truth, xr.DataArray):
        rf, rt = as_dataset(forecast), as_dataset(truth)
        forecast = rf.ds.rename({rf.var: rt.var}) if rf.var != rt.var else rf.ds
        truth = rt.ds
    for nm, obj in (("forecast", forecast), ("truth", truth)):
        if not isinstance(obj, xr.Dataset):
            raise ParameterError(f"{nm} must be an xarray.Dataset, got {type(obj).__name__}.",
                                 fix="pass two Datasets, or two DataArrays (one scalar field)")
    for d in (_INIT, _LEAD):
        if d not in forecast.dims:
            raise ParameterError(f"the forecast has no {d!r} dimension (dims "
                                 f"{tuple(forecast.dims)}).",
                                 fix="pass a forecast laid out (init_time, lead_time, y, x), e.g. "
                                     "from xequi.forecast.forecast")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise ParameterError(f"n_boot must be an integer >= 0, got {n_boot!r}.",
                             fix="pass n_boot=1000 (or 0 for the point estimate only)")
    if not (isinstance(ci, (float, int)) and 0 < float(ci) < 1):
        raise ParameterError(f"ci must be a fraction in (0, 1), got {ci!r}.",
                             fix="pass ci=0.95 for a 95 % interval")
    if n_boot > 0 and forecast.sizes[_INIT] < 2:
        raise ParameterError(f"a bootstrap interval over init times needs at least 2 init times; "
                             f"the forecast has {forecast.sizes[_INIT]}.",
                             fix="forecast from several init times (init_time=[...] or a slice), "
                                 "or pass n_boot=0 for the point estimate only")
    return forecast, truth


def _references(reference, truth, forecast, train, clim_kind, tdim, names, u, v):
    """{label: reference Dataset} laid out like the forecast."""
    refs = [reference] if isinstance(reference, (str, xr.Dataset)) else list(reference)
    if not refs:
        raise ParameterError("no reference was given.", fix="pass reference='persistence'")
    out = {}
    for ref in refs:
        if isinstance(ref, xr.Dataset):
            label = str(ref.attrs.get("model", "reference"))
            if _INIT not in ref.dims or _LEAD not in ref.dims or not all(
                    np.array_equal(ref[d].values, forecast[d].values) for d in (_INIT, _LEAD)):
                raise ParameterError(f"the reference Dataset {label!r} does not have the "
                                     f"forecast's init_time and lead_time.",
                                     fix="build it with reference_forecast(truth, kind, "
                                         "forecast.init_time, lead_time=forecast.lead_time)")
            missing = [n for n in names if n not in ref.data_vars]
            if missing:
                raise VariableNotFoundError(f"the reference Dataset {label!r} has no variable(s) "
                                            f"{missing}.", fix="give it the forecast's variables")
            _check_same_grid(ref, truth, *_spatial(truth), what="reference and truth")
            out[label] = ref
        elif isinstance(ref, str) and ref in REFERENCES:
            out[ref] = reference_forecast(truth, ref, forecast[_INIT].values,
                                          lead_time=forecast[_LEAD].values, train=train,
                                          climatology=clim_kind, time=tdim, variables=names,
                                          u=u, v=v)
        else:
            raise ParameterError(f"unknown reference {ref!r}; known: {list(REFERENCES)}.",
                                 fix=f"pass one of {list(REFERENCES)} (or a list of them)")
    return out


def _common_mask(datasets, groups):
    """{variable: bool DataArray of valid cells}: one mask per group, union of all NaNs."""
    masks = {}
    for members in groups.values():
        ok = True
        for ds in datasets:
            for n in members:
                ok = ok & np.isfinite(ds[n])
        for n in members:
            masks[n] = ok
    return masks


def _frame_sse(fc, tr, masks, groups, u, v):
    """{group: (sse (init, lead) ndarray, count (init, lead), units)} pooled like ``rmse``."""
    names = list(masks)
    f = xr.Dataset({n: fc[n].where(masks[n]) for n in names})
    t = xr.Dataset({n: tr[n].where(masks[n]) for n in names})
    vel = groups.get("velocity")
    r = rmse(f, t, u=vel[0] if vel else u, v=vel[1] if vel else v)
    xd, yd = _spatial(tr)
    out = {}
    for g, members in groups.items():
        n_cells = masks[members[0]].sum([xd, yd]).transpose(_INIT, _LEAD)
        mse = (r[g] ** 2).transpose(_INIT, _LEAD)
        sse = np.nan_to_num(np.asarray(mse.values) * np.asarray(n_cells.values))
        out[g] = (sse, np.asarray(n_cells.values, dtype=float), r[g].attrs.get("units"))
    return out


def _bootstrap_counts(n_init: int, n_boot: int, seed) -> np.ndarray:
    """(n_boot, n_init) multiplicities of init times resampled with replacement."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_init, size=(n_boot, n_init))
    counts = np.zeros((n_boot, n_init))
    np.add.at(counts, (np.arange(n_boot)[:, None], idx), 1.0)
    return counts


def _ratio_skill(sse_m, sse_r):
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1.0 - np.sqrt(sse_m / sse_r)


def _score(model, ref, counts, ci):
    """Per lead: rmse model, rmse ref, skill, ci_low, ci_high (ndarrays over lead)."""
    sse_m, n, _ = model
    sse_r = ref[0]
    ntot = n.sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rm = np.sqrt(sse_m.sum(0) / ntot)
        rr = np.sqrt(sse_r.sum(0) / ntot)
    sk = _ratio_skill(sse_m.sum(0), sse_r.sum(0))
    if counts is None:
        lo = hi = np.full_like(sk, np.nan)
    else:
        boot = _ratio_skill(counts @ sse_m, counts @ sse_r)  # (n_boot, n_lead), paired draws
        q = 100 * np.array([(1 - ci) / 2, (1 + ci) / 2])
        lo, hi = np.full_like(sk, np.nan), np.full_like(sk, np.nan)
        good = np.isfinite(boot).any(0)
        if good.any():
            with np.errstate(invalid="ignore"):
                lo[good], hi[good] = np.nanpercentile(boot[:, good], q, axis=0)
    return rm, rr, sk, lo, hi


def skill(forecast: xr.Dataset | xr.DataArray, truth: xr.Dataset | xr.DataArray,
          reference="persistence", train: xr.Dataset | None = None, n_boot: int = 1000,
          ci: float = 0.95, seed=0, climatology: str = "auto", u: str | None = None,
          v: str | None = None, variables: Sequence[str] | None = None,
          time: str | None = None) -> xr.Dataset:
    """Skill ``1 - RMSE_model / RMSE_ref`` per lead time, with a paired bootstrap interval.

    Both RMSEs are taken on exactly the same cells and times: the union of the NaNs of the
    forecast, the truth and every reference is masked in all of them (per variable group; the
    velocity components share one mask). The RMSE is pooled over space and init times like
    :func:`xequi.diagnostics.rmse` (the velocity as ``sqrt(1/2 mean(du^2 + dv^2))``). The interval
    resamples the init times with replacement (the same draws for the model and the reference,
    every lead and every variable), recomputes the RMSE ratio on each draw and takes the
    percentile interval.

    Parameters
    ----------
    forecast : xarray.Dataset or xarray.DataArray
        Dims ``(init_time, lead_time, <y>, <x>)`` (coordinate ``valid_time`` or
        ``init_time + lead_time``), e.g. from :func:`xequi.forecast.forecast`.
    truth : xarray.Dataset or xarray.DataArray
        With a time dimension covering the init and valid times, on the forecast's grid.
    reference : str, xarray.Dataset or list of them, default "persistence"
        Among :data:`REFERENCES`, or a forecast laid out like ``forecast`` (named by its
        ``model`` attr). Several add a ``reference`` dimension.
    train : xarray.Dataset, optional
        The training period (or a climatology), for ``"climatology"`` and
        ``"damped_persistence"``.
    n_boot : int, default 1000
        Bootstrap draws; 0 gives the point estimate only (NaN interval).
    ci : float, default 0.95
        Interval coverage.
    seed : int or numpy Generator seed, default 0
    climatology : {"auto", "mean", "month", "dayofyear"}
        Kind of climatology computed from ``train``.
    u, v : str, optional
        Velocity names.
    variables : sequence of str, optional
        Groups to score: ``"velocity"`` (u and v pooled), single variables (``"u"``, a scalar).
        Default: ``"velocity"`` when a pair is found, plus every other shared variable. Several
        add a ``variable`` dimension.
    time : str, optional
        The truth's time dimension.

    Returns
    -------
    xarray.Dataset
        ``rmse`` (model), ``rmse_reference``, ``skill``, ``ci_low``, ``ci_high`` over
        ``lead_time`` (and ``reference`` / ``variable`` when several); coordinate ``n_cells``;
        attrs ``n_init``, ``n_boot``, ``ci``, ``seed``, ``reference``,
        ``reference_definition``, ``bootstrap``, ``masking``.

    Raises
    ------
    ParameterError
        Bad ``n_boot``, ``ci``, reference; fewer than 2 init times with ``n_boot > 0``.
    MissingDataError
        A valid time is not in the truth.
    GridError, VariableNotFoundError, UnitsError

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> t = np.datetime64("2020-01-01", "ns") + np.arange(8) * np.timedelta64(1, "h")
    >>> rng = np.random.default_rng(0)
    >>> truth = xr.Dataset({n: (("time", "y", "x"), rng.standard_normal((8, 4, 4)),
    ...                         {"units": "m s-1"}) for n in "uv"}, coords={"time": t})
    >>> perfect = reference_forecast(truth, "persistence", t[:5], steps=2)
    >>> perfect[["u", "v"]] = truth[["u", "v"]].sel(time=perfect.valid_time).drop_vars("time")
    >>> s = skill(perfect, truth, n_boot=200)
    >>> s.skill.values.tolist(), s.ci_low.values.tolist(), s.attrs["n_init"]
    ([1.0, 1.0], [1.0, 1.0], 5)
    """
    forecast, truth = _check_inputs(forecast, truth, n_boot, ci)
    tdim = _time_dim(truth, time)
    xd, yd = _spatial(truth)
    _check_same_grid(forecast, truth, xd, yd)
    names = [n for n in truth.data_vars if n in forecast.data_vars
             and {xd, yd} <= set(truth[n].dims)]
    if not names:
        raise VariableNotFoundError(
            f"forecast and truth share no 2-D variable (forecast: "
            f"{sorted(map(str, forecast.data_vars))}, truth: {sorted(map(str, truth.data_vars))}).",
            fix="give the forecast the truth's variable names")
    extra = set(forecast[names].dims) - {_INIT, _LEAD, xd, yd}
    if extra:
        raise ParameterError(f"the forecast has dims {sorted(extra)} besides init_time, "
                             f"lead_time and the grid.",
                             fix="select or average them first, e.g. forecast.mean('member')")
    groups = _select_groups(_groups(truth, names, u, v), variables)
    refs = _references(reference, truth, forecast, train, climatology, tdim, names, u, v)
    tr = _align_truth(forecast, truth, tdim, _INIT, _LEAD, names)
    fc = forecast[names].drop_vars(["valid_time"], errors="ignore")
    refs_al = {k: r[names].drop_vars(["valid_time"], errors="ignore") for k, r in refs.items()}
    used = sorted({n for m in groups.values() for n in m}, key=names.index)
    masks = _common_mask([fc, tr, *refs_al.values()], groups)
    masks = {n: masks[n] for n in used}
    model = _frame_sse(fc, tr, masks, groups, u, v)
    ref_sse = {k: _frame_sse(r, tr, masks, groups, u, v) for k, r in refs_al.items()}
    n_init = forecast.sizes[_INIT]
    counts = _bootstrap_counts(n_init, n_boot, seed) if n_boot > 0 else None
    out = _assemble(model, ref_sse, counts, ci, groups, forecast[_LEAD])
    out.attrs = {**out.attrs, "title": "forecast skill against reference forecasts",
                 "skill": "1 - RMSE_model / RMSE_reference per lead time",
                 "n_init": int(n_init), "n_boot": int(n_boot), "ci": float(ci),
                 "seed": str(seed), "reference": ", ".join(refs),
                 "reference_definition": " | ".join(
                     r.attrs.get("reference_definition", f"{k}: given by the caller")
                     for k, r in refs.items()),
                 "bootstrap": "paired: init times resampled with replacement, the same draws "
                              "for model and reference (every lead and variable); percentile "
                              "interval of the skill over the draws",
                 "masking": "scored on the same cells and times: the union of the NaNs of "
                            "forecast, truth and every reference is masked in all"}
    if "model" in forecast.attrs:
        out.attrs["model"] = str(forecast.attrs["model"])
    return out


def _select_groups(groups, variables):
    if variables is None:
        return groups
    variables = [variables] if isinstance(variables, str) else list(variables)
    members = {n for m in groups.values() for n in m}
    out = {}
    for name in variables:
        if name in groups:
            out[name] = groups[name]
        elif name in members:
            out[name] = [name]
        else:
            raise VariableNotFoundError(f"cannot score {name!r}: the variables are "
                                        f"{sorted(groups) + sorted(members - set(groups))}.",
                                        fix="pass variables= among those names")
    if not out:
        raise ParameterError("variables= is empty.", fix="pass e.g. variables=['velocity']")
    return out


def _assemble(model, ref_sse, counts, ci, groups, lead):
    keys = ("rmse", "rmse_reference", "skill", "ci_low", "ci_high")
    per_var = []
    for g in groups:
        per_ref = []
        for label, rs in ref_sse.items():
            vals = _score(model[g], rs[g], counts, ci)
            per_ref.append(xr.Dataset({k: (_LEAD, val) for k, val in zip(keys, vals)},
                                      coords={_LEAD: lead}))
        ds = per_ref[0] if len(per_ref) == 1 else xr.concat(
            per_ref, dim=xr.DataArray(list(ref_sse), dims="reference", name="reference"))
        ds = ds.assign_coords(n_cells=(_LEAD, model[g][1].sum(0).astype(int)))
        units = model[g][2]
        for k in ("rmse", "rmse_reference"):
            ds[k].attrs = {"long_name": f"RMSE of {g}" + (" (reference)" if "ref" in k else ""),
                           **({"units": units} if units else {})}
        for k in ("skill", "ci_low", "ci_high"):
            ds[k].attrs = {"long_name": {"skill": "skill score 1 - RMSE/RMSE_ref",
                                         "ci_low": "bootstrap interval, lower bound",
                                         "ci_high": "bootstrap interval, upper bound"}[k],
                           "units": "1"}
        per_var.append(ds)
    if len(per_var) == 1:
        out = per_var[0]
        out.attrs["variable"] = next(iter(groups))
    else:
        out = xr.concat(per_var, dim=xr.DataArray(list(groups), dims="variable", name="variable"),
                        combine_attrs="override")
    out[_LEAD].attrs = dict(lead.attrs)
    return out


# ---------------------------------------------------------------------------------------------
# the plain-language report
# ---------------------------------------------------------------------------------------------


def _lead_text(lead, attrs) -> str:
    if isinstance(lead, np.timedelta64) or np.issubdtype(np.asarray(lead).dtype, np.timedelta64):
        s = float(np.asarray(lead).astype("timedelta64[ns]").astype(np.int64)) / 1e9
        for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
            if s >= size and abs(s / size - round(s / size)) < 1e-9:
                n = int(round(s / size))
                return f"{n} {unit}{'s' if n != 1 else ''}"
        return f"{s / 3600:.3g} hours"
    u = attrs.get("units")
    return f"{float(lead):g}" + (f" {u}" if u and u != "1" else "")


def _verdict(sk, lo, hi, ref) -> str:
    if not np.isfinite(sk):
        return f"— no skill defined (reference {ref} has zero error or no valid cells)"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "— not judged (no interval: n_boot=0 or one init time)"
    if lo > 0:
        return f"— beats {ref}"
    if hi < 0:
        return f"— loses to {ref}"
    return f"— does not beat {ref} (interval includes 0)"


def skill_report(result: xr.Dataset, digits: int = 2) -> str:
    """One plain line per lead (and reference / variable) of a :func:`skill` result.

    ``"lead 1 day: skill 0.21 [0.14, 0.30] vs persistence — beats persistence"``; the verdict is
    *beats* when the whole interval is above 0, *loses to* when it is below 0, and *does not
    beat ... (interval includes 0)* otherwise.

    Parameters
    ----------
    result : xarray.Dataset
        Output of :func:`skill`.
    digits : int, default 2

    Returns
    -------
    str

    Raises
    ------
    ParameterError
        ``result`` is not a :func:`skill` result.

    Examples
    --------
    >>> import xarray as xr, numpy as np
    >>> r = xr.Dataset({"skill": ("lead_time", [0.21, -0.3]), "ci_low": ("lead_time", [0.14, -0.5]),
    ...                 "ci_high": ("lead_time", [0.30, -0.1])},
    ...                coords={"lead_time": np.array([1, 2], "timedelta64[D]")},
    ...                attrs={"reference": "persistence"})
    >>> print(skill_report(r))
    lead 1 day: skill 0.21 [0.14, 0.30] vs persistence — beats persistence
    lead 2 days: skill -0.30 [-0.50, -0.10] vs persistence — loses to persistence
    """
    if not isinstance(result, xr.Dataset) or not {"skill", "ci_low", "ci_high"} <= set(
            result.data_vars) or _LEAD not in result.dims:
        raise ParameterError("result is not a skill() result (needs skill, ci_low, ci_high over "
                             "lead_time).", fix="pass the Dataset returned by xequi.skill.skill")
    refs = [str(r) for r in result["reference"].values] if "reference" in result.dims else \
        [str(result.attrs.get("reference", "the reference"))]
    variables = [str(x) for x in result["variable"].values] if "variable" in result.dims \
        else [None]
    lines = []
    f = f"{{:.{int(digits)}f}}"
    for var in variables:
        for ref in refs:
            sel = {}
            if var is not None:
                sel["variable"] = var
            if "reference" in result.dims:
                sel["reference"] = ref
            r = result.sel(sel)
            for i in range(r.sizes[_LEAD]):
                sk, lo, hi = (float(r[k].values[i]) for k in ("skill", "ci_low", "ci_high"))
                head = (f"{var}, " if var is not None else "") + \
                    f"lead {_lead_text(r[_LEAD].values[i], r[_LEAD].attrs)}"
                lines.append(f"{head}: skill {f.format(sk)} [{f.format(lo)}, {f.format(hi)}] "
                             f"vs {ref} {_verdict(sk, lo, hi, ref)}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# spectra: effective resolution and the band-limited spectrum error
# ---------------------------------------------------------------------------------------------


def _aligned_spectra(forecast, truth, u, v, time):
    """(E_forecast, E_truth, grid) over (init_time, lead_time, wavenumber), grid length units."""
    forecast, truth = _check_inputs(forecast, truth, 0, 0.5)
    tdim = _time_dim(truth, time)
    xd, yd = _spatial(truth)
    _check_same_grid(forecast, truth, xd, yd)
    un, vn = find_velocity(truth, u=u, v=v)
    for n in (un, vn):
        if n not in forecast.data_vars:
            raise VariableNotFoundError(f"the forecast has no velocity variable {n!r}.",
                                        fix="give the forecast the truth's velocity names")
    tr = _align_truth(forecast, truth, tdim, _INIT, _LEAD, [un, vn])
    fc = forecast[[un, vn]].drop_vars(["valid_time"], errors="ignore")
    ok = np.isfinite(fc[un]) & np.isfinite(fc[vn]) & np.isfinite(tr[un]) & np.isfinite(tr[vn])
    kw = {"u": un, "v": vn, "length_units": None}
    ef, et = spectrum(fc.where(ok), **kw), spectrum(tr.where(ok), **kw)
    return ef, et, _spatial_grid(truth, xd, yd)


def effective_resolution(forecast: xr.Dataset, truth: xr.Dataset, factor: float = 2.0,
                         u: str | None = None, v: str | None = None,
                         time: str | None = None) -> xr.DataArray:
    """Smallest wavelength down to which the forecast's KE spectrum stays within ``factor``.

    Per lead time, the kinetic-energy spectra (:func:`xequi.diagnostics.spectrum`, on the cells
    valid in both) of forecast and truth are averaged over init times; going from the largest
    scale (shell 1) toward the grid's Nyquist wavenumber (the last shell wholly inside it,
    :func:`xequi.diagnostics.resolved_k_max`), every shell with
    ``1/factor <= E_forecast / E_truth <= factor`` (or both 0) counts as resolved, and the
    effective resolution is the wavelength ``1 / k`` of the last shell before the first one
    outside. A forecast as sharp as the truth reaches about the Nyquist wavelength (2 cells); NaN when
    even shell 1 is outside.

    Parameters
    ----------
    forecast : xarray.Dataset
        Velocity forecast ``(init_time, lead_time, <y>, <x>)``.
    truth : xarray.Dataset
        With a time dimension, on the same grid.
    factor : float, default 2.0
        Allowed energy ratio (> 1).
    u, v, time : str, optional

    Returns
    -------
    xarray.DataArray
        Named ``"effective_resolution"`` over ``lead_time``, in the grid's length units;
        coordinate ``n_cells`` (the wavelength in grid cells); attrs ``grid_cell_size`` (the
        larger of dx, dy), ``factor``, ``band``, ``band_end_cells`` (the wavelength in cells of
        the band's last shell: what the truth itself, a perfect forecast, reads).

    Raises
    ------
    ParameterError
        ``factor <= 1``; forecast without init/lead dims.
    MissingDataError, GridError, VariableNotFoundError

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> t = np.datetime64("2020-01-01", "ns") + np.arange(5) * np.timedelta64(1, "h")
    >>> x = {"x": ("x", np.arange(16) * 10.0, {"units": "km"}),
    ...      "y": ("y", np.arange(16) * 10.0, {"units": "km"})}
    >>> rng = np.random.default_rng(0)
    >>> truth = xr.Dataset({n: (("time", "y", "x"), rng.standard_normal((5, 16, 16)),
    ...                         {"units": "m s-1"}) for n in "uv"}, coords={"time": t, **x})
    >>> fc = reference_forecast(truth, "persistence", t[:3], steps=2)
    >>> fc[["u", "v"]] = truth[["u", "v"]].sel(time=fc.valid_time).drop_vars("time")
    >>> er = effective_resolution(fc, truth)
    >>> er.values.round(2).tolist(), er.attrs["units"], er.n_cells.values.round(2).tolist()
    ([22.86, 22.86], 'km', [2.29, 2.29])
    """
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not factor > 1:
        raise ParameterError(f"factor must be a number > 1, got {factor!r}.",
                             fix="pass factor=2.0 (within a factor 2 of the truth's energy)")
    ef, et, grid = _aligned_spectra(forecast, truth, u, v, time)
    dims = [d for d in ef.dims if d not in (_LEAD, "wavenumber")]
    mf = ef.mean(dims).transpose(_LEAD, "wavenumber")
    mt = et.mean(dims).transpose(_LEAD, "wavenumber")
    k = ef["wavenumber"].values
    nyq = resolved_k_max(et)
    band = (k > 0) & (k <= nyq * (1 + 1e-9))
    a, b = np.asarray(mf.values)[:, band], np.asarray(mt.values)[:, band]
    tiny = 1e-12 * np.nanmax(np.abs(b), axis=1, keepdims=True)
    zero = (np.abs(a) <= tiny) & (np.abs(b) <= tiny)
    ok = zero | ((a <= factor * b) & (b <= factor * a))
    kb = k[band]
    first_bad = np.where(ok.all(1), ok.shape[1], np.argmin(ok, axis=1))
    lam = np.where(first_bad > 0, 1.0 / kb[np.maximum(first_bad - 1, 0)], np.nan)
    lu = _cf_units(grid.dx.units)
    cell = max(float(grid.dx.magnitude), float(grid.dy.to(grid.dx.units).magnitude))
    out = xr.DataArray(lam, dims=_LEAD, coords={_LEAD: forecast[_LEAD]},
                       name="effective_resolution")
    out = out.assign_coords(n_cells=(_LEAD, lam / cell, {"long_name": "wavelength in grid cells",
                                                         "units": "1"}))
    out.attrs = {"long_name": f"effective resolution: smallest wavelength down to which the "
                              f"KE spectrum stays within a factor {factor:g} of the truth's",
                 "units": lu, "grid_cell_size": cell, "grid_cell_size_units": lu,
                 "factor": float(factor),
                 # what a perfect forecast reads: the last shell of the resolved band
                 "band_end_cells": float(1.0 / kb[-1] / cell),
                 "band": f"wavenumbers {kb[0]:.6g} .. {nyq:.6g} {_cf_units(grid.dx.units ** -1)} "
                         f"(cycles per unit length; shell 0 skipped, shells wholly inside Nyquist = 2 cells)",
                 "comment": "spectra averaged over init times per lead; NaN: even the largest "
                            "resolved scale is off by more than the factor"}
    return out


def band_spectrum_error(forecast: xr.Dataset, truth: xr.Dataset, k_min: float | None = None,
                        k_max: float | None = None, u: str | None = None, v: str | None = None,
                        time: str | None = None) -> xr.DataArray:
    """Kinetic-energy spectrum error (RMSE of log10 E(k)) over a stated band, per lead time.

    The default band is the resolved one: from the first shell above 0 (the domain scale) to the
    last shell wholly inside the grid's Nyquist wavenumber
    (:func:`xequi.diagnostics.resolved_k_max`), which is what
    :func:`xequi.diagnostics.spectrum_error` compares
    by default. The error is computed per init time on the cells valid in both and averaged over
    init times.

    Parameters
    ----------
    forecast : xarray.Dataset
        Velocity forecast ``(init_time, lead_time, <y>, <x>)``.
    truth : xarray.Dataset
    k_min, k_max : float, optional
        Band limits in the grid's cycles per length unit (default: first shell, the last shell inside Nyquist).
    u, v, time : str, optional

    Returns
    -------
    xarray.DataArray
        Decades (units ``"1"``) over ``lead_time``, named ``"spectrum_error"``; attrs ``band``,
        ``wavelength_band``.

    Raises
    ------
    ParameterError
        An empty band.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> t = np.datetime64("2020-01-01", "ns") + np.arange(4) * np.timedelta64(1, "h")
    >>> rng = np.random.default_rng(1)
    >>> truth = xr.Dataset({n: (("time", "y", "x"), rng.standard_normal((4, 8, 8)))
    ...                     for n in "uv"}, coords={"time": t})
    >>> fc = reference_forecast(truth, "persistence", t[:2], steps=2)
    >>> fc[["u", "v"]] = 10 * truth[["u", "v"]].sel(time=fc.valid_time).drop_vars("time")
    >>> e = band_spectrum_error(fc, truth)
    >>> e.values.round(6).tolist(), e.attrs["band"].split(" (")[0]
    ([2.0, 2.0], 'wavenumbers 0.125 .. 0.375 1')
    """
    ef, et, grid = _aligned_spectra(forecast, truth, u, v, time)
    k = ef["wavenumber"].values
    lo = float(k[1]) if k_min is None else float(k_min)
    hi = resolved_k_max(et) if k_max is None else float(k_max)
    keep = (k > 0) & (k >= lo * (1 - 1e-9)) & (k <= hi * (1 + 1e-9))
    if not keep.any():
        raise ParameterError(f"the band [{lo:g}, {hi:g}] holds no wavenumber shell (shells at "
                             f"{k[1]:g} .. {k[-1]:g}).",
                             fix="widen the band, or leave k_min/k_max at their defaults")
    err = log_spectrum_rmse(ef.isel(wavenumber=keep), et.isel(wavenumber=keep), drop_zero=True)
    dims = [d for d in err.dims if d != _LEAD]
    out = err.mean(dims).rename("spectrum_error")
    ku = _cf_units(grid.dx.units ** -1)
    kk = k[keep]
    out.attrs = {"long_name": "RMSE of log10 kinetic-energy spectra over the band", "units": "1",
                 "band": f"wavenumbers {kk[0]:.6g} .. {kk[-1]:.6g} {ku} (cycles per unit length)",
                 "wavelength_band": f"{1 / kk[-1]:.6g} .. {1 / kk[0]:.6g} "
                                    f"{_cf_units(grid.dx.units)}",
                 "comment": "per init time on the cells valid in both, then averaged over "
                            "init times"}
    return out


# ---------------------------------------------------------------------------------------------
# error at the walls
# ---------------------------------------------------------------------------------------------


def wall_error_ratio(forecast: xr.Dataset, truth: xr.Dataset, width: int = 1, dim: str | None = None,
                     u: str | None = None, v: str | None = None,
                     time: str | None = None) -> xr.DataArray:
    """Velocity RMSE in the ``width`` outermost rows at both walls over that of the interior.

    Per lead time, pooled over init times: the RMSE of the velocity vector
    (``sqrt(1/2 mean(du^2 + dv^2))``) over the first and last ``width`` rows along ``dim`` (the
    walls of a channel or convection cell) divided by the RMSE over every other row, on the
    cells valid in forecast and truth. 1 means no extra error at the walls; a model whose
    padding or windows mishandle the boundary reads well above 1.

    Parameters
    ----------
    forecast : xarray.Dataset
        Velocity forecast ``(init_time, lead_time, <y>, <x>)``.
    truth : xarray.Dataset
        With a time dimension, on the same grid.
    width : int, default 1
        Rows counted as wall rows at each side.
    dim : str, optional
        The wall-normal dimension (default: the y dimension).
    u, v, time : str, optional

    Returns
    -------
    xarray.DataArray
        Named ``"wall_error_ratio"`` over ``lead_time`` (units ``"1"``); attrs ``wall_rows``,
        ``dim``.

    Raises
    ------
    ParameterError
        ``width`` < 1 or too large to leave an interior; forecast without init/lead dims.
    MissingDataError, GridError, VariableNotFoundError

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> t = np.datetime64("2020-01-01", "ns") + np.arange(4) * np.timedelta64(1, "h")
    >>> rng = np.random.default_rng(0)
    >>> truth = xr.Dataset({n: (("time", "y", "x"), rng.standard_normal((4, 8, 8)))
    ...                     for n in "uv"}, coords={"time": t})
    >>> fc = reference_forecast(truth, "persistence", t[:2], steps=2)
    >>> err = xr.zeros_like(fc.u).where(fc.y.isin([0, 7]), 0.1).where(~fc.y.isin([0, 7]), 0.3)
    >>> fc[["u", "v"]] = truth[["u", "v"]].sel(time=fc.valid_time).drop_vars("time") + err
    >>> wall_error_ratio(fc, truth).values.round(6).tolist()
    [3.0, 3.0]
    """
    forecast, truth = _check_inputs(forecast, truth, 0, 0.5)
    tdim = _time_dim(truth, time)
    xd, yd = _spatial(truth)
    dim = yd if dim is None else dim
    n = truth.sizes.get(dim, 0)
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1 \
            or 2 * width >= n:
        raise ParameterError(f"width must be an integer >= 1 leaving interior rows along "
                             f"{dim!r} ({n} rows), got {width!r}.", fix="pass width=1")
    un, vn = find_velocity(truth, u=u, v=v)
    tr = _align_truth(forecast, truth, tdim, _INIT, _LEAD, [un, vn])
    se = (forecast[un] - tr[un]) ** 2 + (forecast[vn] - tr[vn]) ** 2
    wall = xr.DataArray(np.isin(np.arange(n), np.r_[:width, n - width:n]), dims=dim)
    other = [d for d in se.dims if d != _LEAD]
    ratio = np.sqrt(se.where(wall).mean(other) / se.where(~wall).mean(other))
    return ratio.rename("wall_error_ratio").assign_attrs(
        long_name="velocity RMSE in the wall rows / RMSE in the interior", units="1",
        wall_rows=f"{width} row(s) at each end of {dim!r}", dim=dim)
