"""The normalized model: a network wrapped by fixed, symmetry-compatible normalization statistics.

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

This is the models layer: :mod:`xequi.train` computes the statistics and returns a
:class:`NormalizedModel`, and :mod:`xequi.checkpoint` / :mod:`xequi.forecast` load and apply one
without importing training code.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from xequi.errors import ModelError, ParameterError

__all__ = ["NormalizedModel", "compute_normalization", "resolve_device"]


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

    This is what :func:`xequi.train.fit` and :func:`xequi.checkpoint.load_model` return. It takes
    and returns model-frame tensors in physical units (those of ``card["channels"]``); attributes
    it does not define (``config``, ``symmetries``, ``t_in``, ``check_input``, ...) are those of
    the wrapped network.

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


def resolve_device(device) -> torch.device:
    """The torch device a model runs on: ``None`` / ``"auto"`` is CUDA when available, else CPU.

    One rule for training (:func:`xequi.train.fit`) and inference (:func:`xequi.forecast.forecast`).

    >>> resolve_device("cpu")
    device(type='cpu')
    """
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
