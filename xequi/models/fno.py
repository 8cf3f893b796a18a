"""Fourier neural operator backbone (Li et al., ICLR 2021), with an exactly C4-equivariant variant.

:class:`FNO` is a backbone like :class:`~xequi.models.backbones.ResNet`: the family's k×k lifting
conv (so the UM / Mag heads of :mod:`xequi.models.layers` work unchanged), ``L`` Fourier blocks

    h <- act(norm(SpectralConv(h) + pointwise(h)))

and the family's projection conv, with the same increment (residual) convention.

**Spectral convolution** (:class:`SpectralConv2d`). The hidden field is zero-padded by
``padding`` cells on **all four sides** (the same amount, so a 90-degree rotation of the input
is a rotation of the padded grid), Fourier transformed, the modes with ``|ky|, |kx| <= modes``
(a centred square block of ``(2m+1)²`` frequencies, both signs in y and x: a set closed under
90-degree rotations, with no Nyquist frequency in it) are multiplied by learned weights, the
rest is set to zero, and the inverse transform is cropped back to ``H × W``. ``modes`` is
clipped to what the padded grid holds, ``(min(H, W) + 2 padding - 1) // 2`` (the central
sub-block of the weights is used), so any grid size works, non-square too.

Weights are indexed by integer frequency, not by physical wavenumber: the layer is a function on
arrays, and a 90-degree rotation of an ``H × W`` array (a ``W × H`` array) rotates its block of
Fourier coefficients by 90 degrees (up to a phase that a convolution ignores), square or not.

The weights are real, one number per (input channel, output channel, mode): the complex
multiplier ``W(k) = (P(k) + P(-k)) / 2 + i (P(k) - P(-k)) / 2`` of a real block ``P`` is
Hermitian, ``W(-k) = conj W(k)``, so the layer maps real fields to real fields (computed with
``rfft2`` / ``irfft2``) and ``P`` holds exactly the degrees of freedom of a real band-limited
kernel: ``parameter_count`` counts real numbers. (A complex weight per mode whose output's real
part is kept, the usual implementation, has twice the parameters for the same maps.)

**The rotation family** (:class:`RotSpectralConv2d`). Hidden features are regular fields of C4:
``(B, fields * 4, H, W)``, field-major, the 4 channels of a field being its 4 orientations.
e2cnn's convention, measured on the ``rot`` family's lifting conv: rotating the input by
``torch.rot90(·, 1)`` (counter-clockwise) rotates every channel's grid and shifts the
orientation index by one, ``h'[g] = rot90(h[g - 1])``. The group convolution

    out[g] = sum_h rot90(W[h - g], g) * in[h]     (indices mod 4)

is then equivariant: with ``in'[h] = rot in[h - 1]``, ``out'[g] = rot out[g - 1]``. Rotating a
kernel by 90 degrees rotates its centred block of Fourier coefficients by 90 degrees, and the
Hermitian map ``P -> W`` commutes with the rotation, so the layer stores four real blocks
``P[j]`` per (input field, output field) and builds the tied ``(4 cin, 4 cout)`` block from them.
Parameters: ``4 (2m+1)²`` per field pair, a quarter of the plain layer's at equal channels.
The pointwise (1×1) mixing is the family's ``conv(cin, cout, 1)`` (an e2cnn ``R2Conv``: a
circulant 1×1 map per field pair). :meth:`FNO.export` expands the tied weights into a plain
:class:`SpectralConv2d` (same outputs, no per-call weight assembly).

Only C4 (``group_order=4``): a 45-degree rotation does not map the square mode block, or the
grid, onto itself.

**Symmetries.** Exact (float32 rounding, ~1e-7 relative, square and non-square grids, tested in
``tests/test_models_fno.py``): ``rot90`` (rot family), ``uniform_motion`` / ``magnitude`` (the
UM / Mag heads). ``translate`` only approximately: the spectral kernel is global, so every
output cell sees the zero padding (measured on random weights, small widths: relative error 0.02
of the output on the 32×32 centre of a 64×64 grid for a shift of (2, 3) cells; a ResNet's is 0).

**Padding.** :data:`DEFAULT_PADDING` cells of zeros on every side: the transform treats the
padded grid as periodic, so without padding the two opposite edges of a window would be
neighbours; with 8 cells they are 16 cells (a quarter of a 64-cell window) apart through the
wrap. ``padding=0`` is the periodic FNO (for windows that tile a periodic domain).

**Windows.** Because the weights sit on integer frequencies of the padded grid, the physical
shape of the learned kernel scales with the grid: a model trained on 64-cell windows applied to
a 200-cell domain in one piece applies a kernel stretched by ``(200 + 16) / (64 + 16)``. Forecast
with the training window (the card's ``window``, what :func:`xequi.forecast.forecast` uses by
default); square windows keep the whole-domain forecast exactly rotation-equivariant on any
rectangle (``tests/test_models_fno.py``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from xequi.errors import ModelError
from xequi.models.backbones import EquiModel

__all__ = ["FNO", "SpectralConv2d", "RotSpectralConv2d", "DEFAULT_MODES", "DEFAULT_PADDING"]

#: default number of Fourier modes per sign and axis (``|k| <= modes``), clipped to the grid
DEFAULT_MODES = 12
#: default zero padding (cells, every side): on a 64-cell window opposite edges are 16 cells,
#: a quarter of the window, apart through the periodic wrap of the discrete Fourier transform
DEFAULT_PADDING = 8


def hermitian(p: torch.Tensor) -> torch.Tensor:
    """The Hermitian complex block of a real centred block ``p`` (``(..., n, n)``, n odd).

    ``W(k) = (p(k) + p(-k)) / 2 + i (p(k) - p(-k)) / 2``, so ``W(-k) = conj W(k)``.

    Examples
    --------
    >>> w = hermitian(torch.randn(3, 3))
    >>> bool(torch.equal(w.flip(-2, -1), w.conj()))
    True
    """
    q = p.flip(-2, -1)
    return torch.complex(0.5 * (p + q), 0.5 * (p - q))


class SpectralConv2d(nn.Module):
    """Zero-pad, FFT, multiply the modes ``|ky|, |kx| <= modes`` by learned weights, inverse FFT, crop.

    Parameters
    ----------
    cin, cout : int
        Input / output channels.
    modes : int
        Largest |frequency index| kept along each axis (clipped to the padded grid).
    padding : int
        Zero padding (cells) on every side before the transform.
    weight : torch.Tensor, optional
        Real ``(cin, cout, 2 modes + 1, 2 modes + 1)`` block (centred: index ``modes`` is
        frequency 0); default: random, standard deviation ``1 / sqrt(cin)``.

    Examples
    --------
    >>> conv = SpectralConv2d(2, 3, modes=4, padding=2)
    >>> conv(torch.randn(1, 2, 10, 7)).shape
    torch.Size([1, 3, 10, 7])
    """

    def __init__(self, cin: int, cout: int, modes: int, padding: int,
                 weight: torch.Tensor | None = None):
        super().__init__()
        self.cin, self.cout, self.modes, self.padding = int(cin), int(cout), int(modes), int(padding)
        n = 2 * self.modes + 1
        if weight is None:
            weight = torch.randn(cin, cout, n, n) / math.sqrt(cin)
        self.weight = nn.Parameter(weight.detach().clone())

    def block(self) -> torch.Tensor:
        """The real centred weight block ``(cin, cout, n, n)``."""
        return self.weight

    def forward(self, h):
        return spectral_conv(h, self.block(), self.modes, self.padding)


def spectral_conv(h: torch.Tensor, block: torch.Tensor, modes: int, padding: int) -> torch.Tensor:
    """Apply the real centred block ``(cin, cout, 2 modes + 1, 2 modes + 1)`` to ``h`` ``(B, cin, H, W)``."""
    B, _, H, W = h.shape
    p = padding
    hp = F.pad(h, (p, p, p, p)) if p else h
    Hp, Wp = hp.shape[-2:]
    m = min(modes, (min(Hp, Wp) - 1) // 2)
    w = hermitian(block[..., modes - m:modes + m + 1, modes - m:modes + m + 1])[..., m:]
    X = torch.fft.rfft2(hp)
    rows = torch.cat([X[..., Hp - m:, :m + 1], X[..., :m + 1, :m + 1]], dim=-2)
    Y = torch.einsum("bixy,ioxy->boxy", rows, w.to(rows.dtype))
    out = X.new_zeros(B, block.shape[1], Hp, Wp // 2 + 1)
    out[..., :m + 1, :m + 1] = Y[..., m:, :]
    if m:
        out[..., Hp - m:, :m + 1] = Y[..., :m, :]
    y = torch.fft.irfft2(out, s=(Hp, Wp))
    return y[..., p:p + H, p:p + W]


class RotSpectralConv2d(nn.Module):
    """C4 group convolution in Fourier space between regular fields (see module docstring).

    Parameters
    ----------
    cin, cout : int
        Input / output *fields* (4 channels each, field-major).
    modes, padding : int
        As :class:`SpectralConv2d`.

    Examples
    --------
    >>> conv = RotSpectralConv2d(1, 2, modes=3, padding=2)
    >>> x = torch.randn(1, 4, 9, 6)
    >>> rx = torch.roll(torch.rot90(x.view(1, 1, 4, 9, 6), 1, (-2, -1)), 1, 2).reshape(1, 4, 6, 9)
    >>> y = conv(x).view(1, 2, 4, 9, 6)
    >>> want = torch.roll(torch.rot90(y, 1, (-2, -1)), 1, 2).reshape(1, 8, 6, 9)
    >>> bool((conv(rx) - want).abs().max() < 1e-5)
    True
    """

    group = 4

    def __init__(self, cin: int, cout: int, modes: int, padding: int):
        super().__init__()
        self.cin, self.cout, self.modes, self.padding = int(cin), int(cout), int(modes), int(padding)
        n = 2 * self.modes + 1
        self.weight = nn.Parameter(torch.randn(self.group, cin, cout, n, n) / math.sqrt(cin * self.group))

    def block(self) -> torch.Tensor:
        """The tied real block ``(4 cin, 4 cout, n, n)``: ``[(f, h), (o, g)] = rot90(P[h - g, f, o], g)``."""
        G = self.group
        per_g = [torch.rot90(self.weight[[(h - g) % G for h in range(G)]], g, dims=(-2, -1))
                 for g in range(G)]
        full = torch.stack(per_g, 0)  # (g, h, cin, cout, n, n)
        n = full.shape[-1]
        return full.permute(2, 1, 3, 0, 4, 5).reshape(self.cin * G, self.cout * G, n, n)

    def forward(self, h):
        return spectral_conv(h, self.block(), self.modes, self.padding)

    def export(self) -> SpectralConv2d:
        """The plain layer with the tied block expanded (same outputs)."""
        with torch.no_grad():
            return SpectralConv2d(self.cin * self.group, self.cout * self.group, self.modes,
                                  self.padding, weight=self.block())


class FNO(EquiModel):
    """Fourier neural operator: lifting conv, Fourier blocks, projection (see module docstring).

    Parameters
    ----------
    t_in : int
    n_scalars : int
    widths : sequence of int
        Width (fields; channels = fields × group size) of each Fourier block.
    modes : int, default :data:`DEFAULT_MODES`
        Fourier modes kept per sign and axis, ``|ky|, |kx| <= modes`` (clipped to the padded grid).
    padding : int, default :data:`DEFAULT_PADDING`
        Zero padding (cells) on every side of the hidden fields before each transform.
    norm : bool, default True
        The family's batch norm after each block's sum (before the activation).
    **kwargs
        Family switches of :class:`~xequi.models.backbones.EquiModel`: ``family`` ``"plain"``
        or ``"rot"`` (C4 only, ``group_order=4``), ``um``, ``mag``, ``kernel_size``, ...

    Raises
    ------
    ModelError
        The scale family, a rotation group other than C4, negative ``modes`` / ``padding``.

    Examples
    --------
    >>> net = FNO(t_in=2, widths=(4, 4), modes=3).eval()
    >>> net(torch.randn(1, 2, 2, 12, 10)).shape
    torch.Size([1, 2, 12, 10])
    """

    def __init__(self, t_in: int, n_scalars: int = 0, widths=(12, 12, 12, 12),
                 modes: int = DEFAULT_MODES, padding: int = DEFAULT_PADDING, norm: bool = True,
                 **kwargs):
        _check_fno_arguments(kwargs.get("family", "plain"), kwargs.get("group_order", 4), modes,
                             padding)
        super().__init__(t_in, n_scalars, **kwargs)
        widths = [int(w) for w in widths]
        self.modes, self.padding = int(modes), int(padding)
        f = self.fam
        rot = f.name == "rot"
        self.lift = self._lift(widths[0])
        spectral, pointwise, post = [], [], []
        prev = widths[0]
        for w in widths:
            spectral.append(RotSpectralConv2d(prev, w, self.modes, self.padding) if rot
                            else SpectralConv2d(prev, w, self.modes, self.padding))
            pointwise.append(f.conv(prev, w, 1, bias=not norm))
            post.append(nn.Sequential(f.norm(w), f.act()) if norm else f.act())
            prev = w
        self.spectral = nn.ModuleList(spectral)
        self.pointwise = nn.ModuleList(pointwise)
        self.post = nn.ModuleList(post)
        self.project = self._project(prev)

    def forward(self, x):
        self.check_input(x)
        h, stats = self.lift(x)
        for spec, point, post in zip(self.spectral, self.pointwise, self.post):
            h = post(spec(h) + point(h))
        return self._output(x, self.project(h, stats))

    def export(self) -> nn.Module:
        """A plain-torch copy in eval mode (e2cnn modules exported, tied spectral weights
        expanded); outputs agree with this model in eval mode to float rounding."""
        model = super().export()
        model.spectral = nn.ModuleList(
            s.export() if isinstance(s, RotSpectralConv2d) else s for s in model.spectral)
        model.spectral.eval()
        return model


def _check_fno_arguments(family: str, group_order: int, modes: int, padding: int) -> None:
    if family not in ("plain", "rot"):
        raise ModelError(f"the Fourier backbone has no {family!r} family.",
                         fix="use family='plain' or 'rot'")
    if family == "rot" and int(group_order) != 4:
        raise ModelError(f"the rotation Fourier backbone is exact for C4 only, got group_order={group_order}.",
                         fix="pass group_order=4 (a 45-degree rotation does not map the grid onto itself)")
    for name, val in (("modes", modes), ("padding", padding)):
        if isinstance(val, bool) or int(val) != val or val < 0:
            raise ModelError(f"{name} must be an integer >= 0, got {val!r}.",
                             fix=f"pass e.g. {name}={DEFAULT_MODES if name == 'modes' else DEFAULT_PADDING}")
