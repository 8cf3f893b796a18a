"""Fitting next-frame models: rollout loss, validation, best-epoch weights, resumable runs.

:func:`fit` trains a model from :mod:`xequi.models` on model-frame data (or on a CF dataset,
converted with :func:`xequi.fields.to_model_frame`) the way Wang, Walters & Yu (ICLR 2021)
trained theirs: MSE summed over an autoregressive rollout of ``rollout_steps`` frames
(predictions fed back), early stopping on the validation score. Unlike the paper's released
code (``docs/science.md``, released-code defects, item 5) the weights returned are those of the
**best validation epoch**, not the last.

The recipe
----------
By default training follows neural-PDE practice for stable long rollouts: AdamW, gradients
clipped to global norm 1, a learning-rate warmup then cosine decay stepped per iteration over
the run's budget (``epochs``, or ``max_time`` seconds), and a rollout curriculum (1 frame up to
``rollout_steps``, reached at half the budget). Noise injection (``noise=``) and the pushforward
trick (``pushforward=``, Brandstetter et al. 2022) are available, off by default. The
validation score, which chooses the best epoch, is the RMSE over a rollout of ``val_steps``
frames in the data's units, and a divergence guard restores the best weights and optimizer
state and halves the learning rate after a non-finite loss or a score ``guard`` x the best.
The paper's recipe is ``schedule="exponential", optimizer="adam", clip_grad=None,
curriculum=0, guard=None``.

Normalization that keeps the symmetries
---------------------------------------
Statistics come from the training split only (:func:`compute_normalization`) and are applied
*outside* the network (:class:`NormalizedModel`, which lives in :mod:`xequi.models.normalized`
and is re-exported here); why one shared velocity scale and no velocity offset keep every
symmetry is explained there.

Reproducibility and resuming
----------------------------
All randomness (model initialisation when a name is given, shuffling, augmentation) derives from
``seed``; on CPU two runs with the same arguments give bit-identical weights. Global torch RNG
state is saved and restored around :func:`fit`, so calling it does not disturb the caller's.
With ``checkpoint_dir=``, the full training state (weights, optimizer, scheduler, epoch, RNG
states, best weights and optimizer state, the guard's learning-rate factor, elapsed seconds,
history; the curriculum follows from them) is written atomically at the end of every epoch to
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
import time
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
from xequi.io import atomic_path, progress_options
from xequi.models.card import ModelCard, quantity_to_str
from xequi.models.normalized import NormalizedModel, compute_normalization
from xequi.models.normalized import resolve_device as _device
from xequi.models.relaxed import breaking_ratios

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
        pred = _predict(model, window, amp_dtype)
        loss = loss + torch.mean((pred - target[:, k].float()) ** 2)
        window = _next_window(window, pred)
    return loss


def _predict(model: nn.Module, window: torch.Tensor, amp_dtype: torch.dtype | None) -> torch.Tensor:
    """The model's next frame (float32), under CUDA autocast with ``amp_dtype`` when given."""
    if amp_dtype is not None:
        with torch.autocast(device_type="cuda", dtype=amp_dtype):
            return model(window).float()
    return model(window).float()


