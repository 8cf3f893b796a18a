"""The mirror reflection ``x -> -x`` (with ``u -> -u``), on tensors and xarray data (exact).

In the model frame the reflection flips the grid along its last axis (x) and negates the x
component of the velocity (channel ``vector[0]``); ``v`` is kept, scalars are flipped but not
negated. Together with the quarter turns of ``rot90`` it generates the dihedral group D4 of the
square grid (``M R M = R⁻¹``).

Physics: the reflection x -> -x is an exact symmetry of Rayleigh–Bénard convection (gravity
points along -y and is unchanged by it, unlike by a rotation) and of the Navier–Stokes
equations without rotation. It is **not** a symmetry of a rotating ocean: the Coriolis term
``f ẑ × u`` changes sign under a reflection (a reflected flow lives on a planet spinning the
other way), so a mirror-equivariant model is the wrong prior for the QG ocean data.
"""

from __future__ import annotations

import numpy as np

from xequi.errors import ParameterError
from xequi.symmetry._common import _check_tensor, _check_vector, _integers, _torch
from xequi.symmetry.registry import Symmetry

__all__ = ["mirror", "Mirror"]


def mirror(x, vector=(0, 1), flip: bool = True):
    """Reflect a model-frame tensor ``x -> -x``: flip the last axis and negate ``u`` (exact).

    Parameters
    ----------
    x : torch.Tensor
        Shape ``(..., C, H, W)`` in the model frame.
    vector : pair of int or None, default (0, 1)
        Channel indices of (u, v): ``u`` (``vector[0]``) is negated, ``v`` kept; ``None`` when
        every channel is a scalar (flipped only).
    flip : bool, default True
        The group element: ``True`` reflects, ``False`` is the identity (a copy), so that
        :func:`xequi.symmetry.random_params` can draw either.

    Returns
    -------
    torch.Tensor
        Same shape, dtype and device as ``x``.

    Raises
    ------
    ParameterError
        If ``x`` is not a tensor with at least 3 dims, ``vector`` is not two distinct channels
        or ``flip`` is not a bool.

    Examples
    --------
    >>> import torch
    >>> x = torch.arange(1.0, 7.0).reshape(2, 1, 3)    # u = [1, 2, 3], v = [4, 5, 6] along x
    >>> mirror(x).tolist()                             # u reversed and negated, v reversed
    [[[-3.0, -2.0, -1.0]], [[6.0, 5.0, 4.0]]]
    >>> torch.equal(mirror(mirror(x)), x)
    True
    """
    torch = _torch()
    _check_tensor(x)
    vec = _check_vector(x, vector)
    if not isinstance(flip, (bool, np.bool_)):
        raise ParameterError(f"flip must be True or False, got {flip!r}.",
                             fix="pass flip=True to reflect (the default)")
    if not bool(flip):
        return x.clone()
    out = torch.flip(x, dims=(-1,))
    if vec is not None:
        out[..., vec[0], :, :] = -out[..., vec[0], :, :]
    return out


class Mirror(Symmetry):
    """The reflection x -> -x with u -> -u (exact; see the module docstring for the physics)."""

    name = "mirror"
    aliases = ("reflect", "reflection")
    xr_params = ((), ("flip",))
    param = "flip"
    defaults = {"flip": True}
    summary = "reflection x → −x, u → −u (v and scalars kept, all fields flipped), `flip`"

    def label(self, config=None):
        return "mirror x -> -x (exact)"

    def apply(self, x, vector=(0, 1), **params):
        return mirror(x, vector=vector, **params)

    def random_params(self, generator, **options):
        return {"flip": bool(_integers(generator, 0, 2)[0])}

    def test_params(self, generator, **options):
        return {"flip": True}  # every test sample reflected

    def act_frame(self, x, vector, ctx, lead, params):
        return mirror(x, vector=vector, flip=params.get("flip", True))
