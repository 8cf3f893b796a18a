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
Statistics come from the training split only and are applied *outside* the network
(:class:`NormalizedModel`): the network sees ``(x - offset) / scale`` and its output is mapped
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
import hashlib
import json
import math
import os
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from torch import nn

from xequi._version import __version__
from xequi.errors import (
    CheckpointError,
    GridError,
    MissingDataError,
    ModelError,
    ParameterError,
)

__all__ = ["fit", "NormalizedModel", "compute_normalization", "rollout_loss", "STATE_FILE",
           "BEST_FILE"]

#: Name of the resumable training-state file inside ``checkpoint_dir``.
STATE_FILE = "train_state.pt"
#: Name of the best-model checkpoint written inside ``checkpoint_dir``.
BEST_FILE = "best.xequi"
_STATE_VERSION = 1
_DIMS = ("time", "channel", "y", "x")


# --------------------------------------------------------------------------------------------
# normalization
# --------------------------------------------------------------------------------------------
def compute_normalization(train: np.ndarray, symmetries: Sequence[str] = (), n_velocity: int = 2) -> dict:
    """Symmetry-compatible normalization statistics of training data in the model frame.

    Parameters
    ----------
    train : numpy.ndarray
        Training data ``(..., channel, y, x)``, channels ``[u, v, *scalars]``. Use the training
        split only.
    symmetries : sequence of str, optional
        The model's symmetry kinds. With ``"magnitude"`` scalar channels get no offset.
    n_velocity : int, default 2
        Number of leading velocity channels sharing one scale (0 for scalar-only data).

    Returns
    -------
    dict
        ``method``, ``velocity_scale`` (rms speed; None without velocity channels), per-channel
        ``scale`` and ``offset`` lists (``x_net = (x - offset) / scale``).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.zeros((5, 3, 4, 4)); x[:, 0] = 3.0; x[:, 1] = 4.0; x[:, 2] = 10.0
    >>> n = compute_normalization(x)
    >>> n["velocity_scale"], n["scale"][:2], n["offset"]
    (5.0, [5.0, 5.0], [0.0, 0.0, 10.0])
    """
    a = np.asarray(train, dtype=np.float64)
    C = a.shape[-3]
    chans = np.moveaxis(a, -3, 0).reshape(C, -1)
    nv = min(int(n_velocity), C)
    speed2 = (chans[:nv] ** 2).sum(axis=0)
    vscale = float(np.sqrt(speed2.mean())) if nv and speed2.size else 1.0
    if not (math.isfinite(vscale) and vscale > 0):
        vscale = 1.0
    scale = [vscale] * nv
    offset = [0.0] * nv
    mag = "magnitude" in tuple(symmetries)
    for c in range(nv, C):
        v = chans[c]
        if mag:
            off, s = 0.0, float(np.sqrt((v ** 2).mean()))
        else:
            off, s = float(v.mean()), float(v.std())
        if not (math.isfinite(s) and s > 0):
            s = 1.0
        offset.append(off)
        scale.append(s)
    scalars_text = ("divided by their rms, no offset (magnitude symmetry)" if mag else
                    "standardised by their own mean and std")
    if nv:
        method = "velocity_rms" if not mag else "velocity_rms+scalar_rms"
        text = ("velocity channels divided by one scale, the rms speed of the training data, "
                "without mean subtraction (keeps rotation, uniform-motion and magnitude "
                "equivariance); scalar channels " + scalars_text)
    else:
        method = "scalar_rms" if mag else "scalar_standard"
        text = "no velocity channels; scalar channels " + scalars_text
    return {
        "method": method,
        "description": text + "; x_net = (x - offset) / scale, outside the network",
        "velocity_scale": vscale if nv else None,
        "scale": scale,
        "offset": offset,
    }