def _next_window(window: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """The history window with the prediction appended and the oldest frame dropped."""
    return torch.cat([window[:, 1:], pred.to(window.dtype)[:, None]], dim=1)


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
        "grid_info": mf.grid,
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


def _float(name, v, lo, hi=None, lo_open=False, fix=None):
    bad = isinstance(v, bool) or not isinstance(v, Real) or not math.isfinite(v)
    if bad or v < lo or (lo_open and v == lo) or (hi is not None and v > hi):
        rng = f"{'(' if lo_open else '['}{lo}, {hi if hi is not None else 'inf'}]"
        raise ParameterError(f"{name} must be a number in {rng}, got {v!r}.",
                             fix=fix or f"pass a valid {name}")
    return float(v)


def _choice(name, v, options, fix):
    if v not in options:
        raise ParameterError(f"{name} must be one of {options}, got {v!r}.", fix=fix)
    return v


#: Learning-rate schedules: warmup then cosine decay per iteration; x lr_decay per epoch (paper).
SCHEDULES = ("cosine", "exponential")
#: Optimizers: AdamW (decoupled weight decay); Adam with L2 weight decay (the paper's).
OPTIMIZERS = ("adamw", "adam")
#: Default weight decay of each optimizer (when ``weight_decay=None``).
_WEIGHT_DECAY = {"adamw": 1e-2, "adam": 4e-4}
#: The recipe of training states saved before the recipe settings existed: they resume with it.
_LEGACY_RECIPE = {"schedule": "exponential", "optimizer": "adam", "clip_grad": None,
                  "curriculum": 0.0, "noise": 0.0, "pushforward": 0}
#: The recipe settings (a saved state resumes only with the same ones).
_RECIPE_KEYS = ("schedule", "warmup", "optimizer", "clip_grad", "curriculum", "noise",
                "pushforward", "guard", "val_steps", "budget_clock")
#: Clocks ``max_time`` can be counted on: wall-clock seconds, or the CPU seconds this process
#: used (all its threads): on a shared machine a CPU budget buys the same training whatever
#: else runs, so models trained side by side are compared at equal compute.
BUDGET_CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
#: Divergence-guard restores after which training stops.
MAX_RESTORES = 3
#: The cosine schedule ends at this fraction of ``lr``.
_FINAL_LR_FRACTION = 0.01


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
    schedule: str = "cosine"
    warmup: float = 0.05
    optimizer: str = "adamw"
    clip_grad: float | None = 1.0
    curriculum: float = 0.5
    noise: float = 0.0
    pushforward: int = 0
    val_steps: int | None = None
    guard: float | None = 3.0
    max_time: float | None = None
    budget_clock: str = "wall"

    def recipe(self, val_steps: int) -> dict:
        """The recipe settings, ``val_steps`` as resolved for the data."""
        return {k: (val_steps if k == "val_steps" else getattr(self, k)) for k in _RECIPE_KEYS}

    def hyperparameters(self, t_in: int, window, val_steps: int | None = None) -> dict:
        """The card's ``training.hyperparameters`` (``window`` as clipped to the domain)."""
        return dict(t_in=t_in, rollout_steps=self.rollout_steps, epochs=self.epochs,
                    batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
                    lr_decay=self.lr_decay, patience=self.patience,
                    val_fraction=self.val_fraction, gap=self.gap,
                    window=list(window) if not isinstance(window, dict) else window,
                    stride=self.stride if not isinstance(self.stride, tuple) else list(self.stride),
                    periodic=(self.periodic if not isinstance(self.periodic, tuple)
                              else list(self.periodic)),
                    augment=list(self.augment), seed=self.seed, amp=self.amp_dtype is not None,
                    **self.recipe(val_steps if val_steps is not None else self.val_steps),
                    max_time=self.max_time)


def _check_recipe(*, schedule, warmup, optimizer, clip_grad, curriculum, noise, pushforward,
                  val_steps, guard, max_time, budget_clock) -> dict:
    """Check the recipe settings of :func:`fit` (ParameterError naming the first bad one)."""
    return dict(
        schedule=_choice("schedule", schedule, SCHEDULES,
                         fix="pass schedule='cosine' (warmup, then cosine decay per iteration) "
                             "or 'exponential' (lr x lr_decay per epoch, the paper's)"),
        warmup=_float("warmup", warmup, 0.0, 0.5,
                      fix="pass the warmup as a fraction of the budget, e.g. warmup=0.05"),
        optimizer=_choice("optimizer", optimizer, OPTIMIZERS,
                          fix="pass optimizer='adamw' (decoupled weight decay) or 'adam'"),
        clip_grad=None if clip_grad is None else _float(
            "clip_grad", clip_grad, 0.0, lo_open=True,
            fix="pass a positive global gradient norm, e.g. clip_grad=1.0, or None (no clipping)"),
        curriculum=_float("curriculum", curriculum, 0.0, 1.0,
                          fix="pass the fraction of the budget at which the full rollout is "
                              "reached, e.g. curriculum=0.5, or 0 (no curriculum)"),
        noise=_float("noise", noise, 0.0, 1.0,
                     fix="pass the noise std as a fraction of the data's std, e.g. noise=0.01, "
                         "or 0 (none)"),
        pushforward=_int("pushforward", pushforward, 0),
        val_steps=None if val_steps is None else _int("val_steps", val_steps, 1),
        guard=None if guard is None else _float(
            "guard", guard, 1.0, lo_open=True,
            fix="pass a factor > 1 over the best validation score, e.g. guard=3.0, or None "
                "(no divergence guard)"),
        max_time=None if max_time is None else _float(
            "max_time", max_time, 0.0, lo_open=True,
            fix="pass a wall-clock budget in seconds, e.g. max_time=600, or None"),
        budget_clock=_choice("budget_clock", budget_clock, tuple(BUDGET_CLOCKS),
                             fix="pass budget_clock='wall' (seconds on the clock) or 'cpu' (CPU "
                                 "seconds of this process: equal compute on a shared machine)"))


def _check_settings(*, rollout_steps, epochs, batch_size, lr, weight_decay, lr_decay, patience,
                    val_fraction, gap, window, stride, periodic, augment, seed, device, amp,
                    progress, callbacks, **recipe) -> FitSettings:
    """Check :func:`fit`'s arguments (ParameterError naming the first bad one).

    ``recipe``: the settings of :func:`_check_recipe` (all optional: their defaults otherwise).
    """
    recipe = _check_recipe(**{**{f.name: f.default for f in dataclasses.fields(FitSettings)
                                 if f.name in _RECIPE_KEYS + ("max_time",)}, **recipe})
    if weight_decay is None:
        weight_decay = _WEIGHT_DECAY[recipe["optimizer"]]
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
                       progress=progress, callbacks=callbacks, **recipe)


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
    val_steps: int = 0
    noise_std: torch.Tensor | None = None


