"""Forecast a CF dataset with a trained model: whole-domain autoregressive rollout over windows.

:func:`forecast` (``ds.equi.forecast``) runs the data flow of ``docs/architecture.md`` end to end:

1. **fields** -- find u, v (and the model's scalar channels) and the grid; convert to the units of
   the model card's channels; map to the model frame (image orientation, land filled per ``fill``);
2. **grid check** -- the data's ``dx``, ``dy`` and time step must match the model card within
   :data:`GRID_RTOL` (relative), unless the model is scale-equivariant (``"scale"`` in its
   symmetries): then the velocity is rescaled by the pint-derived factor
   λ = :func:`xequi.symmetry.scale_factor` (``w_model = λ w_data``, ``λ = dx_data / dx_model``,
   consistent with ``dt_data = λ² dt_model``; the convention of :func:`xequi.symmetry.scale`),
   and mapped back by 1/λ;
3. **windows + model** -- at every step the current state (the last ``t_in`` frames on the WHOLE
   grid) is cut into the model's windows (:func:`xequi.windows.plan_windows`, symmetric layout:
   windows stay inside the domain along walls and are padded only along periodic axes or axes
   shorter than the window, ``pad="auto"``), the windows are streamed through the exported network in batches
   (:func:`xequi.windows.iter_windows`), and the predicted windows are stitched back onto the full
   grid (:func:`xequi.windows.stitch`, crop-centre) before the next step;
4. **back** -- the predicted frames go back to the user's names, units, orientation and
   coordinates (:func:`xequi.fields.from_model_frame`), land is NaN, and the result is labelled
   ``(init_time, lead_time, <y>, <x>)`` with CF forecast coordinates and provenance attrs (the
   layout of :func:`xequi.diagnostics.persistence_forecast`).

On dask-backed input the result is lazy: one task per init time (``dask.delayed``), assembled
with :mod:`dask.array`; it runs on whatever scheduler is active (e.g. a
``dask.distributed.LocalCluster``) and gives the same numbers as the eager path.

Every call is first *planned*: the model resolved, the data matched to its card, windows, init
and lead times decided, nothing loaded. The frozen :class:`ForecastPlan` is then run eagerly,
lazily (dask), or resumably into a zarr store, so each way of running can be tested on its own.

Symmetry of the whole pipeline
------------------------------
Unit conversion and the normalization are multiplications by positive constants (and offsets
that the training keeps at zero on the velocity), the window padding is a reflection or a wrap
(both commute with adding a constant and with multiplying by λ > 0), and the window layout and
the crop-stitching ownership rule are symmetric under the reflections of each axis. Hence, for a
model that is exactly equivariant, ``forecast(transform(ds, g)) == transform(forecast(ds), g)``
for uniform motion and magnitude on any domain, and for 90-degree rotations whenever the window
is square (``wy == wx``, equal overlaps): the per-axis layout depends only on the axis length, so
the rotated layout of an ``ny × nx`` domain *is* the layout of the rotated ``nx × ny`` domain --
square or not, multiple of the window or not (the periodic flags, if any, must be swapped with
the axes). Measured with untrained small models whose receptive field (radius 10 cells: 4
residual blocks) exceeds the 8 cells of context that crop stitching guarantees with 64-cell
windows, so that the window layout does matter (``tests/test_forecast.py``; float32, CPU,
2 steps), relative errors per lead time:

* square 96×96 and 128×128, 64-cell windows: rot-resnet under ``rot90`` 8e-7 / 1e-6; um-resnet
  under uniform motion 1.5e-7; mag-resnet under magnitude 1.2e-7 (all < 1e-4); the plain resnet
  1.4 under ``rot90`` and 2.2 / 1.2 under uniform motion (> 1e-2);
* NON-square 96×130 (not a multiple of the window), rot-resnet under ``rot90`` (k=1): 8.1e-7 /
  1.0e-6 -- exact as well, by the argument above (the domain need not be rotation-invariant:
  the rotated forecast is compared with the forecast of the rotated, 130×96, dataset);
* what does break it is a NON-square window: window (64, 48) gives 1.2e-2 / 1.5e-2 under
  ``rot90`` on 96×130 (1.3e-2 / 1.7e-2 on 96×96), because rotating the data swaps which axis gets
  the 48-cell windows. Keep windows square (the default) when rotation consistency matters.
  (With a receptive field within the stitching context the result does not depend on the
  window layout at all, and even such windows are exact.)

:func:`equivariance_error` measures ``‖F(g·ds) − g·F(ds)‖ / ‖g·F(ds)‖`` per lead time on a
dataset.

Bring your own network with :func:`as_forecast_model`, which writes the minimal model card
(grid spacing, time step, channel units) that :func:`forecast` needs.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import hashlib
import json
import math
import os
import uuid
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr
from tqdm.auto import tqdm

from xequi import checkpoint as ck
from xequi import routing
from xequi._version import __version__
from xequi.errors import (
    GridError,
    MissingDataError,
    ModelError,
    ParameterError,
    UnitsError,
    VariableNotFoundError,
)
from xequi.fields import (
    Axes,
    GridInfo,
    _units_attr,
    _units_mapping,
    check_grid,
    check_real,
    find_axes,
    find_velocity,
    from_model_frame,
    parse_units,
    to_model_frame,
    warn_rotation_on_anisotropic_grid,
)
from xequi.io import ZARR_WRITE_KWARGS, _remove, atomic_path, move_into_place, output_format, \
    progress_options, write_dataset
from xequi.models.card import DEFAULT_WINDOW, ModelCard, quantity_to_str
from xequi.models.normalized import NormalizedModel
from xequi.models.normalized import resolve_device as _device
from xequi.models.relaxed import breaking_ratios
from xequi.symmetry import scale_factor, transform
from xequi.units import registry
from xequi.windows import WindowSpec, iter_windows, plan_windows, stitch

__all__ = [
    "GRID_RTOL",
    "DEFAULT_WINDOW",
    "forecast",
    "equivariance_error",
    "as_forecast_model",
    "resolve_model",
    "model_info",
    "parse_init_time",
    "ForecastPlan",
]

#: Relative tolerance of the grid-spacing / time-step check against the model card.
GRID_RTOL = 1e-3
# DEFAULT_WINDOW (the window size used when the model card records none) lives with the card
# in xequi.models.card and is re-exported here.
_DEFAULT_BATCH = {"cpu": 32, "cuda": 64}


# --------------------------------------------------------------------------------------------
# the model
# --------------------------------------------------------------------------------------------
def as_forecast_model(net, *, dx=None, dy=None, dt=None, units: str = "m s-1",
                      scalars: Mapping[str, str] | None = None, names=("u", "v"),
                      standard_names=(None, None), t_in: int | None = None,
                      name: str | None = None, window=None, scale=None, offset=None,
                      velocity: bool | None = None):
    """Wrap a network and the minimal model card :func:`forecast` needs.

    Parameters
    ----------
    net : torch.nn.Module
        ``(B, t_in, C, H, W) -> (B, C, H, W)`` in the model frame (channels ``[u, v, *scalars]``,
        see ``docs/architecture.md``); a model of :func:`xequi.models.create` or your own. A
        :class:`xequi.train.NormalizedModel` keeps its normalization.
    dx, dy, dt : str or pint.Quantity, optional
        Grid spacing and time step the network was trained on (``"5 km"``, ``"1 h"``). ``dy``
        defaults to ``dx``. Not recorded: the grid is not checked.
    units : str, default "m s-1"
        Units of the velocity channels.
    scalars : mapping of str to str, optional
        Scalar channels after (u, v), in order: ``{variable name: units}``.
    names, standard_names : pair of str
        Names / CF standard names recorded for the velocity channels.
    t_in : int, optional
        Input frames; default ``net.config["t_in"]`` or ``net.t_in``.
    name : str, optional
        Model name for provenance; default ``net.config["name"]`` or the class name.
    window : int or (int, int), optional
        Window size to forecast with (default :data:`DEFAULT_WINDOW`).
    scale, offset : sequence of float, optional
        Normalization applied around ``net`` (see :class:`xequi.train.NormalizedModel`).
    velocity : bool, optional
        Whether the channels start with (u, v); default ``net.velocity`` (``config["velocity"]``)
        or True. ``False``: a scalar-only network, channels ``scalars`` only (``units``,
        ``names`` and ``standard_names`` are then unused).

    Returns
    -------
    xequi.train.NormalizedModel
        In eval mode, with ``.card``.

    Raises
    ------
    ModelError
        ``net`` is not a torch module, ``t_in`` cannot be told, or a scalar-only network
        without ``scalars``.

    Examples
    --------
    >>> from xequi import models
    >>> m = as_forecast_model(models.create("resnet", t_in=2, widths=(4,)), dx="10 km", dt="1 h")
    >>> m.card["t_in"], m.card["grid"], [c["units"] for c in m.card["channels"]]
    (2, {'dx': '10 km', 'dy': '10 km', 'dt': '1 h'}, ['m s-1', 'm s-1'])
    """
    if not isinstance(net, torch.nn.Module):
        raise ModelError(f"net must be a torch.nn.Module, got {type(net).__name__}.",
                         fix="pass a network mapping (B, t_in, C, H, W) to (B, C, H, W)")
    if isinstance(net, NormalizedModel):
        model = NormalizedModel(net.model, net.scale.tolist(), net.offset.tolist(),
                                net.velocity_scale) if scale is None and offset is None else \
            NormalizedModel(net.model, scale, offset)
        inner = net.model
    else:
        model = NormalizedModel(net, scale, offset)
        inner = net
    config = dict(getattr(inner, "config", None) or {})
    if t_in is None:
        t_in = config.get("t_in", getattr(inner, "t_in", None))
    if t_in is None:
        raise ModelError(f"cannot tell how many input frames the {type(inner).__name__} takes.",
                         fix="pass t_in=")
    sym = list(getattr(inner, "symmetries", ()) or ())
    if velocity is None:
        velocity = bool(config.get("velocity", getattr(inner, "velocity", True)))
    velocity = bool(velocity)
    if not velocity and not scalars:
        raise ModelError("a scalar-only network (velocity=False) needs its channels named.",
                         fix="pass scalars={'temperature': 'K'} (variable name: units, in "
                             "channel order)")
    channels = [{"name": names[i], "standard_name": standard_names[i], "units": units, "index": i}
                for i in range(2)] if velocity else []
    n_vel = len(channels)
    for i, (n, un) in enumerate(dict(scalars or {}).items()):
        channels.append({"name": n, "standard_name": None, "units": un, "index": n_vel + i})
    spacing = {"dx": dx, "dy": dx if dy is None else dy, "dt": dt}
    grid = {key: quantity_to_str(val) for key, val in spacing.items() if val is not None}
    card = ModelCard(
        name=name or config.get("name") or type(inner).__name__, architecture=config,
        symmetries=tuple(sym), symmetry_group=ck._group_name(config, sym), t_in=int(t_in),
        velocity=velocity, channels=tuple(channels), grid=grid,
        normalization=model.normalization_card(), xequi_version=__version__, window=window)
    for key in grid:
        card.quantity(key)  # a grid entry pint cannot read is refused now, not at forecast time
    try:
        card = card.replace(weights_sha256=ck.weights_digest(ck._tensors_for_saving(inner)))
    except Exception:  # pragma: no cover - exotic modules whose state dict cannot be read
        pass
    model.card = card.to_dict()
    return model.eval()


def resolve_model(model, device="cpu"):
    """The :class:`~xequi.train.NormalizedModel` (with ``.card``) that ``model`` designates.

    Parameters
    ----------
    model : str, path-like or torch.nn.Module
        A registered name with shipped weights, a ``.xequi`` checkpoint path, or a loaded model
        with a model card (``load_model``, ``fit`` or :func:`as_forecast_model`).
    device : str, default "cpu"

    Returns
    -------
    xequi.train.NormalizedModel

    Raises
    ------
    ModelError
        A network without a model card, an unknown name; :class:`~xequi.errors.CheckpointError`
        for a bad file.

    Examples
    --------
    >>> from xequi import models
    >>> net = as_forecast_model(models.create("resnet", t_in=2, widths=(4,)), dx="1 km", dt="1 h")
    >>> m = resolve_model(net)
    >>> type(m).__name__, m.card["t_in"]
    ('NormalizedModel', 2)
    """
    if isinstance(model, (str, os.PathLike)):
        return ck.load_model(model, device=device)
    if isinstance(model, torch.nn.Module):
        card = getattr(model, "card", None)
        if not isinstance(card, Mapping) or not card.get("channels") or not card.get("t_in"):
            raise ModelError(
                f"the {type(model).__name__} has no model card (channels, t_in, grid): forecast "
                "cannot tell which variables, units and grid it takes.",
                fix="wrap it: xequi.forecast.as_forecast_model(net, dx='10 km', dt='1 h', "
                    "units='m s-1'), or load a saved model with xequi.checkpoint.load_model")
        if not isinstance(model, NormalizedModel):
            wrapped = NormalizedModel(model)
            wrapped.card = copy.deepcopy(dict(card))
            model = wrapped
        return model
    raise ModelError(f"model must be a model name, a checkpoint path or a torch module, got "
                     f"{type(model).__name__}.",
                     fix="pass e.g. 'rot-resnet', 'path/to/model.xequi' or a loaded model")


def model_info(model) -> dict:
    """What :func:`forecast` reads from a model card.

    Parameters
    ----------
    model : xequi.train.NormalizedModel
        With ``.card`` (see :func:`resolve_model`).

    Returns
    -------
    dict
        ``name``, ``t_in``, ``velocity`` (whether channels 0, 1 are u, v), ``n_velocity``
        (2 or 0), ``channels`` (list of dicts with ``name``, ``standard_name``, ``units``),
        ``dx``, ``dy``, ``dt`` (pint quantities or None), ``window`` ((int, int)),
        ``symmetries``, ``symmetry_group``, ``weights_sha256``, ``training_data`` (the card's
        ``training.data`` sentence, or None).

    Raises
    ------
    ModelError
        A card without channels or ``t_in``, or a velocity model's card with fewer than the 2
        velocity channels.

    Examples
    --------
    >>> from xequi import models
    >>> net = as_forecast_model(models.create("resnet", t_in=2, widths=(4,)), dx="1 km", dt="1 h")
    >>> info = model_info(resolve_model(net))
    >>> info["t_in"], str(info["dx"])
    (2, '1 kilometer')
    """
    raw = dict(getattr(model, "card", None) or {})
    card = ModelCard.from_dict(raw)  # the fallbacks for older cards live there
    if len(card.channels) < (2 if card.velocity else 1):
        raise ModelError(f"the model card lists {len(card.channels)} channel(s); "
                         + ("velocity models take (u, v) as their first two channels."
                            if card.velocity else "a scalar-only model needs at least one."),
                         fix="re-create the card with as_forecast_model(net, units=..., "
                             "scalars={...})")
    if card.t_in is None:
        raise ModelError(f"the model card has no valid t_in ({raw.get('t_in')!r}).",
                         fix="re-create the card with as_forecast_model(net, t_in=...)")
    return {
        "name": card.name,
        "t_in": card.t_in,
        "velocity": card.velocity,
        "n_velocity": card.n_velocity,
        "channels": [dict(c) for c in card.channels],
        "dx": card.quantity("dx"), "dy": card.quantity("dy"), "dt": card.quantity("dt"),
        "window": card.window,
        "symmetries": list(card.symmetries or getattr(model, "symmetries", ()) or ()),
        "symmetry_group": card.symmetry_group,
        "weights_sha256": card.weights_sha256,
        "training_data": (card.training or {}).get("data") if isinstance(card.training, dict)
        else None,
    }


_EXPORTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _state_signature(model) -> tuple:
    """Names, shapes, devices and value sums of the model's state (``state_dict``): changes when
    the weights do, however they were written (in place, through ``.data``, by
    ``load_state_dict``). Not tensor identities: e2cnn re-creates its derived filter buffers
    whenever the mode toggles (e.g. during ``export()``)."""
    state = model.state_dict()
    keys = sorted(state)
    meta = tuple((k, tuple(state[k].shape), state[k].device.type) for k in keys)
    with torch.no_grad():
        sums = tuple(torch.stack([state[k].detach().double().sum() for k in keys]).tolist()) \
            if keys else ()
    return meta + sums


def _exported(model):
    """``model.export()`` (plain torch, eval mode), cached per model while its weights are
    unchanged: exporting a rotation model expands its steerable filters, which costs more than
    a small forecast."""
    sig = _state_signature(model)
    hit = _EXPORTS.get(model)
    if hit is not None and hit[0] == sig:
        return hit[1]
    net = model.export() if hasattr(model, "export") else model
    net = net.eval()
    try:
        _EXPORTS[model] = (sig, net)
    except TypeError:  # pragma: no cover - not weak-referenceable
        pass
    return net


# --------------------------------------------------------------------------------------------
# matching data and model
# --------------------------------------------------------------------------------------------
def _find_scalars(ds, info, scalars, un, vn) -> list[str]:
    """Scalar variables for the model's scalar channels (explicit, or by card name /
    standard_name)."""
    nv = info["n_velocity"]
    want = info["channels"][nv:]
    if scalars is not None:
        scalars = [scalars] if isinstance(scalars, str) else list(scalars)
    else:
        scalars = []
        std = ds.cf.standard_names
        for ch in want:
            n, sn = ch.get("name"), ch.get("standard_name")
            found = None
            if sn and len([c for c in std.get(sn, []) if c in ds.data_vars]) == 1:
                found = [c for c in std[sn] if c in ds.data_vars][0]
            elif n in ds.data_vars and n not in (un, vn):
                found = n
            if found is None:
                raise VariableNotFoundError(
                    f"the model takes the scalar channel {n!r} (standard_name {sn!r}, units "
                    f"{ch.get('units')!r}) but the dataset has no such variable (variables: "
                    f"{sorted(map(str, ds.data_vars))}).",
                    fix="pass scalars=[...] naming the dataset's variables in the model's channel "
                        "order")
            scalars.append(found)
    if len(scalars) != len(want):
        names = [c.get("name") for c in want]
        raise ModelError(
            (f"the model takes {2 + len(want)} channels (u, v + {len(want)} scalars {names}) but "
             f"{2 + len(scalars)} were given (u, v + {scalars})." if nv else
             f"the scalar-only model takes {len(want)} channel(s) {names} but {len(scalars)} "
             f"were given ({scalars})."),
            fix=f"pass scalars= the {len(want)} variable(s) the model was trained with"
            if want else "drop scalars=: the model takes the velocity only")
    return scalars


def _target_units(names, info) -> dict:
    return {n: ch["units"] for n, ch in zip(names, info["channels"]) if ch.get("units")}


def _check_units(ds, names, units, target, info: dict, n_velocity=2):
    """Raise a clear UnitsError when a variable cannot be converted to the model's units."""
    ureg = registry()
    model_name = info["name"]
    for i, n in enumerate(names):
        if n not in target:
            continue
        raw = (units or {}).get(n, _units_attr(ds[n]))
        kind = "velocity" if i < n_velocity else None
        src = parse_units(raw if raw is not None or kind else "1", n, kind)
        dst = parse_units(target[n], f"units of the model's channel {i}", kind)
        try:
            ureg.Quantity(1.0, src).to(dst)
        except Exception:
            _refuse_dimensional(ureg, n, raw, src, dst, i, info)
            raise UnitsError(
                f"variable {n!r} is in {raw!r}, which cannot be converted to {target[n]!r}, the "
                f"units of channel {i} of the model {model_name!r}.",
                fix=f"check that {n!r} is the variable the model expects, or fix its units "
                    f"attribute (or pass units={{{n!r}: '...'}})") from None


