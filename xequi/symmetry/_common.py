"""Shared helpers of the tensor actions: argument checks, the vector rotation, per-batch
parameters, grid sampling, the Fourier shift and the random draws."""

from __future__ import annotations

import math

import numpy as np

from xequi.errors import ParameterError


def _torch():
    import torch

    return torch


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
    """Return a copy of ``x`` with the (u, v) channels rotated by the angle (cos, sin).

    A term whose coefficient is exactly zero (quarter turns) is left out rather than multiplied
    by 0, so each component keeps its own NaN mask (land of staggered grids: u and v masks
    differ) instead of taking the union of both (``NaN * 0`` is NaN).
    """
    if vector is None:
        return x
    iu, iv = vector
    u = x[..., iu, :, :]
    v = x[..., iv, :, :]
    out = x.clone()
    out[..., iu, :, :] = _combine(u, cos, v, -sin)
    out[..., iv, :, :] = _combine(u, sin, v, cos)
    return out


def _combine(a, ca, b, cb):
    """``a * ca + b * cb``, a term with an exactly zero (number) coefficient left out."""
    a_zero = isinstance(ca, (int, float)) and ca == 0
    b_zero = isinstance(cb, (int, float)) and cb == 0
    if a_zero and not b_zero:  # + 0.0: no negative zeros (-0.0 + 0.0 == +0.0; NaN stays NaN)
        return b * cb + 0.0
    if b_zero and not a_zero:
        return a * ca + 0.0
    return a * ca + b * cb


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



def invert_lam(val):
    """``1 / lam`` for the magnitude and scale inverses (λ must be > 0)."""
    torch = _torch()
    if isinstance(val, torch.Tensor):
        if not bool((val > 0).all()):
            raise ParameterError("lam must be > 0 to be inverted.", fix="pass lam > 0")
        return 1.0 / val
    if not float(val) > 0:
        raise ParameterError(f"lam must be > 0 to be inverted, got {val}.", fix="pass lam > 0")
    return 1.0 / float(val)