def _split(n_time: int, t_net: int, s: FitSettings) -> tuple[range, range | None]:
    """Training and validation time ranges (the validation range last; None without one)."""
    t_out = s.rollout_steps + s.pushforward
    if s.val_fraction > 0:
        try:
            return W.split_by_time(n_time, (1.0 - s.val_fraction, s.val_fraction), t_in=t_net,
                                   t_out=t_out, gap=s.gap)
        except ParameterError as err:
            problem = err.problem.replace("split 0", "training").replace("split 1", "validation")
            raise ParameterError(
                problem, fix=f"use more time steps, change val_fraction (now {s.val_fraction}), "
                             f"or a smaller t_in / rollout_steps / pushforward / gap") from None
    if n_time < t_net + t_out:
        raise ParameterError(f"only {n_time} time steps, fewer than t_in + rollout_steps + "
                             f"pushforward = {t_net + t_out} for one sample.",
                             fix="use more time steps, or a smaller t_in / rollout_steps / "
                                 "pushforward")
    return range(n_time), None


def _val_steps(val_r: range | None, t_net: int, s: FitSettings) -> int:
    """The validation rollout length: ``val_steps``, by default 3 x ``rollout_steps`` capped by
    the validation range (0 without validation)."""
    if val_r is None:
        return 0
    room = len(val_r) - t_net
    if s.val_steps is None:
        return max(1, min(3 * s.rollout_steps, room))
    if s.val_steps > room:
        raise ParameterError(f"val_steps={s.val_steps} needs t_in + val_steps = "
                             f"{t_net + s.val_steps} time steps, but the validation range has "
                             f"{len(val_r)}.", fix=f"pass val_steps <= {room}, or a larger "
                                                   "val_fraction")
    return s.val_steps


def _noise_std(normed: np.ndarray, c_axis: int, train_sl: tuple, noise: float):
    """Per-channel std (C, 1, 1) of the injected noise: ``noise`` x the normalized training
    data's std per channel (None without noise)."""
    if noise <= 0:
        return None
    train = np.moveaxis(normed[train_sl], c_axis, 0)
    std = train.reshape(train.shape[0], -1).std(axis=1)
    return torch.as_tensor(noise * std, dtype=torch.float32)[:, None, None]


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
    val_steps = _val_steps(val_r, t_net, s)
    common = dict(t_in=t_net, window=win, stride=s.stride, periodic=s.periodic)
    train_ds = W.WindowDataset(normed, time_index=train_r, augment=s.augment or None, seed=s.seed,
                               vector=(0, 1) if n_velocity else None,
                               t_out=s.rollout_steps + s.pushforward, **common)
    val_ds = (None if val_r is None else
              W.WindowDataset(normed, time_index=val_r, t_out=val_steps, **common))
    shuffle_gen = torch.Generator().manual_seed(s.seed)
    train_loader = torch.utils.data.DataLoader(train_ds, batch_size=s.batch_size, shuffle=True,
                                               generator=shuffle_gen, num_workers=0)
    val_loader = (torch.utils.data.DataLoader(val_ds, batch_size=s.batch_size, shuffle=False)
                  if val_ds is not None else None)
    train_sl = (slice(None),) * t_axis + (slice(train_r.start, train_r.stop),)
    return _Data(norm, train_r, val_r, win, train_ds, val_ds, train_loader, val_loader,
                 shuffle_gen, _sha256_array(values), val_steps,
                 _noise_std(normed.values, frame.dims.index("channel"), train_sl, s.noise))


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


def _new_history() -> dict:
    return {"epoch": [], "train_loss": [], "val_loss": [], "lr": [], "rollout": [],
            "best_epoch": None, "best_val_loss": None, "stopped_early": False, "restored": [],
            "stop_reason": None}


@dataclass
class _Run:
    """The mutable state of a training run: what the training-state file saves and restores."""

    net: nn.Module
    optimizer: torch.optim.Optimizer
    signature: str
    recipe: dict
    state_path: Path | None
    iters_per_epoch: int = 1
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    history: dict = dataclasses.field(default_factory=_new_history)
    best_state: dict | None = None
    best_optimizer: dict | None = None  # the optimizer state at the best epoch (the guard's)
    init_state: dict | None = None  # the initial weights (the guard's, before any best epoch)
    best_val: float = math.inf
    bad_epochs: int = 0
    epoch: int = 0
    done: bool = False
    lr_scale: float = 1.0  # halved by each restore of the divergence guard
    elapsed: float = 0.0  # training seconds of earlier calls (a resumed run)
    started: float | None = None  # clock() when this call's epoch loop started
    clock: Callable[[], float] = time.perf_counter  # the budget's clock (BUDGET_CLOCKS)

    def seconds(self) -> float:
        """Training seconds so far (on the budget's clock), over every call of a resumed run."""
        return self.elapsed + (0.0 if self.started is None else self.clock() - self.started)


def _time_fraction(run: _Run, s: FitSettings) -> float:
    return 0.0 if s.max_time is None else run.seconds() / s.max_time