def _refuse_dimensional(ureg, n, raw, src, dst, i, info: dict) -> None:
    """The clear refusal of dimensional data given to a model trained on non-dimensional data
    (units ``'1'``, e.g. the shipped convection models): no units label makes them fit."""
    dimless = ureg.Quantity(1, "1").dimensionality
    if ureg.Quantity(1, dst).dimensionality != dimless or \
            ureg.Quantity(1, src).dimensionality == dimless:
        return
    data = str(info.get("training_data") or "").split(" (")[0].split(";")[0].strip()
    raise UnitsError(
        f"variable {n!r} is in {raw!r}, which cannot be converted to '1': the model "
        f"{info['name']!r} was trained on non-dimensional data (channel {i} in units "
        f"'1'{': ' + data if data else ''}) and cannot forecast dimensional currents or fields "
        "(relabelling the units would not make the physics match).",
        fix="train your own model on these data: model = xequi.train.fit('rot-resnet', ds) "
            "(fields_kwargs={'fill': 'zero'} when there is land), then forecast(ds, model)")


def _rel(a, b) -> float:
    return abs(float(a) / float(b) - 1.0)


def _grid_factor(grid, info, grid_rtol: float) -> float:
    """Check the data grid against the card; the scale factor λ (1 when the grid matches)."""
    pairs = [("dx", grid.dx, info["dx"]), ("dy", grid.dy, info["dy"]), ("dt", grid.dt, info["dt"])]
    ratios, problems = {}, []
    for key, have, want in pairs:
        if have is None or want is None:
            continue
        try:
            r = float((have / want).to("dimensionless").magnitude)
        except Exception:
            raise GridError(
                f"the data's {key} = {have:~} cannot be compared with the model's {key} = "
                f"{want:~} (different dimensions, e.g. a dimensional grid against a "
                "non-dimensional model).",
                fix="give the coordinates units of the model's kind (pass units={dim: '...'}), "
                    "or use a model trained on data like these") from None
        ratios[key] = r
        if abs(r - 1.0) > grid_rtol:
            problems.append(f"{key} = {have:~} but the model was trained with {want:~} "
                            f"(ratio {r:.6g})")
    if not problems:
        return 1.0
    if "scale" not in info["symmetries"]:
        raise GridError(
            f"the grid does not match the model {info['name']!r} (relative tolerance "
            f"{grid_rtol:g}): " + "; ".join(problems) + ".",
            fix="regrid / subsample the data to the model's grid and time step, or use a "
                "scale-equivariant model ('scale' in its symmetries), which forecast rescales")
    model_grid = GridInfo(axes=Axes("x", "y", "time"), dx=info["dx"] or grid.dx,
                          dy=info["dy"] or grid.dy, dt=info["dt"], x_ascending=True,
                          y_ascending=False, is_latlon=False, central_lat=None, anisotropy=1.0,
                          nx=0, ny=0, nt=0)
    return float(scale_factor(grid, model_grid))


