"""Layer families: how hidden features are represented and convolved.

A family tells a backbone (``xequi.models.backbones``) how to build its convolutions, norms,
activations, first (lifting) and last (projection) convs. Hidden features are always plain
tensors ``(B, fields * group, H, W)``, field-major, so residual sums, 2×2 max pooling,
nearest-neighbour upsampling and skip concatenations are written once for all families:

* :class:`PlainFamily` (group 1): ``nn.Conv2d``, ``BatchNorm2d``, LeakyReLU. Equivariant to
  translations only (away from the boundary).
* :class:`RotFamily` (group = N, cyclic ``C_N``): e2cnn ``R2Conv`` between regular fields,
  ``InnerBatchNorm`` (the same maths as :class:`~xequi.models.layers.FieldBatchNorm`), ReLU;
  velocity of every input frame as the frequency-1 irrep, scalars as trivial fields. Exact for
  90-degree rotations (N divisible by 4), approximate for the others.
* :class:`ScaleFamily` (group = number of scales S): fields over a discrete scale axis with
  dilations ``2**s``; lifting with Gaussian blur, group correlation over 3 neighbouring scales,
  magnitudes rescaled by the dilation. Approximate (interpolation, blur, finite scale axis).

The UM and Mag symmetries are not families of their own: they are the ``um`` / ``mag`` switches
of the lifting and projection heads (:mod:`xequi.models.layers`), which combine with any of the
plain and rotation families.

Each family declares the kinds of :mod:`xequi.symmetry` it provides (``symmetries``, and
:meth:`provides` for a given group size); :mod:`xequi.models.registry` builds a model's
``symmetries`` from them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from xequi.models.layers import FieldBatchNorm, GWrap

#: Gaussian blur of the scale lifting: sigma = _SIGMA0 * dilation (pixels)
_SIGMA0 = 0.5
__all__ = ["Family", "PlainFamily", "RotFamily", "ScaleFamily", "FAMILIES", "make_family"]


class _PlainLiftConv(nn.Module):
    """Unpadded linear conv with a separate bias (added after the UM / Mag normalisation)."""

    def __init__(self, cin: int, cout: int, k: int, weight: torch.Tensor | None = None,
                 bias: torch.Tensor | None = None):
        super().__init__()
        conv = nn.Conv2d(cin, cout, k, bias=True)
        self.weight = nn.Parameter(conv.weight.detach().clone() if weight is None else weight.clone())
        self.lift_bias = nn.Parameter(conv.bias.detach().clone() if bias is None else bias.clone())

    def forward(self, xp):
        return F.conv2d(xp, self.weight)

    def weight_sum(self):
        return self.weight.sum((2, 3))


class Family:
    """What every family declares: the symmetries it provides and whether it takes the heads."""

    name = ""
    #: kinds of :mod:`xequi.symmetry` the family provides (convolutions: translations)
    symmetries: tuple[str, ...] = ("translate",)
    #: combines with the UM / Mag heads of :mod:`xequi.models.layers`
    takes_heads = True

    @classmethod
    def provides(cls, group_order: int = 4, n_scales: int = 3) -> tuple[str, ...]:
        """The kinds a model of this family provides, for the given group size."""
        return cls.symmetries


class PlainFamily(Family):
    """Ordinary convolutions (group of size 1). ``name = "plain"``."""

    name = "plain"
    group = 1

    def conv(self, cin: int, cout: int, k: int = 3, bias: bool = True) -> nn.Module:
        return nn.Conv2d(cin, cout, k, padding=k // 2, bias=bias)

    def norm(self, fields: int) -> nn.Module:
        return nn.BatchNorm2d(fields)

    def act(self) -> nn.Module:
        return nn.LeakyReLU(0.1)

    def lift_conv(self, t_in: int, n_vel: int, n_scalars: int, fields: int, k: int) -> nn.Module:
        return _PlainLiftConv(t_in * (n_vel + n_scalars), fields, k)

    def project_conv(self, fields: int, n_vel: int, n_scalars: int, k: int = 3) -> nn.Module:
        return nn.Conv2d(fields, n_vel + n_scalars, k, padding=k // 2)


def _r2conv(in_type, out_type, k: int, padding: int = 0, bias: bool = True):
    """An e2cnn ``R2Conv`` (generalised He initialisation of e2cnn)."""
    from e2cnn import nn as enn

    return enn.R2Conv(in_type, out_type, k, padding=padding, bias=bias)


class _RotLiftConv(nn.Module):
    """Unpadded e2cnn conv from ``t_in x ([irrep(1)] + n_scalars x trivial)`` to regular fields."""

    def __init__(self, in_type, out_type, k: int):
        super().__init__()
        self.conv = _r2conv(in_type, out_type, k, padding=0, bias=False)
        self.n = out_type.gspace.fibergroup.order()
        self.bias = nn.Parameter(torch.zeros(len(out_type)))

    def _filter(self):
        return self.conv.expand_parameters()[0] if self.training else self.conv.filter

    @property
    def lift_bias(self):
        return self.bias.repeat_interleave(self.n)

    def forward(self, xp):
        return F.conv2d(xp, self._filter())

    def weight_sum(self):
        return self._filter().sum((2, 3))

    def export(self) -> nn.Module:
        with torch.no_grad():
            return _PlainLiftConv(1, 1, 1, weight=self.conv.expand_parameters()[0].detach(),
                                  bias=self.lift_bias.detach())


class RotFamily(Family):
    """e2cnn regular fields of the cyclic group ``C_N`` (``gspaces.Rot2dOnR2(N)``).

    Parameters
    ----------
    N : int
        Group order (4 or 8 recommended; must be divisible by 4 for exact 90-degree rotations).
    """

    name = "rot"
    symmetries = ("rot90", "rotate", "translate")

    @classmethod
    def provides(cls, group_order: int = 4, n_scales: int = 3) -> tuple[str, ...]:
        """C4 has no element near 45 degrees: ``rotate`` only from C8 on."""
        return tuple(k for k in cls.symmetries if k != "rotate" or group_order >= 8)

    def __init__(self, N: int = 4):
        from e2cnn import gspaces

        self.N = int(N)
        self.group = self.N
        self.gspace = gspaces.Rot2dOnR2(N=self.N)

    def _regular(self, fields: int):
        from e2cnn import nn as enn

        return enn.FieldType(self.gspace, fields * [self.gspace.regular_repr])

    def _io(self, frames: int, n_vel: int, n_scalars: int):
        from e2cnn import nn as enn

        g = self.gspace
        # the velocity (u, v) rotates as the frequency-1 irrep; a scalar-only model has none
        per_frame = ([g.irrep(1)] if n_vel else []) + n_scalars * [g.trivial_repr]
        return enn.FieldType(g, frames * per_frame)

    def conv(self, cin: int, cout: int, k: int = 3, bias: bool = True) -> nn.Module:
        return GWrap(_r2conv(self._regular(cin), self._regular(cout), k, padding=k // 2, bias=bias))

    def norm(self, fields: int) -> nn.Module:
        # same maths as e2cnn's InnerBatchNorm (statistics shared by the N channels of a field),
        # faster on GPUs when there are few fields; see FieldBatchNorm
        return FieldBatchNorm(fields, self.N)

    def act(self) -> nn.Module:
        return nn.ReLU()  # pointwise: commutes with the permutation action on regular fields

    def lift_conv(self, t_in: int, n_vel: int, n_scalars: int, fields: int, k: int) -> nn.Module:
        return _RotLiftConv(self._io(t_in, n_vel, n_scalars), self._regular(fields), k)

    def project_conv(self, fields: int, n_vel: int, n_scalars: int, k: int = 3) -> nn.Module:
        return GWrap(_r2conv(self._regular(fields), self._io(1, n_vel, n_scalars), k,
                             padding=k // 2))


def _gauss_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(B, C, H, W)`` with replicate padding (identity for sigma 0)."""
    if sigma <= 0:
        return x
    r = max(1, int(math.ceil(2.5 * sigma)))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    g = g / g.sum()
    C = x.shape[1]
    x = F.pad(x, (r, r, r, r), mode="replicate")
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(C, 1, 1, -1), groups=C)
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(C, 1, -1, 1), groups=C)


