"""Building blocks shared by every layer family: UM / Mag block statistics, the lifting and
projection heads, and the adapter that lets e2cnn modules live in a plain-tensor backbone.

The UM and Mag symmetries are made exact for the *whole* network, not layer by layer:

* the **lifting conv** (first layer) sees each k×k input block (all input frames) with the
  block mean of the velocity subtracted (UM) and divided by the block scale (Mag); the hidden
  features are therefore *invariant* to ``w -> w + c`` and ``w -> λw`` (λ > 0);
* the **projection conv** (last layer) multiplies its output by the block scale (Mag) and adds
  the block mean back to the velocity channels (UM), the statistics being those of the input
  block centred on the output pixel.

Hence ``f(w + c) = f(w) + c`` and ``f(λw) = λ f(w)`` hold to float rounding for every input,
every λ > 0 and every c, and also over an autoregressive rollout, in train and eval mode
(the hidden features, hence batch statistics, do not change).

With increment prediction (``residual=True``, the default of :func:`xequi.models.create`) the
network's output is ``x[:, -1] + d(x)``: the projection then returns the increment ``d``, which
must be UM-*invariant* (``d(w + c) = d(w)``: the block mean is **not** added back, the last frame
``x[:, -1] + c`` carries ``c``) and Mag-equivariant (``d(λw) = λ d(w)``: times the block scale, as
before), so that the whole model keeps both symmetries exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["block_mean", "block_scale", "GWrap", "Lift", "Project", "FieldBatchNorm",
           "SWITCH_SYMMETRIES", "scale_parameters"]

#: the kinds of :mod:`xequi.symmetry` each switch of the heads provides (exactly)
SWITCH_SYMMETRIES = {"um": ("uniform_motion",), "mag": ("magnitude",)}


def block_mean(xp: torch.Tensor, k: int) -> torch.Tensor:
    """UM statistic: mean of (u, v) over all frames and the k×k block around each pixel.

    Parameters
    ----------
    xp : torch.Tensor
        Padded input ``(B, T, C, H + k - 1, W + k - 1)`` (replicate padding), channels ``[u, v, ...]``.
    k : int
        Block size (odd).

    Returns
    -------
    torch.Tensor
        ``(B, 2, H, W)``: the block means of u and v.

    Raises
    ------
    RuntimeError
        From torch, for a tensor of another shape.

    Examples
    --------
    >>> xp = torch.ones(1, 2, 2, 6, 6)
    >>> block_mean(xp, 3).shape
    torch.Size([1, 2, 4, 4])
    """
    vel = xp[:, :, :2].mean(1)
    return F.avg_pool2d(vel, k, stride=1)


def block_scale(xp: torch.Tensor, k: int, m: torch.Tensor | None = None,
                n_vel: int = 2) -> torch.Tensor:
    """Mag statistic: max over the k×k block and all frames of ``max(|w - m|, |scalars|)``.

    ``|w - m|`` is the Euclidean norm of the velocity minus the block mean ``m`` (zero without
    UM), so the statistic is a rotation-invariant scalar field, invariant to ``w -> w + c`` when
    ``m`` is the UM block mean, and positively homogeneous: ``s(λw) = λ s(w)`` exactly (no eps).
    It is zero only for an all-zero (centred) block, where the network output is zero too.

    Parameters
    ----------
    xp : torch.Tensor
        Padded input ``(B, T, C, H + k - 1, W + k - 1)``.
    k : int
        Block size.
    m : torch.Tensor, optional
        ``(B, 2, H, W)`` block mean to subtract from the velocity (UM + Mag).
    n_vel : {2, 0}, default 2
        Leading velocity channels (0: a scalar-only model, the statistic is ``max |scalars|``).

    Returns
    -------
    torch.Tensor
        ``(B, 1, H, W)``, non-negative.

    Raises
    ------
    RuntimeError
        From torch, for a tensor of another shape.

    Examples
    --------
    >>> xp = torch.zeros(1, 2, 2, 6, 6)
    >>> xp[:, :, 0] = 3.0
    >>> xp[:, :, 1] = 4.0
    >>> block_scale(xp, 3).flatten()[:3]
    tensor([5., 5., 5.])
    """
    H = xp.shape[-2] - k + 1
    W = xp.shape[-1] - k + 1
    s2 = None
    for di in range(k):
        for dj in range(k):
            patch = xp[..., di:di + H, dj:dj + W]
            q = None
            if n_vel:
                vel = patch[:, :, :n_vel]
                if m is not None:
                    vel = vel - m[:, None]
                q = (vel * vel).sum(2)
            if patch.shape[2] > n_vel:
                q2 = (patch[:, :, n_vel:] ** 2).amax(2)
                q = q2 if q is None else torch.maximum(q, q2)
            q = q.amax(1)
            s2 = q if s2 is None else torch.maximum(s2, q)
    safe = torch.where(s2 > 0, s2, torch.ones_like(s2))
    return torch.where(s2 > 0, safe.sqrt(), torch.zeros_like(s2)).unsqueeze(1)


class GWrap(nn.Module):
    """Run an e2cnn module on a plain tensor (wrap in a ``GeometricTensor``, unwrap the result).

    Parameters
    ----------
    module : e2cnn.nn.EquivariantModule
    """

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, x):
        from e2cnn.nn import GeometricTensor

        return self.module(GeometricTensor(x, self.module.in_type)).tensor

    def export(self) -> nn.Module:
        """The equivalent plain torch module (e2cnn's ``export``), in eval mode."""
        return self.module.export()


class FieldBatchNorm(nn.Module):
    """Batch norm with statistics and affine parameters shared by the ``group`` channels of each field.

    The plain-tensor equivalent of e2cnn's ``InnerBatchNorm`` on regular fields (tested against
    it), used by the rotation and scale families. Channels are laid out field-major:
    ``(B, fields * group, H, W)``. Statistics are reduced per channel first and then pooled per
    field: PyTorch's CUDA batch norm parallelises over channels, so normalising the
    ``(B, fields, group, H, W)`` view directly (e2cnn's way) is slow when there are few fields.

    Parameters
    ----------
    fields : int
    group : int
        Channels per field (|G| for regular fields, number of scales).
    eps, momentum : float
        As in ``torch.nn.BatchNorm2d``.
    """

    def __init__(self, fields: int, group: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.fields, self.group, self.eps, self.momentum = fields, group, eps, momentum
        self.weight = nn.Parameter(torch.ones(fields))
        self.bias = nn.Parameter(torch.zeros(fields))
        self.register_buffer("running_mean", torch.zeros(fields))
        self.register_buffer("running_var", torch.ones(fields))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x):
        B, C, H, W = x.shape
        if self.training:
            var_c, mean_c = torch.var_mean(x, dim=(0, 2, 3), unbiased=False)
            mean = mean_c.view(self.fields, self.group).mean(1)
            var = (var_c + mean_c * mean_c).view(self.fields, self.group).mean(1) - mean * mean
            n = B * self.group * H * W
            with torch.no_grad():
                self.num_batches_tracked += 1
                self.running_mean.lerp_(mean.detach(), self.momentum)
                self.running_var.lerp_(var.detach() * (n / max(n - 1, 1)), self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        scale = self.weight * torch.rsqrt(var + self.eps)
        shift = self.bias - mean * scale
        scale = scale.repeat_interleave(self.group).view(1, C, 1, 1)
        shift = shift.repeat_interleave(self.group).view(1, C, 1, 1)
        return torch.addcmul(shift, x, scale)


class Lift(nn.Module):
    """First layer: frames stacked as channels, replicate padding, optional UM / Mag block statistics.

    Parameters
    ----------
    conv : nn.Module
        A linear, unpadded conv on ``(B, T*C, H+k-1, W+k-1)``; must provide ``weight_sum()``
        (``(out, T*C)`` spatial sum of its filter) when ``um`` is set.
    k : int
        Kernel size of ``conv``.
    um, mag : bool
        Subtract the block mean of the velocity (UM) / divide by the block scale (Mag).
    n_vel : {2, 0}, default 2
        Leading velocity channels of the input (0: scalar-only; UM then has nothing to act on).

    Notes
    -----
    ``forward(x)`` takes ``(B, T, C, H, W)`` and returns ``(h, (m, s))``: the hidden features
    ``(B, out, H, W)``, the UM block mean ``(B, 2, H, W)`` and the Mag block scale
    ``(B, 1, H, W)`` (``None`` when the switch is off). With both switches the output at pixel p
    is ``(conv(x)_p - sum(W) m_p) / s_p + b``, i.e. the conv of the block ``(x - m_p) / s_p``:
    the paper's block-mean subtraction and block normalisation, computed without unfolding.
    """

    def __init__(self, conv: nn.Module, k: int, um: bool = False, mag: bool = False,
                 n_vel: int = 2):
        super().__init__()
        if um and not n_vel:
            from xequi.errors import ModelError

            raise ModelError("the UM lifting head needs velocity channels (n_vel=2).",
                             fix="build it with um=False for scalar-only inputs")
        self.conv = conv
        self.k = k
        self.um = um
        self.mag = mag
        self.n_vel = n_vel

    def forward(self, x):
        B, T, C, H, W = x.shape
        p = self.k // 2
        xp = F.pad(x.reshape(B, T * C, H, W), (p, p, p, p), mode="replicate")
        y = self.conv(xp)
        m = s = None
        if self.um or self.mag:
            xp5 = xp.reshape(B, T, C, H + 2 * p, W + 2 * p)
        if self.um:
            m = block_mean(xp5, self.k)
            ws = self.conv.weight_sum().reshape(-1, T, C)[:, :, :2].sum(1)  # (out, 2)
            y = y - torch.einsum("oc,bchw->bohw", ws, m)
        if self.mag:
            s = block_scale(xp5, self.k, m, n_vel=self.n_vel)
            y = y / torch.where(s > 0, s, torch.ones_like(s))
        bias = getattr(self.conv, "lift_bias", None)
        if bias is not None:
            y = y + bias.view(1, -1, 1, 1)
        return y, (m, s)


def scale_parameters(module: nn.Module, factor: float) -> nn.Module:
    """Multiply every parameter of ``module`` by ``factor`` in place (no gradient recorded).

    Used on the projection of a residual model (``RESIDUAL_INIT_SCALE``) so that the untrained
    increment is small. A scalar multiple of an equivariant layer is equivariant: e2cnn's
    ``R2Conv`` keeps its weights in the steerable basis (its filter is re-expanded from them in
    eval mode), the scale family's kernels stay kernels.

    Parameters
    ----------
    module : torch.nn.Module
    factor : float

    Returns
    -------
    torch.nn.Module
        ``module`` itself.

    Examples
    --------
    >>> conv = nn.Conv2d(1, 1, 1)
    >>> w = float(conv.weight)
    >>> abs(float(scale_parameters(conv, 0.5).weight) - 0.5 * w) < 1e-7
    True
    """
    with torch.no_grad():
        for p in module.parameters():
            p.mul_(factor)
    return module


class Project(nn.Module):
    """Last layer: a family conv to ``[u, v, *scalars]``, times the Mag block scale, plus the UM mean.

    Parameters
    ----------
    conv : nn.Module
        The family's projection conv.
    um : bool
        Add the UM block mean back to the velocity channels (a model predicting the next frame);
        a residual model builds its projection with ``um=False``: its increment is UM-invariant.
    mag : bool
        Multiply by the Mag block scale.
    """

    def __init__(self, conv: nn.Module, um: bool = False, mag: bool = False):
        super().__init__()
        self.conv = conv
        self.um = um
        self.mag = mag

    def forward(self, h, stats):
        m, s = stats
        y = self.conv(h)
        if self.mag:
            y = y * s
        if self.um:
            y = torch.cat([y[:, :2] + m, y[:, 2:]], dim=1)
        return y