# --------------------------------------------------------------------------------------------
# init times
# --------------------------------------------------------------------------------------------
def _fmt(value) -> str:
    v = np.asarray(value)
    if np.issubdtype(v.dtype, np.datetime64):
        return str(v.astype("datetime64[s]"))
    return str(value)


def _init_positions(ds, tdim: str, init_time, t_in: int) -> np.ndarray:
    """Positions along ``tdim`` of the requested init times (label-based, like ``.sel``)."""
    nt = int(ds.sizes[tdim])
    first = t_in - 1
    labels = ds[tdim].values if tdim in ds.coords else np.arange(nt)
    index = ds.indexes[tdim] if tdim in ds.indexes else pd.Index(labels)
    first_label = _fmt(labels[first]) if first < nt else None

    def too_early(label, pos):
        return MissingDataError(
            f"init_time {_fmt(label)} has only {pos + 1} frame(s) up to and including it along "
            f"{tdim!r}, but the model needs t_in = {t_in}; the first usable init time is "
            f"{first_label}.", fix=f"choose init times from {first_label} on")

    if init_time is None:
        return np.array([nt - 1])
    if isinstance(init_time, slice):
        if init_time.step is not None:
            raise ParameterError(f"init_time slices take no step, got {init_time!r}.",
                                 fix="select a range, e.g. slice('2020-01-02', '2020-01-05')")
        try:
            sl = index.slice_indexer(init_time.start, init_time.stop)
        except (KeyError, TypeError, ValueError) as err:
            raise MissingDataError(f"init_time {init_time!r} cannot be located along {tdim!r} "
                                   f"({err}).", fix="use labels of the time coordinate") from None
        pos = np.arange(nt)[sl]
        if init_time.start is None:
            pos = pos[pos >= first]
        if len(pos) == 0:
            raise MissingDataError(
                f"init_time {init_time!r} selects no usable time along {tdim!r} (data "
                f"{_fmt(labels[0])} .. {_fmt(labels[-1])}; first usable init time {first_label}).",
                fix="choose a range inside the data")
        if pos[0] < first:
            raise too_early(labels[pos[0]], int(pos[0]))
        return pos
    values = init_time.values if isinstance(init_time, (xr.DataArray, pd.Index)) else init_time
    if isinstance(values, np.ndarray):
        items = list(values.reshape(-1))
    elif isinstance(values, (list, tuple)):
        items = list(values)
    else:
        items = [values]
    if not items:
        raise ParameterError("init_time is empty.", fix="pass one time, a list, or a slice")
    out = []
    for lab in items:
        try:
            loc = index.get_loc(lab)
        except (KeyError, TypeError, ValueError):
            loc = None
        if isinstance(loc, slice):
            loc = np.arange(nt)[loc]
        if isinstance(loc, np.ndarray):
            loc = np.nonzero(loc)[0] if loc.dtype == bool else loc
            loc = int(loc[0]) if len(loc) == 1 else None
        if loc is None:
            raise MissingDataError(
                f"init_time {_fmt(lab)} is not a time of the data along {tdim!r} (data "
                f"{_fmt(labels[0])} .. {_fmt(labels[-1])}, {nt} steps); the first usable init "
                f"time is {first_label}.",
                fix="choose init times among the dataset's time labels (ds[time].values)")
        loc = int(loc)
        if loc < first:
            raise too_early(lab, loc)
        out.append(loc)
    return np.asarray(out, dtype=np.int64)


def parse_init_time(text: str | None, ds: xr.Dataset | None = None, time: str | None = None):
    """Parse a command-line init time: ``"last"``, ``"a"``, ``"a,b,c"`` or a range ``"a..b"``.

    Parameters
    ----------
    text : str or None
        ``None``, ``""`` or ``"last"``: the last time (``None`` for :func:`forecast`). A range
        is ``"a..b"`` (inclusive, like ``.sel``; ``":"`` is not used since times of day contain
        it); either side may be empty (``"..2020-01-05"``: up to that time from the first usable
        one).
    ds : xarray.Dataset, optional
        When given, labels are converted to the dtype of its time coordinate (datetime64 or
        numbers), as :func:`forecast` looks them up exactly.
    time : str, optional
        Name of the time dimension (found with :func:`xequi.fields.find_axes` otherwise).

    Returns
    -------
    None, label, list of labels, or slice
        What :func:`forecast` takes as ``init_time``.

    Raises
    ------
    ParameterError
        A label that cannot be converted to the time coordinate's type.

    Examples
    --------
    >>> parse_init_time("2020-01-02T06:00..2020-01-05")
    slice('2020-01-02T06:00', '2020-01-05', None)
    >>> parse_init_time("3600,7200")
    ['3600', '7200']
    >>> parse_init_time("last") is None
    True
    """
    if text is None or str(text).strip().lower() in ("", "last"):
        return None
    text = str(text).strip()
    conv = str
    if ds is not None:
        tdim = time or find_axes(ds).t
        if tdim is not None and tdim in ds.coords:
            dtype = ds[tdim].dtype
            if np.issubdtype(dtype, np.datetime64):
                def conv(s):
                    return np.datetime64(s, "ns")
            elif np.issubdtype(dtype, np.number):
                conv = float

    def one(s):
        s = s.strip()
        if s == "":
            return None
        try:
            return conv(s)
        except (TypeError, ValueError):
            raise ParameterError(f"init time {s!r} cannot be read as a label of the time "
                                 "coordinate.", fix="write e.g. 2020-01-02T06 (datetimes) or "
                                                    "3600 (numeric times)") from None

    if ".." in text:
        lo, _, hi = text.partition("..")
        return slice(one(lo), one(hi))
    if "," in text:
        return [one(s) for s in text.split(",")]
    return one(text)


