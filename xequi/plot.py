"""Figures of forecasts and diagnostics: fields, energy spectra, metrics over lead time.

Every function returns a :class:`matplotlib.figure.Figure` built directly (not through pyplot),
so nothing changes the matplotlib backend or the notebook's state; ``save=path`` writes a PNG
(the Agg renderer is used for the file whatever the interactive backend). In Jupyter the returned
figure displays itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import xarray as xr

from xequi.errors import ParameterError, VariableNotFoundError

__all__ = ["fields", "spectra", "metrics"]


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _figure(nrows: int, ncols: int, width: float, height: float):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols + 1.0, height * nrows), layout="constrained")
    axes = np.atleast_2d(fig.subplots(nrows, ncols, squeeze=False))
    return fig, axes


def _save(fig, save):
    if save is not None:
        path = Path(save)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png", dpi=100)
    return fig


def _fmt_lead(value, units: str | None = None) -> str:
    v = np.asarray(value)
    if np.issubdtype(v.dtype, np.timedelta64):
        hours = float(v / np.timedelta64(1, "h"))
        if abs(hours) >= 48 and float(hours / 24).is_integer():
            return f"{hours / 24:g} d"
        if hours.is_integer() or abs(hours) >= 1:
            return f"{hours:g} h"
        return f"{float(v / np.timedelta64(1, 's')):g} s"
    # a dimensionless lead ("1") needs no unit after the number
    return f"{float(v):g} {units}".strip() if units and units != "1" else f"{float(v):g}"


def _lead_axis(lead: xr.DataArray):
    """Numbers for a lead-time axis and its label with units."""
    v = np.asarray(lead.values)
    if np.issubdtype(v.dtype, np.timedelta64):
        hours = v / np.timedelta64(1, "h")
        if np.nanmax(np.abs(hours)) >= 96:
            return hours / 24.0, "lead time [days]"
        return hours, "lead time [hours]"
    units = lead.attrs.get("units")
    return v.astype(float), f"lead time [{units}]" if units else "lead time [time steps]"


def _coord_label(obj, dim) -> str:
    c = obj[dim] if dim in obj.coords else None
    units = c.attrs.get("units") if c is not None else None
    return f"{dim} [{units}]" if units else f"{dim} [grid index]"


def _pick_leads(lead: xr.DataArray, lead_times, max_default: int = 4) -> list[int]:
    n = lead.size
    if lead_times is None:
        k = min(n, max_default)
        return sorted(set(np.linspace(0, n - 1, k).round().astype(int).tolist()))
    vals = np.atleast_1d(np.asarray(getattr(lead_times, "values", lead_times)))
    out = []
    is_td = np.issubdtype(lead.dtype, np.timedelta64)
    positions = is_td and vals.dtype.kind in "iu"  # np.timedelta64 is an np.integer subclass
    for val in vals:
        if positions:
            if not -n <= int(val) < n:
                raise ParameterError(f"lead time index {int(val)} out of range (0..{n - 1}).",
                                     fix="pass positions 0..n-1 or lead-time values")
            out.append(int(val) % n)
            continue
        try:
            target = np.asarray(val).astype(lead.dtype) if is_td else val
        except (TypeError, ValueError):
            target = val
        hits = np.nonzero(np.asarray(lead.values) == target)[0]
        if not hits.size:
            raise ParameterError(f"lead time {val!r} is not in the lead_time coordinate "
                                 f"({[_fmt_lead(x, lead.attrs.get('units')) for x in lead.values]})"
                                 ".",
                                 fix="pass lead-time values present in the forecast, or positions")
        out.append(int(hits[0]))
    return out


def _vorticity(ds, un, vn):
    """Relative vorticity dv/dx - du/dy with the metric spacing of the grid."""
    from xequi.diagnostics import _cf, _spatial_grid, _units_of
    from xequi.units import registry

    g = _spatial_grid(ds)
    xd, yd = g.axes.x, g.axes.y
    ureg = registry()
    dimless = g.dx.dimensionality == ureg.Quantity(1, "1").dimensionality
    lu = g.dx.units if dimless else ureg.Unit("m")
    dx = float(g.dx.to(lu).magnitude) * (1 if g.x_ascending else -1)
    dy = float(g.dy.to(lu).magnitude) * (1 if g.y_ascending else -1)
    u, v = ds[un], ds[vn]
    grad_x = xr.apply_ufunc(np.gradient, v, input_core_dims=[[xd]], output_core_dims=[[xd]],
                            kwargs={"axis": -1})
    if g.is_latlon and g.dx_per_y is not None:  # metric dx = R cos(lat) dlon at each latitude
        dvdx = grad_x / (xr.DataArray(g.dx_per_y.values, dims=(yd,)) * np.sign(dx))
    else:
        dvdx = grad_x / dx
    dudy = xr.apply_ufunc(np.gradient, u, input_core_dims=[[yd]], output_core_dims=[[yd]],
                          kwargs={"axis": -1}) / dy
    z = (dvdx - dudy).transpose(*u.dims)
    uu = _units_of(u)
    units = _cf(uu / lu) if uu is not None else None
    z.attrs = {"long_name": "relative vorticity", **({"units": units} if units else {})}
    return z.rename("vorticity")


def _variable(ds, variable, u=None, v=None):
    from xequi.fields import find_velocity

    if variable in ("speed", "vorticity", "u", "v"):
        try:
            un, vn = find_velocity(ds, u=u, v=v)
        except Exception:
            if variable in ("u", "v") and variable in ds:
                return ds[variable]
            raise
        if variable == "u":
            return ds[un]
        if variable == "v":
            return ds[vn]
        if variable == "speed":
            s = np.hypot(ds[un], ds[vn])
            s.attrs = {"long_name": "speed", **({"units": ds[un].attrs["units"]}
                                                if "units" in ds[un].attrs else {})}
            return s.rename("speed")
        return _vorticity(ds, un, vn)
    if variable not in ds.data_vars:
        raise VariableNotFoundError(f"variable {variable!r} is not in the dataset "
                                    f"(variables: {sorted(map(str, ds.data_vars))}).",
                                    fix="pass variable='speed', 'u', 'v', 'vorticity' or a name")
    return ds[variable]


# ---------------------------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------------------------


def fields(truth: xr.Dataset, forecast: xr.Dataset, lead_times=None, variable: str = "speed",
           init_time=None, u: str | None = None, v: str | None = None, cmap: str | None = None,
           save: str | Path | None = None):
    """Maps of truth, forecast and error for chosen lead times (rows) of one initialization.

    Parameters
    ----------
    truth : xarray.Dataset
        With a time dimension covering the forecast's valid times.
    forecast : xarray.Dataset
        Dims ``(init_time, lead_time, <y>, <x>)`` with ``valid_time`` (or ``init_time +
        lead_time``).
    lead_times : sequence, optional
        Lead-time values (timedelta or numbers as in the coordinate) or, for a timedelta
        coordinate, integer positions. Default: up to 4 evenly spaced.
    variable : {"speed", "u", "v", "vorticity"} or a variable name
    init_time : optional
        The initialization to show (default the first).
    u, v : str, optional
        Velocity names.
    cmap : str, optional
        Colour map of truth/forecast (default ``viridis`` for speed, ``RdBu_r`` otherwise); the
        error row uses ``RdBu_r`` with symmetric limits.
    save : path, optional
        Write a PNG.

    Returns
    -------
    matplotlib.figure.Figure
        Rows truth / forecast / error, one column per lead time; truth and forecast share colour
        limits; land (NaN) in grey.

    Raises
    ------
    ParameterError
        Unknown lead time or init time, forecast without ``lead_time``/``init_time``.
    MissingDataError
        A valid time missing from the truth.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from xequi.diagnostics import persistence_forecast
    >>> t = np.datetime64("2020-01-01", "ns") + np.arange(4) * np.timedelta64(1, "h")
    >>> truth = xr.Dataset({n: (("time", "y", "x"), np.random.rand(4, 5, 6), {"units": "m s-1"})
    ...                     for n in "uv"}, coords={"time": t})
    >>> fig = fields(truth, persistence_forecast(truth, t[0], steps=2))
    >>> len(fig.axes) > 3
    True
    """
    from xequi.diagnostics import _spatial

    fc, idx = _one_init(forecast, init_time, lead_times)
    ft, ff = _truth_and_forecast(truth, fc, variable, u, v)
    err = ff - ft
    xd, yd = _spatial(ft)
    units = ft.attrs.get("units", "")
    name = ft.attrs.get("long_name", variable) if variable in ("speed", "vorticity") else variable
    vmin, vmax, cm, em = _colour_limits(ft, ff, err, variable, cmap)
    ncol = len(idx)
    fig, axes = _figure(3, ncol, 3.2, 2.8)
    xs = ft[xd].values if xd in ft.coords else np.arange(ft.sizes[xd])
    ys = ft[yd].values if yd in ft.coords else np.arange(ft.sizes[yd])
    lead_units = forecast.lead_time.attrs.get("units")
    init_val = np.asarray(fc.init_time.values[0])
    init_lbl = f"{float(init_val):.6g}" if np.issubdtype(init_val.dtype, np.number) \
        else str(init_val)[:19]
    rows = (("truth", ft, vmin, vmax, cm), ("forecast", ff, vmin, vmax, cm),
            ("error", err, -em, em, "RdBu_r"))
    for r, (label, data, lo, hi, cmap_r) in enumerate(rows):
        mappable = None
        for c in range(ncol):
            ax = axes[r, c]
            ax.set_facecolor("0.7")  # land / NaN
            arr = np.ma.masked_invalid(np.asarray(data.isel(lead_time=c).transpose(yd, xd)))
            mappable = ax.pcolormesh(xs, ys, arr, vmin=lo, vmax=hi, cmap=cmap_r, shading="auto")
            lead = _fmt_lead(fc.lead_time.values[c], lead_units)
            ax.set_title(f"{label}, lead {lead}", fontsize=9)
            ax.set_xlabel(_coord_label(ft, xd), fontsize=8)
            if c == 0:
                ax.set_ylabel(_coord_label(ft, yd), fontsize=8)
            ax.tick_params(labelsize=7)
        cb_label = f"{name} [{units}]" if units else f"{name} [1]"
        if label == "error":
            cb_label = f"{name} error (forecast - truth) [{units or '1'}]"
        cb = fig.colorbar(mappable, ax=list(axes[r, :]), shrink=0.9)
        cb.set_label(cb_label, fontsize=8)
    fig.suptitle(f"{name}: init {init_lbl}", fontsize=10)
    return _save(fig, save)


def _one_init(forecast: xr.Dataset, init_time, lead_times):
    """The forecast at one initialization (default the first) and the chosen lead times, and
    those lead times' positions."""
    for d in ("init_time", "lead_time"):
        if d not in forecast.dims:
            raise ParameterError(f"the forecast has no {d!r} dimension (dims "
                                 f"{tuple(forecast.dims)}).",
                                 fix="pass a forecast with dims (init_time, lead_time, y, x)")
    if init_time is None:
        fc = forecast.isel(init_time=[0])
    else:
        it = np.atleast_1d(np.asarray(init_time)).astype(forecast.init_time.dtype)
        if not np.isin(it, forecast.init_time.values).all():
            raise ParameterError(f"init_time {init_time!r} is not in the forecast.",
                                 fix="pass one of forecast.init_time.values")
        fc = forecast.sel(init_time=it[:1])
    idx = _pick_leads(fc.lead_time, lead_times)
    return fc.isel(lead_time=idx), idx


