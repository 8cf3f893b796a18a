"""Magnitude ``w -> λ w`` (λ > 0), on tensors and xarray: every channel, scalars included."""

from __future__ import annotations

from xequi.errors import ParameterError
from xequi.symmetry._common import _check_tensor, _leading, _torch, _uniform, invert_lam
from xequi.symmetry.registry import Symmetry

__all__ = ["magnitude", "Magnitude"]


def magnitude(x, lam, channels=None):
    """Multiply by ``λ > 0`` (exact).

    Parameters
    ----------
    x : torch.Tensor
        Shape ``(..., C, H, W)``.
    lam : float or tensor
        λ > 0; a tensor whose shape is a prefix of ``x.shape[:-3]`` gives one λ per batch element.
    channels : sequence of int, optional
        Channels to scale. ``None`` (default) scales *all* channels, scalars included: the Mag
        symmetry of the paper acts on the whole input (velocity-only data in the paper). Pass
        ``channels=(0, 1)`` to leave scalar channels untouched.

    Returns
    -------
    torch.Tensor
        Same shape, dtype and device as ``x``.

    Raises
    ------
    ParameterError
        If some λ is not > 0 or channels are out of range.

    Examples
    --------
    >>> import torch
    >>> magnitude(torch.ones(2, 1, 1), 0.5).flatten().tolist()
    [0.5, 0.5]
    """
    torch = _torch()
    _check_tensor(x)
    lt = _leading(lam, x, "lam")
    if not bool((lt > 0).all()):
        raise ParameterError(f"lam must be > 0 (the Mag symmetry is exact only for λ > 0), got {lam!r}.",
                             fix="pass a positive factor, e.g. lam=0.5")
    if channels is None:
        return x * lt.unsqueeze(-3)
    C = x.shape[-3]
    chans = [int(ch) % C if -C <= int(ch) < C else None for ch in channels]
    if any(ch is None for ch in chans):
        raise ParameterError(f"channels {tuple(channels)} out of range for {C} channels.",
                             fix=f"pass indices in 0..{C - 1}")
    out = x.clone()
    for ch in chans:
        out[..., ch, :, :] = x[..., ch, :, :] * lt
    return out


class Magnitude(Symmetry):
    """``w -> λ w`` on every channel (exact for λ > 0)."""

    name = "magnitude"
    aliases = ("mag",)
    xr_params = (("lam",), ())
    param = "lam"
    pointwise = True
    summary = "w → λw, every channel, `lam` > 0"

    def label(self, config=None):
        return "magnitude (lambda > 0)"

    def apply(self, x, vector=(0, 1), **params):
        return magnitude(x, **params)  # every channel: ``vector`` does not apply

    def random_params(self, generator, lam_min=0.05, **options):
        if not 0 < lam_min < 2:
            raise ParameterError(f"lam_min must be in (0, 2), got {lam_min}.", fix="pass lam_min=0.05")
        return {"lam": _uniform(generator, lam_min, 2.0)[0]}

    def invert(self, value):
        return invert_lam(value)

    def act_frame(self, x, vector, ctx, lead, params):
        return magnitude(x, params["lam"])