# --------------------------------------------------------------------------------------------
# the rollout
# --------------------------------------------------------------------------------------------
def _rollout_domain(net, history: np.ndarray, steps: int, spec, batch_size: int, device,
                    bar=None) -> np.ndarray:
    """Autoregressive rollout on the whole domain; ``history`` (t_in, C, ny, nx) float32.

    Returns ``(steps, C, ny, nx)`` float32.
    """
    # Every step windows the CURRENT full-domain state, runs all windows, and stitches the next
    # frame onto the whole grid before the next step. Rolling out inside isolated windows instead
    # would feed each window its own (padding-contaminated) edge predictions step after step, so
    # edge errors would grow and never be corrected; stitching per step keeps each cell predicted
    # from its most interior window and lets information cross window borders between steps.
    state = np.ascontiguousarray(history, dtype=np.float32)
    outs = np.empty((steps,) + state.shape[1:], dtype=np.float32)

    def run(batches):
        for batch, idx in batches:
            x = torch.from_numpy(batch).to(device, non_blocking=True)
            y = net(x)
            if bar is not None:
                bar.update(1)
            yield y.float().cpu().numpy(), idx

    with torch.inference_mode():
        for k in range(steps):
            nxt = stitch(run(iter_windows(state, spec, batch_size=batch_size)), spec)
            outs[k] = nxt
            state = np.concatenate([state[1:], nxt[None].astype(np.float32, copy=False)], axis=0)
    return outs


def _forecast_positions(ds_sel, positions, r: Rollout, net, device, bar) -> dict[str, np.ndarray]:
    """Forecast from each init position of ``ds_sel``: ``{name: (n_init, steps, ny, nx)}``."""
    results = {n: [] for n in r.names}
    for pos in positions:
        sub = ds_sel.isel({r.tdim: slice(int(pos) - r.t_in + 1, int(pos) + 1)})
        try:
            mf = to_model_frame(sub, **r.fields_kw)
        except MissingDataError as err:
            when = _fmt(sub[r.tdim].values[-1]) if r.tdim in sub.coords else f"position {int(pos)}"
            raise MissingDataError(
                err.problem + f" (in the {r.t_in} input frame(s) up to init_time {when})",
                fix="pass fill='zero' to forecast (zero velocity where data are missing, e.g. "
                    "land; NaN is put back there in the output), or fill the data first") from None
        hist = mf.data.values.reshape(mf.data.shape[-4:]).astype(np.float32)  # (t_in, C, ny, nx)
        if r.lam != 1.0:  # the velocity scales with the grid (λ w(λx, λ²t)); scalars do not
            hist[:, :r.n_velocity] *= np.float32(r.lam)
        out = _rollout_domain(net, hist, r.steps, r.spec, r.batch_size, device, bar)
        if r.lam != 1.0:
            out[:, :r.n_velocity] /= np.float32(r.lam)
        arr = xr.DataArray(out, dims=("lead_time", "channel", "y", "x"))
        back = from_model_frame(arr, mf)
        y, x = mf.axes.y, mf.axes.x
        for n in r.names:
            results[n].append(back[n].transpose("lead_time", y, x).values.astype(
                _out_dtype(ds_sel[n].dtype), copy=False))
    return {n: np.stack(v) for n, v in results.items()}


def _out_dtype(dtype) -> np.dtype:
    """float32 for float32 (or integer) input, float64 for float64: the network runs in float32."""
    return np.result_type(dtype, np.float32) if np.issubdtype(dtype, np.floating) \
        else np.dtype(np.float32)


class _Job:
    """Everything a dask task needs besides the data (opaque to dask's argument traversal)."""

    def __init__(self, net, device: str, rollout: Rollout):
        self.net, self.device, self.rollout = net, device, rollout


def _lazy_task(ds_sub, positions, job: _Job):
    """One dask task: forecast from one init time (runs in a worker)."""
    dev = torch.device(job.device)
    net = job.net.to(dev)
    return _forecast_positions(ds_sub, positions, job.rollout, net, dev, None)


def _pick(result: dict, name: str) -> np.ndarray:
    return result[name][0]


def _eager_arrays(plan: ForecastPlan) -> dict[str, np.ndarray]:
    """Run the plan now, with a progress bar over steps × window batches."""
    r = plan.rollout
    net = plan.net.to(plan.device)
    total = len(plan.positions) * r.steps * math.ceil(r.spec.n_windows / r.batch_size)
    bar = tqdm(total=total, desc=f"forecast {plan.info['name']}", unit="batch",
               leave=False, **progress_options(plan.progress))
    try:
        return _forecast_positions(plan.ds_sel, plan.positions, r, net, plan.device, bar)
    finally:
        bar.close()


def _lazy_arrays(plan: ForecastPlan) -> dict:
    """The plan as dask arrays: one task per init time."""
    import dask  # imported only for dask-backed input
    import dask.array as dsa

    r, ds_sel = plan.rollout, plan.ds_sel
    ny, nx = int(ds_sel.sizes[plan.axes.y]), int(ds_sel.sizes[plan.axes.x])
    # the model is put in the graph once (one key), not once per task
    job = dask.delayed(_Job(plan.net.to("cpu"), str(plan.device), r),
                       name=f"xequi-forecast-job-{uuid.uuid4().hex}")
    per_init = {n: [] for n in r.names}
    for pos in plan.positions:
        sub = ds_sel.isel({r.tdim: slice(int(pos) - r.t_in + 1, int(pos) + 1)})
        task = dask.delayed(_lazy_task, pure=False)(sub, np.array([r.t_in - 1]), job)
        for n in r.names:
            piece = dask.delayed(_pick, pure=False)(task, n)
            per_init[n].append(dsa.from_delayed(piece, shape=(r.steps, ny, nx),
                                                dtype=_out_dtype(plan.ds[n].dtype)))
    return {n: dsa.stack(per_init[n]) for n in r.names}


# --------------------------------------------------------------------------------------------
# labels
# --------------------------------------------------------------------------------------------
def _lead_times(ds, tdim, steps, grid):
    ct = ds[tdim] if tdim in ds.coords else None
    if ct is None or ct.size < 2:
        raise GridError(f"the time coordinate {tdim!r} has fewer than 2 values: no time step for "
                        "the lead times.", fix="pass data with at least 2 consecutive time steps")
    vals = ct.values
    dtv = vals[1] - vals[0]
    if isinstance(dtv, _dt.timedelta):  # cftime
        dtv = np.timedelta64(int(round(dtv.total_seconds() * 1e9)), "ns")
    return np.arange(1, steps + 1) * dtv


def _assemble(ds, arrays, names, ax, inits, leads, units, provenance) -> xr.Dataset:
    """The labelled forecast Dataset from ``{name: (init, lead, ny, nx)}`` arrays."""
    ct = ds[ax.t] if ax.t in ds.coords else None
    data_vars = {}
    for n in names:
        attrs = copy.deepcopy(dict(ds[n].attrs))
        given = (units or {}).get(n, _units_attr(ds[n]))
        if given is not None:
            attrs["units"] = str(given)
        data_vars[n] = xr.Variable(("init_time", "lead_time", ax.y, ax.x), arrays[n], attrs=attrs)
    coords = {}
    for k, c in ds.coords.items():
        if set(c.dims) <= {ax.x, ax.y} and c.ndim >= 1:
            coords[k] = c.variable.copy(deep=True)
    lead_attrs = {"standard_name": "forecast_period", "long_name": "lead time"}
    if ct is not None and "units" in ct.attrs and not np.issubdtype(leads.dtype, np.timedelta64):
        lead_attrs["units"] = str(ct.attrs["units"]).split(" since ")[0].strip()
    init_attrs = {"standard_name": "forecast_reference_time", "long_name": "initialization time"}
    if ct is not None and "units" in ct.attrs:
        init_attrs["units"] = ct.attrs["units"]
    coords["lead_time"] = ("lead_time", leads, lead_attrs)
    coords["init_time"] = ("init_time", inits, init_attrs)
    out = xr.Dataset(data_vars, coords=coords)
    out = out.assign_coords(valid_time=out.init_time + out.lead_time)
    out["valid_time"].attrs = {"standard_name": "time", "long_name": "valid time"}
    if ct is not None and "units" in ct.attrs and not np.issubdtype(ct.dtype, np.datetime64):
        out["valid_time"].attrs["units"] = ct.attrs["units"]
    attrs = {k: v for k, v in ds.attrs.items() if k not in ("title", "history")}
    attrs.update(provenance)
    hist = ds.attrs.get("history")
    attrs["history"] = ((str(hist) + "\n") if hist else "") + \
        f"{provenance['created']}: forecast by xequi {__version__} with model " \
        f"{provenance['model']!r}, {provenance['forecast_steps']} steps"
    out.attrs = attrs
    return out


