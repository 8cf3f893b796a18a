"""Group actions of the Navier–Stokes symmetries on torch tensors and on xarray objects.

Two layers share one implementation:

* **tensor kernels** (:func:`rot90`, :func:`rotate`, :func:`uniform_motion`, :func:`magnitude`,
  :func:`translate`, :func:`scale`, :func:`apply`, :func:`random_params`,
  :func:`inverse_params`) act on torch tensors laid out ``(..., C, H, W)`` in the *model frame*
  (``docs/architecture.md``): row 0 is the largest y, column index increases with x, channel
  ``vector[0]`` is the component along +x and ``vector[1]`` the component along +y (toward
  row 0). Tensors keep their dtype and device; inputs are never modified in place.
* **xarray actions** (:func:`transform`, forwarded by ``ds.equi.transform``) map a Dataset or
  DataArray into the model frame with :mod:`xequi.fields`, call the same tensor kernels, and map
  the result back (coordinates, orientation, units and attrs restored), so the code that builds
  transformed test sets is the code the equivariance tests exercise.

Conventions (see each function for details)
-------------------------------------------
* rotation: counter-clockwise by a positive angle, about the centre of the grid;
* uniform motion ``w -> w + c`` (velocity channels only, scalars untouched);
* magnitude ``w -> λ w`` (``channels=None``: all channels, scalars included);
* scale ``w(x, t) -> λ w(λx, λ²t)`` about the grid centre (space) and frame 0 (time). The paper's
  test-set recipe "resample by s in space and s² in time and divide by s" is ``λ = 1/s``.
"""

from __future__ import annotations

import json
import math
from numbers import Integral, Real

import numpy as np
import xarray as xr

from xequi.errors import GridError, ParameterError, UnitsError

__all__ = [
    "KINDS",
    "rot90",
    "rotate",
    "uniform_motion",
    "magnitude",
    "translate",
    "scale",
    "apply",
    "random_params",
    "inverse_params",
    "transform",
    "scale_factor",
    "XARRAY_KINDS",
]

#: canonical kind names of the tensor actions, with their aliases
KINDS = {
    "rot90": "rot90",
    "rot": "rot90",
    "rotate": "rotate",
    "uniform_motion": "uniform_motion",
    "um": "uniform_motion",
    "magnitude": "magnitude",
    "mag": "magnitude",
    "translate": "translate",
    "translation": "translate",
    "scale": "scale",
}


def _torch():
    import torch

    return torch


def _canonical(kind: str, extra: tuple[str, ...] = ()) -> str:
    if not isinstance(kind, str):
        raise ParameterError(f"kind must be a string, got {kind!r}.", fix=f"use one of {sorted(KINDS)}")
    key = kind.lower()
    if key in KINDS:
        return KINDS[key]
    if key in extra:
        return key
    raise ParameterError(
        f"unknown symmetry kind {kind!r}.", fix=f"use one of {sorted(set(KINDS) | set(extra))}"
    )


def _check_tensor(x, name: str = "x", min_dim: int = 3):
    torch = _torch()
    if not isinstance(x, torch.Tensor):
        raise ParameterError(
            f"{name} must be a torch.Tensor shaped (..., C, H, W), got {type(x).__name__}.",
            fix="convert with torch.as_tensor(array)",
        )
    if x.dim() < min_dim:
        raise ParameterError(
            f"{name} must have at least {min_dim} dims (..., C, H, W), got shape {tuple(x.shape)}.",
            fix="add a channel dimension, e.g. x.unsqueeze(-3)",
        )
    return x


def _check_vector(x, vector) -> tuple[int, int] | None:
    if vector is None:
        return None
    try:
        iu, iv = (int(i) for i in vector)
    except (TypeError, ValueError):
        raise ParameterError(
            f"vector must be a pair of channel indices (u, v) or None, got {vector!r}.",
            fix="pass vector=(0, 1) or vector=None for scalar-only tensors",
        ) from None
    C = x.shape[-3]
    iu, iv = iu % C if -C <= iu < C else iu, iv % C if -C <= iv < C else iv
    if not (0 <= iu < C and 0 <= iv < C) or iu == iv:
        raise ParameterError(
            f"vector channels {tuple(vector)} are not two distinct channels of a tensor with "
            f"{C} channels (shape {tuple(x.shape)}).",
            fix="pass the (u, v) channel indices, e.g. vector=(0, 1), or vector=None",
        )
    return iu, iv


def _rotate_vectors(x, vector, cos: float, sin: float):
    """Return a copy of ``x`` with the (u, v) channels rotated by the angle (cos, sin)."""
    if vector is None:
        return x
    iu, iv = vector
    u = x[..., iu, :, :]
    v = x[..., iv, :, :]
    out = x.clone()
    out[..., iu, :, :] = u * cos - v * sin
    out[..., iv, :, :] = u * sin + v * cos
    return out


