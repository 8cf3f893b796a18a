"""The xarray side of the symmetries: :func:`transform` (``ds.equi.transform``).

The data are mapped to the model frame with :func:`xequi.fields.orient`, transformed by the
registered group's tensor action and mapped back (coordinates, orientation, units and attrs
restored), so the code that builds transformed test sets is the code the equivariance tests
exercise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np
import xarray as xr

from xequi.errors import ParameterError
from xequi.symmetry._common import _torch
from xequi.symmetry.registry import Symmetry, get

__all__ = ["transform"]


def _jsonable(v):
    if isinstance(v, (str, bool)) or v is None:
        return v
    if isinstance(v, Integral):
        return int(v)
    if isinstance(v, Real):
        return float(v)
    if hasattr(v, "magnitude") and hasattr(v, "units"):  # pint
        return f"{_jsonable(v.magnitude)} {v.units}"
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if hasattr(v, "tolist"):
        return v.tolist()
    return str(v)


def _record(attrs: dict, kind: str, params: dict) -> dict:
    out = dict(attrs)
    try:
        hist = json.loads(out.get("xequi_transform", "[]"))
        if not isinstance(hist, list):
            hist = []
    except (TypeError, ValueError):
        hist = []
    hist.append({"kind": kind, **{k: _jsonable(v) for k, v in params.items()}})
    out["xequi_transform"] = json.dumps(hist)
    return out


def _velocity_pair(ds, u, v, required: bool, kind: str):
    from xequi.errors import VariableNotFoundError
    from xequi.fields import find_velocity

    try:
        return find_velocity(ds, u=u, v=v)
    except VariableNotFoundError as err:
        # a lone velocity component must not be rotated as a scalar: only "none at all" passes
        if required or u is not None or v is not None or \
                not err.problem.startswith("no velocity found"):
            raise VariableNotFoundError(f"transform({kind!r}) needs the velocity: {err.problem}",
                                        fix=err.fix) from None
        return None


def _check_xr_params(group: Symmetry, kind, params: dict) -> None:
    """A clear ParameterError for a missing, unknown or non-numeric parameter of ``transform``."""
    name = group.name
    required, optional = group.xr_params
    missing = [p for p in required if params.get(p) is None]
    unknown = sorted(set(params) - set(required) - set(optional))
    allowed = ", ".join(f"{p}=" for p in required + optional) or "none"
    if missing or unknown:
        what = (f"needs {', '.join(f'{p}=' for p in missing)}" if missing else "") + \
            ("; " if missing and unknown else "") + \
            (f"takes no parameter(s) {unknown}" if unknown else "")
        raise ParameterError(f"transform({kind!r}) {what}.",
                             fix=f"the parameters of {name!r} are: {allowed} (see "
                                 "xequi.symmetry.transform)")
    numeric = {"k": "an integer", "angle": "a number of degrees", "lam": "a positive number"}
    for p, want in numeric.items():
        if p in params:
            val = params[p]
            ok = isinstance(val, Integral) if p == "k" else \
                isinstance(val, Real) or (hasattr(val, "magnitude") and p == "lam")
            if isinstance(val, bool) or not ok or (isinstance(val, Real) and not np.isfinite(val)):
                raise ParameterError(f"transform({kind!r}): {p} must be {want}, got {val!r}.",
                                     fix=f"pass e.g. {p}={ {'k': 1, 'angle': 30.0, 'lam': 2.0}[p]}")
            if p == "lam" and isinstance(val, Real) and val <= 0:
                raise ParameterError(f"transform({kind!r}): lam must be > 0, got {val!r}.",
                                     fix="pass e.g. lam=2.0")


def transform(obj, kind: str, u: str | None = None, v: str | None = None, **params):
    """Apply a symmetry to a Dataset or DataArray (``ds.equi.transform(kind, **params)``).

    The data are mapped to the model frame (y flipped if it increases with the index, x flipped
    if it decreases; see :mod:`xequi.fields`), transformed by the tensor kernels of this module,
    and mapped back, so xarray test sets and tensor tests share one implementation. The velocity
    pair (found with :func:`xequi.fields.find_velocity` or given as ``u=``, ``v=``) transforms as
    a vector; every other variable with both spatial dims is a scalar field. A DataArray is a
    scalar field.

    Kinds and parameters:

    * ``"translate"``, ``shift=(sy, sx)``: the pattern moves by ``sx`` cells toward increasing x
      and ``sy`` toward increasing y (integers). ``periodic=True`` (default) wraps around;
      ``periodic=False`` crops to the valid part (the result is smaller, with the destination
      coordinates).
    * ``"rot90"``, ``k``: counter-clockwise rotation by k × 90° about the grid centre (exact).
      For odd k the x and y dims swap lengths; the new coordinates are the old ones swapped about
      the centre: ``x_new = x_c + (y - y_c)``, ``y_new = y_c + (x - x_c)``, each dim keeping its
      name, attrs and direction (ascending stays ascending), so the result is a valid dataset
      with monotonic coords. Non-index coordinates on x or y are kept for even k or a square
      grid, dropped otherwise. Physical only when dx == dy (check ``grid_spacing().anisotropy``).
    * ``"rotate"``, ``angle`` (degrees, CCW; ``mode``): interpolation, approximate; shape and
      coordinates unchanged; points whose source lies outside the grid are NaN
      (``fill=0.0`` for zeros).
    * ``"uniform_motion"`` / ``"um"``, ``c=(cu, cv)``: ``w + c`` (components along +x, +y, i.e.
      east / north), numbers in the velocity's units or pint quantities; scalars untouched.
    * ``"galilean"``, ``c=(cu, cv)``: the full boost ``w(x - c(t - t0), t) + c`` with t0 the first
      time; needs the time coordinate and grid spacing with units (lat/lon: metres at the
      central latitude). The shift is periodic (Fourier, sub-cell exact for band-limited
      fields); scalars are shifted, not boosted.
    * ``"magnitude"`` / ``"mag"``, ``lam``: every variable with both spatial dims (scalars too) is
      multiplied by λ > 0.
    * ``"scale"``, ``lam`` (``time=True``): ``λ w(λx, λ²t)`` about the grid centre and the first
      time (time resampled only when there is a time axis and ``time=True``); scalars resampled,
      not multiplied. Coordinates unchanged. Approximate.
    * any other registered group (:func:`xequi.symmetry.groups`, ``xequi.symmetry.markdown_table``)
      with the parameters its ``xr_params`` name.

    Every result carries ``attrs["xequi_transform"]``: a JSON list of ``{"kind": ..., params}``,
    appended on composition. Units and other attrs are kept. The input is never modified.

    NaN (land) masks: the exact actions (``rot90``, ``mirror``, ``uniform_motion``,
    ``magnitude``, ``translate``) move each variable's own mask, so u and v with different masks
    (staggered model output) keep them: after a quarter turn u carries v's rotated mask and v
    u's, and turning back restores every valid cell. ``rotate`` by other angles mixes u and v
    at every point, so there a cell is valid only where both were.

    Parameters
    ----------
    obj : xarray.Dataset or xarray.DataArray
    kind : str
        One of :data:`XARRAY_KINDS` (or the aliases ``"rot"``, ``"um"``, ``"mag"``).
    u, v : str, optional
        Velocity variable names (Dataset).
    **params
        The kind's parameters (above).

    Returns
    -------
    Same type as ``obj``.

    Raises
    ------
    ParameterError, VariableNotFoundError, GridError, UnitsError

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"u": (("y", "x"), np.ones((3, 3))), "v": (("y", "x"), np.zeros((3, 3)))},
    ...                 coords={"x": [0., 1., 2.], "y": [0., 1., 2.]})
    >>> r = transform(ds, "rot90", k=1)
    >>> float(r.u.mean()), float(r.v.mean()), r.attrs["xequi_transform"]
    (0.0, 1.0, '[{"kind": "rot90", "k": 1}]')
    """
    from xequi.fields import find_axes, grid_spacing, orientation
    from xequi.routing import as_dataset, restore

    if not isinstance(obj, (xr.Dataset, xr.DataArray)):
        raise ParameterError(f"transform needs an xarray Dataset or DataArray, got "
                             f"{type(obj).__name__}.", fix="use the tensor functions for tensors")
    group = get(kind, xarray=True)
    is_da = isinstance(obj, xr.DataArray)
    if is_da and group.needs_velocity:
        raise ParameterError(f"transform({kind!r}) needs the velocity pair; a DataArray is a "
                             "scalar field.", fix="call it on a Dataset holding u and v")
    routed = as_dataset(obj)
    ds = routed.ds
    ax = find_axes(ds, **{k: params.pop(k) for k in ("x", "y", "t") if k in params})
    if group.needs_grid:
        grid = grid_spacing(ds, x=ax.x, y=ax.y, t=ax.t, rtol=params.pop("rtol", 1e-3),
                            units=params.pop("units", None))
    else:
        grid = orientation(ds, ax)
    pair = None if is_da else _velocity_pair(ds, u, v, group.needs_velocity, kind)
    _check_xr_params(group, kind, params)
    record = dict(params)
    if pair is not None and (u is not None or v is not None):
        record.update(u=pair[0], v=pair[1])
    act = group.transform_xr if group.transform_xr is not None else \
        (lambda *args: apply_frame(group, *args))
    out = act(ds, ax, grid, pair, params)
    out.attrs = _record(obj.attrs, group.name, record)
    return restore(routed, out, attrs=out.attrs)


@dataclass(frozen=True)
class FrameContext:
    """What a group's model-frame action may need to know about the data."""

    name: str
    ds: xr.Dataset
    ax: Any
    grid: Any
    pair: tuple[str, str] | None


