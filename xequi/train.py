"""Fitting next-frame models: rollout loss, validation, best-epoch weights, resumable runs.

:func:`fit` trains a model from :mod:`xequi.models` on model-frame data (or on a CF dataset,
converted with :func:`xequi.fields.to_model_frame`) the way Wang, Walters & Yu (ICLR 2021)
trained theirs: MSE summed over an autoregressive rollout of ``rollout_steps`` frames
(predictions fed back), Adam with weight decay, learning rate × ``lr_decay`` per epoch, early
stopping on the validation loss. Unlike the paper's released code (defect 5 in
``shared/reference.md``) the weights returned are those of the **best validation epoch**, not
the last.

Normalization that keeps the symmetries
---------------------------------------
Statistics come from the training split only (:func:`compute_normalization`) and are applied
*outside* the network (:class:`NormalizedModel`, which lives in :mod:`xequi.models.normalized`
and is re-exported here): the network sees ``(x - offset) / scale`` and its output is mapped
back with ``y * scale + offset``. The velocity channels (u, v) share **one** scale, the rms speed
``sqrt(mean(u² + v²))`` of the training data, with no offset: a per-component mean / std would
break rotation equivariance (u and v would be scaled differently) and a mean subtraction would
break the Mag symmetry. Since one positive scalar commutes with rotations, uniform motion
(``c`` becomes ``c / scale``), magnitude and spatial scaling, a network equivariant to any of
them stays equivariant in physical units. Each scalar channel gets its own scale (its std) and
offset (its mean), except for models claiming the ``magnitude`` symmetry, which acts on scalars
too: there the scalar offset is 0 and the scale its rms.

Reproducibility and resuming
----------------------------
All randomness (model initialisation when a name is given, shuffling, augmentation) derives from
``seed``; on CPU two runs with the same arguments give bit-identical weights. Global torch RNG
state is saved and restored around :func:`fit`, so calling it does not disturb the caller's.
With ``checkpoint_dir=``, the full training state (weights, optimizer, scheduler, epoch, RNG
states, best weights, history) is written atomically at the end of every epoch to
``checkpoint_dir/train_state.pt`` (read back with ``torch.load(weights_only=True)``: tensors and
plain containers only, nothing executable); calling :func:`fit` again with the same arguments
resumes after the last completed epoch and ends, on CPU, bit-identical to an uninterrupted run.
The best model is also saved as ``checkpoint_dir/best.xequi`` (:mod:`xequi.checkpoint`).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from torch import nn
from tqdm.auto import tqdm

from xequi import checkpoint as ck
from xequi import fields, models, routing, symmetry
from xequi import windows as W
from xequi._version import __version__
from xequi.errors import (
    CheckpointError,
    GridError,
    MissingDataError,
    ModelError,
    ParameterError,
)
from xequi.io import atomic_path
from xequi.models.card import ModelCard, quantity_to_str
from xequi.models.normalized import NormalizedModel, compute_normalization
from xequi.models.normalized import resolve_device as _device

__all__ = ["fit", "NormalizedModel", "compute_normalization", "rollout_loss", "STATE_FILE",
           "BEST_FILE", "FitSettings"]

#: Name of the resumable training-state file inside ``checkpoint_dir``.
STATE_FILE = "train_state.pt"
#: Name of the best-model checkpoint written inside ``checkpoint_dir``.
BEST_FILE = "best.xequi"
_STATE_VERSION = 1
_DIMS = ("time", "channel", "y", "x")


# --------------------------------------------------------------------------------------------
# loss
# --------------------------------------------------------------------------------------------
def rollout_loss(model: nn.Module, history: torch.Tensor, target: torch.Tensor,
                 amp_dtype: torch.dtype | None = None) -> torch.Tensor:
    """MSE summed over an autoregressive rollout (predictions fed back).

    Parameters
    ----------
    model : torch.nn.Module
        ``(B, t_in, C, H, W) -> (B, C, H, W)``.
    history : torch.Tensor
        ``(B, t_in, C, H, W)``.
    target : torch.Tensor
        ``(B, k, C, H, W)``: the next ``k`` frames.
    amp_dtype : torch.dtype, optional
        Run the network under CUDA autocast with this dtype (bf16); the loss stays float32.

    Returns
    -------
    torch.Tensor
        Scalar ``sum_k mean((pred_k - target_k)²)``.

    Examples
    --------
    >>> import torch
    >>> class Persist(torch.nn.Module):
    ...     def forward(self, x):
    ...         return x[:, -1]
    >>> float(rollout_loss(Persist(), torch.zeros(1, 2, 2, 4, 4), torch.ones(1, 3, 2, 4, 4)))
    3.0
    """
    window = history
    loss = history.new_zeros((), dtype=torch.float32)
    for k in range(target.shape[1]):
        if amp_dtype is not None:
            with torch.autocast(device_type="cuda", dtype=amp_dtype):
                pred = model(window)
        else:
            pred = model(window)
        pred = pred.float()
        loss = loss + torch.mean((pred - target[:, k].float()) ** 2)
        window = torch.cat([window[:, 1:], pred.to(window.dtype)[:, None]], dim=1)
    return loss


# --------------------------------------------------------------------------------------------
# data preparation
# --------------------------------------------------------------------------------------------
def _parse_units_attr(text: str, names: Sequence[str]) -> list | None:
    """Per-channel units from the model frame's ``units`` attr ``"u: m/s, v: m/s, T: K"``."""
    if ":" not in text:
        return [text] * len(names)
    found = {}
    for part in text.split(","):
        if ":" in part:
            k, _, val = part.partition(":")
            found[k.strip()] = val.strip()
    return [found.get(n) for n in names]