# --------------------------------------------------------------------------------------------
# the plan: everything decided before anything is computed
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rollout:
    """How every init time is forecast: what a worker needs besides the data and the network."""

    #: the dataset's variables, in the model's channel order
    names: tuple
    #: keyword arguments of :func:`xequi.fields.to_model_frame` for these data and this model
    fields_kw: dict
    t_in: int
    steps: int
    #: velocity scale factor λ (1 when the grid matches the model's)
    lam: float
    spec: WindowSpec
    batch_size: int
    tdim: str
    n_velocity: int = 2


@dataclass(frozen=True, eq=False)
class ForecastPlan:
    """One forecast, planned: data, network, init and lead times, output; checked, not yet run.

    :func:`forecast` builds one (:func:`_plan_forecast`) and runs it eagerly, lazily (dask) or
    resumably into a zarr store (:func:`_forecast_resumable`).
    """

    #: the caller's dataset (its labels, attrs and coordinates label the forecast)
    ds: xr.Dataset
    rollout: Rollout
    axes: Axes
    #: positions along the time axis of the init times, and their labels
    positions: np.ndarray
    inits: np.ndarray
    leads: np.ndarray
    #: the caller's ``units=`` (for variables lacking units attrs)
    units: Mapping | None
    provenance: dict
    #: :func:`model_info` of the model
    info: dict
    #: the exported network and where it runs
    net: torch.nn.Module
    device: torch.device
    progress: bool = True
    out: Path | None = None
    overwrite: bool = False
    #: size-1 extra dimensions of the data (a single depth level), squeezed for the forecast
    squeezed: tuple = ()

    @property
    def names(self) -> tuple:
        return self.rollout.names

    @property
    def ds_sel(self) -> xr.Dataset:
        """The forecast variables only."""
        return self.ds[list(self.names)]

    def replace(self, **changes) -> ForecastPlan:
        return dataclasses.replace(self, **changes)


def _check_forecast_args(ds, steps, batch_size, fill, units, grid_rtol, resume, out,
                         overwrite) -> None:
    """The argument checks of :func:`forecast` that need neither model nor data."""
    if not isinstance(ds, xr.Dataset):
        raise ParameterError(f"ds must be an xarray.Dataset, got {type(ds).__name__}.",
                             fix="open your data with xarray.open_dataset / open_zarr")
    if isinstance(steps, bool) or not isinstance(steps, Integral) or steps < 1:
        raise ParameterError(f"steps must be a positive integer, got {steps!r}.",
                             fix="pass e.g. steps=10")
    if batch_size is not None and (isinstance(batch_size, bool) or
                                   not isinstance(batch_size, Integral) or batch_size < 1):
        raise ParameterError(f"batch_size must be a positive integer, got {batch_size!r}.",
                             fix="pass e.g. batch_size=32, or None for the default")
    if fill not in ("error", "zero"):
        raise ParameterError(f"fill must be 'error' or 'zero', got {fill!r}.",
                             fix="pass fill='zero' to treat NaN (land) as zero velocity")
    if units is not None and not isinstance(units, Mapping):
        raise ParameterError(f"units must be a mapping {{variable or dimension: units}}, got "
                             f"{units!r}.", fix="pass e.g. units={'u': 'cm/s', 'v': 'cm/s', "
                                                "'x': 'km'}")
    if not (isinstance(grid_rtol, (int, float)) and grid_rtol > 0):
        raise ParameterError(f"grid_rtol must be > 0, got {grid_rtol!r}.", fix="pass e.g. 1e-3")
    if resume and (out is None or Path(out).suffix.lower() != ".zarr"):
        raise ParameterError(f"resume=True needs a .zarr out= to write into, got out={out!r}.",
                             fix="pass out='forecast.zarr' (netCDF cannot be written "
                                 "incrementally), or drop resume=True")
    if out is not None:
        _check_out(out, overwrite)


def _match_variables(ds, info: dict, u, v, scalars, units) -> tuple[tuple, dict, str, str]:
    """The dataset's variables for the model's channels, checked for realness and units:
    (names, target units, u name, v name)."""
    nv = info["n_velocity"]
    _units_mapping(units, ds)  # unknown keys refused, not ignored
    if nv:
        un, vn = find_velocity(ds, u=u, v=v)
    elif u is not None or v is not None:
        raise ParameterError(f"u= / v= were given but the model {info['name']!r} is scalar-only "
                             f"(channels {[c.get('name') for c in info['channels']]}).",
                             fix="drop u= and v=; name the scalar variables with scalars=")
    else:
        un = vn = None
    scal = _find_scalars(ds, info, scalars, un, vn)
    names = (un, vn, *scal) if nv else tuple(scal)
    check_real(ds, names)
    target = _target_units(names, info)
    _check_units(ds, names, units, target, info, n_velocity=nv)
    return names, target, un, vn


def _forecast_regridded(ds, model, steps, init_time, out, overwrite, resume, kw) -> xr.Dataset:
    """``forecast(..., regrid=True)``: on the square metric grid, back on the data's grid."""
    from xequi.regrid import from_metric_grid, to_metric_grid

    if resume:
        raise ParameterError("regrid=True forecasts in memory; resume=True writes a store init "
                             "time by init time.",
                             fix="drop resume, or regrid yourself (xequi.regrid.to_metric_grid) "
                                 "and forecast the metric grid with resume=True")
    metric = to_metric_grid(ds, u=kw["u"], v=kw["v"])
    fc = forecast(metric, model, steps, init_time, **kw)
    fc.attrs.update({k: v for k, v in metric.attrs.items()
                     if k.startswith("xequi_regrid") or k == "crs_wkt"})
    result = from_metric_grid(fc, ds)
    result.attrs["forecast_regridded"] = ("forecast on a square-celled metric grid "
                                          "(xequi.regrid.to_metric_grid), returned on the data's grid")
    if out is not None:
        write_dataset(result, out, overwrite=overwrite)
    return result


def _extra_dims(ds, names) -> dict[str, int]:
    """The dimensions of the variables ``names`` besides time, y and x (depth levels, ensemble
    members), in order, with their sizes."""
    ax = find_axes(ds[list(names)])
    return {str(d): int(ds.sizes[d]) for n in names for d in ds[n].dims
            if d not in (ax.x, ax.y, ax.t)}


def _longer_extra_dim(ds, net, u, v, scalars, units) -> str | None:
    """The first extra dimension of the forecast variables with more than one entry:
    :func:`forecast` runs once per entry and stacks the results along it. None when none."""
    names = _match_variables(ds, model_info(net), u, v, scalars, units)[0]
    return next((d for d, n in _extra_dims(ds, names).items() if n > 1), None)


def _squeeze_size1(ds, names) -> tuple[xr.Dataset, tuple]:
    """``ds`` without the size-1 extra dimensions of ``names`` (one depth level or ensemble
    member, as :func:`xequi.train.fit` takes it: extra dims are samples there); the squeezed
    dims' coordinates stay as scalar coordinates."""
    size1 = tuple(d for d, n in _extra_dims(ds, names).items() if n == 1)
    return (ds.isel({d: 0 for d in size1}) if size1 else ds), size1


def _forecast_grid(ds, names, units, info: dict) -> GridInfo:
    """The data's grid, with a time axis of at least ``t_in`` steps and no extra dimensions
    (:func:`forecast` squeezes or loops over them before planning)."""
    dim_units = {k: val for k, val in (units or {}).items() if k in ds.dims}
    grid = check_grid(ds[list(names)], units=dim_units)
    ax, t_in = grid.axes, info["t_in"]
    if ax.t is None:
        raise GridError(f"no time axis found (dims {tuple(ds.dims)}); a forecast starts from "
                        f"the model's t_in = {t_in} past frames.",
                        fix="add a time dimension (axis='T' / standard_name='time')")
    extra = [d for n in names for d in ds[n].dims if d not in (ax.x, ax.y, ax.t)]
    if extra:
        raise ParameterError(f"the variables have extra dimensions {sorted(set(extra))} besides "
                             f"time, {ax.y!r} and {ax.x!r}.",
                             fix=f"plan through forecast(), which runs once per entry of "
                                 f"{extra[0]!r} and stacks the results, or select one entry, "
                                 f"e.g. ds.isel({extra[0]}=0)")
    if grid.nt < t_in:
        raise ModelError(f"the model {info['name']!r} needs t_in = {t_in} input frames but the "
                         f"data have {grid.nt} time step(s) along {ax.t!r}.",
                         fix=f"pass at least {t_in} consecutive time steps")
    return grid


def _default_window(info: dict) -> tuple[int, int]:
    """The default forecast window: the card's, made square (its shorter side) when it is not.

    A training window clipped to a small domain (``fit`` on 61 x 81 with ``window=64`` records
    (61, 64)) is not square, and a non-square window breaks the exactness of 90-degree rotations
    (measured: rot90 equivariance error 0.33 instead of 8e-7 on 61 x 81 for a 4-block rot-resnet).
    The shorter side keeps every window the size the model was trained on or smaller.
    """
    wy, wx = (int(w) for w in info["window"])
    side = min(wy, wx)
    return side, side