def _leading(param, x, name: str):
    """A per-batch parameter as a tensor broadcastable against ``x[..., c, :, :]`` (shape (..., H, W)).

    ``param`` of shape ``P`` (a prefix of the leading dims ``x.shape[:-3]``) gets trailing
    singleton dims appended.
    """
    torch = _torch()
    t = torch.as_tensor(param, dtype=x.dtype, device=x.device)
    lead = x.shape[:-3]
    if t.dim() > len(lead) or not all(s in (1, n) for s, n in zip(t.shape, lead)):
        raise ParameterError(
            f"{name} of shape {tuple(t.shape)} does not match the leading dims {tuple(lead)} of a "
            f"tensor of shape {tuple(x.shape)}.",
            fix=f"pass a scalar or a tensor whose shape is a prefix of {tuple(lead)}",
        )
    if bool(torch.isnan(t).any()) or bool(torch.isinf(t).any()):
        raise ParameterError(f"{name} contains NaN or inf.", fix=f"pass finite values of {name}")
    return t.reshape(tuple(t.shape) + (1,) * (len(lead) - t.dim() + 2))


# ---------------------------------------------------------------------------------------------
# tensor kernels
# ---------------------------------------------------------------------------------------------


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


def _sample(x, src_row, src_col, mode: str, padding_mode: str):
    """Sample ``x`` (..., C, H, W) at fractional pixel positions (grid (H', W') of rows/cols)."""
    torch = _torch()
    import torch.nn.functional as F

    H, W = x.shape[-2:]
    gx = 2.0 * src_col / max(W - 1, 1) - 1.0
    gy = 2.0 * src_row / max(H - 1, 1) - 1.0
    grid = torch.stack((gx, gy), dim=-1).to(dtype=x.dtype, device=x.device)
    lead = x.shape[:-3]
    flat = x.reshape((-1,) + tuple(x.shape[-3:]))
    n = flat.shape[0]
    out = F.grid_sample(flat, grid.unsqueeze(0).expand(n, *grid.shape), mode=mode,
                        padding_mode=padding_mode, align_corners=True)
    return out.reshape(tuple(lead) + tuple(out.shape[-3:]))


_MODES = ("bilinear", "nearest", "bicubic")
_PADDINGS = ("zeros", "border", "reflection")


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


def uniform_motion(x, c, vector=(0, 1)):
    """Add a constant velocity ``c = (cu, cv)`` to the vector channels (exact).

    Scalar channels are untouched; this is the UM action ``w -> w + c`` of the paper (the full
    Galilean boost ``w(x - ct, t) + c`` is the xarray kind ``"galilean"`` of :func:`transform`).

    Parameters
    ----------
    x : torch.Tensor
        Shape ``(..., C, H, W)``, model frame.
    c : pair of float, or tensor of shape (..., 2)
        The velocity added, components along +x and +y of the model frame. A tensor of shape
        ``(*P, 2)`` with ``P`` a prefix of ``x.shape[:-3]`` gives one velocity per batch element.
    vector : pair of int, default (0, 1)
        Channel indices of (u, v).

    Returns
    -------
    torch.Tensor
        Same shape, dtype and device as ``x``.

    Raises
    ------
    ParameterError
        If ``vector`` is None, ``c`` is not a pair or does not broadcast.

    Examples
    --------
    >>> import torch
    >>> uniform_motion(torch.zeros(3, 2, 2), (1.0, -2.0))[:, 0, 0].tolist()
    [1.0, -2.0, 0.0]
    """
    torch = _torch()
    _check_tensor(x)
    vec = _check_vector(x, vector)
    if vec is None:
        raise ParameterError("uniform_motion needs velocity channels, got vector=None.",
                             fix="pass vector=(iu, iv), the channel indices of (u, v)")
    ct = torch.as_tensor(c, dtype=x.dtype, device=x.device) if not isinstance(c, torch.Tensor) \
        else c.to(dtype=x.dtype, device=x.device)
    if ct.dim() == 0 or ct.shape[-1] != 2:
        raise ParameterError(f"c must be a pair (cu, cv) or a tensor of shape (..., 2), got shape "
                             f"{tuple(ct.shape)}.", fix="pass e.g. c=(1.0, 0.5)")
    iu, iv = vec
    out = x.clone()
    out[..., iu, :, :] = x[..., iu, :, :] + _leading(ct[..., 0], x, "c[..., 0]")
    out[..., iv, :, :] = x[..., iv, :, :] + _leading(ct[..., 1], x, "c[..., 1]")
    return out


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