def _model_frame(data, fields_kwargs: Mapping | None) -> tuple[xr.DataArray, dict]:
    """(float32 numpy-backed DataArray (..., time, channel, y, x), metadata for the card).

    The metadata holds ``n_velocity``, ``channels`` (name, standard_name, units per channel),
    ``grid`` (dx, dy, dt as pint quantities or strings) and ``description``.
    """
    if isinstance(data, xr.DataArray) and "channel" not in data.dims and data.ndim <= 3:
        data, fields_kwargs = _lone_scalar(data, fields_kwargs)
    if isinstance(data, xr.Dataset):
        try:
            data = fields.to_model_frame(data, **dict(fields_kwargs or {}))
        except MissingDataError as err:
            raise MissingDataError(
                err.problem, fix="pass fields_kwargs={'fill': 'zero'} to fit (zero velocity where "
                                 "data are missing, e.g. land), or fill / drop the missing values "
                                 "first") from None
    elif fields_kwargs:
        raise ParameterError("fields_kwargs apply to a Dataset; data is already in the model frame.",
                             fix="drop fields_kwargs, or pass the Dataset")
    if isinstance(data, fields.ModelFrame):
        da, meta = data.data, _frame_meta(data)
    elif isinstance(data, xr.DataArray):
        da, meta = data, {}
    else:
        raise ParameterError(
            f"data must be an xarray.Dataset (CF-labelled), a ModelFrame or a model-frame DataArray "
            f"(time, channel, y, x), got {type(data).__name__}.",
            fix="pass ds, or xequi.fields.to_model_frame(ds)")
    frame = _checked_frame(da, meta)
    if "channels" not in meta:
        meta.update(_dataarray_meta(da, meta["n_velocity"]))
    for i, ch in enumerate(meta["channels"]):
        ch["index"] = i
    return frame, meta


def _lone_scalar(da: xr.DataArray, fields_kwargs: Mapping | None) -> tuple[xr.Dataset, dict]:
    """A lone scalar field (e.g. temperature over time, y, x) as a Dataset for a scalar-only
    model frame, with the fields_kwargs that select it."""
    kw = dict(fields_kwargs or {})
    for key in ("u", "v", "scalars", "velocity"):
        if kw.pop(key, None) is not None:
            raise ParameterError(f"fields_kwargs[{key!r}] does not apply to a lone scalar "
                                 "field: the DataArray is the only channel.",
                                 fix=f"drop {key!r}, or pass a Dataset")
    routed = routing.as_dataset(da, placeholder="scalar")
    return routed.ds, {**kw, "velocity": False, "scalars": [routed.var]}


def _frame_meta(mf) -> dict:
    """Card metadata of a :class:`xequi.fields.ModelFrame`."""
    attrs = mf.dataset_attrs
    return {
        "channels": [{"name": n, "standard_name": mf.attrs.get(n, {}).get("standard_name"),
                      "units": mf.units_model.get(n)} for n in mf.names],
        "grid": {"dx": mf.grid.dx, "dy": mf.grid.dy, "dt": mf.grid.dt},
        "n_velocity": mf.n_velocity,
        "description": attrs.get("title") or attrs.get("source") or attrs.get("description"),
    }


def _dataarray_meta(da: xr.DataArray, nv: int) -> dict:
    """Card metadata of a bare model-frame DataArray, from its coords and attrs."""
    C = da.sizes["channel"]
    names = ([str(v) for v in da.coords["channel"].values] if "channel" in da.coords
             else ["u", "v"][:nv] + [f"scalar{i}" for i in range(C - nv)])
    units = da.attrs.get("units")
    units = _parse_units_attr(units, names) if isinstance(units, str) else [None] * C
    std = da.attrs.get("standard_names")
    std = list(std) if isinstance(std, (list, tuple)) and len(std) == C else [None] * C
    return {
        "channels": [{"name": n, "standard_name": s, "units": u}
                     for n, s, u in zip(names, std, units)],
        "grid": {k: da.attrs[k] for k in ("dx", "dy", "dt") if k in da.attrs},
        "description": da.attrs.get("description") or da.attrs.get("title") or da.attrs.get("source"),
    }


