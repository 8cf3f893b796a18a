"""Translations by whole cells (exact; periodic or cropped) and, on tensors, by sub-cells
(periodic Fourier shift)."""

from __future__ import annotations

import math
from numbers import Integral

from xequi.errors import ParameterError
from xequi.symmetry._common import _check_tensor, _fourier_shift, _integers, _torch
from xequi.symmetry.registry import Symmetry

__all__ = ["translate", "Translate"]


def translate(x, shift=(0, 0), periodic: bool = True):
    """Translate a tensor on its grid by ``shift = (dy, dx)`` cells.

    The shift is in array index units, as ``torch.roll``: ``out[..., i + dy, j + dx] =
    x[..., i, j]``. In the model frame a positive ``dx`` moves the pattern toward +x, a positive
    ``dy`` toward larger row index, i.e. toward -y (south). Integer shifts are exact; non-integer
    shifts need ``periodic=True`` and use a Fourier (band-limited) shift.

    Parameters
    ----------
    x : torch.Tensor
        Shape ``(..., C, H, W)``.
    shift : pair of numbers
        ``(dy, dx)`` in cells.
    periodic : bool, default True
        Roll with wrap-around; ``False`` shifts in zeros (the cropped part is lost).

    Returns
    -------
    torch.Tensor
        Same shape, dtype and device as ``x``.

    Raises
    ------
    ParameterError
        If the shift is not a pair of finite numbers, or non-integer with ``periodic=False``.

    Examples
    --------
    >>> import torch
    >>> translate(torch.arange(4.).reshape(1, 1, 4), (0, 1)).flatten().tolist()
    [3.0, 0.0, 1.0, 2.0]
    >>> translate(torch.arange(4.).reshape(1, 1, 4), (0, 1), periodic=False).flatten().tolist()
    [0.0, 0.0, 1.0, 2.0]
    """
    torch = _torch()
    _check_tensor(x)
    try:
        dy, dx = (float(s) for s in shift)
    except (TypeError, ValueError):
        raise ParameterError(f"shift must be a pair (dy, dx) of cells, got {shift!r}.",
                             fix="pass e.g. shift=(2, -3)") from None
    if not (math.isfinite(dy) and math.isfinite(dx)):
        raise ParameterError(f"shift must be finite, got {shift!r}.", fix="pass e.g. shift=(2, -3)")
    if dy.is_integer() and dx.is_integer():
        dy, dx = int(dy), int(dx)
        if periodic:
            return torch.roll(x, shifts=(dy, dx), dims=(-2, -1))
        H, W = x.shape[-2:]
        out = torch.zeros_like(x)
        if abs(dy) >= H or abs(dx) >= W:
            return out
        src_r = slice(max(0, -dy), H - max(0, dy))
        dst_r = slice(max(0, dy), H - max(0, -dy))
        src_c = slice(max(0, -dx), W - max(0, dx))
        dst_c = slice(max(0, dx), W - max(0, -dx))
        out[..., dst_r, dst_c] = x[..., src_r, src_c]
        return out
    if not periodic:
        raise ParameterError(f"non-integer shift {shift!r} needs periodic=True (Fourier shift).",
                             fix="round the shift to whole cells, or pass periodic=True")
    if not x.is_floating_point():
        raise ParameterError("a sub-cell shift needs a floating-point tensor.", fix="use x.float()")
    return _fourier_shift(x, dy, dx)


def _translate_xr(ds, ax, grid, shift=(0, 0), periodic: bool = True):
    try:
        sy, sx = (s for s in shift)
    except (TypeError, ValueError):
        raise ParameterError(f"shift must be a pair (sy, sx) of cells, got {shift!r}.",
                             fix="pass e.g. shift=(1, -2)") from None
    for s in (sy, sx):
        if isinstance(s, bool) or not isinstance(s, Integral):
            raise ParameterError(f"xarray translation needs integer cell shifts, got {shift!r}.",
                                 fix="round the shift, or use the 'galilean' kind for sub-cell "
                                     "shifts")
    ix = int(sx) if grid.x_ascending else -int(sx)
    iy = int(sy) if grid.y_ascending else -int(sy)
    if periodic:
        spatial = [n for n in ds.data_vars if ax.x in ds[n].dims or ax.y in ds[n].dims]
        out = ds.copy()
        for n in spatial:
            out[n] = ds[n].roll({ax.x: ix, ax.y: iy}, roll_coords=False)
        return out
    nx, ny = ds.sizes[ax.x], ds.sizes[ax.y]
    if abs(ix) >= nx or abs(iy) >= ny:
        raise ParameterError(f"shift {tuple(shift)} leaves nothing of a {ny}×{nx} grid when "
                             "cropping.", fix="use a smaller shift or periodic=True")
    src = {ax.x: slice(max(0, -ix), nx - max(0, ix)), ax.y: slice(max(0, -iy), ny - max(0, iy))}
    dst = {ax.x: slice(max(0, ix), nx - max(0, -ix)), ax.y: slice(max(0, iy), ny - max(0, -iy))}
    target = ds.isel(dst)
    out = target.copy()
    for n in ds.data_vars:
        if ax.x in ds[n].dims or ax.y in ds[n].dims:
            moved = ds[n].isel({d: s for d, s in src.items() if d in ds[n].dims})
            out[n] = moved.copy(data=moved.values).assign_coords(
                {d: target[d] for d in (ax.x, ax.y) if d in moved.dims and d in target.coords})
            out[n].attrs = dict(ds[n].attrs)
    return out


class Translate(Symmetry):
    """Translation by ``shift = (dy, dx)`` cells."""

    name = "translate"
    aliases = ("translation",)
    xr_params = ((), ("shift", "periodic"))
    param = "shift"
    summary = "translation by whole cells, `shift` = (sy, sx)"

    def label(self, config=None):
        return "translations"

    def apply(self, x, vector=(0, 1), **params):
        return translate(x, **params)  # vectors are not turned: ``vector`` does not apply

    def random_params(self, generator, max_shift=(8, 8), **options):
        my, mx = (int(m) for m in max_shift)
        return {"shift": (_integers(generator, -my, my + 1)[0], _integers(generator, -mx, mx + 1)[0])}

    def invert(self, value):
        return tuple(-v for v in value)

    def transform_xr(self, ds, ax, grid, pair, params):
        return _translate_xr(ds, ax, grid, **params)