def _truth_and_forecast(truth: xr.Dataset, fc: xr.Dataset, variable: str, u, v):
    """The plotted variable of the truth at the forecast's valid times, and of the forecast."""
    from xequi.diagnostics import _align_truth, _time_dim

    tdim = _time_dim(truth, None)
    names = [n for n in truth.data_vars if n in fc.data_vars]
    tr = _align_truth(fc, truth, tdim, "init_time", "lead_time", names)
    fcv = fc[names].drop_vars([c for c in fc.coords if c == "valid_time"])
    return (_variable(tr, variable, u, v).isel(init_time=0),
            _variable(fcv, variable, u, v).isel(init_time=0))


def _colour_limits(ft, ff, err, variable: str, cmap):
    """``(vmin, vmax, cmap)`` shared by truth and forecast, and the symmetric error limit."""
    both = np.concatenate([np.asarray(ft).ravel(), np.asarray(ff).ravel()])
    both = both[np.isfinite(both)]
    if variable == "speed":
        vmin, vmax = 0.0, float(both.max()) if both.size else 1.0
        cm = cmap or "viridis"
    else:
        m = float(np.abs(both).max()) if both.size else 1.0
        vmin, vmax, cm = -m, m, cmap or "RdBu_r"
    e = np.asarray(err)
    em = float(np.nanmax(np.abs(e))) if np.isfinite(e).any() else 1.0
    em = em if em > 0 else 1.0
    return vmin, vmax, cm, em