def _checked_frame(da: xr.DataArray, meta: dict) -> xr.DataArray:
    """The data as a float32 model frame, after checking dims, channels and finiteness (sets
    ``meta["n_velocity"]`` when the data do not say)."""
    missing = [d for d in _DIMS if d not in da.dims]
    if missing:
        raise GridError(f"model-frame data must have dims {_DIMS}, got {da.dims}.",
                        fix="convert the Dataset with xequi.fields.to_model_frame(ds), or pass "
                            "the Dataset itself (a lone scalar field: a DataArray over time and "
                            "the two spatial dims)")
    da = da.transpose(..., *_DIMS)
    C = da.sizes["channel"]
    nv = meta.setdefault("n_velocity", int(da.attrs.get("n_velocity", 2)))
    if nv not in (0, 2):
        raise GridError(f"model-frame data has n_velocity={nv}; it must be 2 (channels [u, v, "
                        "*scalars]) or 0 (scalars only).", fix="set attrs['n_velocity'] to 2 or 0")
    if C < max(nv, 1):
        raise GridError(f"model-frame data needs at least the 2 velocity channels (u, v), got {C}."
                        if nv else "model-frame data has no channel.",
                        fix="include both velocity components, or set attrs['n_velocity'] = 0 "
                            "for scalar-only data" if nv else "include at least one channel")
    values = np.asarray(da.values, dtype=np.float32)
    bad = ~np.isfinite(values)
    if bad.any():
        where = np.argwhere(bad)[0]
        raise MissingDataError(
            f"the training data has {int(bad.sum())} NaN/inf values (first at index "
            f"{dict(zip(da.dims, (int(i) for i in where)))}).",
            fix="pass fill='zero' in fields_kwargs (zero velocity on land), fill them yourself "
                "(da.fillna(0)), or select a region / period without missing data")
    return xr.DataArray(values, dims=da.dims, coords={k: v for k, v in da.coords.items()},
                        attrs=dict(da.attrs), name=da.name)


def _grid_card(meta: Mapping) -> dict:
    grid = meta.get("grid") or {}
    return {k: quantity_to_str(grid[k]) for k in ("dx", "dy", "dt") if grid.get(k) is not None}


# --------------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------------
def _int(name, v, lo):
    if isinstance(v, bool) or not isinstance(v, Integral) or v < lo:
        raise ParameterError(f"{name} must be an integer >= {lo}, got {v!r}.",
                             fix=f"pass e.g. {name}={max(lo, 1)}")
    return int(v)


def _float(name, v, lo, hi=None, lo_open=False):
    bad = isinstance(v, bool) or not isinstance(v, Real) or not math.isfinite(v)
    if bad or v < lo or (lo_open and v == lo) or (hi is not None and v > hi):
        rng = f"{'(' if lo_open else '['}{lo}, {hi if hi is not None else 'inf'}]"
        raise ParameterError(f"{name} must be a number in {rng}, got {v!r}.", fix=f"pass a valid {name}")
    return float(v)


@dataclass(frozen=True)
class FitSettings:
    """The checked training settings of one :func:`fit` call (everything but model and data)."""

    rollout_steps: int
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    lr_decay: float
    patience: int | None
    val_fraction: float
    gap: int
    window: object
    stride: object
    periodic: object
    augment: tuple
    seed: int
    device: torch.device
    amp_dtype: torch.dtype | None
    progress: bool
    callbacks: tuple

    def hyperparameters(self, t_in: int, window) -> dict:
        """The card's ``training.hyperparameters`` (``window`` as clipped to the domain)."""
        return dict(t_in=t_in, rollout_steps=self.rollout_steps, epochs=self.epochs,
                    batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
                    lr_decay=self.lr_decay, patience=self.patience,
                    val_fraction=self.val_fraction, gap=self.gap,
                    window=list(window) if not isinstance(window, dict) else window,
                    stride=self.stride if not isinstance(self.stride, tuple) else list(self.stride),
                    periodic=(self.periodic if not isinstance(self.periodic, tuple)
                              else list(self.periodic)),
                    augment=list(self.augment), seed=self.seed, amp=self.amp_dtype is not None)


def _check_settings(*, rollout_steps, epochs, batch_size, lr, weight_decay, lr_decay, patience,
                    val_fraction, gap, window, stride, periodic, augment, seed, device, amp,
                    progress, callbacks) -> FitSettings:
    """Check :func:`fit`'s arguments (ParameterError naming the first bad one)."""
    checked = dict(
        rollout_steps=_int("rollout_steps", rollout_steps, 1),
        epochs=_int("epochs", epochs, 1),
        batch_size=_int("batch_size", batch_size, 1),
        lr=_float("lr", lr, 0.0, lo_open=True),
        weight_decay=_float("weight_decay", weight_decay, 0.0),
        lr_decay=_float("lr_decay", lr_decay, 0.0, 1.0, lo_open=True),
        patience=None if patience is None else _int("patience", patience, 1),
        val_fraction=_float("val_fraction", val_fraction, 0.0, 0.9),
        gap=_int("gap", gap, 0), seed=_int("seed", seed, 0))
    augment = tuple((augment,) if isinstance(augment, str) else (augment or ()))
    unknown = [k for k in augment if k not in symmetry.KINDS]
    if unknown:
        raise ParameterError(f"unknown augmentation kind(s) {unknown}.",
                             fix=f"use kinds of xequi.symmetry: {sorted(set(symmetry.KINDS))}")
    callbacks = tuple(callbacks or ())
    if not all(callable(cb) for cb in callbacks):
        raise ParameterError(f"callbacks must be callables cb(epoch, model, logs), got "
                             f"{[type(cb).__name__ for cb in callbacks]}.",
                             fix="pass e.g. callbacks=[lambda epoch, model, logs: print(logs)]")
    dev = _device(device)
    use_amp = bool(amp) and dev.type == "cuda"
    if amp and not use_amp:
        warnings.warn("amp=True is ignored on CPU (bf16 autocast is used on CUDA only).", stacklevel=3)
    return FitSettings(**checked, window=window, stride=stride, periodic=periodic,
                       augment=augment, device=dev, amp_dtype=torch.bfloat16 if use_amp else None,
                       progress=progress, callbacks=callbacks)