def _fourier_shift(x, dy, dx):
    """Periodic sub-cell shift by (dy rows, dx cols) with the FFT; dy, dx broadcast on x[..., C, 1, 1]."""
    torch = _torch()
    H, W = x.shape[-2:]
    real_dtype = x.dtype
    ky = torch.fft.fftfreq(H, dtype=torch.float64, device=x.device).reshape(H, 1)
    kx = torch.fft.fftfreq(W, dtype=torch.float64, device=x.device).reshape(1, W)
    dy = torch.as_tensor(dy, dtype=torch.float64, device=x.device)
    dx = torch.as_tensor(dx, dtype=torch.float64, device=x.device)
    phase = torch.exp(-2j * math.pi * (ky * dy + kx * dx))
    spec = torch.fft.fft2(x.to(torch.float64))
    out = torch.fft.ifft2(spec * phase).real
    return out.to(real_dtype)


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


def scale(x, lam: float, vector=(0, 1), time_dim=None, dt=None, mode: str = "bilinear",
          padding_mode: str = "zeros"):
    """The scaling action ``w(x, t) -> λ w(λx, λ²t)`` (approximate: interpolation).

    Space: output pixel p (offset from the grid centre, in cells) takes the input interpolated at
    λp, so λ < 1 zooms in (features grow by 1/λ) and λ > 1 zooms out (points beyond the input get
    ``padding_mode``). Time (only when ``time_dim`` is given): output frame n, at time ``n·dt``
    measured in input frames from frame 0, takes the input linearly interpolated at ``λ² n dt``;
    every such time must lie within the input frames. Magnitude: *all vector channels* are
    multiplied by λ; scalar channels are resampled but not multiplied (their scaling exponent
    depends on the physics). The paper's test-set recipe "resample by s in space and s² in time
    and divide by s" is ``λ = 1/s``. ``scale(scale(x, a), b) ≈ scale(x, a·b)``.

    Parameters
    ----------
    x : torch.Tensor
        Shape ``(..., C, H, W)``, floating point, model frame.
    lam : float
        λ > 0.
    vector : pair of int or None, default (0, 1)
        Channels multiplied by λ (the velocity).
    time_dim : int, optional
        Index of the time dimension of ``x`` (e.g. ``-4`` for ``(..., T, C, H, W)``). ``None``: a
        purely spatial zoom, no time resampling.
    dt : float, optional
        Output frame spacing in input frames (default 1).
    mode, padding_mode : str
        Spatial interpolation, as in :func:`rotate`.

    Returns
    -------
    torch.Tensor
        Same shape, dtype and device as ``x``.

    Raises
    ------
    ParameterError
        If λ ≤ 0, ``time_dim`` is one of the last three dims, or a resampled time falls outside
        the input frames (λ > 1 needs λ² times more history).

    Examples
    --------
    >>> import torch
    >>> x = torch.ones(2, 4, 4)
    >>> float(scale(x, 0.5)[0, 1, 1])
    0.5
    """
    torch = _torch()
    _check_tensor(x)
    vec = _check_vector(x, vector)
    try:
        lam = float(lam)
    except (TypeError, ValueError):
        raise ParameterError(f"lam must be a number, got {lam!r}.", fix="pass e.g. lam=0.5") from None
    if not (math.isfinite(lam) and lam > 0):
        raise ParameterError(f"lam must be > 0, got {lam}.", fix="pass e.g. lam=0.5")
    if mode not in _MODES:
        raise ParameterError(f"unknown interpolation mode {mode!r}.", fix=f"use one of {_MODES}")
    if padding_mode not in _PADDINGS:
        raise ParameterError(f"unknown padding_mode {padding_mode!r}.", fix=f"use one of {_PADDINGS}")
    if not x.is_floating_point():
        raise ParameterError("scale needs a floating-point tensor.", fix="convert with x.float()")
    out = x
    if time_dim is not None:
        td = int(time_dim) % x.dim()
        if td >= x.dim() - 3:
            raise ParameterError(f"time_dim={time_dim} points at a channel or grid dim of shape "
                                 f"{tuple(x.shape)}.", fix="pass the time dim, e.g. time_dim=-4")
        step = 1.0 if dt is None else float(dt)
        if not (math.isfinite(step) and step > 0):
            raise ParameterError(f"dt must be > 0, got {dt!r}.", fix="pass dt=1 (input frames)")
        T = x.shape[td]
        src_t = np.arange(T) * step * lam * lam
        if src_t[-1] > T - 1 + 1e-9:
            raise ParameterError(
                f"scale(lam={lam}, dt={step}) needs input frame {src_t[-1]:.3g} but the input has "
                f"{T} frames along time_dim={time_dim}.",
                fix="use λ ≤ 1, a smaller dt, or give more input frames than output frames")
        i0 = np.minimum(np.floor(src_t).astype(int), T - 1)
        i1 = np.minimum(i0 + 1, T - 1)
        w1 = torch.as_tensor(src_t - i0, dtype=x.dtype, device=x.device)
        shape = [1] * x.dim()
        shape[td] = T
        w1 = w1.reshape(shape)
        a = torch.index_select(x, td, torch.as_tensor(i0, device=x.device))
        b = torch.index_select(x, td, torch.as_tensor(i1, device=x.device))
        out = a * (1 - w1) + b * w1
    H, W = x.shape[-2:]
    if lam != 1.0:
        rows = torch.arange(H, dtype=torch.float64)
        cols = torch.arange(W, dtype=torch.float64)
        r, q = torch.meshgrid(rows, cols, indexing="ij")
        cy, cx = (H - 1) / 2.0, (W - 1) / 2.0
        out = _sample(out, cy + lam * (r - cy), cx + lam * (q - cx), mode, padding_mode)
    elif out is x:
        out = x.clone()
    if vec is not None:
        out = magnitude(out, lam, channels=vec)
    return out