def _as_dict(obj, what: str) -> dict:
    if isinstance(obj, Mapping):
        d = dict(obj)
    elif isinstance(obj, xr.Dataset):
        d = {str(k): obj[k] for k in obj.data_vars}
    elif isinstance(obj, xr.DataArray):
        d = {str(obj.name or what): obj}
    else:
        raise ParameterError(f"{what} must be a dict of xarray objects, a Dataset or a DataArray, "
                             f"got {type(obj).__name__}.",
                             fix="pass e.g. {'truth': E_t, 'model': E_f}")
    if not d:
        raise ParameterError(f"no {what} given.", fix="pass at least one")
    return d


def spectra(spectra, lead_times=None, save: str | Path | None = None, dim: str = "wavenumber"):
    """Log-log spectra per lead time: truth against one or several forecasts.

    Parameters
    ----------
    spectra : dict of name -> DataArray, or Dataset of spectra
        Outputs of :func:`xequi.diagnostics.spectrum` (or :func:`~xequi.diagnostics.tke_spectrum`).
        Dims other than ``lead_time`` and ``wavenumber`` (``init_time``, ``time``...) are averaged;
        a spectrum without ``lead_time`` (e.g. the truth's climatological spectrum) is drawn in
        every panel. An entry named ``"truth"`` is drawn in black.
    lead_times : sequence, optional
        Lead-time values or positions (default up to 4).
    save : path, optional
    dim : str
        Wavenumber dimension.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per lead time; wavenumber 0 and non-positive values left out; axis labels with
        units and the wavenumber convention.

    Raises
    ------
    ParameterError
        Empty input or unknown lead times.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> k = xr.DataArray(np.arange(6.), dims="wavenumber", attrs={"units": "m-1"})
    >>> E = xr.DataArray(np.r_[1, 1 / np.arange(1, 6.) ** 3], dims="wavenumber",
    ...                  coords={"wavenumber": k}, attrs={"units": "m2 s-2"})
    >>> fig = spectra({"truth": E, "model": 1.1 * E})
    >>> fig.axes[0].get_xscale()
    'log'
    """
    d = _as_dict(spectra, "spectra")
    lead = next((s["lead_time"] for s in d.values() if "lead_time" in s.dims), None)
    if lead is not None:
        idx = _pick_leads(lead, lead_times)
        leads = lead.values[idx]
    else:
        leads = [None]
    ref = next(iter(d.values()))
    kunits = ref[dim].attrs.get("units", "1") if dim in ref.coords else "1"
    conv = ref[dim].attrs.get("convention", "") if dim in ref.coords else ""
    eunits = next((s.attrs["units"] for s in d.values() if "units" in s.attrs), "1")
    fig, axes = _figure(1, len(leads), 3.6, 3.2)
    for c, lv in enumerate(leads):
        ax = axes[0, c]
        for name, s in d.items():
            if dim not in s.dims:
                raise ParameterError(f"spectrum {name!r} has no {dim!r} dimension.",
                                     fix="pass outputs of xequi.diagnostics.spectrum")
            if lv is not None and "lead_time" in s.dims:
                s = s.sel(lead_time=lv)
            s = s.mean([x for x in s.dims if x != dim])
            k = s[dim].values if dim in s.coords else np.arange(s.sizes[dim])
            y = np.asarray(s.values)
            ok = (k > 0) & np.isfinite(y) & (y > 0)
            style = {"color": "k", "lw": 2.0} if name == "truth" else {"lw": 1.3}
            ax.loglog(k[ok], y[ok], label=name, **style)
        ax.set_xlabel(f"wavenumber [{kunits}]" + (f"\n({conv})" if conv else ""), fontsize=8)
        if c == 0:
            ax.set_ylabel(f"E(k) [{eunits}]", fontsize=8)
        if lv is not None:
            ax.set_title(f"lead {_fmt_lead(lv, lead.attrs.get('units'))}", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7)
    return _save(fig, save)