class NormalizedModel(nn.Module):
    """A network wrapped by a fixed normalization: ``y = net((x - offset) / scale) * scale + offset``.

    This is what :func:`fit` and :func:`xequi.checkpoint.load_model` return. It takes and returns
    model-frame tensors in physical units (those of ``card["channels"]``); attributes it does not
    define (``config``, ``symmetries``, ``t_in``, ``check_input``, ...) are those of the wrapped
    network.

    Parameters
    ----------
    model : torch.nn.Module
        The network, ``(B, t_in, C, H, W) -> (B, C, H, W)``.
    scale, offset : sequence of float, optional
        Per-channel statistics (length C, or 1 to broadcast). Default: 1 and 0 (identity).
    velocity_scale : float, optional
        The shared velocity scale, kept for the model card.

    Examples
    --------
    >>> import torch
    >>> class Persist(torch.nn.Module):
    ...     def forward(self, x):
    ...         return x[:, -1] * 2
    >>> m = NormalizedModel(Persist(), scale=[10.0, 10.0], offset=[0.0, 1.0])
    >>> m(torch.ones(1, 3, 2, 1, 1)).flatten().tolist()
    [2.0, 1.0]
    """

    def __init__(self, model: nn.Module, scale=None, offset=None, velocity_scale=None):
        super().__init__()
        self.model = model
        s = torch.as_tensor([1.0] if scale is None else list(scale), dtype=torch.float32)
        o = torch.as_tensor([0.0] if offset is None else list(offset), dtype=torch.float32)
        if s.ndim != 1 or o.ndim != 1 or not bool((s > 0).all()) or not bool(torch.isfinite(o).all()):
            raise ParameterError(f"normalization scale must be positive and offset finite, got "
                                 f"scale={scale}, offset={offset}.",
                                 fix="pass per-channel lists, e.g. scale=[1.0, 1.0]")
        self.register_buffer("scale", s)
        self.register_buffer("offset", o)
        self.velocity_scale = None if velocity_scale is None else float(velocity_scale)
        self.card: dict = {}

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name in ("model", "scale", "offset") or name.startswith("__"):
                raise
            return getattr(super().__getattr__("model"), name)

    def _stats(self, x: torch.Tensor):
        s = self.scale.to(device=x.device, dtype=x.dtype)[:, None, None]
        o = self.offset.to(device=x.device, dtype=x.dtype)[:, None, None]
        return s, o

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - offset) / scale`` on model-frame tensors ``(..., C, H, W)``."""
        s, o = self._stats(x)
        return (x - o) / s

    def denormalize(self, y: torch.Tensor) -> torch.Tensor:
        """``y * scale + offset`` on model-frame tensors ``(..., C, H, W)``."""
        s, o = self._stats(y)
        return y * s + o

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(x, torch.Tensor) and x.ndim >= 3 and self.scale.numel() not in (1, x.shape[-3]):
            raise ModelError(f"input has {x.shape[-3]} channels but the normalization has "
                             f"{self.scale.numel()}.",
                             fix="pass channels [u, v, *scalars] as the model was trained with")
        return self.denormalize(self.model(self.normalize(x)))

    def normalization_card(self) -> dict:
        """The normalization as recorded in a model card."""
        out = {"scale": [float(v) for v in self.scale], "offset": [float(v) for v in self.offset]}
        if self.velocity_scale is not None:
            out["velocity_scale"] = self.velocity_scale
        return out

    def export(self) -> nn.Module:
        """A copy whose network is exported to plain torch (``model.export()``), same wrapper."""
        inner = self.model.export() if hasattr(self.model, "export") else copy.deepcopy(self.model)
        out = NormalizedModel(inner, self.scale.tolist(), self.offset.tolist(), self.velocity_scale)
        out.card = copy.deepcopy(self.card)
        return out.to(self.scale.device).eval()


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

    The metadata holds ``channels`` (name, standard_name, units per channel), ``grid`` (dx, dy,
    dt as pint quantities or strings) and ``description``.
    """
    from xequi import fields

    meta: dict = {}
    if isinstance(data, xr.DataArray) and "channel" not in data.dims and data.ndim <= 3:
        # a lone scalar field (e.g. temperature over time, y, x): a scalar-only model frame
        name = data.name if data.name is not None else "scalar"
        kw = dict(fields_kwargs or {})
        for key in ("u", "v", "scalars", "velocity"):
            if kw.pop(key, None) is not None:
                raise ParameterError(f"fields_kwargs[{key!r}] does not apply to a lone scalar "
                                     "field: the DataArray is the only channel.",
                                     fix=f"drop {key!r}, or pass a Dataset")
        data = data.to_dataset(name=name)
        fields_kwargs = {**kw, "velocity": False, "scalars": [name]}
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
        mf = data
        da = mf.data
        meta["channels"] = [{"name": n, "standard_name": mf.attrs.get(n, {}).get("standard_name"),
                             "units": mf.units_model.get(n)} for n in mf.names]
        meta["grid"] = {"dx": mf.grid.dx, "dy": mf.grid.dy, "dt": mf.grid.dt}
        meta["n_velocity"] = mf.n_velocity
        da_attrs = mf.dataset_attrs
        meta["description"] = da_attrs.get("title") or da_attrs.get("source") or da_attrs.get("description")
    elif isinstance(data, xr.DataArray):
        da = data
    else:
        raise ParameterError(
            f"data must be an xarray.Dataset (CF-labelled), a ModelFrame or a model-frame DataArray "
            f"(time, channel, y, x), got {type(data).__name__}.",
            fix="pass ds, or xequi.fields.to_model_frame(ds)")
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
    frame = xr.DataArray(values, dims=da.dims, coords={k: v for k, v in da.coords.items()},
                         attrs=dict(da.attrs), name=da.name)
    if "channels" not in meta:
        names = ([str(v) for v in da.coords["channel"].values] if "channel" in da.coords
                 else ["u", "v"][:nv] + [f"scalar{i}" for i in range(C - nv)])
        units = da.attrs.get("units")
        units = _parse_units_attr(units, names) if isinstance(units, str) else [None] * C
        std = da.attrs.get("standard_names")
        std = list(std) if isinstance(std, (list, tuple)) and len(std) == C else [None] * C
        meta["channels"] = [{"name": n, "standard_name": s, "units": u}
                            for n, s, u in zip(names, std, units)]
        meta["grid"] = {k: da.attrs[k] for k in ("dx", "dy", "dt") if k in da.attrs}
        meta["description"] = da.attrs.get("description") or da.attrs.get("title") or da.attrs.get("source")
    for i, ch in enumerate(meta["channels"]):
        ch["index"] = i
    return frame, meta