def apply(x, kind: str, vector=(0, 1), **params):
    """Apply the action named ``kind`` with its parameters (dispatcher for augmentation / tests).

    Parameters
    ----------
    x : torch.Tensor
        Shape ``(..., C, H, W)``, model frame.
    kind : str
        ``"rot90"``/``"rot"``, ``"rotate"``, ``"uniform_motion"``/``"um"``,
        ``"magnitude"``/``"mag"``, ``"translate"``, ``"scale"``.
    vector : pair of int or None, default (0, 1)
        Channel indices of (u, v). For ``"magnitude"`` it is ignored (use ``channels=``).
    **params
        The keyword parameters of the matching function (``k``, ``angle``, ``c``, ``lam``,
        ``shift``, ...), e.g. as returned by :func:`random_params`.

    Returns
    -------
    torch.Tensor

    Raises
    ------
    ParameterError
        For an unknown kind or parameters the action does not take.

    Examples
    --------
    >>> import torch
    >>> x = torch.randn(2, 4, 4)
    >>> torch.equal(apply(x, "rot", k=2), rot90(x, 2))
    True
    """
    name = _canonical(kind)
    funcs = {"rot90": rot90, "rotate": rotate, "uniform_motion": uniform_motion, "scale": scale}
    try:
        if name in funcs:
            return funcs[name](x, vector=vector, **params)
        if name == "magnitude":
            return magnitude(x, **params)
        return translate(x, **params)
    except TypeError as err:
        raise ParameterError(f"bad parameters {sorted(params)} for symmetry kind {kind!r}: {err}.",
                             fix="see help(xequi.symmetry." + name + ")") from None


def _uniform(generator, low: float, high: float, size: int = 1) -> list[float]:
    torch = _torch()
    if isinstance(generator, np.random.Generator):
        return [float(v) for v in generator.uniform(low, high, size)]
    if isinstance(generator, torch.Generator):
        r = torch.rand(size, generator=generator, dtype=torch.float64)
        return [float(low + (high - low) * v) for v in r]
    raise ParameterError(f"generator must be a torch.Generator or numpy Generator, got "
                         f"{type(generator).__name__}.", fix="pass numpy.random.default_rng(seed)")


def _integers(generator, low: int, high: int, size: int = 1) -> list[int]:
    torch = _torch()
    if isinstance(generator, np.random.Generator):
        return [int(v) for v in generator.integers(low, high, size)]
    if isinstance(generator, torch.Generator):
        return [int(v) for v in torch.randint(low, high, (size,), generator=generator)]
    raise ParameterError(f"generator must be a torch.Generator or numpy Generator, got "
                         f"{type(generator).__name__}.", fix="pass numpy.random.default_rng(seed)")


def random_params(kind: str, generator, velocity_scale: float = 1.0, lam_min: float = 0.05,
                  scale_range: tuple[float, float] = (0.5, 1.0), max_shift=(8, 8)) -> dict:
    """Draw a random group element of ``kind`` for augmentation or a transformed test set.

    Distributions (the paper's transformed test sets, where they exist):

    * ``"rot90"``: ``k`` uniform in {0, 1, 2, 3};
    * ``"rotate"``: ``angle`` ~ U(0, 360) degrees;
    * ``"uniform_motion"``: ``c`` ~ U(-2, 2)² × ``velocity_scale``;
    * ``"magnitude"``: ``lam`` ~ U(lam_min, 2) (λ near 0 is excluded: the Mag layers divide by the
      input range);
    * ``"scale"``: ``lam`` ~ U(*scale_range), default (0.5, 1): λ ≤ 1 keeps the resampled window
      inside the input in space and time;
    * ``"translate"``: integer ``shift`` uniform in [-max_shift, max_shift] per axis.

    Parameters
    ----------
    kind : str
        A kind accepted by :func:`apply`.
    generator : numpy.random.Generator or torch.Generator
        Source of randomness (reproducible).
    velocity_scale : float, default 1
        Multiplies the UM velocity (e.g. the data's velocity std in model units).
    lam_min : float, default 0.05
    scale_range : (float, float), default (0.5, 1.0)
    max_shift : (int, int), default (8, 8)

    Returns
    -------
    dict
        Keyword parameters for :func:`apply`, plain Python numbers (JSON-serialisable).

    Raises
    ------
    ParameterError
        For an unknown kind or generator.

    Examples
    --------
    >>> import numpy as np
    >>> p = random_params("um", np.random.default_rng(0))
    >>> sorted(p), all(-2 <= c <= 2 for c in p["c"])
    (['c'], True)
    """
    name = _canonical(kind)
    if name == "rot90":
        return {"k": _integers(generator, 0, 4)[0]}
    if name == "rotate":
        return {"angle": _uniform(generator, 0.0, 360.0)[0]}
    if name == "uniform_motion":
        cu, cv = _uniform(generator, -2.0, 2.0, 2)
        return {"c": (cu * float(velocity_scale), cv * float(velocity_scale))}
    if name == "magnitude":
        if not 0 < lam_min < 2:
            raise ParameterError(f"lam_min must be in (0, 2), got {lam_min}.", fix="pass lam_min=0.05")
        return {"lam": _uniform(generator, lam_min, 2.0)[0]}
    if name == "scale":
        lo, hi = (float(v) for v in scale_range)
        if not 0 < lo <= hi:
            raise ParameterError(f"scale_range must satisfy 0 < low <= high, got {scale_range}.",
                                 fix="pass e.g. scale_range=(0.5, 1.0)")
        return {"lam": _uniform(generator, lo, hi)[0]}
    my, mx = (int(m) for m in max_shift)
    return {"shift": (_integers(generator, -my, my + 1)[0], _integers(generator, -mx, mx + 1)[0])}