def metrics(results, metric: str = "rmse", variable: str = "velocity",
            save: str | Path | None = None):
    """Curves of a metric over lead time, one per model (persistence included).

    Parameters
    ----------
    results : Dataset from :func:`xequi.diagnostics.evaluate`, or dict of name -> such Datasets
        A ``model`` dimension (``evaluate(..., reference="persistence")``) gives one curve per
        model; ``init_time`` (``keep_init_time=True``) is averaged.
    metric : str
        A value of the ``metric`` coordinate (``"rmse"``, ``"acc"``, ``"spectrum_error"``).
    variable : str
        ``"velocity"`` (default), ``"u"``, ``"v"``, ...
    save : path, optional

    Returns
    -------
    matplotlib.figure.Figure
        Labels with the lead-time units and the metric's units.

    Raises
    ------
    ParameterError
        Unknown metric or variable.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ev = xr.Dataset({"velocity": (("metric", "lead_time"), [[0.1, 0.2, 0.3]],
    ...                   {"units_rmse": "m s-1"})},
    ...                 coords={"metric": ["rmse"],
    ...                         "lead_time": np.arange(1, 4) * np.timedelta64(1, "h")})
    >>> fig = metrics({"model": ev, "persistence": 2 * ev})
    >>> fig.axes[0].get_ylabel()
    'rmse of velocity [m s-1]'
    """
    d = _as_dict(results, "results") if not isinstance(results, xr.Dataset) else {"": results}
    fig, axes = _figure(1, 1, 5.0, 3.5)
    ax = axes[0, 0]
    units = None
    xlabel = "lead time"
    for name, ds in d.items():
        if variable not in ds.data_vars:
            raise ParameterError(f"variable {variable!r} is not in the results "
                                 f"({sorted(map(str, ds.data_vars))}).",
                                 fix="pass variable= one of them")
        da = ds[variable]
        if "metric" in da.dims:
            if metric not in da.metric.values:
                raise ParameterError(f"metric {metric!r} is not in the results "
                                     f"({list(map(str, da.metric.values))}).",
                                     fix="pass metric= one of them")
            da = da.sel(metric=metric)
        units = units or da.attrs.get(f"units_{metric}") or da.attrs.get("units")
        if "init_time" in da.dims:
            da = da.mean("init_time")
        xs, xlabel = _lead_axis(ds["lead_time"])
        if "model" in da.dims:
            for mname in da.model.values:
                mlabel = str(mname)
                if mlabel == "forecast" and "model" in ds.attrs:  # the model's own name
                    mlabel = str(ds.attrs["model"])
                lbl = f"{name} {mlabel}".strip() if name else mlabel
                ax.plot(xs, da.sel(model=mname).values, marker="o", ms=3, label=lbl,
                        ls="--" if str(mname) == "persistence" else "-")
        else:
            ax.plot(xs, da.values, marker="o", ms=3,
                    label=name or str(ds.attrs.get("model", variable)),
                    ls="--" if name == "persistence" else "-")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{metric} of {variable} [{units or '1'}]")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, save)