def _variable_groups(group: Symmetry, ds, ax, pair) -> list[tuple[str, ...]]:
    """The velocity pair, then every other variable with both spatial dims (alone)."""
    out: list[tuple[str, ...]] = [tuple(pair)] if pair is not None else []
    for n, da in ds.data_vars.items():
        if pair is not None and n in pair:
            continue
        if ax.x in da.dims and ax.y in da.dims:
            out.append((n,))
        elif (ax.x in da.dims or ax.y in da.dims) and not group.pointwise:
            raise ParameterError(
                f"variable {n!r} has only one of the spatial dims ({ax.y!r}, {ax.x!r}); "
                f"transform({group.name!r}) cannot move it consistently.",
                fix=f"drop it first: ds.drop_vars({n!r})")
    return out


def _act_on(group: Symmetry, ctx: FrameContext, names: tuple[str, ...], params: dict) -> dict:
    """The transformed variables ``names`` (a vector pair or one scalar) as DataArrays."""
    from xequi.fields import Orientation, orient

    torch = _torch()
    ds, ax = ctx.ds, ctx.ax
    das = [ds[n] for n in names]
    if len(das) == 2:
        das = list(xr.broadcast(*das))
    lead = [d for d in das[0].dims if d not in (ax.x, ax.y)]
    order = [*lead, ax.y, ax.x]
    arrs = [np.asarray(d.transpose(*order).values) for d in das]
    for n, a in zip(names, arrs):
        if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
            raise ParameterError(f"variable {n!r} is not real numeric ({a.dtype}).",
                                 fix="drop it before transforming")
    dtype = np.result_type(arrs[0].dtype, np.float32)
    flips = Orientation(ctx.grid.x_ascending, ctx.grid.y_ascending)
    # a fresh C-ordered copy: ascontiguousarray keeps the negative strides of a flip along a
    # length-1 axis (numpy calls it contiguous), which torch refuses
    x = torch.as_tensor(orient(np.stack(arrs, axis=-3), flips.flip_y, flips.flip_x).copy(order="C"),
                        dtype=torch.float64)
    y = group.act_frame(x, (0, 1) if len(names) == 2 else None, ctx, lead, params)
    res = orient(y.numpy(), flips.flip_y, flips.flip_x)
    out = {}
    for i, n in enumerate(names):
        vals = np.ascontiguousarray(res[..., i, :, :]).astype(dtype, copy=False)
        da = xr.DataArray(vals, dims=order, attrs=dict(ds[n].attrs), name=n)
        out[n] = da.transpose(*[d for d in ds[n].dims if d in order] +
                              [d for d in order if d not in ds[n].dims])
    return out


def apply_frame(group: Symmetry, ds, ax, grid, pair, params: dict) -> xr.Dataset:
    """``group``'s action on every spatial variable of ``ds`` through the model frame: the
    velocity pair as a vector, every other variable with both spatial dims as a scalar; the
    other variables kept; coordinates relabelled by the group (``rot90``)."""
    names = _variable_groups(group, ds, ax, pair)
    ctx = FrameContext(group.name, ds, ax, grid, pair)
    params = group.prepare(ctx, dict(params))
    new_vars: dict[str, xr.DataArray] = {}
    for group_names in names:
        new_vars.update(_act_on(group, ctx, group_names, params))
    out = group.relabel(ds, ds.drop_vars(list(new_vars)), new_vars, ax, grid, params)
    out = out[list(ds.data_vars)]
    out.attrs = dict(ds.attrs)
    return out