def _prepare_model(model_or_name, t_in, n_channels, size, model_kwargs, seed, n_velocity=2):
    """(bare network, its name); a new network for a name, a copy of a given one."""
    if isinstance(model_or_name, str):
        t_in = 4 if t_in is None else _int("t_in", t_in, 1)
        torch.manual_seed(seed)
        kw = dict(model_kwargs or {})
        if "velocity" in kw and bool(kw["velocity"]) != bool(n_velocity):
            raise ModelError(f"model_kwargs velocity={kw['velocity']!r} but the data "
                             + ("have" if n_velocity else "have no") + " velocity channels.",
                             fix="drop velocity from model_kwargs: it follows the data")
        kw["velocity"] = bool(n_velocity)
        net = models.create(model_or_name, t_in=t_in, n_scalars=n_channels - n_velocity,
                            size=size, **kw)
    elif isinstance(model_or_name, nn.Module):
        if model_kwargs:
            raise ParameterError("model_kwargs only apply when the model is given by name.",
                                 fix="drop model_kwargs, or pass the model's name")
        src = model_or_name.model if isinstance(model_or_name, NormalizedModel) else model_or_name
        net = copy.deepcopy(src)
        net_t_in = (getattr(net, "config", None) or {}).get("t_in", getattr(net, "t_in", None))
        if t_in is not None and net_t_in is not None and int(t_in) != int(net_t_in):
            raise ModelError(f"t_in={t_in} was passed but the model takes t_in={net_t_in}.",
                             fix="drop t_in, or create the model with that t_in")
    else:
        raise ParameterError(f"model_or_name must be a model name or a torch.nn.Module, got "
                             f"{type(model_or_name).__name__}.",
                             fix="pass e.g. 'rot-resnet' (see xequi.models.available())")
    config = getattr(net, "config", None) or {}
    t_net = config.get("t_in", getattr(net, "t_in", None))
    if t_net is None:
        raise ModelError(f"cannot tell how many input frames the {type(net).__name__} takes.",
                         fix="use a model from xequi.models.create (it records config['t_in'])")
    net_vel = 2 if config.get("velocity", getattr(net, "velocity", True)) else 0
    name = config.get("name", type(net).__name__)
    if net_vel != n_velocity:
        raise ModelError(
            f"the model {name!r} " + ("takes the velocity (u, v) first" if net_vel else
                                      "is scalar-only (velocity=False)")
            + " but the data " + ("have no velocity channels" if net_vel else
                                  "start with the velocity (u, v)") + ".",
            fix="train a model created with velocity=False on scalar data (a model name "
                "does that for you)" if not n_velocity else
                "pass data with u, v, or a model created with velocity=True")
    expected = getattr(net, "channels", None)
    if expected is None and "n_scalars" in config:
        expected = net_vel + int(config["n_scalars"])
    if expected is not None and int(expected) != n_channels:
        what = (f"takes {expected} channels (u, v + {int(expected) - 2} scalars)" if net_vel
                else f"is scalar-only and takes {expected} channel(s)")
        raise ModelError(
            f"the model {name!r} {what} but the data have {n_channels}.",
            fix=f"create the model with n_scalars={n_channels - net_vel}"
                + (", or select the channels it was built for" if net_vel else ", velocity=False"))
    return net, int(t_net), config.get("name", type(net).__name__)


def _window_size(window, shape):
    if window is None:
        return tuple(shape)
    if isinstance(window, Integral) and not isinstance(window, bool):
        return tuple(min(int(window), n) for n in shape)
    return window