def _grid_card(meta: Mapping) -> dict:
    from xequi.checkpoint import quantity_to_str

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


def _device(device) -> torch.device:
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ParameterError(f"unknown device {device!r}.", fix='pass "auto", "cpu" or "cuda"') from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(f"device {device!r} requested but CUDA is not available.",
                             fix='pass device="auto" or "cpu"')
    return dev


def _prepare_model(model_or_name, t_in, n_channels, size, model_kwargs, seed, n_velocity=2):
    """(bare network, its name); a new network for a name, a copy of a given one."""
    if isinstance(model_or_name, str):
        from xequi import models

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


# --------------------------------------------------------------------------------------------
# training state (resume)
# --------------------------------------------------------------------------------------------
def _atomic_torch_save(obj, path: Path) -> None:
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


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
    from tqdm.auto import tqdm

    from xequi import windows as W

    rollout_steps = _int("rollout_steps", rollout_steps, 1)
    epochs = _int("epochs", epochs, 1)
    batch_size = _int("batch_size", batch_size, 1)
    lr = _float("lr", lr, 0.0, lo_open=True)
    weight_decay = _float("weight_decay", weight_decay, 0.0)
    lr_decay = _float("lr_decay", lr_decay, 0.0, 1.0, lo_open=True)
    if patience is not None:
        patience = _int("patience", patience, 1)
    val_fraction = _float("val_fraction", val_fraction, 0.0, 0.9)
    gap = _int("gap", gap, 0)
    seed = _int("seed", seed, 0)
    if isinstance(augment, str):
        augment = (augment,)
    augment = tuple(augment or ())
    if augment:
        from xequi.symmetry import KINDS

        unknown = [k for k in augment if k not in KINDS]
        if unknown:
            raise ParameterError(f"unknown augmentation kind(s) {unknown}.",
                                 fix=f"use kinds of xequi.symmetry: {sorted(set(KINDS))}")
    callbacks = tuple(callbacks or ())
    if not all(callable(cb) for cb in callbacks):
        raise ParameterError(f"callbacks must be callables cb(epoch, model, logs), got "
                             f"{[type(cb).__name__ for cb in callbacks]}.",
                             fix="pass e.g. callbacks=[lambda epoch, model, logs: print(logs)]")
    dev = _device(device)
    use_amp = bool(amp) and dev.type == "cuda"
    if amp and not use_amp:
        warnings.warn("amp=True is ignored on CPU (bf16 autocast is used on CUDA only).", stacklevel=2)
    amp_dtype = torch.bfloat16 if use_amp else None

    frame, meta = _model_frame(data, fields_kwargs)
    n_time, n_channels = frame.sizes["time"], frame.sizes["channel"]
    from xequi.symmetry import _canonical

    if not meta["n_velocity"] and any(_canonical(k) == "uniform_motion" for k in augment):
        raise ParameterError("augment='uniform_motion' adds a constant velocity, but the data "
                             "have no velocity channels.",
                             fix="augment scalar fields with 'rot90', 'rotate', 'magnitude', "
                                 "'translate' or 'scale'")
    t_axis = frame.dims.index("time")
    shape = (frame.sizes["y"], frame.sizes["x"])

    devices = []
    if dev.type == "cuda":
        devices = [dev.index if dev.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        net, t_net, name = _prepare_model(model_or_name, t_in, n_channels, size, model_kwargs,
                                          seed, n_velocity=meta["n_velocity"])
        symmetries = tuple(getattr(net, "symmetries", ()) or ())

        # ---- split by time, normalization on the training split only -----------------------
        if val_fraction > 0:
            try:
                train_r, val_r = W.split_by_time(n_time, (1.0 - val_fraction, val_fraction),
                                                 t_in=t_net, t_out=rollout_steps, gap=gap)
            except ParameterError as err:
                problem = err.problem.replace("split 0", "training").replace("split 1", "validation")
                raise ParameterError(
                    problem, fix=f"use more time steps, change val_fraction (now {val_fraction}), "
                                 f"or a smaller t_in / rollout_steps / gap") from None
        else:
            train_r, val_r = range(n_time), None
            if n_time < t_net + rollout_steps:
                raise ParameterError(f"only {n_time} time steps, fewer than t_in + rollout_steps = "
                                     f"{t_net + rollout_steps} for one sample.",
                                     fix="use more time steps, or a smaller t_in / rollout_steps")
        values = frame.values
        norm = compute_normalization(
            values[(slice(None),) * t_axis + (slice(train_r.start, train_r.stop),)], symmetries,
            n_velocity=meta["n_velocity"])
        norm["computed_on"] = (f"training split only: time indices {train_r.start}..{train_r.stop - 1} "
                               f"of {n_time}")
        s = np.asarray(norm["scale"], dtype=np.float32)[:, None, None]
        o = np.asarray(norm["offset"], dtype=np.float32)[:, None, None]
        normed = frame.copy(data=((values - o) / s).astype(np.float32))

        win = _window_size(window, shape)
        train_ds = W.WindowDataset(normed, t_in=t_net, t_out=rollout_steps, window=win, stride=stride,
                                   time_index=train_r, augment=augment or None, seed=seed,
                                   periodic=periodic,
                                   vector=(0, 1) if meta["n_velocity"] else None)
        val_ds = None
        if val_r is not None:
            val_ds = W.WindowDataset(normed, t_in=t_net, t_out=rollout_steps, window=win, stride=stride,
                                     time_index=val_r, periodic=periodic)
        shuffle_gen = torch.Generator().manual_seed(seed)
        train_loader = torch.utils.data.DataLoader(train_ds, batch_size=batch_size, shuffle=True,
                                                   generator=shuffle_gen, num_workers=0)
        val_loader = (torch.utils.data.DataLoader(val_ds, batch_size=batch_size, shuffle=False)
                      if val_ds is not None else None)

        net = net.to(dev)
        optimizer = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
        scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=lr_decay)

        hyper = dict(t_in=t_net, rollout_steps=rollout_steps, epochs=epochs, batch_size=batch_size,
                     lr=lr, weight_decay=weight_decay, lr_decay=lr_decay, patience=patience,
                     val_fraction=val_fraction, gap=gap,
                     window=list(win) if not isinstance(win, dict) else win,
                     stride=stride if not isinstance(stride, tuple) else list(stride),
                     periodic=periodic if not isinstance(periodic, tuple) else list(periodic),
                     augment=list(augment), seed=seed, amp=use_amp)
        data_sha = _sha256_array(values)
        # what must match to resume (epochs may grow: a finished run can be extended)
        signature = json.dumps({"model": getattr(net, "config", {}) or {"class": type(net).__name__},
                                "hyper": {k: v for k, v in hyper.items() if k != "epochs"},
                                "data_sha256": data_sha}, sort_keys=True, default=str)

        history = {"epoch": [], "train_loss": [], "val_loss": [], "lr": [], "best_epoch": None,
                   "best_val_loss": None, "stopped_early": False}
        best_state = None
        best_val = math.inf
        bad_epochs = 0
        start_epoch = 0
        done = False

        state_path = None
        if checkpoint_dir is not None:
            ckdir = Path(checkpoint_dir)
            try:
                ckdir.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise ParameterError(f"cannot create checkpoint_dir {str(ckdir)!r}: {err.strerror}.",
                                     fix="pass a directory you can write to") from None
            state_path = ckdir / STATE_FILE
            if state_path.exists():
                st = _load_state(state_path)
                if st["signature"] != signature:
                    raise CheckpointError(
                        f"the training state in {str(ckdir)!r} belongs to a different run (other "
                        "model, data or arguments); refusing to resume from it.",
                        fix="pass the same arguments and data as the interrupted run, another "
                            "checkpoint_dir, or delete the directory to start afresh")
                net.load_state_dict(st["model"])
                optimizer.load_state_dict(st["optimizer"])
                scheduler.load_state_dict(st["scheduler"])
                shuffle_gen.set_state(st["shuffle_rng"])
                torch.set_rng_state(st["torch_rng"])
                if dev.type == "cuda" and st.get("cuda_rng") is not None:
                    torch.cuda.set_rng_state(st["cuda_rng"], dev)
                history = json.loads(st["history"])
                best_state = st["best_model"]
                best_val = float(st["best_val"])
                bad_epochs = int(st["bad_epochs"])
                start_epoch = int(st["epoch"])
                done = bool(history["stopped_early"]) or start_epoch >= epochs

        bar = tqdm(total=epochs, initial=start_epoch, desc=f"fit {name}", unit="epoch",
                   disable=not progress, dynamic_ncols=True)
        try:
            epoch = start_epoch
            while not done and epoch < epochs:
                epoch += 1
                train_ds.set_epoch(epoch)
                net.train()
                total, count = 0.0, 0
                lr_now = optimizer.param_groups[0]["lr"]
                for xb, yb in tqdm(train_loader, desc=f"epoch {epoch}", leave=False,
                                   disable=not progress, unit="batch", dynamic_ncols=True):
                    xb, yb = xb.to(dev), yb.to(dev)
                    optimizer.zero_grad(set_to_none=True)
                    loss = rollout_loss(net, xb, yb, amp_dtype)
                    if not torch.isfinite(loss):
                        raise ParameterError(
                            f"the training loss became {float(loss)} in epoch {epoch}.",
                            fix="lower lr, check the data for extreme values, or use amp=False")
                    loss.backward()
                    optimizer.step()
                    total += float(loss.detach()) * xb.shape[0]
                    count += xb.shape[0]
                train_loss = total / max(count, 1)
                val_loss = None
                if val_loader is not None:
                    net.eval()
                    vt, vc = 0.0, 0
                    with torch.no_grad():
                        for xb, yb in val_loader:
                            xb, yb = xb.to(dev), yb.to(dev)
                            vt += float(rollout_loss(net, xb, yb, amp_dtype)) * xb.shape[0]
                            vc += xb.shape[0]
                    val_loss = vt / max(vc, 1)
                    net.train()  # state dicts are taken in training mode (e2cnn caches filters in eval)
                scheduler.step()
                history["epoch"].append(epoch)
                history["train_loss"].append(train_loss)
                history["val_loss"].append(val_loss)
                history["lr"].append(lr_now)
                score = val_loss if val_loss is not None else -epoch  # no validation: keep the last
                if score < best_val:
                    best_val = score
                    best_state = _cpu_state(net.state_dict())
                    history["best_epoch"] = epoch
                    history["best_val_loss"] = val_loss
                    bad_epochs = 0
                else:
                    bad_epochs += 1
                if patience is not None and val_loss is not None and bad_epochs >= patience:
                    history["stopped_early"] = True
                    done = True
                if epoch >= epochs:
                    done = True
                bar.update(1)
                bar.set_postfix(train=f"{train_loss:.4g}",
                                val="-" if val_loss is None else f"{val_loss:.4g}",
                                best=history["best_epoch"])
                if state_path is not None:
                    _atomic_torch_save({
                        "version": _STATE_VERSION,
                        "signature": signature,
                        "epoch": epoch,
                        "done": done,
                        "model": _cpu_state(net.state_dict()),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "shuffle_rng": shuffle_gen.get_state(),
                        "torch_rng": torch.get_rng_state(),
                        "cuda_rng": torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None,
                        "best_model": best_state,
                        "best_val": best_val,
                        "bad_epochs": bad_epochs,
                        "history": json.dumps(history),
                    }, state_path)
                logs = {"train_loss": train_loss, "val_loss": val_loss, "lr": lr_now,
                        "best_epoch": history["best_epoch"]}
                for cb in callbacks:
                    cb(epoch, net, logs)
        finally:
            bar.close()

    # ---- the best weights, wrapped by the normalization, with a model card ------------------
    net.train()
    if best_state is not None:
        net.load_state_dict(best_state)
    model = NormalizedModel(net, norm["scale"], norm["offset"], norm["velocity_scale"])
    model.to(dev).eval()
    desc = description or meta.get("description")
    model.card = {
        "t_in": t_net,
        "velocity": bool(meta["n_velocity"]),
        "channels": meta["channels"],
        "grid": _grid_card(meta),
        "normalization": norm,
        "training": {
            "data": desc or "model-frame data (no description given)",
            "data_shape": {str(d): int(n) for d, n in frame.sizes.items()},
            "data_sha256": data_sha,
            "train_time_index": [train_r.start, train_r.stop],
            "val_time_index": None if val_r is None else [val_r.start, val_r.stop],
            "train_samples": len(train_ds),
            "val_samples": 0 if val_ds is None else len(val_ds),
            "loss": f"sum over {rollout_steps} rollout steps of the per-step MSE, in normalized units",
            "optimizer": "Adam (L2 weight decay), learning rate x lr_decay per epoch",
            "hyperparameters": hyper,
            "device": str(dev),
            "xequi_version": __version__,
        },
        "metrics": {
            "history": {k: history[k] for k in ("epoch", "train_loss", "val_loss", "lr")},
            "best_epoch": history["best_epoch"],
            "best_val_loss": history["best_val_loss"],
            "stopped_early": history["stopped_early"],
            "weights": "best validation epoch" if val_r is not None else "last epoch (no validation)",
        },
    }
    from xequi import checkpoint as ck

    model.card = ck._base_card(model)  # architecture, symmetries, the normalization as stored
    model.card["weights_sha256"] = ck.weights_digest(ck._tensors_for_saving(net))
    model.card["xequi_version"] = __version__
    if checkpoint_dir is not None:
        ck.save_model(model, Path(checkpoint_dir) / BEST_FILE, overwrite=True)
    return model, history
