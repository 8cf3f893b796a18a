"""Scaling ``w(x, t) -> λ w(λx, λ²t)`` (interpolated; approximate) and :func:`scale_factor`,
the λ relating data on one grid to a model trained on another."""

from __future__ import annotations

import math

import numpy as np

from xequi.errors import GridError, ParameterError, UnitsError
from xequi.symmetry._common import (_MODES, _PADDINGS, _check_tensor, _check_vector, _sample, _torch,
                                    _uniform, invert_lam)
from xequi.symmetry.magnitudes import magnitude
from xequi.symmetry.registry import Symmetry

__all__ = ["scale", "scale_factor", "Scale"]


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


class Scale(Symmetry):
    """``w(x, t) -> λ w(λx, λ²t)`` about the grid centre and frame 0 (approximate)."""

    name = "scale"
    xr_params = (("lam",), ("time", "mode", "padding_mode"))
    param = "lam"
    exact = False
    summary = "w(x, t) → λ w(λx, λ²t) (interpolated), `lam` > 0"

    def label(self, config=None):
        n = (config or {}).get("n_scales")
        return f"scaling over {n} scales (approximate)" if n else "scaling (approximate)"

    def apply(self, x, vector=(0, 1), **params):
        return scale(x, vector=vector, **params)

    def random_params(self, generator, scale_range=(0.5, 1.0), **options):
        lo, hi = (float(v) for v in scale_range)
        if not 0 < lo <= hi:
            raise ParameterError(f"scale_range must satisfy 0 < low <= high, got {scale_range}.",
                                 fix="pass e.g. scale_range=(0.5, 1.0)")
        return {"lam": _uniform(generator, lo, hi)[0]}

    def invert(self, value):
        return invert_lam(value)

    def act_frame(self, x, vector, ctx, lead, params):
        tdim = None
        if params.get("time", True) and ctx.ax.t is not None and ctx.ax.t in lead:
            tdim = lead.index(ctx.ax.t) - len(lead) - 3
        return scale(x, params["lam"], vector=vector, time_dim=tdim,
                     mode=params.get("mode", "bilinear"),
                     padding_mode=params.get("padding_mode", "zeros"))
