"""Mirror-equivariant models by exact group averaging over the reflection ``x -> -x``.

For any network ``f`` and the reflection ``M`` of :func:`xequi.symmetry.mirror` (flip x, negate
u; ``M² = 1``),

    f_M(x) = ½ (f(x) + M f(M x))

is exactly mirror-equivariant: ``f_M(M x) = ½ (f(M x) + M f(x)) = M f_M(x)``. Averaging keeps
what ``f`` already has: UM (``M(x + c) = Mx + Mc``), Mag (``M`` is linear), translations in the
interior, and on a C4-equivariant ``f`` it gives exact D4 equivariance (``M R M = R⁻¹``, so
``f_M(R x) = ½ (R f(x) + M R⁻¹ f(M x)) = R f_M(x)``). ``tests/test_models_equivariance.py``
checks ``mirror`` and ``rot90`` below 1e-5.

With increment prediction (``residual=True``, the default) ``f(x) = x_last + d(x)`` and
``M x_last`` is the last frame of ``M x``, so ``f_M(x) = x_last + ½ (d(x) + M d(M x))``: the
average acts on the increment, and the last frame passes through unchanged (exactly, in float).

Why averaging and not e2cnn's dihedral groups (``gspaces.FlipRot2dOnR2``): e2cnn 0.2.3 calls
``numpy.ndarray.tostring()`` (removed in numpy 2.0) in the ``__hash__`` of four kernel-basis
classes (``e2cnn/kernels/irreps_basis.py``) and ``np.float`` (removed in numpy 1.24) in
``group/groups/o2group.py``, so every R2Conv of a flip group fails on numpy 2; fixing it from
here would mean monkeypatching private classes of the library.

Cost: two network evaluations per step (one call on the batch doubled with its mirror image),
so about twice the activation memory of the underlying model and at least twice its forward
time: measured on CPU (1 torch thread, batch 8 of 64×64, t_in 4, small widths, eval mode, median
of 10 interleaved runs, 2026-11-29) ``mirror-rot-resnet`` takes 2.5× the forward time of
``rot-resnet`` (0.69 s vs 0.28 s; the doubled batch is slower than twice the batch on one CPU
thread). Parameters are those of the underlying model.

Physics: mirror symmetry holds for Rayleigh–Bénard convection, not for a rotating ocean (the
Coriolis force changes sign under a reflection); see :mod:`xequi.symmetry.reflection`.
"""

from __future__ import annotations

import torch

from xequi.models.backbones import ResNet, UNet
from xequi.symmetry.reflection import mirror

__all__ = ["MirrorAveraged", "MirrorResNet", "MirrorUNet"]


class MirrorAveraged:
    """Mixin for a backbone: ``forward`` returns ``½ (f(x) + M f(M x))`` (see module docstring).

    The two evaluations run as one call on the batch ``[x, M x]``, so in train mode the batch
    statistics are those of a mirror-closed batch and the average stays exactly equivariant.
    """

    #: kinds of :mod:`xequi.symmetry` the averaging adds to the family's and heads'
    provides = ("mirror",)

    def forward(self, x):
        self.check_input(x)
        vec = (0, 1) if self.velocity else None
        n = x.shape[0]
        y = super().forward(torch.cat([x, mirror(x, vector=vec)], dim=0))
        return 0.5 * (y[:n] + mirror(y[n:], vector=vec))


class MirrorResNet(MirrorAveraged, ResNet):
    """:class:`~xequi.models.backbones.ResNet` averaged over the mirror (exactly equivariant).

    Examples
    --------
    >>> import torch
    >>> from xequi.symmetry import mirror
    >>> net = MirrorResNet(t_in=2, widths=(4,)).eval()
    >>> x = torch.randn(1, 2, 2, 8, 8)
    >>> bool((net(mirror(x)) - mirror(net(x))).abs().max() < 1e-5)
    True
    """


class MirrorUNet(MirrorAveraged, UNet):
    """:class:`~xequi.models.backbones.UNet` averaged over the mirror (exactly equivariant)."""
