"""Uniform motion ``w -> w + c`` (on tensors and xarray) and the full Galilean boost
``w(x - c(t - t0), t) + c`` (xarray only: it needs the time and grid spacing)."""

from __future__ import annotations

import numpy as np

from xequi.errors import GridError, ParameterError, UnitsError
from xequi.symmetry._common import (_check_tensor, _check_vector, _fourier_shift, _leading, _torch,
                                    _uniform)
from xequi.symmetry.registry import Symmetry

__all__ = ["uniform_motion", "UniformMotion", "Galilean"]


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


def _velocity_values(ctx, params):
    """``params`` with ``c`` as numbers in the velocity's units (checked)."""
    c = params.get("c")
    if c is None or len(c) != 2:
        raise ParameterError(f"transform({ctx.name!r}) needs c=(cu, cv), got {c!r}.",
                             fix="pass c=(0.1, 0.0) in the velocity's units (or pint)")
    units_u = ctx.ds[ctx.pair[0]].attrs.get("units")
    return dict(params, c=(_as_velocity_value(c[0], units_u, "c[0]"),
                           _as_velocity_value(c[1], units_u, "c[1]")))


class UniformMotion(Symmetry):
    """``w -> w + c`` on the velocity (scalars untouched; exact)."""

    name = "uniform_motion"
    aliases = ("um",)
    xr_params = (("c",), ())
    param = "c"
    needs_velocity = True
    pointwise = True
    summary = "w → w + c on the velocity, `c` = (cu, cv)"
    adjective = "uniform-motion"
    action = "w -> w + c"

    def label(self, config=None):
        return "uniform motion"

    def apply(self, x, vector=(0, 1), **params):
        return uniform_motion(x, vector=vector, **params)

    def random_params(self, generator, velocity_scale=1.0, **options):
        cu, cv = _uniform(generator, -2.0, 2.0, 2)
        return {"c": (cu * float(velocity_scale), cv * float(velocity_scale))}

    def invert(self, value):
        torch = _torch()
        return -value if isinstance(value, torch.Tensor) else tuple(-float(v) for v in value)

    def prepare(self, ctx, params):
        return _velocity_values(ctx, params)

    def act_frame(self, x, vector, ctx, lead, params):
        return uniform_motion(x, params["c"], vector=vector) if vector else x.clone()


class Galilean(Symmetry):
    """The full Galilean boost (xarray only; periodic Fourier shift)."""

    name = "galilean"
    tensor = False
    xr_params = (("c",), ())
    needs_velocity = True
    needs_grid = True
    summary = "w(x − c(t − t0), t) + c (periodic Fourier shift; xarray only), `c`"
    adjective = "Galilean"
    action = "w(x - ct, t) + c"

    def prepare(self, ctx, params):
        return _velocity_values(ctx, params)

    def act_frame(self, x, vector, ctx, lead, params):
        units_u = ctx.ds[ctx.pair[0]].attrs.get("units")
        return _galilean(x, ctx.ds, ctx.ax, ctx.grid, lead, params["c"], units_u, vector)
