"""Relaxed (approximately equivariant) rotation models: C4 group convolutions allowed to leave
the symmetry by a learnable, penalized amount.

After Wang, Walters & Yu (ICML 2022), *Approximately equivariant networks for imperfectly
symmetric dynamics* (relaxed group convolution), written for the regular C4 fields of
:class:`~xequi.models.families.RotFamily`. Each hidden convolution of a relaxed model is

    K = E + B,    B = sum_g A_g( sum_l w_l(g) psi_l ),

* ``E``: the exact e2cnn ``R2Conv`` filter of the rot family (the same module, the same weights
  as ``rot-resnet`` built from the same seed);
* ``psi_l`` (``relax`` = L base kernels per layer, plain tensors ``(cout, cin * 4, k, k)``) are
  the kernels of output orientation e, ``A_g`` moves a kernel to output orientation ``g``
  (rotates it by ``g`` x 90 degrees and permutes its input orientations: the group-convolution
  lift), and ``w_l(g)`` are combination weights per output field and per orientation
  (``relaxed_weights``, shape ``(L, cout, 4)``).

With ``w_l(g)`` equal across ``g`` the breaking part ``B`` is itself a group convolution, so the
layer is exactly C4-equivariant; the weights start at zero (equal across ``g``, and ``B = 0``):
an untrained relaxed model computes exactly what the rot model with the same ``R2Conv`` weights
computes. Training can make ``w`` vary across ``g``: the symmetry-breaking component of the
layer is ``K - P(K) = sum_g A_g( sum_l (w_l(g) - mean_g w_l) psi_l )`` (``P``: the orthogonal
projection on C4-equivariant kernels, the average over the group). :meth:`RelaxedConv.penalty`
is its squared norm, ``sum_g || sum_l (w_l(g) - mean w_l) psi_l ||^2`` (Wang et al.'s penalty on
the variation of ``w`` across the group, measured in kernel space, where it cannot be dodged by
scaling ``psi`` up and ``w`` down); it is 0 exactly when the layer is equivariant.

The model's :meth:`RelaxedResNet.symmetry_penalty` sums it over the layers; :func:`xequi.fit`
adds ``model.penalty_weight * model.symmetry_penalty()`` to the training loss (the weight is
the model's ``penalty`` setting: ``fit("relaxed-rot-resnet", ds,
model_kwargs={"penalty": 1e-2})``; ``relax=0`` builds no breaking part at all: the rot model).
:func:`departure` reports how far a (trained) model has left C4: the relative rot90
equivariance error on given inputs and the norm ratio of the breaking to the equivariant part,
per layer and overall -- a measure of how symmetric the training data were.

The lifting and projection heads stay exact (the rot family's), so the UM / Mag heads keep both
symmetries exactly (``um-mag-relaxed-rot-resnet``). The family declares ``translate`` only: a
trained relaxed model is *not* rot90-equivariant, and no relaxed model claims it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from xequi.errors import ModelError
from xequi.models.backbones import ResNet, UNet
from xequi.models.families import FAMILIES, RotFamily
from xequi.models.layers import GWrap

__all__ = ["RelaxedConv", "RelaxedRotFamily", "RelaxedResNet", "RelaxedUNet", "relax_convs",
           "departure", "breaking_ratios"]

#: the group of the relaxed family: 90-degree rotations act on the grid by permutation
_N = 4


def _orientations(d: torch.Tensor) -> torch.Tensor:
    """The full kernel ``sum_g A_g(d[g])`` from one orientation-e kernel per group element.

    ``d``: ``(4, cout, cin, 4, k, k)``; returns ``(cout * 4, cin * 4, k, k)`` (field-major). The
    output rows of orientation ``-g`` get ``d[g]`` rotated by ``rot90(., -g)`` with its input
    orientations rolled by ``g``: the e2cnn convention of ``Rot2dOnR2(4)`` regular fields, for
    which an equivariant ``K`` satisfies ``rot90(K, -g) = P(g) K P(g)^T`` (checked in
    ``tests/test_models_relaxed.py`` against the ``R2Conv`` filter).
    """
    rows = [None] * _N
    for g in range(_N):
        t = torch.roll(d[g], shifts=-g, dims=2)  # t[:, :, i] = d[g][:, :, (i + g) % 4]
        rows[(-g) % _N] = torch.rot90(t, -g, dims=(-2, -1))
    k = torch.stack(rows, 1)  # (cout, 4, cin, 4, k, k)
    return k.reshape(k.shape[0] * _N, k.shape[2] * _N, k.shape[-2], k.shape[-1])


class RelaxedConv(GWrap):
    """A relaxed C4 group convolution: an exact e2cnn ``R2Conv`` plus a learnable breaking part.

    Parameters
    ----------
    module : e2cnn.nn.R2Conv
        The equivariant part, between regular C4 fields (stride 1, zero padding), as
        :meth:`RotFamily.conv <xequi.models.families.RotFamily.conv>` builds it.
    relax : int, default 1
        Number L >= 1 of base kernels ``psi_l`` of the breaking part.

    Notes
    -----
    Parameters: ``module.*`` (the rot family's), ``psi`` ``(L, cout, cin * 4, k, k)`` (He
    initialisation) and ``relaxed_weights`` ``(L, cout, 4)`` (zeros: exactly the ``R2Conv`` at
    initialisation). ``export()`` gives one ``nn.Conv2d`` with the summed kernel.
    """

    def __init__(self, module, relax: int = 1):
        super().__init__(module)
        cin, cout = module.in_type.size // _N, module.out_type.size // _N
        k = module.kernel_size
        self.relax = int(relax)
        std = math.sqrt(2.0 / (cin * _N * k * k))
        self.psi = nn.Parameter(torch.randn(self.relax, cout, cin * _N, k, k) * std)
        self.relaxed_weights = nn.Parameter(torch.zeros(self.relax, cout, _N))

    def _equivariant(self):
        conv = self.module
        if self.training:
            return conv.expand_parameters()
        return conv.filter, conv.expanded_bias

    def _kernel(self, w: torch.Tensor) -> torch.Tensor:
        """``sum_g A_g(sum_l w_l(g) psi_l)`` for weights ``w`` ``(L, cout, 4)``."""
        L, cout, cin4, k, _ = self.psi.shape
        d = torch.einsum("log,loihw->goihw", w, self.psi)
        return _orientations(d.reshape(_N, cout, cin4 // _N, _N, k, k))

    def breaking_kernel(self) -> torch.Tensor:
        """The breaking part ``B`` (equivariant component included), ``(cout*4, cin*4, k, k)``."""
        return self._kernel(self.relaxed_weights)

    def penalty(self) -> torch.Tensor:
        """``||K - P(K)||^2``: the squared norm of the non-equivariant component (0 when exact)."""
        dev = self.relaxed_weights - self.relaxed_weights.mean(-1, keepdim=True)
        return torch.einsum("log,loihw->goihw", dev, self.psi).square().sum()

    def departure(self) -> tuple[float, float]:
        """``(||K - P(K)||, ||P(K)||)``: the norms of the breaking and equivariant components."""
        with torch.no_grad():
            mean = self.relaxed_weights.mean(-1, keepdim=True).expand_as(self.relaxed_weights)
            equi = self._equivariant()[0] + self._kernel(mean)
            return float(self.penalty().sqrt()), float(torch.linalg.vector_norm(equi))

    def forward(self, x):
        weight, bias = self._equivariant()
        return F.conv2d(x, weight + self.breaking_kernel(), bias, padding=self.module.padding)

    def export(self) -> nn.Module:
        """One plain ``nn.Conv2d`` with the summed kernel ``E + B`` (and the e2cnn bias)."""
        with torch.no_grad():
            weight, bias = self.module.expand_parameters()
            weight = weight + self.breaking_kernel()
        conv = nn.Conv2d(weight.shape[1], weight.shape[0], weight.shape[-1],
                         padding=self.module.padding, bias=bias is not None)
        conv.weight.data = weight.detach().clone()
        if bias is not None:
            conv.bias.data = bias.detach().clone()
        return conv.eval()


def _regular(field_type) -> bool:
    return all(r.name == "regular" for r in field_type.representations)


def relax_convs(model: nn.Module, relax: int = 1) -> nn.Module:
    """Replace, in place, every hidden C4 conv (a ``GWrap`` of an ``R2Conv`` between regular
    fields) of ``model`` by a :class:`RelaxedConv` around the same ``R2Conv``.

    The lifting and projection convs (other field types) stay exact. ``relax=0`` changes nothing.

    Parameters
    ----------
    model : torch.nn.Module
    relax : int, default 1
        Base kernels per layer.

    Returns
    -------
    torch.nn.Module
        ``model`` itself.
    """
    if relax < 1:
        return model
    found = [(parent, name, child) for parent in model.modules()
             for name, child in parent.named_children()
             if type(child) is GWrap and type(child.module).__name__ == "R2Conv"
             and _regular(child.module.in_type) and _regular(child.module.out_type)]
    for parent, name, child in found:
        setattr(parent, name, RelaxedConv(child.module, relax))
    return model


class RelaxedRotFamily(RotFamily):
    """Relaxed C4 regular fields: the rot family's convs plus a penalized breaking part.

    ``name = "relaxed-rot"``. Declares ``translate`` only: once trained the hidden convs are
    not rot90-equivariant (exact at initialisation). Lifting, projection, norm and activation
    are the rot family's, so the UM / Mag heads combine with it.

    Parameters
    ----------
    N : int, default 4
        Must be 4 (90-degree rotations act on the grid by permutation).
    relax : int, default 1
        Base kernels per hidden conv (0: the rot family's convs, no breaking part).
    """

    name = "relaxed-rot"
    symmetries = ("translate",)

    @classmethod
    def provides(cls, group_order: int = 4, n_scales: int = 3) -> tuple[str, ...]:
        """Translations only, whatever the group order: rot90 is not kept once trained."""
        return cls.symmetries

    def __init__(self, N: int = 4, relax: int = 1):
        _check(N, relax, 0.0)
        super().__init__(_N)
        self.relax = int(relax)

    def conv(self, cin: int, cout: int, k: int = 3, bias: bool = True) -> nn.Module:
        conv = super().conv(cin, cout, k, bias=bias)
        return RelaxedConv(conv.module, self.relax) if self.relax else conv


FAMILIES.setdefault(RelaxedRotFamily.name, RelaxedRotFamily)


def _check(group_order, relax, penalty) -> None:
    if int(group_order) != _N:
        raise ModelError(f"a relaxed rotation model is built on C4, got group_order={group_order}.",
                         fix="pass group_order=4 (or use 'rot-resnet' for C8)")
    if isinstance(relax, bool) or int(relax) != relax or relax < 0:
        raise ModelError(f"relax (base kernels per layer) must be an integer >= 0, got {relax!r}.",
                         fix="pass relax=1 (relax=0: the exact rot model)")
    if not math.isfinite(float(penalty)) or float(penalty) < 0:
        raise ModelError(f"penalty (weight of the symmetry penalty) must be >= 0, got {penalty!r}.",
                         fix="pass e.g. penalty=1e-3")


class _Relaxed:
    """What the relaxed backbones add: the build around the rot model, the penalty, departure."""

    def _build(self, base, t_in, n_scalars, widths, relax, penalty, group_order, kwargs):
        _check(group_order, relax, penalty)
        kwargs.pop("family", None)
        # the rot model itself (same construction, same random draws: same R2Conv weights as
        # the rot model built from the same seed), then its hidden convs relaxed (create()
        # empties e2cnn's basis cache around the build, as for the rot family)
        base.__init__(self, t_in, n_scalars, widths=widths, family="rot", group_order=_N, **kwargs)
        relax_convs(self, int(relax))
        self.fam = RelaxedRotFamily(_N, int(relax))
        self.relax = int(relax)
        self.penalty_weight = float(penalty)

    def relaxed_layers(self) -> dict:
        """``{name: RelaxedConv}`` of the hidden convs (empty with ``relax=0`` or exported)."""
        return {n: m for n, m in self.named_modules() if isinstance(m, RelaxedConv)}

    def symmetry_penalty(self) -> torch.Tensor:
        """Sum over the relaxed convs of ``||K - P(K)||^2`` (a scalar tensor; 0 when exact).

        :func:`xequi.fit` adds ``penalty_weight * symmetry_penalty()`` to the training loss.
        """
        terms = [m.penalty() for m in self.relaxed_layers().values()]
        if not terms:
            p = next(self.parameters(), None)
            return torch.zeros((), device=None if p is None else p.device)
        return torch.stack(terms).sum()


class RelaxedResNet(_Relaxed, ResNet):
    """:class:`~xequi.models.backbones.ResNet` of the rot family (C4) with relaxed hidden convs.

    Parameters
    ----------
    t_in, n_scalars, widths
        As :class:`~xequi.models.backbones.ResNet` (widths in C4 fields).
    relax : int, default 1
        Base kernels per hidden conv (0: exactly the ``rot-resnet``).
    penalty : float, default 1e-3
        Weight of :meth:`symmetry_penalty` in the training loss (``penalty_weight``).
    group_order : int, default 4
        Must be 4.
    **kwargs
        ``um``, ``mag``, ``kernel_size``, ``velocity``, ``residual`` of
        :class:`~xequi.models.backbones.EquiModel`.

    Examples
    --------
    >>> net = RelaxedResNet(t_in=2, widths=(2,)).eval()
    >>> net(torch.randn(1, 2, 2, 8, 8)).shape, float(net.symmetry_penalty())
    (torch.Size([1, 2, 8, 8]), 0.0)
    """

    def __init__(self, t_in: int, n_scalars: int = 0, widths=(4, 4, 8, 8), relax: int = 1,
                 penalty: float = 1e-3, group_order: int = 4, **kwargs):
        self._build(ResNet, t_in, n_scalars, widths, relax, penalty, group_order, kwargs)


class RelaxedUNet(_Relaxed, UNet):
    """:class:`~xequi.models.backbones.UNet` of the rot family (C4) with relaxed hidden convs.

    Parameters as :class:`RelaxedResNet` (``widths``: fields per level, finest first).
    """

    def __init__(self, t_in: int, n_scalars: int = 0, widths=(4, 8, 16), relax: int = 1,
                 penalty: float = 1e-3, group_order: int = 4, **kwargs):
        self._build(UNet, t_in, n_scalars, widths, relax, penalty, group_order, kwargs)


def departure(model, x: torch.Tensor, steps: int = 1) -> dict:
    """How far a model departs from C4: rot90 equivariance error and the breaking part's size.

    Parameters
    ----------
    model : torch.nn.Module
        A model (relaxed or not; a :class:`~xequi.models.normalized.NormalizedModel` too).
    x : torch.Tensor
        ``(batch, t_in, C, H, W)`` inputs in the model's frame (e.g. validation windows).
    steps : int, default 1
        Rollout length of the equivariance error.

    Returns
    -------
    dict
        ``rot90_errors``: the relative equivariance errors
        (:func:`~xequi.models.equivariance.equivariance_error`) for k = 1, 2, 3 quarter turns;
        ``rot90_error``: their maximum (about 1e-7 for an exact model in float32);
        ``breaking_ratio``: ``||K - P(K)|| / ||P(K)||`` over all relaxed convs together (``P``: the
        projection on C4-equivariant kernels; None without relaxed convs); ``layers``: the same
        ratio per relaxed conv, by module name. With increment prediction the output's error
        is diluted by the last input frame (exactly equivariant).

    Examples
    --------
    >>> net = RelaxedResNet(t_in=2, widths=(2,))
    >>> d = departure(net, torch.randn(1, 2, 2, 8, 8))
    >>> d["rot90_error"] < 1e-5, d["breaking_ratio"]
    (True, 0.0)
    """
    from xequi.models.equivariance import equivariance_error

    errors = [equivariance_error(model, x, "rot90", steps=steps, k=k) for k in (1, 2, 3)]
    return {"rot90_error": max(errors), "rot90_errors": errors, **breaking_ratios(model)}


def breaking_ratios(model) -> dict:
    """The size of a model's symmetry-breaking part, from its weights alone (no input needed).

    Parameters
    ----------
    model : torch.nn.Module
        A model (a :class:`~xequi.models.normalized.NormalizedModel` too).

    Returns
    -------
    dict
        ``breaking_ratio``: ``||K - P(K)|| / ||P(K)||`` over all relaxed convs together (None
        without relaxed convs: an exact or exported model); ``layers``: the ratio per relaxed
        conv, by module name.

    Examples
    --------
    >>> breaking_ratios(RelaxedResNet(t_in=2, widths=(2,)))["breaking_ratio"]
    0.0
    """
    net = getattr(model, "model", model)
    parts = {n: m.departure() for n, m in net.named_modules() if isinstance(m, RelaxedConv)}
    num = math.sqrt(sum(b * b for b, _ in parts.values()))
    den = math.sqrt(sum(e * e for _, e in parts.values()))
    return {"breaking_ratio": (num / den if den else 0.0) if parts else None,
            "layers": {n: (b / e if e else 0.0) for n, (b, e) in parts.items()}}