def inverse_params(kind: str, **params) -> dict:
    """Parameters of the inverse group element.

    rot90: ``k -> -k mod 4``; rotate: ``angle -> -angle``; uniform_motion: ``c -> -c``;
    magnitude and scale: ``lam -> 1/lam``; translate: ``shift -> -shift``. Other parameters
    (``mode``, ``channels``, ``periodic``, ...) are kept. For the approximate actions (rotate,
    scale, non-periodic translate) the inverse undoes the action only where no information was
    lost (interior, no interpolation error).

    Parameters
    ----------
    kind : str
    **params
        Parameters of the element.

    Returns
    -------
    dict

    Raises
    ------
    ParameterError
        If a required parameter is missing, or λ is not > 0.

    Examples
    --------
    >>> inverse_params("rot90", k=1)
    {'k': 3}
    >>> inverse_params("mag", lam=4.0)
    {'lam': 0.25}
    """
    torch = _torch()
    name = _canonical(kind)
    out = dict(params)
    key = {"rot90": "k", "rotate": "angle", "uniform_motion": "c", "magnitude": "lam",
           "scale": "lam", "translate": "shift"}[name]
    if key not in params:
        if name == "rot90":
            params = dict(params, k=1)
        else:
            raise ParameterError(f"inverse_params({kind!r}) needs the parameter {key!r}.",
                                 fix=f"pass {key}=... as given to apply()")
    val = params[key]
    if name == "rot90":
        out["k"] = (-int(val)) % 4
    elif name == "rotate":
        out["angle"] = -float(val)
    elif name == "uniform_motion":
        out["c"] = -val if isinstance(val, torch.Tensor) else tuple(-float(v) for v in val)
    elif name in ("magnitude", "scale"):
        if isinstance(val, torch.Tensor):
            if not bool((val > 0).all()):
                raise ParameterError("lam must be > 0 to be inverted.", fix="pass lam > 0")
            out["lam"] = 1.0 / val
        else:
            if not float(val) > 0:
                raise ParameterError(f"lam must be > 0 to be inverted, got {val}.", fix="pass lam > 0")
            out["lam"] = 1.0 / float(val)
    else:
        out["shift"] = tuple(-v for v in val)
    return out


# ---------------------------------------------------------------------------------------------
# xarray actions
# ---------------------------------------------------------------------------------------------

#: kinds accepted by :func:`transform` (tensor kinds plus the Galilean boost)
XARRAY_KINDS = ("rot90", "rotate", "uniform_motion", "galilean", "magnitude", "scale", "translate")


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


def _to_frame(arr: np.ndarray, flip_y: bool, flip_x: bool) -> np.ndarray:
    if flip_y:
        arr = arr[..., ::-1, :]
    if flip_x:
        arr = arr[..., ::-1]
    return arr


