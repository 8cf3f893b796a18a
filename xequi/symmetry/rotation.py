"""Rotations: the exact quarter turns (``rot90``, the group C4 of the grid) and rotations by
any angle (``rotate``, interpolated), on model-frame tensors and (through
:func:`xequi.symmetry.transform`) on xarray data."""

from __future__ import annotations

import math
from numbers import Integral

import numpy as np
import xarray as xr

from xequi.errors import ParameterError
from xequi.symmetry._common import (_MODES, _PADDINGS, _check_tensor, _check_vector, _integers,
                                    _rotate_vectors, _sample, _torch, _uniform)
from xequi.symmetry.registry import Symmetry

__all__ = ["rot90", "rotate", "Rot90", "Rotate"]


def rot90(x, k: int = 1, vector=(0, 1)):
    """Rotate a model-frame tensor counter-clockwise by ``k`` × 90 degrees (exact).

    The grid is rotated with ``torch.rot90(x, k, dims=(-2, -1))`` and the velocity channels with
    ``(u, v) -> (u cos θ - v sin θ, u sin θ + v cos θ)``, θ = k · 90°.

    Parameters
    ----------
    x : torch.Tensor
        Shape ``(..., C, H, W)`` in the model frame (row 0 = largest y).
    k : int, default 1
        Number of quarter turns; negative values rotate clockwise.
    vector : pair of int or None, default (0, 1)
        Channel indices of (u, v); ``None`` when every channel is a scalar.

    Returns
    -------
    torch.Tensor
        Shape ``(..., C, W, H)``, same dtype and device.

    Raises
    ------
    ParameterError
        If ``x`` is not a tensor with at least 3 dims, ``k`` is not an integer or ``vector`` is
        not two distinct channels.

    Examples
    --------
    >>> import torch
    >>> x = torch.zeros(2, 3, 3); x[0] = 1.0      # uniform flow along +x (east)
    >>> y = rot90(x, 1)
    >>> y[:, 1, 1].tolist()                      # now along +y (north)
    [0.0, 1.0]
    >>> torch.equal(rot90(rot90(x, 3), 1), x)
    True
    """
    _check_tensor(x)
    if isinstance(k, bool) or not isinstance(k, Integral):
        raise ParameterError(f"k must be an integer number of quarter turns, got {k!r}.",
                             fix="pass k in {0, 1, 2, 3} (or use rotate() for other angles)")
    vec = _check_vector(x, vector)
    k = int(k) % 4
    torch = _torch()
    out = torch.rot90(x, k, dims=(-2, -1)) if k else x.clone()
    cos, sin = ((1, 0), (0, 1), (-1, 0), (0, -1))[k]
    return _rotate_vectors(out, vec, cos, sin)


def rotate(x, angle: float, vector=(0, 1), mode: str = "bilinear", padding_mode: str = "zeros"):
    """Rotate a model-frame tensor counter-clockwise by an arbitrary angle (approximate).

    The output keeps the input shape; output pixel p (relative to the grid centre, physical
    orientation) takes the value interpolated at R⁻¹p, and the vector channels are rotated by R.
    Multiples of 90 degrees are dispatched to the exact :func:`rot90` when the grid is square.
    Points sampled outside the input get ``padding_mode`` (zeros by default). Interpolation makes
    this approximate: compare in the interior.

    Parameters
    ----------
    x : torch.Tensor
        Shape ``(..., C, H, W)``, floating point, model frame.
    angle : float
        Angle in degrees, counter-clockwise (same sense as :func:`rot90`).
    vector : pair of int or None, default (0, 1)
        Channel indices of (u, v).
    mode : {"bilinear", "nearest", "bicubic"}
        Interpolation (``torch.nn.functional.grid_sample``).
    padding_mode : {"zeros", "border", "reflection"}
        Value of points sampled outside the grid.

    Returns
    -------
    torch.Tensor
        Same shape, dtype and device as ``x``.

    Raises
    ------
    ParameterError
        If the angle is not finite or the mode is unknown.

    Examples
    --------
    >>> import torch
    >>> x = torch.randn(2, 5, 5, dtype=torch.float64)
    >>> torch.allclose(rotate(x, 90.0), rot90(x, 1))
    True
    """
    torch = _torch()
    _check_tensor(x)
    vec = _check_vector(x, vector)
    try:
        angle = float(angle)
    except (TypeError, ValueError):
        raise ParameterError(f"angle must be a number of degrees, got {angle!r}.",
                             fix="pass e.g. angle=45.0") from None
    if not math.isfinite(angle):
        raise ParameterError(f"angle must be finite, got {angle}.", fix="pass e.g. angle=45.0")
    if mode not in _MODES:
        raise ParameterError(f"unknown interpolation mode {mode!r}.", fix=f"use one of {_MODES}")
    if padding_mode not in _PADDINGS:
        raise ParameterError(f"unknown padding_mode {padding_mode!r}.", fix=f"use one of {_PADDINGS}")
    H, W = x.shape[-2:]
    quarter = angle / 90.0
    if H == W and abs(quarter - round(quarter)) < 1e-12:
        return rot90(x, int(round(quarter)), vector=vector)
    if not x.is_floating_point():
        raise ParameterError("rotate needs a floating-point tensor.", fix="convert with x.float()")
    th = math.radians(angle)
    c, s = math.cos(th), math.sin(th)
    rows = torch.arange(H, dtype=torch.float64)
    cols = torch.arange(W, dtype=torch.float64)
    r, q = torch.meshgrid(rows, cols, indexing="ij")
    px = q - (W - 1) / 2.0          # physical x offset
    py = (H - 1) / 2.0 - r          # physical y offset (row 0 = top)
    sx = c * px + s * py            # R^-1 p
    sy = -s * px + c * py
    out = _sample(x, (H - 1) / 2.0 - sy, sx + (W - 1) / 2.0, mode, padding_mode)
    return _rotate_vectors(out, vec, c, s)