def _receptive_radius(net) -> int:
    """A lower bound of the model's receptive radius in cells: the sum over its convolutions
    (torch's and e2cnn's ``*Conv*`` modules with a ``kernel_size``) of
    ``dilation * (kernel - 1) // 2``; pooling and spectral layers ignored.

    >>> import torch
    >>> _receptive_radius(torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3), torch.nn.Conv2d(4, 2, 5)))
    3
    """
    r = 0
    for m in net.modules():
        k = getattr(m, "kernel_size", None)
        if k is None or "conv" not in type(m).__name__.lower():
            continue
        k = max(k) if isinstance(k, (tuple, list)) else k
        d = getattr(m, "dilation", 1)
        d = max(d) if isinstance(d, (tuple, list)) else d
        if isinstance(k, Integral) and isinstance(d, Integral):
            r += int(d) * (int(k) - 1) // 2
    return r


def _check_domain_size(grid: GridInfo, spec: WindowSpec, net, info: dict) -> None:
    """A GridError for a domain shorter than the model's receptive radius along a non-periodic
    axis: every forecast cell there would be computed from the window padding on both sides
    rather than from the data (a 3 x 3 domain, say)."""
    r = _receptive_radius(net)
    short = [(d, n) for d, n, per in zip((grid.axes.y, grid.axes.x), (grid.ny, grid.nx),
                                         spec.periodic) if not per and n < r + 1]
    if short:
        raise GridError(
            f"the domain ({grid.ny} x {grid.nx} cells) is smaller than the receptive field of "
            f"the model {info['name']!r} (radius >= {r} cells) along "
            f"{', '.join(f'{d!r} ({n} cells)' for d, n in short)}: every forecast cell would "
            "come from the padding around the data rather than from the data.",
            fix=f"forecast a domain of at least {r + 1} cells (better {2 * r + 1}) along each "
                "non-periodic axis (select a larger region), or pass periodic=True if the "
                "domain really is periodic")


def _provenance(info: dict, steps: int, spec: WindowSpec, lam: float) -> dict:
    """The forecast's provenance attrs."""
    return {
        "title": f"xequi forecast ({info['name']})",
        "source": "xequi.forecast.forecast",
        "model": info["name"],
        "model_symmetry_group": info["symmetry_group"],
        "model_symmetries": ", ".join(info["symmetries"]),
        "model_weights_sha256": str(info["weights_sha256"]),
        "model_t_in": info["t_in"],
        "xequi_version": __version__,
        "forecast_steps": steps,
        "forecast_window": list(spec.window),
        "forecast_overlap": list(spec.overlap),
        "forecast_scale_factor": lam,
        "created": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
    }


def _plan_forecast(ds: xr.Dataset, model, steps: int, init_time=None, *, u=None, v=None,
                   scalars=None, units=None, fill="error", batch_size=None, device="auto",
                   progress=True, window=None, overlap=None, periodic=None,
                   grid_rtol=GRID_RTOL, out=None, overwrite=False) -> ForecastPlan:
    """Resolve the model, match the data to it and decide windows, init and lead times
    (metadata only: no data are loaded). Arguments as in :func:`forecast`, already checked
    by :func:`_check_forecast_args`."""
    dev = _device(device)
    net_full = resolve_model(model, device="cpu")
    info = model_info(net_full)
    names, target, un, vn = _match_variables(ds, info, u, v, scalars, units)
    ds, squeezed = _squeeze_size1(ds, names)
    grid = _forecast_grid(ds, names, units, info)
    ax = grid.axes
    lam = _grid_factor(grid, info, grid_rtol)
    positions = _init_positions(ds, ax.t, init_time, info["t_in"])
    leads = _lead_times(ds, ax.t, int(steps), grid)
    labels = ds[ax.t].values if ax.t in ds.coords else np.arange(grid.nt)
    spec = plan_windows((grid.ny, grid.nx),
                        window=_default_window(info) if window is None else window,
                        overlap=overlap,
                        periodic=bool(periodic) if not isinstance(periodic, (tuple, list, dict))
                        else periodic, pad="auto")
    _check_domain_size(grid, spec, net_full, info)
    warn_rotation_on_anisotropic_grid(grid, info["symmetries"], "forecast")
    nv = info["n_velocity"]
    sel = ds[list(names)]  # what the rollout frames hold: units of other variables dropped
    frame_units = None if units is None else {
        k: val for k, val in units.items()
        if k in sel.variables or k in sel.dims or k in ("u", "v")}
    fields_kw = dict(u=un, v=vn, scalars=list(names[nv:]), units=frame_units,
                     target_units=target or None, fill=fill, x=ax.x, y=ax.y, t=ax.t,
                     velocity=bool(nv))
    rollout = Rollout(names=names, fields_kw=fields_kw, t_in=info["t_in"], steps=int(steps),
                      lam=lam, spec=spec, tdim=ax.t, n_velocity=nv,
                      batch_size=int(batch_size if batch_size is not None
                                     else _DEFAULT_BATCH.get(dev.type, 32)))
    provenance = _provenance(info, int(steps), spec, lam)
    if squeezed:
        provenance["forecast_squeezed_dims"] = ", ".join(squeezed)
    return ForecastPlan(
        ds=ds, rollout=rollout, axes=ax, positions=positions, inits=labels[positions],
        leads=leads, units=units, provenance=provenance, info=info, squeezed=squeezed,
        net=_exported(net_full), device=dev, progress=progress,
        out=None if out is None else Path(out), overwrite=overwrite)


# --------------------------------------------------------------------------------------------
# running a plan: resumable writing
# --------------------------------------------------------------------------------------------
def _assemble_plan(plan: ForecastPlan, arrays) -> xr.Dataset:
    out = _assemble(plan.ds, arrays, plan.names, plan.axes, plan.inits, plan.leads, plan.units,
                    plan.provenance)
    # a squeezed size-1 dimension (depth = 5 m) stays on the forecast as a scalar coordinate
    return out.assign_coords({d: plan.ds[d].variable for d in plan.squeezed
                              if d in plan.ds.coords and plan.ds[d].ndim == 0})


def _run_key(plan: ForecastPlan) -> str:
    """Hash of everything that determines a forecast's numbers: data (values, labels, attrs),
    model weights, init times and rollout settings. A partial store is resumed only under it."""
    r, ds_sel = plan.rollout, plan.ds_sel
    h = hashlib.sha256()
    meta = {"names": list(r.names), "inits": [str(i) for i in plan.inits], "steps": r.steps,
            "t_in": r.t_in, "lam": r.lam, "window": list(r.spec.window),
            "overlap": list(r.spec.overlap), "fields": repr(r.fields_kw),
            "weights": str(plan.info["weights_sha256"]), "state": repr(_state_signature(plan.net)),
            "version": __version__, "dims": {str(k): int(v) for k, v in ds_sel.sizes.items()}}
    h.update(json.dumps(meta, sort_keys=True, default=str).encode())
    for n in list(r.names) + [str(c) for c in ds_sel.coords]:
        var = ds_sel[n]
        h.update(repr((n, var.dims, str(var.dtype), sorted(map(str, var.attrs.items())))).encode())
        h.update(np.ascontiguousarray(var.values).tobytes())
    return h.hexdigest()


def _partial_paths(target: Path) -> tuple[Path, Path]:
    """The partial store and its progress record beside ``target``."""
    parent = target.parent if str(target.parent) else Path(".")
    return parent / f".{target.name}.partial", parent / f".{target.name}.partial.json"


def _forecast_resumable(plan: ForecastPlan) -> xr.Dataset:
    """``forecast(..., out=<zarr>, resume=True)``: write init time by init time, resumably.

    Layout: the partial store ``.<name>.partial`` (zarr, the full forecast's metadata and
    coordinates written first, data chunked one init time per chunk) and the progress record
    ``.<name>.partial.json`` (``{"key": run hash, "done": n}``, replaced atomically after each
    init time's chunks are written). A kill between a chunk write and the record update only
    means that init time is computed and written again (region writes are idempotent). When
    all are done the store is renamed into place and the record deleted.
    """
    target = plan.out
    partial, record = _partial_paths(target)
    partial.parent.mkdir(parents=True, exist_ok=True)
    key = _run_key(plan)
    done = _resume_point(partial, record, key)
    if done == 0:  # (re)start: the full layout, data still empty
        _write_template(plan, partial)
        _write_record(record, key, 0)
    net, ax = plan.net.to(plan.device), plan.axes
    bar = tqdm(total=len(plan.positions), initial=done, unit="init", leave=False,
               desc=f"forecast {plan.info['name']} (resumable)",
               **progress_options(plan.progress))
    try:
        for i in range(done, len(plan.positions)):
            arrays = _forecast_positions(plan.ds_sel, plan.positions[i:i + 1], plan.rollout, net,
                                         plan.device, None)
            region = xr.Dataset({n: (("init_time", "lead_time", ax.y, ax.x), arrays[n])
                                 for n in plan.names})
            region.to_zarr(partial, region={"init_time": slice(i, i + 1)}, zarr_format=2,
                           consolidated=False)
            _write_record(record, key, i + 1)
            bar.update(1)
    finally:
        bar.close()
    if target.exists() and not plan.overwrite:  # created by someone else while we ran
        raise ParameterError(f"output {str(target)!r} already exists.",
                             fix="choose another path, or pass overwrite=True")
    move_into_place(partial, target)
    record.unlink(missing_ok=True)
    return xr.open_zarr(target, consolidated=True)