def _lr_factor(run: _Run, s: FitSettings, step: int) -> float:
    """The cosine schedule's factor on ``lr`` for optimizer iteration ``step`` (0-based).

    Progress through the budget is ``max(iterations / (epochs x iterations per epoch),
    elapsed / max_time)``: a linear warmup over its first ``warmup``, then a cosine decay to
    1 % of ``lr`` at its end; times the divergence guard's halvings.
    """
    total = max(s.epochs * run.iters_per_epoch, 1)
    p = min(1.0, max((step + 1) / total, _time_fraction(run, s)))
    if p < s.warmup:
        f = p / s.warmup
    else:
        cos = 0.5 * (1.0 + math.cos(math.pi * (p - s.warmup) / (1.0 - s.warmup)))
        f = _FINAL_LR_FRACTION + (1.0 - _FINAL_LR_FRACTION) * cos
    return run.lr_scale * f


def _refresh_lr(run: _Run, s: FitSettings) -> None:
    """Cosine schedule: set the coming iteration's learning rate now (under ``max_time`` the
    clock moves the progress between iterations: validation, callbacks)."""
    if s.schedule == "cosine":
        for g, base in zip(run.optimizer.param_groups, run.scheduler.base_lrs):
            g["lr"] = base * _lr_factor(run, s, run.scheduler.last_epoch)


def _rollout_length(run: _Run, s: FitSettings) -> int:
    """The training rollout length of the epoch ``run.epoch``: the curriculum grows it from 1
    to ``rollout_steps``, reached at the fraction ``curriculum`` of the budget."""
    if s.curriculum <= 0:
        return s.rollout_steps
    p = max((run.epoch - 1) / s.epochs, _time_fraction(run, s))
    return min(s.rollout_steps, 1 + int((s.rollout_steps - 1) * p / s.curriculum + 1e-9))


def _start_run(net: nn.Module, data: _Data, s: FitSettings, hyper: dict,
               checkpoint_dir) -> _Run:
    """Optimizer and scheduler for ``net``; the saved state of an interrupted run, if any."""
    net = net.to(s.device)
    opt_cls = torch.optim.AdamW if s.optimizer == "adamw" else torch.optim.Adam
    optimizer = opt_cls(net.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    # what must match to resume (the budget may grow: a finished run can be extended); the
    # recipe is checked on its own, so that states saved before it existed still resume
    skip = ("epochs", "max_time") + _RECIPE_KEYS
    signature = json.dumps({"model": getattr(net, "config", {}) or {"class": type(net).__name__},
                            "hyper": {k: v for k, v in hyper.items() if k not in skip},
                            "data_sha256": data.sha256}, sort_keys=True, default=str)
    run = _Run(net, optimizer, signature, s.recipe(data.val_steps), _state_path(checkpoint_dir),
               iters_per_epoch=max(len(data.train_loader), 1))
    if s.schedule == "cosine":
        run.scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: _lr_factor(run, s, step))
    else:
        run.scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=s.lr_decay)
    run.init_state = _cpu_state(net.state_dict())
    run.best_optimizer = copy.deepcopy(optimizer.state_dict())
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
    """Restore the run from its training-state file (refused for another run's state).

    A state saved before the recipe settings existed resumes with the old recipe only
    (``_LEGACY_RECIPE``); its best epoch is scored again with the rollout RMSE.
    """
    st = _load_state(run.state_path)
    saved = st.get("recipe")
    same = (saved == run.recipe if saved is not None
            else all(run.recipe[k] == v for k, v in _LEGACY_RECIPE.items()))
    if st["signature"] != run.signature or not same:
        raise CheckpointError(
            f"the training state in {str(run.state_path.parent)!r} belongs to a different run "
            "(other model, data, arguments or training recipe); refusing to resume from it.",
            fix="pass the same arguments and data as the interrupted run, another "
                "checkpoint_dir, or delete the directory to start afresh")
    run.net.load_state_dict(st["model"])
    run.optimizer.load_state_dict(st["optimizer"])
    run.scheduler.load_state_dict(st["scheduler"])
    data.shuffle_gen.set_state(st["shuffle_rng"])
    torch.set_rng_state(st["torch_rng"])
    if s.device.type == "cuda" and st.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(st["cuda_rng"], s.device)
    run.history = {**_new_history(), **json.loads(st["history"])}
    run.best_state = st["best_model"]
    run.best_optimizer = st.get("best_optimizer")
    run.best_val = float(st["best_val"])
    run.bad_epochs = int(st["bad_epochs"])
    run.epoch = int(st["epoch"])
    run.lr_scale = float(st.get("lr_scale", 1.0))
    run.elapsed = float(st.get("elapsed", 0.0))
    if saved is None and run.best_state is not None and data.val_loader is not None:
        current = _cpu_state(run.net.state_dict())
        run.net.load_state_dict(run.best_state)
        run.best_val = _validate(run, data, s)  # old states scored epochs by the rollout loss
        run.net.load_state_dict(current)
    h = run.history
    run.done = (bool(h["stopped_early"]) or h["stop_reason"] == "diverged"
                or run.epoch >= s.epochs or (s.max_time is not None and run.elapsed >= s.max_time))