def _new_coords_rot90(obj, ax, k: int, grid):
    """Coordinates of the grid after an odd number of quarter turns about the grid centre."""
    cx, cy = obj[ax.x], obj[ax.y]
    xv, yv = np.asarray(cx.values, dtype=float), np.asarray(cy.values, dtype=float)
    xc, yc = (xv.min() + xv.max()) / 2.0, (yv.min() + yv.max()) / 2.0
    off_y = np.sort(yv - yc)          # becomes the new x offsets
    off_x = np.sort(xv - xc)          # becomes the new y offsets
    new_x = xc + (off_y if grid.x_ascending else off_y[::-1])
    new_y = yc + (off_x if grid.y_ascending else off_x[::-1])
    return (xr.DataArray(new_x, dims=(ax.x,), attrs=dict(cx.attrs)),
            xr.DataArray(new_y, dims=(ax.y,), attrs=dict(cy.attrs)))


class Rot90(Symmetry):
    """Counter-clockwise quarter turns about the grid centre (grid and vectors; exact)."""

    name = "rot90"
    aliases = ("rot",)
    xr_params = ((), ("k",))
    param = "k"
    defaults = {"k": 1}
    summary = "rotation by k × 90° (grid and vectors), `k`"

    def label(self, config=None):
        order = (config or {}).get("group_order", 4)
        return f"C{order} rotations (exact for multiples of 90 degrees)"

    def apply(self, x, vector=(0, 1), **params):
        return rot90(x, vector=vector, **params)

    def random_params(self, generator, **options):
        return {"k": _integers(generator, 0, 4)[0]}

    def test_params(self, generator, **options):
        # every test sample really rotated: k in {1, 2, 3}
        return {"k": _integers(generator, 1, 4)[0]}

    def invert(self, value):
        return (-int(value)) % 4

    def act_frame(self, x, vector, ctx, lead, params):
        return rot90(x, params.get("k", 1), vector=vector)

    def relabel(self, ds, out, new_vars, ax, grid, params):
        k = int(params.get("k", 1))
        if k % 2 == 0:
            return out.assign(new_vars)
        new_x, new_y = _new_coords_rot90(ds, ax, k, grid)
        aux = [n for n, c in ds.coords.items()
               if n not in (ax.x, ax.y) and set(c.dims) & {ax.x, ax.y}]
        square = ds.sizes[ax.x] == ds.sizes[ax.y]
        out = out.drop_vars([n for n in (ax.x, ax.y) if n in out.coords] + ([] if square else aux))
        out = out.assign(new_vars)
        return out.assign_coords({n: c for n, c in ((ax.x, new_x), (ax.y, new_y)) if n in ds.coords})


class Rotate(Symmetry):
    """Counter-clockwise rotation by any angle (interpolated; approximate)."""

    name = "rotate"
    xr_params = (("angle",), ("mode", "fill"))
    param = "angle"
    exact = False
    summary = "rotation by any angle (interpolated), `angle` in degrees"

    def apply(self, x, vector=(0, 1), **params):
        return rotate(x, vector=vector, **params)

    def random_params(self, generator, **options):
        return {"angle": _uniform(generator, 0.0, 360.0)[0]}

    def invert(self, value):
        return -float(value)

    def act_frame(self, x, vector, ctx, lead, params):
        torch = _torch()
        y = rotate(x, params["angle"], vector=vector, mode=params.get("mode", "bilinear"))
        fill = params.get("fill", np.nan)
        if fill is not None and float(fill) != 0.0:  # zeros come from the padding already
            ones = torch.ones((1, 1) + tuple(x.shape[-2:]), dtype=torch.float64)
            inside = rotate(ones, params["angle"], vector=None, mode="bilinear")
            y = torch.where(inside >= 1 - 1e-9, y, torch.tensor(float(fill), dtype=y.dtype))
        return y