def _as_velocity_value(c, unit_str: str | None, what: str) -> float:
    """A velocity component (number in the data's units, or pint quantity) in the data's units."""
    if hasattr(c, "units") and hasattr(c, "to"):
        from xequi.fields import parse_units

        if unit_str is None:
            raise UnitsError(f"{what} is a pint quantity but the velocity has no units attribute.",
                             fix="set the velocity's units attrs, or pass a plain number")
        try:
            return float(c.to(parse_units(unit_str, what)).magnitude)
        except Exception as err:
            raise UnitsError(f"cannot convert {what}={c} to the velocity units {unit_str!r}: {err}",
                             fix="pass a velocity, e.g. 0.1 * units('m/s')") from None
    try:
        return float(c)
    except (TypeError, ValueError):
        raise ParameterError(f"{what} must be a number or pint quantity, got {c!r}.",
                             fix="pass e.g. c=(0.1, 0.0)") from None


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

    Every result carries ``attrs["xequi_transform"]``: a JSON list of ``{"kind": ..., params}``,
    appended on composition. Units and other attrs are kept. The input is never modified.

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
    from xequi.fields import find_axes, grid_spacing

    if not isinstance(obj, (xr.Dataset, xr.DataArray)):
        raise ParameterError(f"transform needs an xarray Dataset or DataArray, got "
                             f"{type(obj).__name__}.", fix="use the tensor functions for tensors")
    name = _canonical(kind, extra=("galilean",))
    is_da = isinstance(obj, xr.DataArray)
    if is_da:
        if name in ("uniform_motion", "galilean"):
            raise ParameterError(f"transform({kind!r}) needs the velocity pair; a DataArray is a "
                                 "scalar field.", fix="call it on a Dataset holding u and v")
        da_name = obj.name if obj.name is not None else "__xequi_da__"
        ds = obj.to_dataset(name=da_name)
    else:
        ds = obj
    ax_kw = {k: params.pop(k) for k in ("x", "y", "t") if k in params}
    ax = find_axes(ds, **ax_kw)
    need_grid_units = name == "galilean"
    if need_grid_units:
        grid = grid_spacing(ds, x=ax.x, y=ax.y, t=ax.t, rtol=params.pop("rtol", 1e-3),
                            units=params.pop("units", None))
    else:
        grid = _orientation(ds, ax)
    pair = None if is_da else _velocity_pair(ds, u, v, name in ("uniform_motion", "galilean"),
                                             kind)
    _check_xr_params(name, kind, params)
    record = dict(params)
    if pair is not None and (u is not None or v is not None):
        record.update(u=pair[0], v=pair[1])

    if name == "translate":
        out = _translate_xr(ds, ax, grid, **params)
    else:
        out = _apply_xr(ds, ax, grid, pair, name, params)
    out.attrs = _record(obj.attrs, name, record)
    if is_da:
        res = out[da_name]
        res.attrs = out.attrs
        res = res.rename(obj.name)
        return res
    return out


#: transform's parameters per kind: (required, optional); the numeric ones are checked here.
_XR_PARAMS = {
    "translate": ((), ("shift", "periodic")),
    "rot90": ((), ("k",)),
    "rotate": (("angle",), ("mode", "fill")),
    "uniform_motion": (("c",), ()),
    "galilean": (("c",), ()),
    "magnitude": (("lam",), ()),
    "scale": (("lam",), ("time", "mode", "padding_mode")),
}


def _check_xr_params(name: str, kind, params: dict) -> None:
    """A clear ParameterError for a missing, unknown or non-numeric parameter of ``transform``."""
    required, optional = _XR_PARAMS.get(name, ((), tuple(params)))
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


def _orientation(ds, ax):
    """Cheap orientation record (no units needed): ascending flags from the 1-D coordinates."""
    from types import SimpleNamespace

    def asc(dim):
        if dim not in ds.coords or ds.sizes[dim] < 2:
            return True
        vals = np.asarray(ds[dim].values)
        d = np.diff(vals)
        if np.issubdtype(d.dtype, np.timedelta64):
            d = d / np.timedelta64(1, "s")
        d = d.astype(float)
        if not (np.all(d > 0) or np.all(d < 0)):
            raise GridError(f"the coordinate {dim!r} is not strictly monotonic.",
                            fix=f"sort it: ds.sortby({dim!r})")
        return bool(d[0] > 0)

    return SimpleNamespace(x_ascending=asc(ax.x), y_ascending=asc(ax.y), dt=None, dx=None, dy=None)


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