def _save_state(run: _Run, data: _Data, s: FitSettings) -> None:
    """Write the training state atomically (read back by :func:`_resume`)."""
    dev = s.device
    with atomic_path(run.state_path) as tmp:
        torch.save({
            "version": _STATE_VERSION,
            "signature": run.signature,
            "recipe": run.recipe,
            "epoch": run.epoch,
            "done": run.done,
            "model": _cpu_state(run.net.state_dict()),
            "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(),
            "shuffle_rng": data.shuffle_gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None,
            "best_model": run.best_state,
            "best_optimizer": run.best_optimizer,
            "best_val": run.best_val,
            "bad_epochs": run.bad_epochs,
            "lr_scale": run.lr_scale,
            "elapsed": run.seconds(),
            "history": json.dumps(run.history),
        }, tmp)


# --------------------------------------------------------------------------------------------
# the epoch loop
# --------------------------------------------------------------------------------------------
def _batch_loss(net: nn.Module, data: _Data, s: FitSettings, xb: torch.Tensor,
                yb: torch.Tensor, steps: int) -> torch.Tensor:
    """The training loss of one batch: noise on the history, ``pushforward`` unrolled steps
    without gradient, then the rollout loss over the next ``steps`` frames."""
    if data.noise_std is not None:
        xb = xb + torch.randn_like(xb) * data.noise_std.to(xb.device, xb.dtype)
    if s.pushforward:
        with torch.no_grad():
            for _ in range(s.pushforward):
                xb = _next_window(xb, _predict(net, xb, s.amp_dtype))
    loss = rollout_loss(net, xb, yb[:, s.pushforward:s.pushforward + steps], s.amp_dtype)
    if hasattr(net, "symmetry_penalty"):  # relaxed models: weight = config["penalty"]
        loss = loss + net.penalty_weight * net.symmetry_penalty()
    return loss


def _train_epoch(run: _Run, data: _Data, s: FitSettings, steps: int) -> float:
    """One pass over the training windows with ``steps`` rollout frames; the mean training loss
    (NaN / inf: the loss became non-finite and the epoch was cut short, for the guard).
    Under ``max_time`` the epoch ends at the first batch boundary past the budget."""
    data.train_ds.set_epoch(run.epoch)
    run.net.train()
    total, count = 0.0, 0
    for xb, yb in tqdm(data.train_loader, desc=f"epoch {run.epoch}", leave=False,
                       unit="batch", dynamic_ncols=True, **progress_options(s.progress)):
        xb, yb = xb.to(s.device), yb.to(s.device)
        run.optimizer.zero_grad(set_to_none=True)
        loss = _batch_loss(run.net, data, s, xb, yb, steps)
        if not torch.isfinite(loss):
            if s.guard is None:
                raise ParameterError(
                    f"the training loss became {float(loss.detach())} in epoch {run.epoch}.",
                    fix="lower lr, check the data for extreme values, use amp=False, or keep "
                        "the divergence guard (guard=3.0)")
            return float(loss.detach())
        loss.backward()
        if s.clip_grad is not None:
            nn.utils.clip_grad_norm_(run.net.parameters(), s.clip_grad)
        if s.max_time is not None:
            _refresh_lr(run, s)
        run.optimizer.step()
        if s.schedule == "cosine":
            run.scheduler.step()
        total += float(loss.detach()) * xb.shape[0]
        count += xb.shape[0]
        if s.max_time is not None and run.seconds() >= s.max_time:
            break
    return total / max(count, 1)


def _validate(run: _Run, data: _Data, s: FitSettings) -> float | None:
    """The validation score (None without validation): the RMSE in the data's units over a
    ``val_steps`` rollout, pooled over windows, lead times, channels and grid points."""
    if data.val_loader is None:
        return None
    scale = torch.as_tensor(data.norm["scale"], dtype=torch.float64, device=s.device)
    scale = scale[:, None, None]
    run.net.eval()
    sq, n = 0.0, 0
    with torch.no_grad():
        for xb, yb in data.val_loader:
            window, yb = xb.to(s.device), yb.to(s.device)
            for k in range(yb.shape[1]):
                pred = _predict(run.net, window, s.amp_dtype)
                err = (pred.double() - yb[:, k].double()) * scale
                sq += float(torch.sum(err ** 2))
                n += err.numel()
                window = _next_window(window, pred)
    run.net.train()  # state dicts are taken in training mode (e2cnn caches filters in eval)
    return math.sqrt(sq / max(n, 1))


def _guard(run: _Run, train_loss: float, val_loss: float | None, s: FitSettings) -> str | None:
    """The divergence guard: after a non-finite training loss, or a validation score above
    ``guard`` x the best, restore the best weights and optimizer state and halve the learning
    rate (the reason, or None). After :data:`MAX_RESTORES` restores training stops."""
    if s.guard is None:
        return None
    if not math.isfinite(train_loss):
        reason = f"the training loss became {train_loss} (NaN/inf)"
    elif val_loss is not None and math.isfinite(run.best_val) and not (
            val_loss <= s.guard * run.best_val):
        reason = f"validation score {val_loss:.4g} > {s.guard:g} x the best {run.best_val:.4g}"
    else:
        return None
    lrs = [g["lr"] for g in run.optimizer.param_groups]
    run.net.load_state_dict(run.best_state if run.best_state is not None else run.init_state)
    if run.best_optimizer is not None:
        run.optimizer.load_state_dict(run.best_optimizer)
    run.lr_scale *= 0.5
    for g, lr in zip(run.optimizer.param_groups, lrs):
        g["lr"] = lr * 0.5
    run.history["restored"].append({"epoch": run.epoch, "reason": reason, "lr": lrs[0] * 0.5,
                                    "to_epoch": run.history["best_epoch"]})
    if len(run.history["restored"]) >= MAX_RESTORES:
        if run.best_state is None:
            raise ParameterError(
                f"training diverged {MAX_RESTORES} times before any good epoch ({reason}).",
                fix="lower lr, check the data for extreme values, or use amp=False")
        run.done = True
        run.history["stop_reason"] = "diverged"
    return reason


