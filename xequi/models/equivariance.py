"""Autoregressive rollout and the equivariance-error diagnostic."""

from __future__ import annotations

from numbers import Integral

import torch

from xequi.errors import ParameterError

__all__ = ["rollout", "equivariance_error"]


def rollout(model, x: torch.Tensor, steps: int) -> torch.Tensor:
    """Predict ``steps`` frames autoregressively (predictions fed back, history window slides).

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``(batch, t_in, C, H, W)`` to the next frame ``(batch, C, H, W)``.
    x : torch.Tensor
        ``(batch, t_in, C, H, W)``, the last ``t_in`` observed frames.
    steps : int
        Number of frames to predict (>= 1).

    Returns
    -------
    torch.Tensor
        ``(batch, steps, C, H, W)``.

    Raises
    ------
    ParameterError
        If ``steps`` is not a positive integer.

    Examples
    --------
    >>> from xequi.models import create
    >>> net = create("resnet", t_in=2, widths=(4,)).eval()
    >>> rollout(net, torch.randn(1, 2, 2, 8, 8), 3).shape
    torch.Size([1, 3, 2, 8, 8])
    """
    if isinstance(steps, bool) or not isinstance(steps, Integral) or steps < 1:
        raise ParameterError(f"steps must be a positive integer, got {steps!r}.", fix="pass e.g. steps=3")
    window = x
    outs = []
    for _ in range(int(steps)):
        y = model(window)
        outs.append(y)
        window = torch.cat([window[:, 1:], y[:, None]], dim=1)
    return torch.stack(outs, dim=1)


def equivariance_error(model, x: torch.Tensor, kind: str, steps: int = 1, crop: int = 0,
                       vector="auto", **params) -> float:
    """Relative equivariance error ``‖f(g·x) − g·f(x)‖ / ‖g·f(x)‖`` over a rollout.

    The model is evaluated in eval mode under ``torch.no_grad`` (its mode is restored).

    Parameters
    ----------
    model : torch.nn.Module
    x : torch.Tensor
        ``(batch, t_in, C, H, W)`` model-frame input.
    kind : str
        A kind of the symmetry registry (:data:`xequi.symmetry.KINDS`: ``"rot90"``,
        ``"rotate"``, ``"uniform_motion"``, ``"magnitude"``, ``"scale"``, ``"translate"``, ...),
        applied with :func:`xequi.symmetry.apply`. ``"scale"`` acts in space only.
    steps : int, default 1
        Rollout length; the norm runs over all predicted frames.
    crop : int, default 0
        Border width (pixels) left out of the norm, for actions that move the boundary
        (non-90-degree rotations, scale, translation).
    vector : pair of int, None or "auto"
        Velocity channels; ``"auto"`` (default): ``(0, 1)``, or None for a scalar-only model
        (``model.velocity`` False).
    **params
        Parameters of the action (``k``, ``angle``, ``c``, ``lam``, ``shift``, ...).

    Returns
    -------
    float

    Examples
    --------
    >>> from xequi.models import create
    >>> net = create("um-resnet", t_in=2, widths=(4,))
    >>> x = torch.randn(1, 2, 2, 8, 8)
    >>> equivariance_error(net, x, "uniform_motion", c=(1.0, -2.0)) < 1e-4
    True
    """
    from xequi import symmetry

    if isinstance(vector, str) and vector == "auto":
        vector = (0, 1) if getattr(model, "velocity", True) else None

    def g(t):
        return symmetry.apply(t, kind, vector=vector, **params)

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            fx = rollout(model, x, steps)
            gfx = g(fx)
            fgx = rollout(model, g(x), steps)
    finally:
        model.train(was_training)
    if crop:
        c = int(crop)
        gfx = gfx[..., c:-c, c:-c]
        fgx = fgx[..., c:-c, c:-c]
    num = torch.linalg.vector_norm((fgx - gfx).double())
    den = torch.linalg.vector_norm(gfx.double())
    return float(num / den)