class _ScaleLift(nn.Module):
    """Lifting to S scales: blur with sigma ``0.5 d``, kernel dilated by ``d = 2**s``, velocity
    input times ``d`` (so a field zoomed by 2 and halved in magnitude maps scale s to s+1)."""

    def __init__(self, t_in: int, n_vel: int, n_scalars: int, fields: int, k: int, S: int):
        super().__init__()
        self.S, self.k, self.C, self.n_vel = S, k, n_vel + n_scalars, n_vel
        self.conv = nn.Conv2d(t_in * self.C, fields, k, bias=False)
        self.lift_bias = nn.Parameter(torch.zeros(fields).repeat_interleave(S))

    def forward(self, xp):
        p = self.k // 2
        x = xp[..., p:xp.shape[-2] - p, p:xp.shape[-1] - p]
        B, TC, H, W = x.shape
        # velocity channels of every frame are multiplied by the dilation, scalars are not
        is_vel = torch.zeros(TC // self.C, self.C, dtype=torch.bool, device=x.device)
        is_vel[:, :self.n_vel] = True
        outs = []
        for s in range(self.S):
            d = 2 ** s
            # a fresh tensor per scale: autograd saves it for backward (an in-place update of a
            # shared one breaks backward through a rollout)
            mult = torch.where(is_vel, float(d), 1.0).to(x.dtype).reshape(1, TC, 1, 1)
            z = _gauss_blur(x, _SIGMA0 * d) * mult
            z = F.pad(z, (d * p,) * 4, mode="replicate")
            outs.append(F.conv2d(z, self.conv.weight, dilation=d))
        return torch.stack(outs, 2).reshape(B, -1, H, W)


class _ScaleConv(nn.Module):
    """Scale-group correlation: output scale s sums kernels ``W_j`` dilated by ``2**s`` applied to
    input scales ``s + j``, ``j in {-1, 0, 1}`` (truncated at the ends of the scale axis)."""

    def __init__(self, cin: int, cout: int, k: int, S: int, bias: bool = True, out_channels=None,
                 out_mult=None, n_vel: int = 2):
        super().__init__()
        self.S, self.k, self.cin = S, k, cin
        self.out = cout if out_channels is None else out_channels
        self.weight = nn.Parameter(torch.empty(3, self.out, cin, k, k))
        nn.init.kaiming_uniform_(self.weight.view(3 * self.out, cin, k, k), a=math.sqrt(5))
        self.weight.data /= math.sqrt(3)
        self.bias = nn.Parameter(torch.zeros(self.out)) if bias else None
        self.out_mult = out_mult  # projection: divide velocity by the dilation, mean over scales
        self.n_vel = n_vel

    def forward(self, x):
        B, _, H, W = x.shape
        h = x.reshape(B, self.cin, self.S, H, W)
        p = self.k // 2
        outs = []
        for s in range(self.S):
            d = 2 ** s
            js = [j for j in (-1, 0, 1) if 0 <= s + j < self.S]
            # one conv per output scale: the neighbouring input scales stacked as channels
            inp = h[:, :, s + js[0]:s + js[-1] + 1].transpose(1, 2).reshape(B, -1, H, W)
            w = self.weight[js[0] + 1:js[-1] + 2].transpose(0, 1).reshape(self.out, -1, self.k, self.k)
            outs.append(F.conv2d(F.pad(inp, (d * p,) * 4), w, self.bias, dilation=d))
        if self.out_mult is not None:  # projection to [u, v, *scalars] (or [*scalars])
            y = 0
            for s, o in enumerate(outs):
                div = torch.ones(self.out, dtype=o.dtype, device=o.device)
                div[:self.n_vel] = 2 ** s
                y = y + o / div.view(1, -1, 1, 1)
            return y / self.S
        return torch.stack(outs, 2).reshape(B, -1, H, W)


class ScaleFamily(Family):
    """Fields over a discrete scale axis of ``S`` scales (dilations 1, 2, 4, ...).

    Parameters
    ----------
    n_scales : int
        Number of scales S (default 3).
    """

    name = "scale"
    symmetries = ("scale", "translate")
    takes_heads = False

    def __init__(self, n_scales: int = 3):
        self.S = int(n_scales)
        self.group = self.S

    def conv(self, cin: int, cout: int, k: int = 3, bias: bool = True) -> nn.Module:
        return _ScaleConv(cin, cout, k, self.S, bias=bias)

    def norm(self, fields: int) -> nn.Module:
        return FieldBatchNorm(fields, self.S)

    def act(self) -> nn.Module:
        return nn.LeakyReLU(0.1)

    def lift_conv(self, t_in: int, n_vel: int, n_scalars: int, fields: int, k: int) -> nn.Module:
        return _ScaleLift(t_in, n_vel, n_scalars, fields, k, self.S)

    def project_conv(self, fields: int, n_vel: int, n_scalars: int, k: int = 3) -> nn.Module:
        return _ScaleConv(fields, 0, k, self.S, out_channels=n_vel + n_scalars, out_mult=True,
                          n_vel=n_vel)


def make_family(name: str, group_order: int = 4, n_scales: int = 3):
    """Build the family called ``name`` (``"plain"``, ``"rot"``, ``"scale"``).

    Parameters
    ----------
    name : {"plain", "rot", "scale"}
    group_order : int, default 4
        Order N of the cyclic rotation group C_N (``"rot"``).
    n_scales : int, default 3
        Number of scales (``"scale"``).

    Returns
    -------
    PlainFamily, RotFamily or ScaleFamily

    Raises
    ------
    ValueError
        An unknown family name.

    Examples
    --------
    >>> type(make_family("rot", group_order=8)).__name__
    'RotFamily'
    """
    if name == "plain":
        return PlainFamily()
    if name == "rot":
        return RotFamily(group_order)
    if name == "scale":
        return ScaleFamily(n_scales)
    from xequi.errors import ModelError  # a ValueError too

    raise ModelError(f"unknown layer family {name!r}.", fix="use 'plain', 'rot' or 'scale'")


#: the family classes by name
FAMILIES = {"plain": PlainFamily, "rot": RotFamily, "scale": ScaleFamily}