def _record_epoch(run: _Run, train_loss: float, val_loss: float | None, lr_now: float,
                  steps: int, restored: bool, s: FitSettings) -> None:
    """History, best weights, early stopping and the budget after an epoch."""
    h = run.history
    h["epoch"].append(run.epoch)
    h["train_loss"].append(train_loss if math.isfinite(train_loss) else None)  # JSON: no NaN
    h["val_loss"].append(val_loss)
    h["lr"].append(lr_now)
    h["rollout"].append(steps)
    score = val_loss if val_loss is not None else -run.epoch  # no validation: keep the last
    if not restored and math.isfinite(train_loss) and score < run.best_val:
        run.best_val = score
        run.best_state = _cpu_state(run.net.state_dict())
        run.best_optimizer = copy.deepcopy(run.optimizer.state_dict())
        h["best_epoch"] = run.epoch
        h["best_val_loss"] = val_loss
        run.bad_epochs = 0
    else:
        run.bad_epochs += 1
    if s.patience is not None and val_loss is not None and run.bad_epochs >= s.patience:
        h["stopped_early"] = True
        run.done = True
    if s.max_time is not None and run.seconds() >= s.max_time:
        run.done = True
        h["stop_reason"] = h["stop_reason"] or "max_time"
    if run.epoch >= s.epochs:
        run.done = True
    if run.done and h["stop_reason"] is None:
        h["stop_reason"] = "patience" if h["stopped_early"] else "epochs"


def _epoch_loop(run: _Run, data: _Data, s: FitSettings, name: str) -> None:
    """Train until ``epochs``, ``max_time``, early stopping, the divergence guard's last
    restore, or an exception (the state is saved each epoch)."""
    bar = tqdm(total=s.epochs, initial=run.epoch, desc=f"fit {name}", unit="epoch",
               dynamic_ncols=True, **progress_options(s.progress))
    run.clock = BUDGET_CLOCKS[s.budget_clock]
    run.started = run.clock()
    if not run.done:
        run.history["stop_reason"] = None  # an extended run stops for its own reason
    try:
        while not run.done and run.epoch < s.epochs:
            run.epoch += 1
            _refresh_lr(run, s)
            lr_now = run.optimizer.param_groups[0]["lr"]
            steps = _rollout_length(run, s)
            train_loss = _train_epoch(run, data, s, steps)
            val_loss = _validate(run, data, s) if math.isfinite(train_loss) else None
            if s.schedule == "exponential":
                run.scheduler.step()
            restored = _guard(run, train_loss, val_loss, s)
            _record_epoch(run, train_loss, val_loss, lr_now, steps, restored is not None, s)
            bar.update(1)
            bar.set_postfix(train=f"{train_loss:.4g}",
                            val="-" if val_loss is None else f"{val_loss:.4g}",
                            best=run.history["best_epoch"])
            if run.state_path is not None:
                _save_state(run, data, s)
            logs = {"train_loss": train_loss, "val_loss": val_loss, "lr": lr_now,
                    "best_epoch": run.history["best_epoch"], "rollout": steps,
                    "restored": restored}
            for cb in s.callbacks:
                cb(run.epoch, run.net, logs)
        if run.best_state is None and run.history["restored"]:
            last = run.history["restored"][-1]
            raise ParameterError(
                f"training diverged in every epoch: {last['reason']}.",
                fix="lower lr, check the data for extreme values, or use amp=False")
    finally:
        run.elapsed, run.started = run.seconds(), None
        bar.close()


# --------------------------------------------------------------------------------------------
# the result
# --------------------------------------------------------------------------------------------
def _recipe_card(s: FitSettings, val_steps: int) -> dict:
    """The card's description of the loss, optimizer, schedule and validation score."""
    loss = f"sum over {s.rollout_steps} rollout steps of the per-step MSE, in normalized units"
    if s.curriculum > 0:
        loss += (f"; rollout curriculum: from 1 step to {s.rollout_steps}, reached at "
                 f"{s.curriculum:g} of the budget")
    if s.pushforward:
        loss += f"; {s.pushforward} pushforward step(s) without gradient before the rollout"
    if s.noise > 0:
        loss += f"; Gaussian noise ({s.noise:g} x the data's std) on the input history"
    opt = ("AdamW (decoupled weight decay)" if s.optimizer == "adamw" else "Adam (L2 weight decay)")
    opt += (f", gradients clipped to global norm {s.clip_grad:g}" if s.clip_grad is not None
            else ", no gradient clipping")
    opt += (f"; learning rate: linear warmup over {s.warmup:g} of the budget, then cosine decay "
            f"to {_FINAL_LR_FRACTION:g} x lr, per iteration" if s.schedule == "cosine"
            else "; learning rate x lr_decay per epoch")
    if s.guard is not None:
        opt += (f"; divergence guard: a non-finite loss or a validation score above {s.guard:g} x "
                "the best restores the best weights and halves the learning rate")
    val = (f"RMSE over a {val_steps}-step rollout in the data's units (all channels pooled); "
           "chooses the best epoch" if val_steps else None)
    return {"loss": loss, "optimizer": opt, "validation": val}