def _apply_xr(ds, ax, grid, pair, name, params):
    torch = _torch()
    flip_y, flip_x = grid.y_ascending, not grid.x_ascending
    nx, ny = ds.sizes[ax.x], ds.sizes[ax.y]
    params = dict(params)
    fill = params.pop("fill", np.nan) if name == "rotate" else None
    time_on = params.pop("time", True) if name == "scale" else None
    out_vars: dict[str, xr.DataArray] = {}
    groups: list[tuple[str, ...]] = []
    if pair is not None:
        groups.append(tuple(pair))
    for n, da in ds.data_vars.items():
        if pair is not None and n in pair:
            continue
        if ax.x in da.dims and ax.y in da.dims:
            groups.append((n,))
        elif (ax.x in da.dims or ax.y in da.dims) and name not in ("uniform_motion", "magnitude"):
            raise ParameterError(
                f"variable {n!r} has only one of the spatial dims ({ax.y!r}, {ax.x!r}); "
                f"transform({name!r}) cannot move it consistently.",
                fix=f"drop it first: ds.drop_vars({n!r})")
    if name in ("uniform_motion", "galilean"):
        c = params.get("c")
        if c is None or len(c) != 2:
            raise ParameterError(f"transform({name!r}) needs c=(cu, cv), got {c!r}.",
                                 fix="pass c=(0.1, 0.0) in the velocity's units (or pint)")
        units_u = ds[pair[0]].attrs.get("units")
        cvals = (_as_velocity_value(c[0], units_u, "c[0]"), _as_velocity_value(c[1], units_u, "c[1]"))
    for group in groups:
        das = [ds[n] for n in group]
        if len(das) == 2:
            das = list(xr.broadcast(*das))
        lead = [d for d in das[0].dims if d not in (ax.x, ax.y)]
        order = [*lead, ax.y, ax.x]
        arrs = [np.asarray(d.transpose(*order).values) for d in das]
        for n, a in zip(group, arrs):
            if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
                raise ParameterError(f"variable {n!r} is not real numeric ({a.dtype}).",
                                     fix="drop it before transforming")
        dtype = np.result_type(arrs[0].dtype, np.float32)
        # a fresh C-ordered copy: ascontiguousarray keeps the negative strides of a flip along a
        # length-1 axis (numpy calls it contiguous), which torch refuses
        x = torch.as_tensor(_to_frame(np.stack(arrs, axis=-3), flip_y, flip_x).copy(order="C"),
                            dtype=torch.float64)
        vec = (0, 1) if len(group) == 2 else None
        if name == "rot90":
            y = rot90(x, params.get("k", 1), vector=vec)
        elif name == "rotate":
            y = rotate(x, params["angle"], vector=vec, mode=params.get("mode", "bilinear"))
            if fill is not None and float(fill) != 0.0:  # zeros come from the padding already
                ones = torch.ones((1, 1) + tuple(x.shape[-2:]), dtype=torch.float64)
                inside = rotate(ones, params["angle"], vector=None, mode="bilinear")
                y = torch.where(inside >= 1 - 1e-9, y, torch.tensor(float(fill), dtype=y.dtype))
        elif name == "uniform_motion":
            y = uniform_motion(x, cvals, vector=vec) if vec else x.clone()
        elif name == "magnitude":
            y = magnitude(x, params["lam"])
        elif name == "scale":
            tdim = None
            if time_on and ax.t is not None and ax.t in lead:
                tdim = lead.index(ax.t) - len(lead) - 3
            y = scale(x, params["lam"], vector=vec, time_dim=tdim,
                      mode=params.get("mode", "bilinear"),
                      padding_mode=params.get("padding_mode", "zeros"))
        elif name == "galilean":
            y = _galilean(x, ds, ax, grid, lead, cvals, ds[pair[0]].attrs.get("units"), vec)
        else:  # pragma: no cover
            raise ParameterError(f"unknown kind {name!r}")
        res = _to_frame(y.numpy(), flip_y, flip_x)
        for i, n in enumerate(group):
            vals = np.ascontiguousarray(res[..., i, :, :]).astype(dtype, copy=False)
            da = xr.DataArray(vals, dims=order, attrs=dict(ds[n].attrs), name=n)
            out_vars[n] = da.transpose(*[d for d in ds[n].dims if d in order] +
                                       [d for d in order if d not in ds[n].dims])
    # assemble: keep the other variables, relabel coordinates
    out = ds.drop_vars(list(out_vars))
    if name == "rot90" and int(params.get("k", 1)) % 2 == 1:
        new_x, new_y = _new_coords_rot90(ds, ax, int(params.get("k", 1)), grid)
        aux = [k for k, c in ds.coords.items()
               if k not in (ax.x, ax.y) and set(c.dims) & {ax.x, ax.y}]
        out = out.drop_vars([k for k in (ax.x, ax.y) if k in out.coords] + (aux if nx != ny else []))
        out = out.assign(out_vars)
        out = out.assign_coords({k: c for k, c in ((ax.x, new_x), (ax.y, new_y)) if k in ds.coords})
    else:
        out = out.assign(out_vars)
    out = out[list(ds.data_vars)]
    out.attrs = dict(ds.attrs)
    return out