def _resume_point(partial: Path, record: Path, key: str) -> int:
    """How many init times a partial store of this run holds (0: none, start afresh)."""
    if not (record.exists() and partial.exists()):
        return 0
    try:
        prog = json.loads(record.read_text())
    except (OSError, ValueError):
        prog = {}
    if prog.get("key") != key:
        raise ParameterError(
            f"{str(partial)!r} is a partial forecast of a different run (other data, model, "
            "init times or settings): it cannot be resumed with these arguments.",
            fix=f"repeat the interrupted call's arguments, or delete {str(partial)!r} and "
                f"{str(record)!r} to start afresh")
    return int(prog.get("done", 0))


def _write_template(plan: ForecastPlan, partial: Path) -> None:
    """The partial store's full layout (metadata, coordinates), its data not yet written."""
    import dask.array as dsa  # imported only for resumable writing (lazy, never computed)

    _remove(partial)
    ds_sel = plan.ds_sel
    shape = (len(plan.positions), plan.rollout.steps, int(ds_sel.sizes[plan.axes.y]),
             int(ds_sel.sizes[plan.axes.x]))
    empty = {n: dsa.zeros(shape, chunks=(1,) + shape[1:], dtype=_out_dtype(plan.ds[n].dtype))
             for n in plan.names}
    template = _assemble_plan(plan, empty)
    template.attrs["forecast_resumable"] = 1
    template.drop_encoding().to_zarr(partial, mode="w", compute=False, **ZARR_WRITE_KWARGS)


def _write_record(record: Path, key: str, done: int) -> None:
    with atomic_path(record) as tmp:
        tmp.write_text(json.dumps({"key": key, "done": done}))


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------
def _check_out(out, overwrite):
    output_format(out)
    target = Path(out)
    if target.exists() and not overwrite:
        raise ParameterError(f"output {str(target)!r} already exists.",
                             fix="choose another path, or pass overwrite=True (--overwrite on "
                                 "the command line)")
    parent = target.parent if str(target.parent) else Path(".")
    probe = parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK):
        raise ParameterError(f"the output {str(target)!r} cannot be written: "
                             f"{str(probe)!r} is not a writable directory.",
                             fix="choose a path in a directory you can write to")


def _is_lazy(ds, names) -> bool:
    return any(ds[n].chunks is not None for n in names)


def forecast(ds, model, steps: int = 10, init_time=None, *, u: str | None = None,
             v: str | None = None, scalars: Sequence[str] | None = None,
             units: Mapping[str, str] | None = None, fill: str = "error",
             batch_size: int | None = None, device="auto", progress: bool = True, window=None,
             overlap=None, periodic=None, out=None, overwrite: bool = False,
             grid_rtol: float = GRID_RTOL, resume: bool = False,
             regrid: bool = False) -> xr.Dataset:
    """Forecast ``steps`` frames ahead from each init time with a model, on any domain size.

    The rollout is autoregressive on the whole domain: each step windows the current state (the
    last ``t_in`` frames), runs the exported network on all windows in batches, stitches the next
    frame onto the full grid and feeds it back (see the module docstring).

    Parameters
    ----------
    ds : xarray.Dataset or xarray.DataArray
        CF-labelled data with the velocity (and the model's scalar channels), a time axis with at
        least ``t_in`` steps, units on the velocity and on the coordinates. numpy- or
        dask-backed (then the result is lazy). Never modified. A scalar-only model (built with
        ``velocity=False``, e.g. by :func:`xequi.train.fit` on a DataArray) takes a Dataset of
        its scalar variables, or, for one channel, a DataArray of that field. Besides time, y
        and x, a dimension of size 1 (one depth level, one member) is squeezed: its value stays
        a scalar coordinate and ``attrs["forecast_squeezed_dims"]`` names it; over a longer one
        the forecast runs once per entry and the results are stacked along it with its
        coordinate (``attrs["forecast_looped_dims"]``; not with ``resume``).
    model : str, path-like or torch.nn.Module
        A registered model name with shipped weights, a ``.xequi`` checkpoint, or a loaded model
        with a card (:func:`xequi.checkpoint.load_model`, :func:`xequi.train.fit`,
        :func:`as_forecast_model`).
    steps : int, default 10
        Frames to predict (lead times ``dt, 2 dt, ..., steps dt``).
    init_time : label, list of labels or slice, optional
        Initialization time(s), label-based like ``.sel`` (exact labels; a slice selects a
        range, ``slice(None, stop)`` starting at the first usable time). Each forecast uses the
        ``t_in`` frames up to and including its init time. Default: the last time.
    u, v : str, optional
        Velocity variables (:func:`xequi.fields.find_velocity` otherwise).
    scalars : sequence of str, optional
        Variables of the model's scalar channels, in order (default: found by the card's
        channel standard names / names).
    units : mapping, optional
        Units for variables / coordinates lacking them (see :func:`xequi.fields.to_model_frame`).
    fill : {"error", "zero"}, default "error"
        NaN handling in the input frames: raise, or zero velocity (land); NaN is put back in the
        output where the input history was missing at every frame.
    batch_size : int, optional
        Windows per network call (default 32 on CPU, 64 on CUDA).
    device : {"auto", "cpu", "cuda", ...}, default "auto"
        ``"auto"``: CUDA when available.
    progress : bool, default True
        tqdm progress bar over steps × window batches (eager path only).
    window, overlap : int or (int, int), optional
        Window size (default: the card's training window, made square with its shorter side
        when it is not, else :data:`DEFAULT_WINDOW`) and
        overlap (default ``2 * (window // 8)``), see :func:`xequi.windows.plan_windows`.
    periodic : bool or (bool, bool), optional
        Periodic (y, x) axes: windows reach across the edge by wrapping. Default False: windows
        stay inside the domain (as in training), unless it is smaller than the window along an
        axis, which is then padded by reflection.
    out : str or path-like, optional
        Also write the forecast to this ``.zarr`` / ``.nc`` (:func:`xequi.io.write_dataset`:
        atomic, no half-written output). Checked before any computation.
    overwrite : bool, default False
        Replace an existing ``out``.
    grid_rtol : float, default :data:`GRID_RTOL`
        Relative tolerance of the dx / dy / dt check against the model card.
    resume : bool, default False
        Resumable writing to a ``.zarr`` ``out``: the forecast is written init time by init
        time into a partial store beside ``out`` (``.<name>.partial``) with a progress record
        (``.<name>.partial.json``), and moved into place when complete. Calling again with the
        same arguments after an interruption (kill, crash, Ctrl-C) continues after the last
        complete init time and gives the same numbers as an uninterrupted run; a partial store
        of a different run (other data, model or arguments) is refused. The result is then
        read back lazily from ``out``.
    regrid : bool, default False
        Forecast on a local square-celled metric grid and return the result on the data's own
        grid: :func:`xequi.regrid.to_metric_grid` (lat/lon or curvilinear data, velocities
        turned to the projection's axes), the forecast there, then
        :func:`xequi.regrid.from_metric_grid` (back onto the data's grid, east/north, its land
        mask). For rotation models on lat/lon or curvilinear grids, where a 90-degree turn of
        the index grid is not a physical rotation; the model must know the metric grid's
        spacing (train it there). Not with ``resume``.

    Returns
    -------
    xarray.Dataset or xarray.DataArray
        (A DataArray for a DataArray ``ds``: the field, with the provenance in its attrs.)
        The input's velocity (and scalar) variables over ``(init_time, lead_time, <y>, <x>)``
        with the input's spatial dims, coordinates, units and standard names (float32, or
        float64 for float64 input: the network computes in float32); ``lead_time``
        (timedelta64 for datetime times, else numbers in the time unit; ``standard_name:
        forecast_period``), ``init_time`` (``forecast_reference_time``), ``valid_time``;
        land NaN; provenance attrs (``model``, ``model_symmetry_group``,
        ``model_weights_sha256``, ``xequi_version``, ``forecast_steps``, ``created``, ...).

    Raises
    ------
    ParameterError
        steps <= 0, bad batch_size / device / window, an existing ``out`` without
        ``overwrite=True``, an unwritable or unknown-format ``out``.
    ModelError
        The model cannot be resolved, its channels do not match the data (number of scalars),
        the data have fewer than ``t_in`` time steps, or a DataArray for a model that is not a
        one-channel scalar-only model.
    VariableNotFoundError
        Velocity or a scalar channel of the model not found.
    UnitsError
        Units that cannot be converted to the model's.
    GridError
        dx / dy / dt not matching the card (non-scale-equivariant model), non-uniform grid.
    MissingDataError
        An init time not in the data or without enough history (the message names the first
        usable init time); NaN in the input frames with ``fill="error"``.

    Examples
    --------
    >>> import numpy as np, xarray as xr, torch
    >>> from xequi import models
    >>> _ = torch.manual_seed(0)
    >>> net = models.create("resnet", t_in=2, widths=(4,))
    >>> m = as_forecast_model(net, dx="10 km", dt="1 h", units="m s-1")
    >>> t = np.datetime64("2020-01-01", "ns") + np.arange(3) * np.timedelta64(1, "h")
    >>> c = {"x": ("x", np.arange(40) * 10.0, {"units": "km"}),
    ...      "y": ("y", np.arange(30) * 10.0, {"units": "km"}), "time": t}
    >>> rng = np.random.default_rng(0)
    >>> ds = xr.Dataset({k: (("time", "y", "x"), rng.standard_normal((3, 30, 40)),
    ...                      {"units": "m s-1"}) for k in ("u", "v")}, coords=c)
    >>> fc = forecast(ds, m, steps=2, window=16, progress=False)
    >>> fc.u.dims, fc.u.shape, str(fc.lead_time.values[1].astype("timedelta64[h]"))
    (('init_time', 'lead_time', 'y', 'x'), (1, 2, 30, 40), '2 hours')
    """
    if isinstance(ds, xr.DataArray):
        return _forecast_dataarray(ds, model, steps=steps, init_time=init_time, u=u, v=v,
                                   scalars=scalars, units=units, fill=fill,
                                   batch_size=batch_size, device=device, progress=progress,
                                   window=window, overlap=overlap, periodic=periodic, out=out,
                                   overwrite=overwrite, grid_rtol=grid_rtol, resume=resume)
    _check_forecast_args(ds, steps, batch_size, fill, units, grid_rtol, resume, out, overwrite)
    model = resolve_model(model, device="cpu")  # once: a name or path is loaded here only
    if regrid:
        return _forecast_regridded(ds, model, steps, init_time, out, overwrite, resume,
                                   dict(u=u, v=v, scalars=scalars, units=units, fill=fill,
                                        batch_size=batch_size, device=device, progress=progress,
                                        window=window, overlap=overlap, periodic=periodic,
                                        grid_rtol=grid_rtol))
    extra = _longer_extra_dim(ds, model, u, v, scalars, units)
    if extra is not None:  # depth levels, ensemble members: one forecast each, then stacked
        if resume:
            raise ParameterError(f"resume=True forecasts one store per call; the data have an "
                                 f"extra dimension {extra!r} of {ds.sizes[extra]}.",
                                 fix=f"loop over {extra!r} with one out= store each, or drop "
                                     "resume")
        kw = dict(u=u, v=v, scalars=scalars, units=units, fill=fill, batch_size=batch_size,
                  device=device, progress=progress, window=window, overlap=overlap,
                  periodic=periodic, grid_rtol=grid_rtol)
        result = xr.concat([forecast(ds.isel({extra: i}), model, steps, init_time, **kw)
                            for i in range(ds.sizes[extra])], dim=extra, combine_attrs="override")
        if extra in ds.coords:  # the levels' own labels and attributes
            result = result.drop_vars(extra, errors="ignore").assign_coords({extra: ds[extra]})
        result.attrs["forecast_looped_dims"] = extra
        if out is not None:
            write_dataset(result, out, overwrite=overwrite)
        return result
    plan = _plan_forecast(ds, model, int(steps), init_time, u=u, v=v, scalars=scalars,
                          units=units, fill=fill, batch_size=batch_size, device=device,
                          progress=progress, window=window, overlap=overlap, periodic=periodic,
                          grid_rtol=grid_rtol, out=out, overwrite=overwrite)
    if resume:
        return _forecast_resumable(plan)
    arrays = _lazy_arrays(plan) if _is_lazy(ds, plan.names) else _eager_arrays(plan)
    result = _assemble_plan(plan, arrays)
    if out is not None:
        write_dataset(result, out, overwrite=overwrite)
    return result