def _fit_card(model: NormalizedModel, frame: xr.DataArray, meta: dict, data: _Data,
              s: FitSettings, hyper: dict, run: _Run, description: str | None) -> dict:
    """The model card of a trained model (see :mod:`xequi.checkpoint` for the keys)."""
    desc = description or meta.get("description")
    history = run.history
    training = {
        "data": desc or "model-frame data (no description given)",
        "data_shape": {str(d): int(n) for d, n in frame.sizes.items()},
        "data_sha256": data.sha256,
        "train_time_index": [data.train_r.start, data.train_r.stop],
        "val_time_index": None if data.val_r is None else [data.val_r.start, data.val_r.stop],
        "train_samples": len(data.train_ds),
        "val_samples": 0 if data.val_ds is None else len(data.val_ds),
        **_recipe_card(s, data.val_steps),
        "hyperparameters": hyper,
        "device": str(s.device),
        "budget": {"epochs_run": run.epoch, "seconds": round(run.seconds(), 2),
                   "clock": s.budget_clock,
                   "device": str(s.device), "epochs": s.epochs, "max_time": s.max_time,
                   "stop_reason": history["stop_reason"]},
        "xequi_version": __version__,
    }
    metrics = {
        "history": {k: history[k] for k in ("epoch", "train_loss", "val_loss", "lr", "rollout")},
        "restored": history["restored"],
        "best_epoch": history["best_epoch"],
        "best_val_loss": history["best_val_loss"],
        "stopped_early": history["stopped_early"],
        "weights": "best validation epoch" if data.val_r is not None else "last epoch (no validation)",
    }
    departure = breaking_ratios(model)
    if departure["breaking_ratio"] is not None:  # a relaxed model: how far it left its symmetry
        metrics["symmetry_departure"] = {
            **departure, "definition": "||K - P(K)|| / ||P(K)|| of the relaxed convs' kernels, P "
                                       "the projection onto the exactly C4-equivariant kernels "
                                       "(xequi.models.relaxed.breaking_ratios); 0: exactly "
                                       "equivariant, a measure of how symmetric the data are"}
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
        batch_size: int = 16, lr: float = 1e-3, weight_decay: float | None = None,
        lr_decay: float = 0.95, patience: int | None = 10, val_fraction: float = 0.2, gap: int = 0,
        window=64, stride=None, periodic=False, augment: Sequence[str] = (), seed: int = 0,
        device="auto", amp: bool = False, progress: bool = True,
        checkpoint_dir: str | os.PathLike | None = None, callbacks: Sequence[Callable] = (),
        fields_kwargs: Mapping | None = None, description: str | None = None,
        schedule: str = "cosine", warmup: float = 0.05, optimizer: str = "adamw",
        clip_grad: float | None = 1.0, curriculum: float = 0.5, noise: float = 0.0,
        pushforward: int = 0, val_steps: int | None = None, guard: float | None = 3.0,
        max_time: float | None = None, budget_clock: str = "wall"):
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
        Frames predicted per sample during training (the loss sums their MSEs); with a
        ``curriculum`` the length it grows to.
    epochs : int, default 100
        Maximum number of epochs (in total, counting those of a resumed run); the budget of
        the cosine schedule and the curriculum unless ``max_time`` ends the run first.
    batch_size : int, default 16
    lr : float, default 1e-3
        Peak learning rate (after the warmup; the paper used 5e-3 for Mag and 1e-4 for Scale
        models, with Adam and the exponential schedule).
    weight_decay : float, optional
        Weight decay; default 1e-2 for AdamW (decoupled), 4e-4 for Adam (L2, the paper's).
    lr_decay : float, default 0.95
        With ``schedule="exponential"``: learning rate multiplied by this after every epoch.
    patience : int or None, default 10
        Stop after this many epochs without a lower validation score. ``None``: never stop
        early.
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
        arguments or data is refused, except a larger ``epochs`` or ``max_time`` (extends a
        finished run; the cosine schedule and the curriculum then follow the new budget).
    callbacks : sequence of callable, default ()
        Each called as ``cb(epoch, model, logs)`` after every epoch (1-based epoch, the bare
        network being trained, ``logs`` with ``train_loss``, ``val_loss``, ``lr``, ``best_epoch``,
        ``rollout``, ``restored``: the guard's reason or None)
        once the state is saved. An exception raised there interrupts training (resumable with
        ``checkpoint_dir``).
    fields_kwargs : dict, optional
        Passed to :func:`xequi.fields.to_model_frame` when ``data`` is a Dataset.
    description : str, optional
        Description of the training data for the model card (default: from the data's attrs).
    schedule : {"cosine", "exponential"}, default "cosine"
        ``"cosine"``: a linear warmup over the first ``warmup`` of the budget, then a cosine
        decay to 1 % of ``lr``, set every optimizer iteration; progress through the budget is
        ``max(iterations / (epochs x iterations per epoch), elapsed / max_time)``, so a
        time-budgeted run anneals too. ``"exponential"``: ``lr x lr_decay`` per epoch (the
        paper's).
    warmup : float, default 0.05
        Fraction of the budget for the cosine schedule's warmup (0: none).
    optimizer : {"adamw", "adam"}, default "adamw"
        AdamW (decoupled weight decay) or Adam (L2 weight decay, the paper's).
    clip_grad : float or None, default 1.0
        Clip the gradients to this global norm before every step
        (:func:`torch.nn.utils.clip_grad_norm_`); ``None``: no clipping.
    curriculum : float, default 0.5
        The training rollout grows from 1 frame to ``rollout_steps``, reached at this fraction
        of the budget (the length of each epoch is in ``history["rollout"]``); 0: always
        ``rollout_steps``.
    noise : float, default 0.0
        Gaussian noise added to the input history in training (never in validation), its std
        this fraction of the normalized training data's std per channel.
    pushforward : int, default 0
        Steps unrolled without gradient before the ``rollout_steps`` the loss sees, so that the
        model trains on its own outputs (the pushforward trick, Brandstetter et al. 2022); each
        training sample then spans ``t_in + pushforward + rollout_steps`` frames.
    val_steps : int, optional
        Length of the validation rollout; default ``3 x rollout_steps``, capped by the
        validation range. The validation score, which chooses the best epoch, is the RMSE over
        this rollout in the data's units, pooled over windows, lead times, channels and grid
        points.
    guard : float or None, default 3.0
        Divergence guard: after a non-finite training loss, or a validation score above
        ``guard`` x the best so far, the best weights and optimizer state are restored and the
        learning rate halved (recorded in ``history["restored"]``); after 3 restores training
        stops. ``None``: no guard (a non-finite loss raises ParameterError).
    max_time : float, optional
        Wall-clock budget in seconds (summed over the calls of a resumed run): training stops at
        the first batch boundary past it, after validating; the best weights are returned.
    budget_clock : {"wall", "cpu"}, default "wall"
        The clock ``max_time`` counts: ``"wall"`` seconds, or ``"cpu"``: the CPU seconds this
        process used (every thread), so that models trained on a shared machine get equal
        compute whatever else runs (benchmarks; ``time.process_time``).

    Returns
    -------
    model : NormalizedModel
        The best-validation-epoch network wrapped by the training normalization, in eval mode on
        ``device``; ``model.card`` is its model card (save it with
        :func:`xequi.checkpoint.save_model`).
    history : dict
        ``epoch``, ``train_loss`` (None for an epoch cut short by a non-finite loss),
        ``val_loss`` (the validation score: rollout RMSE in the data's units), ``lr`` (at the
        epoch's first iteration), ``rollout`` (the training rollout length): lists, one entry
        per epoch; ``best_epoch``, ``best_val_loss``, ``stopped_early`` (by ``patience``),
        ``restored`` (the divergence guard's restores: epoch, reason, new lr, epoch restored
        to), ``stop_reason`` (``"epochs"``, ``"patience"``, ``"max_time"`` or ``"diverged"``).

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
        callbacks=callbacks, schedule=schedule, warmup=warmup, optimizer=optimizer,
        clip_grad=clip_grad, curriculum=curriculum, noise=noise, pushforward=pushforward,
        val_steps=val_steps, guard=guard, max_time=max_time, budget_clock=budget_clock)
    frame, meta = _model_frame(data, fields_kwargs)
    _check_augment_fits(settings.augment, meta["n_velocity"])
    with torch.random.fork_rng(devices=_cuda_devices(settings.device)):
        torch.manual_seed(settings.seed)
        net, t_net, name = _prepare_model(model_or_name, t_in, frame.sizes["channel"], size,
                                          model_kwargs, settings.seed,
                                          n_velocity=meta["n_velocity"])
        symmetries = tuple(getattr(net, "symmetries", ()) or ())
        if meta.get("grid_info") is not None:
            fields.warn_rotation_on_anisotropic_grid(meta["grid_info"], symmetries, "train")
        prepared = _prepare_data(frame, meta["n_velocity"], symmetries, t_net, settings)
        hyper = settings.hyperparameters(t_net, prepared.window, prepared.val_steps)
        run = _start_run(net, prepared, settings, hyper, checkpoint_dir)
        _epoch_loop(run, prepared, settings, name)
    model = _best_model(run, prepared.norm, settings.device)
    model.card = _fit_card(model, frame, meta, prepared, settings, hyper, run, description)
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