def _galilean(x, ds, ax, grid, lead, cvals, units_u, vec):
    """w(x - c(t - t0), t) + c on a model-frame tensor (shift per time step, Fourier)."""
    from xequi.fields import parse_units

    torch = _torch()
    if ax.t is None or ax.t not in lead:
        raise GridError("the 'galilean' boost needs a time axis on the velocity.",
                        fix="transform a dataset with a time dimension, or use kind='um'")
    tv = np.asarray(ds[ax.t].values) if ax.t in ds.coords else None
    if tv is None or grid.dt is None:
        raise GridError(f"the 'galilean' boost needs the time coordinate {ax.t!r} with at least "
                        "2 steps.", fix="add a time coordinate")
    elapsed = (tv - tv[0])
    if np.issubdtype(elapsed.dtype, np.timedelta64):
        elapsed_s = np.asarray(elapsed / np.timedelta64(1, "s"), dtype=float)
        time_unit = "s"
    else:
        elapsed_s = np.asarray(elapsed, dtype=float)
        time_unit = grid.dt.units
    if units_u is None:
        raise UnitsError("the 'galilean' boost needs the velocity units (u has none).",
                         fix="set ds[u].attrs['units'], e.g. 'm s-1'")
    vu = parse_units(units_u, "u", "velocity")
    from cf_xarray.units import units as ureg

    cu = ureg.Quantity(cvals[0], vu)
    cv = ureg.Quantity(cvals[1], vu)
    tq = ureg.Quantity(elapsed_s, time_unit)
    try:
        sx = (cu * tq / grid.dx).to("dimensionless").magnitude
        sy = (cv * tq / grid.dy).to("dimensionless").magnitude
    except Exception as err:
        raise UnitsError(f"velocity ({vu}), time ({time_unit}) and grid spacing ({grid.dx.units}) "
                         f"are not consistent: {err}.", fix="check the units attrs") from None
    shape = [1] * (x.dim() - 3)
    shape[lead.index(ax.t)] = len(elapsed_s)
    dxc = torch.as_tensor(np.asarray(sx, dtype=float)).reshape(shape + [1, 1, 1])
    dyc = -torch.as_tensor(np.asarray(sy, dtype=float)).reshape(shape + [1, 1, 1])  # +y = row 0
    y = _fourier_shift(x, dyc, dxc)
    if vec is not None:
        y = uniform_motion(y, cvals, vector=vec)
    return y


def scale_factor(grid_a, grid_b, rtol: float = 0.05) -> float:
    """Scale factor λ relating data on ``grid_a`` to a model trained on ``grid_b``.

    With the scaling symmetry ``w_b(x, t) = λ w_a(λx, λ²t)``, the samples of ``w_a`` on
    ``grid_a`` *are* samples of ``w_b`` on ``grid_b`` (same indices) when ``λ dx_b = dx_a`` and
    ``λ² dt_b = dt_a``: ``λ = dx_a / dx_b`` and the velocity must be multiplied by λ (in model
    units). Consistency of y and of time is checked to ``rtol``.

    Parameters
    ----------
    grid_a, grid_b : GridInfo, xarray.Dataset or xarray.DataArray
        Spacings with units (Datasets go through :func:`xequi.fields.grid_spacing`).
    rtol : float, default 0.05
        Relative tolerance of ``dy_a/dy_b`` and ``sqrt(dt_a/dt_b)`` against ``dx_a/dx_b``.

    Returns
    -------
    float
        λ.

    Raises
    ------
    GridError
        Inconsistent space/space or space/time factors (no single λ maps one grid to the other).
    UnitsError
        Spacings of incompatible units.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> def grid(d, dt):
    ...     c = np.arange(4.0) * d
    ...     return xr.DataArray(np.zeros((2, 4, 4)), dims=("time", "y", "x"), coords={
    ...         "x": ("x", c, {"units": "km"}), "y": ("y", c, {"units": "km"}),
    ...         "time": ("time", [0.0, dt], {"units": "s"})})
    >>> scale_factor(grid(2.0, 400.0), grid(1.0, 100.0))
    2.0
    """
    from xequi.fields import GridInfo, grid_spacing

    ga = grid_a if isinstance(grid_a, GridInfo) else grid_spacing(grid_a)
    gb = grid_b if isinstance(grid_b, GridInfo) else grid_spacing(grid_b)
    try:
        lx = float((ga.dx / gb.dx).to("dimensionless").magnitude)
        ly = float((ga.dy / gb.dy).to("dimensionless").magnitude)
    except Exception as err:
        raise UnitsError(f"grid spacings {ga.dx.units} and {gb.dx.units} are not comparable: {err}.",
                         fix="give both grids length units (or both non-dimensional)") from None
    if abs(ly - lx) > rtol * lx:
        raise GridError(f"x and y scale factors differ: dx_a/dx_b = {lx:.4g}, dy_a/dy_b = {ly:.4g}.",
                        fix="regrid to the model's aspect ratio first")
    if ga.dt is not None and gb.dt is not None:
        try:
            lt = math.sqrt(float((ga.dt / gb.dt).to("dimensionless").magnitude))
        except Exception as err:
            raise UnitsError(f"time steps {ga.dt.units} and {gb.dt.units} are not comparable: {err}.",
                             fix="give both time axes time units") from None
        if abs(lt - lx) > rtol * lx:
            raise GridError(
                f"space and time scale factors are inconsistent: dx_a/dx_b = {lx:.4g} but "
                f"sqrt(dt_a/dt_b) = {lt:.4g} (the scaling symmetry needs dt ∝ dx²).",
                fix=f"subsample in time so that dt_a = {lx ** 2:.4g} × dt_b, or regrid in space")
    return lx