def _forecast_dataarray(da: xr.DataArray, model, *, u, v, scalars, **kwargs) -> xr.DataArray:
    """:func:`forecast` of a lone scalar field with a scalar-only model (one channel)."""
    if u is not None or v is not None or scalars is not None:
        raise ParameterError("u=, v= and scalars= name variables of a Dataset; a DataArray is "
                             "its one scalar field.", fix="drop them, or pass a Dataset")
    net = resolve_model(model, device="cpu")
    info = model_info(net)
    label = da.name if da.name is not None else "field"
    if info["velocity"] or len(info["channels"]) != 1:
        what = ("takes the velocity (u, v) as its first two channels" if info["velocity"] else
                f"takes {len(info['channels'])} scalar channels")
        raise ModelError(
            f"cannot forecast the DataArray {label!r} alone: the model {info['name']!r} {what} "
            f"({[c.get('name') for c in info['channels']]}); a DataArray is one scalar field.",
            fix="forecast a Dataset with all the model's variables (ds.equi.forecast), or use a "
                "model trained on this scalar alone (xequi.train.fit(name, da) builds one with "
                "velocity=False)")
    routed = routing.as_dataset(da)
    result = forecast(routed.ds, net, scalars=[routed.var], **kwargs)
    # the DataArray carries the forecast's provenance (model, xequi version, ...) beside the
    # field's own attrs (units, standard_name), which win on a clash
    return routing.restore(routed, result, attrs={**result.attrs, **result[routed.var].attrs})


def equivariance_error(ds, model, kind: str, steps: int = 1, init_time=None, *,
                       forecast_kwargs: Mapping[str, Any] | None = None, **params) -> xr.DataArray:
    """Measured equivariance error of a model for one symmetry on this dataset, per lead time.

    ``‖F(g·ds) − g·F(ds)‖ / ‖g·F(ds)‖`` with ``F`` = :func:`forecast` and ``g`` =
    :func:`xequi.symmetry.transform` (``kind``, ``**params``), the norm over all forecast
    variables, init times and grid cells (NaN cells left out) at each lead time.

    Parameters
    ----------
    ds : xarray.Dataset
    model : str, path-like or torch.nn.Module
        As in :func:`forecast`.
    kind : str
        ``"rot90"`` (``k``), ``"uniform_motion"``/``"um"`` (``c``), ``"magnitude"``/``"mag"``
        (``lam``) -- exact for equivariant models, see the module docstring -- or
        ``"rotate"``, ``"translate"``, ``"scale"`` (see :func:`xequi.symmetry.transform`),
        which move the boundary or interpolate and are approximate at best. ``"scale"``
        resamples the input in time but the forecast's lead times are not resampled: pass
        ``time=False`` for a purely spatial check.
    steps : int, default 1
    init_time : optional
        As in :func:`forecast`.
    forecast_kwargs : mapping, optional
        Further :func:`forecast` arguments (``window``, ``fill``, ``device``, ...).
    **params
        Parameters of the action (``k=1``, ``c=(0.5, -0.2)``, ``lam=2.0``, ...).

    Returns
    -------
    xarray.DataArray
        ``equivariance_error`` over ``lead_time``; attrs name the kind, parameters and model.

    Raises
    ------
    Everything :func:`forecast` and :func:`xequi.symmetry.transform` raise.

    Examples
    --------
    >>> import numpy as np, xarray as xr, torch
    >>> from xequi import models
    >>> _ = torch.manual_seed(0)
    >>> m = as_forecast_model(models.create("um-resnet", t_in=1, widths=(4,)), dx="1 km", dt="1 s")
    >>> km = {"units": "km"}
    >>> c = {"x": ("x", np.arange(24.0), km), "y": ("y", np.arange(24.0), km),
    ...      "time": ("time", [0.0, 1.0], {"units": "s"})}
    >>> rng = np.random.default_rng(0)
    >>> ds = xr.Dataset({k: (("time", "y", "x"), rng.standard_normal((2, 24, 24)),
    ...                      {"units": "m s-1"}) for k in ("u", "v")}, coords=c)
    >>> err = equivariance_error(ds, m, "um", steps=2, c=(1.0, -0.5),
    ...                          forecast_kwargs={"window": 16})
    >>> err.dims, bool((err < 1e-4).all())
    (('lead_time',), True)
    """
    kw = dict(forecast_kwargs or {})
    kw.setdefault("progress", False)
    if "out" in kw:
        raise ParameterError("equivariance_error writes nothing: drop out= from forecast_kwargs.",
                             fix="write the forecasts yourself if you need them")
    net = resolve_model(model, device="cpu")
    tparams = dict(params)
    uv = {k: kw[k] for k in ("u", "v") if kw.get(k) is not None}
    f = forecast(ds, net, steps=steps, init_time=init_time, **kw)
    gds = transform(ds, kind, **uv, **tparams)
    fg = forecast(gds, net, steps=steps, init_time=init_time, **kw)
    gf = transform(f, kind, **uv, **tparams)
    model_name = f.attrs.get("model")
    if isinstance(f, xr.DataArray):  # a lone scalar field (scalar-only model)
        f, fg, gf = (a.to_dataset(name="field") for a in (f, fg, gf))
    num = xr.zeros_like(f["lead_time"], dtype=np.float64)
    den = xr.zeros_like(f["lead_time"], dtype=np.float64)
    for n in f.data_vars:
        a = fg[n].transpose("init_time", "lead_time", ...).values
        b = gf[n].transpose("init_time", "lead_time", ...).values
        ok = np.isfinite(a) & np.isfinite(b)
        d2 = np.where(ok, (a - b) ** 2, 0.0).sum(axis=tuple(i for i in range(a.ndim) if i != 1))
        b2 = np.where(ok, b ** 2, 0.0).sum(axis=tuple(i for i in range(a.ndim) if i != 1))
        num = num + d2
        den = den + b2
    err = np.sqrt(num / den.where(den > 0))
    err = err.rename("equivariance_error")
    err.attrs = {"long_name": "relative equivariance error ||F(g ds) - g F(ds)|| / ||g F(ds)||",
                 "units": "1", "kind": str(kind),
                 "params": ", ".join(f"{k}={v!r}" for k, v in params.items()),
                 "model": str(model_name)}
    ratio = breaking_ratios(net)["breaking_ratio"]
    if ratio is not None:  # a relaxed model: the size of its symmetry-breaking part
        err.attrs["breaking_ratio"] = float(ratio)
    return err.drop_vars([c for c in err.coords if c != "lead_time"])