def _sha256_array(a: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(str(a.shape).encode())
    h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


@dataclass
class _Data:
    """The training data of one :func:`fit`, normalized and windowed."""

    norm: dict
    train_r: range
    val_r: range | None
    window: object
    train_ds: W.WindowDataset
    val_ds: W.WindowDataset | None
    train_loader: torch.utils.data.DataLoader
    val_loader: torch.utils.data.DataLoader | None
    shuffle_gen: torch.Generator
    sha256: str


def _split(n_time: int, t_net: int, s: FitSettings) -> tuple[range, range | None]:
    """Training and validation time ranges (the validation range last; None without one)."""
    if s.val_fraction > 0:
        try:
            return W.split_by_time(n_time, (1.0 - s.val_fraction, s.val_fraction), t_in=t_net,
                                   t_out=s.rollout_steps, gap=s.gap)
        except ParameterError as err:
            problem = err.problem.replace("split 0", "training").replace("split 1", "validation")
            raise ParameterError(
                problem, fix=f"use more time steps, change val_fraction (now {s.val_fraction}), "
                             f"or a smaller t_in / rollout_steps / gap") from None
    if n_time < t_net + s.rollout_steps:
        raise ParameterError(f"only {n_time} time steps, fewer than t_in + rollout_steps = "
                             f"{t_net + s.rollout_steps} for one sample.",
                             fix="use more time steps, or a smaller t_in / rollout_steps")
    return range(n_time), None


def _prepare_data(frame: xr.DataArray, n_velocity: int, symmetries, t_net: int,
                  s: FitSettings) -> _Data:
    """Split by time, normalize with the training split's statistics, cut into windows."""
    n_time = frame.sizes["time"]
    train_r, val_r = _split(n_time, t_net, s)
    values = frame.values
    t_axis = frame.dims.index("time")
    norm = compute_normalization(
        values[(slice(None),) * t_axis + (slice(train_r.start, train_r.stop),)], symmetries,
        n_velocity=n_velocity)
    norm["computed_on"] = (f"training split only: time indices {train_r.start}..{train_r.stop - 1} "
                           f"of {n_time}")
    sc = np.asarray(norm["scale"], dtype=np.float32)[:, None, None]
    of = np.asarray(norm["offset"], dtype=np.float32)[:, None, None]
    normed = frame.copy(data=((values - of) / sc).astype(np.float32))
    win = _window_size(s.window, (frame.sizes["y"], frame.sizes["x"]))
    common = dict(t_in=t_net, t_out=s.rollout_steps, window=win, stride=s.stride,
                  periodic=s.periodic)
    train_ds = W.WindowDataset(normed, time_index=train_r, augment=s.augment or None, seed=s.seed,
                               vector=(0, 1) if n_velocity else None, **common)
    val_ds = None if val_r is None else W.WindowDataset(normed, time_index=val_r, **common)
    shuffle_gen = torch.Generator().manual_seed(s.seed)
    train_loader = torch.utils.data.DataLoader(train_ds, batch_size=s.batch_size, shuffle=True,
                                               generator=shuffle_gen, num_workers=0)
    val_loader = (torch.utils.data.DataLoader(val_ds, batch_size=s.batch_size, shuffle=False)
                  if val_ds is not None else None)
    return _Data(norm, train_r, val_r, win, train_ds, val_ds, train_loader, val_loader,
                 shuffle_gen, _sha256_array(values))


# --------------------------------------------------------------------------------------------
# training state (resume)
# --------------------------------------------------------------------------------------------
def _cpu_state(sd: Mapping) -> dict:
    return {k: (v.detach().to("cpu").clone() if isinstance(v, torch.Tensor) else copy.deepcopy(v))
            for k, v in sd.items()}


def _load_state(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt file, or something weights_only refuses
        raise CheckpointError(f"cannot read the training state {str(path)!r}: {str(err).splitlines()[0]}",
                              fix="delete it to start afresh, or pass another checkpoint_dir") from None
    if not isinstance(state, dict) or state.get("version") != _STATE_VERSION:
        raise CheckpointError(
            f"the training state {str(path)!r} has format version "
            f"{state.get('version') if isinstance(state, dict) else None!r}; this xequi writes "
            f"version {_STATE_VERSION}.", fix="delete it to start afresh, or pass another checkpoint_dir")
    return state


@dataclass
class _Run:
    """The mutable state of a training run: what the training-state file saves and restores."""

    net: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    signature: str
    state_path: Path | None
    history: dict = dataclasses.field(default_factory=lambda: {
        "epoch": [], "train_loss": [], "val_loss": [], "lr": [], "best_epoch": None,
        "best_val_loss": None, "stopped_early": False})
    best_state: dict | None = None
    best_val: float = math.inf
    bad_epochs: int = 0
    epoch: int = 0
    done: bool = False


def _start_run(net: nn.Module, data: _Data, s: FitSettings, hyper: dict,
               checkpoint_dir) -> _Run:
    """Optimizer and scheduler for ``net``; the saved state of an interrupted run, if any."""
    net = net.to(s.device)
    optimizer = torch.optim.Adam(net.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=s.lr_decay)
    # what must match to resume (epochs may grow: a finished run can be extended)
    signature = json.dumps({"model": getattr(net, "config", {}) or {"class": type(net).__name__},
                            "hyper": {k: v for k, v in hyper.items() if k != "epochs"},
                            "data_sha256": data.sha256}, sort_keys=True, default=str)
    run = _Run(net, optimizer, scheduler, signature, _state_path(checkpoint_dir))
    if run.state_path is not None and run.state_path.exists():
        _resume(run, data, s)
    return run


def _state_path(checkpoint_dir) -> Path | None:
    if checkpoint_dir is None:
        return None
    ckdir = Path(checkpoint_dir)
    try:
        ckdir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ParameterError(f"cannot create checkpoint_dir {str(ckdir)!r}: {err.strerror}.",
                             fix="pass a directory you can write to") from None
    return ckdir / STATE_FILE


def _resume(run: _Run, data: _Data, s: FitSettings) -> None:
    """Restore the run from its training-state file (refused for another run's state)."""
    st = _load_state(run.state_path)
    if st["signature"] != run.signature:
        raise CheckpointError(
            f"the training state in {str(run.state_path.parent)!r} belongs to a different run "
            "(other model, data or arguments); refusing to resume from it.",
            fix="pass the same arguments and data as the interrupted run, another "
                "checkpoint_dir, or delete the directory to start afresh")
    run.net.load_state_dict(st["model"])
    run.optimizer.load_state_dict(st["optimizer"])
    run.scheduler.load_state_dict(st["scheduler"])
    data.shuffle_gen.set_state(st["shuffle_rng"])
    torch.set_rng_state(st["torch_rng"])
    if s.device.type == "cuda" and st.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(st["cuda_rng"], s.device)
    run.history = json.loads(st["history"])
    run.best_state = st["best_model"]
    run.best_val = float(st["best_val"])
    run.bad_epochs = int(st["bad_epochs"])
    run.epoch = int(st["epoch"])
    run.done = bool(run.history["stopped_early"]) or run.epoch >= s.epochs


def _save_state(run: _Run, data: _Data, s: FitSettings) -> None:
    """Write the training state atomically (read back by :func:`_resume`)."""
    dev = s.device
    with atomic_path(run.state_path) as tmp:
        torch.save({
            "version": _STATE_VERSION,
            "signature": run.signature,
            "epoch": run.epoch,
            "done": run.done,
            "model": _cpu_state(run.net.state_dict()),
            "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(),
            "shuffle_rng": data.shuffle_gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None,
            "best_model": run.best_state,
            "best_val": run.best_val,
            "bad_epochs": run.bad_epochs,
            "history": json.dumps(run.history),
        }, tmp)


# --------------------------------------------------------------------------------------------
# the epoch loop
# --------------------------------------------------------------------------------------------
def _train_epoch(run: _Run, data: _Data, s: FitSettings) -> float:
    """One pass over the training windows; the mean training loss."""
    data.train_ds.set_epoch(run.epoch)
    run.net.train()
    total, count = 0.0, 0
    for xb, yb in tqdm(data.train_loader, desc=f"epoch {run.epoch}", leave=False,
                       disable=not s.progress, unit="batch", dynamic_ncols=True):
        xb, yb = xb.to(s.device), yb.to(s.device)
        run.optimizer.zero_grad(set_to_none=True)
        loss = rollout_loss(run.net, xb, yb, s.amp_dtype)
        if not torch.isfinite(loss):
            raise ParameterError(
                f"the training loss became {float(loss)} in epoch {run.epoch}.",
                fix="lower lr, check the data for extreme values, or use amp=False")
        loss.backward()
        run.optimizer.step()
        total += float(loss.detach()) * xb.shape[0]
        count += xb.shape[0]
    return total / max(count, 1)


def _validate(run: _Run, data: _Data, s: FitSettings) -> float | None:
    """The mean validation loss (None without validation)."""
    if data.val_loader is None:
        return None
    run.net.eval()
    vt, vc = 0.0, 0
    with torch.no_grad():
        for xb, yb in data.val_loader:
            xb, yb = xb.to(s.device), yb.to(s.device)
            vt += float(rollout_loss(run.net, xb, yb, s.amp_dtype)) * xb.shape[0]
            vc += xb.shape[0]
    run.net.train()  # state dicts are taken in training mode (e2cnn caches filters in eval)
    return vt / max(vc, 1)


def _record_epoch(run: _Run, train_loss: float, val_loss: float | None, lr_now: float,
                  s: FitSettings) -> None:
    """History, best weights, early stopping after an epoch."""
    h = run.history
    h["epoch"].append(run.epoch)
    h["train_loss"].append(train_loss)
    h["val_loss"].append(val_loss)
    h["lr"].append(lr_now)
    score = val_loss if val_loss is not None else -run.epoch  # no validation: keep the last
    if score < run.best_val:
        run.best_val = score
        run.best_state = _cpu_state(run.net.state_dict())
        h["best_epoch"] = run.epoch
        h["best_val_loss"] = val_loss
        run.bad_epochs = 0
    else:
        run.bad_epochs += 1
    if s.patience is not None and val_loss is not None and run.bad_epochs >= s.patience:
        h["stopped_early"] = True
        run.done = True
    if run.epoch >= s.epochs:
        run.done = True


def _epoch_loop(run: _Run, data: _Data, s: FitSettings, name: str) -> None:
    """Train until ``epochs``, early stopping, or an exception (the state is saved each epoch)."""
    bar = tqdm(total=s.epochs, initial=run.epoch, desc=f"fit {name}", unit="epoch",
               disable=not s.progress, dynamic_ncols=True)
    try:
        while not run.done and run.epoch < s.epochs:
            run.epoch += 1
            lr_now = run.optimizer.param_groups[0]["lr"]
            train_loss = _train_epoch(run, data, s)
            val_loss = _validate(run, data, s)
            run.scheduler.step()
            _record_epoch(run, train_loss, val_loss, lr_now, s)
            bar.update(1)
            bar.set_postfix(train=f"{train_loss:.4g}",
                            val="-" if val_loss is None else f"{val_loss:.4g}",
                            best=run.history["best_epoch"])
            if run.state_path is not None:
                _save_state(run, data, s)
            logs = {"train_loss": train_loss, "val_loss": val_loss, "lr": lr_now,
                    "best_epoch": run.history["best_epoch"]}
            for cb in s.callbacks:
                cb(run.epoch, run.net, logs)
    finally:
        bar.close()


# --------------------------------------------------------------------------------------------
# the result
# --------------------------------------------------------------------------------------------
def _fit_card(model: NormalizedModel, frame: xr.DataArray, meta: dict, data: _Data,
              s: FitSettings, hyper: dict, history: dict, description: str | None) -> dict:
    """The model card of a trained model (see :mod:`xequi.checkpoint` for the keys)."""
    desc = description or meta.get("description")
    training = {
        "data": desc or "model-frame data (no description given)",
        "data_shape": {str(d): int(n) for d, n in frame.sizes.items()},
        "data_sha256": data.sha256,
        "train_time_index": [data.train_r.start, data.train_r.stop],
        "val_time_index": None if data.val_r is None else [data.val_r.start, data.val_r.stop],
        "train_samples": len(data.train_ds),
        "val_samples": 0 if data.val_ds is None else len(data.val_ds),
        "loss": f"sum over {s.rollout_steps} rollout steps of the per-step MSE, in normalized units",
        "optimizer": "Adam (L2 weight decay), learning rate x lr_decay per epoch",
        "hyperparameters": hyper,
        "device": str(s.device),
        "xequi_version": __version__,
    }
    metrics = {
        "history": {k: history[k] for k in ("epoch", "train_loss", "val_loss", "lr")},
        "best_epoch": history["best_epoch"],
        "best_val_loss": history["best_val_loss"],
        "stopped_early": history["stopped_early"],
        "weights": "best validation epoch" if data.val_r is not None else "last epoch (no validation)",
    }
    model.card = ModelCard(t_in=hyper["t_in"], velocity=bool(meta["n_velocity"]),
                           channels=tuple(meta["channels"]), grid=_grid_card(meta),
                           normalization=data.norm, training=training, metrics=metrics).to_dict()
    # (the card's window is the training window: ModelCard takes it from the hyperparameters)
    # architecture, symmetries and the normalization as the model itself records them
    return ck._base_card(model).replace(
        weights_sha256=ck.weights_digest(ck._tensors_for_saving(model.model)),
        xequi_version=__version__).to_dict()


# --------------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------------
def fit(model_or_name, data, *, t_in: int | None = None, size: str = "small",
        model_kwargs: Mapping | None = None, rollout_steps: int = 3, epochs: int = 100,
        batch_size: int = 16, lr: float = 1e-3, weight_decay: float = 4e-4, lr_decay: float = 0.95,
        patience: int | None = 10, val_fraction: float = 0.2, gap: int = 0, window=64, stride=None,
        periodic=False, augment: Sequence[str] = (), seed: int = 0, device="auto", amp: bool = False,
        progress: bool = True, checkpoint_dir: str | os.PathLike | None = None,
        callbacks: Sequence[Callable] = (), fields_kwargs: Mapping | None = None,
        description: str | None = None):
    """Train a next-frame model with an autoregressive rollout loss; keep the best epoch.

    Parameters
    ----------
    model_or_name : str or torch.nn.Module
        A registered name (``xequi.models.available()``; built with ``t_in``, ``size``,
        ``model_kwargs`` and ``n_scalars`` from the data, initialised from ``seed``) or a model
        (``(B, t_in, C, H, W) -> (B, C, H, W)``, e.g. from :func:`xequi.models.create` or
        :func:`xequi.checkpoint.load_model`). A given model is copied, never modified; a
        :class:`NormalizedModel` is unwrapped and re-normalized on this data.
    data : xarray.Dataset or xarray.DataArray
        A CF-labelled dataset (converted with :func:`xequi.fields.to_model_frame` and
        ``fields_kwargs``; ``fields_kwargs={"velocity": False, "scalars": [...]}`` for a
        scalar-only model), model-frame data with dims ``(time, channel, y, x)``
        (``attrs["n_velocity"] = 0`` for scalar-only channels), or a lone scalar field: a
        DataArray over time and two spatial dims, which trains a scalar-only model
        (``velocity=False``) that ``da.equi.forecast`` applies. Never modified.
    t_in : int, optional
        Input frames, for a model given by name (default 4).
    size : {"small", "paper"}, default "small"
        Width preset, for a model given by name.
    model_kwargs : dict, optional
        Overrides for :func:`xequi.models.create` (``widths``, ``group_order``, ...).
    rollout_steps : int, default 3
        Frames predicted per sample during training (the loss sums their MSEs).
    epochs : int, default 100
        Maximum number of epochs (in total, counting those of a resumed run).
    batch_size : int, default 16
    lr : float, default 1e-3
        Initial learning rate of Adam (the paper used 5e-3 for Mag and 1e-4 for Scale models).
    weight_decay : float, default 4e-4
        Adam's L2 weight decay.
    lr_decay : float, default 0.95
        Learning rate multiplied by this after every epoch (1 = constant).
    patience : int or None, default 10
        Stop after this many epochs without a lower validation loss. ``None``: never stop early.
    val_fraction : float, default 0.2
        Share of the time steps (the *last* ones) used for validation; windows never cross the
        split (:func:`xequi.windows.split_by_time`). 0: no validation, the last epoch is kept.
    gap : int, default 0
        Time steps left out between the training and validation ranges.
    window : int or (int, int) or None, default 64
        Spatial training window (clipped to the domain); ``None`` = the whole domain.
    stride : int or (int, int), optional
        Step between windows (default: ``window``, non-overlapping tiles).
    periodic : bool or (bool, bool), default False
        Periodic spatial axes (passed to :class:`xequi.windows.WindowDataset`).
    augment : sequence of str, default ()
        Random group actions applied to training samples (history and target together), e.g.
        ``("rot90",)``, ``("uniform_motion",)``, ``("magnitude",)``, ``("scale",)``: the paper's
        "augmented" baselines. Several kinds are composed. Validation data are not augmented.
    seed : int, default 0
        Seeds initialisation, shuffling and augmentation.
    device : {"auto", "cpu", "cuda"} or torch.device, default "auto"
        ``"auto"``: CUDA when available, else CPU.
    amp : bool, default False
        bf16 autocast on CUDA (ignored, with a warning, on CPU).
    progress : bool, default True
        tqdm progress bars (epochs, and batches within an epoch) with the losses.
        ``False``: nothing is printed.
    checkpoint_dir : str or path-like, optional
        Save the training state every epoch and resume from it (see the module docstring); the
        best model is written to ``checkpoint_dir/best.xequi``. Resuming with different
        arguments or data is refused, except a larger ``epochs`` (extends a finished run).
    callbacks : sequence of callable, default ()
        Each called as ``cb(epoch, model, logs)`` after every epoch (1-based epoch, the bare
        network being trained, ``logs`` with ``train_loss``, ``val_loss``, ``lr``, ``best_epoch``)
        once the state is saved. An exception raised there interrupts training (resumable with
        ``checkpoint_dir``).
    fields_kwargs : dict, optional
        Passed to :func:`xequi.fields.to_model_frame` when ``data`` is a Dataset.
    description : str, optional
        Description of the training data for the model card (default: from the data's attrs).

    Returns
    -------
    model : NormalizedModel
        The best-validation-epoch network wrapped by the training normalization, in eval mode on
        ``device``; ``model.card`` is its model card (save it with
        :func:`xequi.checkpoint.save_model`).
    history : dict
        ``epoch``, ``train_loss``, ``val_loss``, ``lr`` (lists, one entry per epoch),
        ``best_epoch``, ``best_val_loss``, ``stopped_early``.

    Raises
    ------
    ParameterError
        Invalid arguments; too few time steps for ``t_in + rollout_steps`` in a split.
    GridError
        Data without the model-frame dims, or a window larger than the domain.
    MissingDataError
        NaN / inf in the data.
    ModelError
        Unknown model name, or a model whose channel count or ``t_in`` does not match the data.
    CheckpointError
        An unreadable training state in ``checkpoint_dir``, or one from a different run.

    Examples
    --------
    >>> import numpy as np, xarray as xr, torch
    >>> torch.set_num_threads(1)
    >>> rng = np.random.default_rng(0)
    >>> da = xr.DataArray(rng.normal(size=(14, 2, 8, 8)).astype("float32"),
    ...                   dims=("time", "channel", "y", "x"))
    >>> model, hist = fit("resnet", da, t_in=2, rollout_steps=2, epochs=2, batch_size=4,
    ...                   model_kwargs={"widths": (4,)}, val_fraction=0.3, progress=False)
    >>> model(torch.zeros(1, 2, 2, 8, 8)).shape, len(hist["val_loss"]), hist["best_epoch"] in (1, 2)
    (torch.Size([1, 2, 8, 8]), 2, True)
    """
    settings = _check_settings(
        rollout_steps=rollout_steps, epochs=epochs, batch_size=batch_size, lr=lr,
        weight_decay=weight_decay, lr_decay=lr_decay, patience=patience,
        val_fraction=val_fraction, gap=gap, window=window, stride=stride, periodic=periodic,
        augment=augment, seed=seed, device=device, amp=amp, progress=progress,
        callbacks=callbacks)
    frame, meta = _model_frame(data, fields_kwargs)
    _check_augment_fits(settings.augment, meta["n_velocity"])
    with torch.random.fork_rng(devices=_cuda_devices(settings.device)):
        torch.manual_seed(settings.seed)
        net, t_net, name = _prepare_model(model_or_name, t_in, frame.sizes["channel"], size,
                                          model_kwargs, settings.seed,
                                          n_velocity=meta["n_velocity"])
        symmetries = tuple(getattr(net, "symmetries", ()) or ())
        prepared = _prepare_data(frame, meta["n_velocity"], symmetries, t_net, settings)
        hyper = settings.hyperparameters(t_net, prepared.window)
        run = _start_run(net, prepared, settings, hyper, checkpoint_dir)
        _epoch_loop(run, prepared, settings, name)
    model = _best_model(run, prepared.norm, settings.device)
    model.card = _fit_card(model, frame, meta, prepared, settings, hyper, run.history, description)
    if checkpoint_dir is not None:
        ck.save_model(model, Path(checkpoint_dir) / BEST_FILE, overwrite=True)
    return model, run.history


def _check_augment_fits(augment: tuple, n_velocity: int) -> None:
    if not n_velocity and any(symmetry._canonical(k) == "uniform_motion" for k in augment):
        raise ParameterError("augment='uniform_motion' adds a constant velocity, but the data "
                             "have no velocity channels.",
                             fix="augment scalar fields with 'rot90', 'rotate', 'magnitude', "
                                 "'translate' or 'scale'")


def _cuda_devices(dev: torch.device) -> list:
    """The CUDA devices whose RNG :func:`fit` forks (none on CPU)."""
    if dev.type != "cuda":
        return []
    return [dev.index if dev.index is not None else torch.cuda.current_device()]


def _best_model(run: _Run, norm: dict, dev: torch.device) -> NormalizedModel:
    """The best epoch's weights wrapped by the training normalization, in eval mode on ``dev``."""
    net = run.net
    net.train()
    if run.best_state is not None:
        net.load_state_dict(run.best_state)
    model = NormalizedModel(net, norm["scale"], norm["offset"], norm["velocity_scale"])
    return model.to(dev).eval()
