"""The two backbones, written once and parametrised by a layer family.

* :class:`ResNet`: lifting conv, residual blocks (two 3×3 convs, norm, activation; 1×1 family
  conv on the shortcut when the width changes), no downsampling, projection conv.
* :class:`UNet`: lifting conv, encoder levels (two 3×3 convs) separated by 2×2 max pooling,
  decoder levels (nearest ×2 upsampling, 3×3 conv, concatenation with the skip, two 3×3 convs),
  projection conv. 2×2 pooling and nearest upsampling commute with 90-degree rotations and with
  the group action on regular fields when H and W are divisible by ``2**depth``; other grid sizes
  are rejected with a :class:`~xequi.errors.GridError` (the paper's stride-2 3×3 convs and
  asymmetric padding broke the rotation symmetry: ``docs/science.md``, released-code
  defects, item 4).

Both take ``x`` of shape ``(batch, t_in, C, H, W)`` in the model frame (``C = 2 + n_scalars``,
channels ``[u, v, *scalars]``; a scalar-only model, ``velocity=False``, has ``C = n_scalars``)
and return the next frame ``(batch, C, H, W)``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from xequi.errors import GridError, ModelError
from xequi.models.families import FAMILIES, make_family
from xequi.models.layers import SWITCH_SYMMETRIES, GWrap, Lift, Project, scale_parameters

__all__ = ["EquiModel", "ResNet", "UNet", "check_compatible", "RESIDUAL_INIT_SCALE"]

#: factor on the projection conv's initial weights and bias of a residual model: its untrained
#: (eval-mode) one-step forecast is within 2.2% (relative rms) of persistence, 0.2% for most
#: models (measured in ``tests/test_models_equivariance.py``). Not zero: an exact persistence
#: model satisfies every symmetry trivially, so equivariance checks of untrained networks would
#: test nothing; a scalar multiple keeps every exact symmetry of the layer.
RESIDUAL_INIT_SCALE = 0.01


class EquiModel(nn.Module):
    """Common base: input checks, ``config``, ``symmetries``, ``export``.

    Parameters
    ----------
    t_in : int
        Number of input frames.
    n_scalars : int
        Number of scalar channels after (u, v).
    velocity : bool, default True
        Whether the channels start with the velocity (u, v). ``False`` makes a scalar-only model
        (channels ``[*scalars]``, ``n_scalars >= 1``): for a temperature or vorticity field
        alone. Rotations then act on the grid only; UM, which acts on the velocity, is refused.
    family : {"plain", "rot", "scale"}
        Layer family of the hidden layers.
    um, mag : bool
        Make the network exactly equivariant to uniform motion / magnitude (see
        :mod:`xequi.models.layers`).
    group_order : int
        N of the cyclic group (rot family).
    n_scales : int
        Number of scales (scale family).
    kernel_size : int
        Odd kernel size of the lifting conv (the UM / Mag block size).
    residual : bool, default True
        Increment prediction: the output is ``x[:, -1] + f(x)``, the last input frame plus a
        learned increment ``f`` (every channel). ``f`` keeps the symmetries of the network: it is
        UM-*invariant* (the projection does not add the block mean back; ``x[:, -1] + c`` carries
        ``c``), Mag-equivariant (times the block scale), rotation / mirror / scale equivariant as
        before. The projection's weights and bias are multiplied by
        :data:`RESIDUAL_INIT_SCALE` at construction, so an untrained model forecasts close to
        persistence. ``residual=False``: the network predicts the next frame directly, as the
        models built before increment prediction did (checkpoints without a ``residual`` key in
        their config); same seed, same weights and outputs, bit for bit.

    Notes
    -----
    Symmetries (``model.symmetries``, set by :func:`xequi.models.create`):

    * exact to float rounding, in eval mode: ``rot90`` (rot family, any N divisible by 4; the
      U-net on grids divisible by ``2**depth``), ``uniform_motion`` (``um``), ``magnitude``
      (``mag``, every λ > 0, all channels scaled as in ``symmetry.magnitude(channels=None)``),
      also over autoregressive rollouts;
    * approximate: ``rotate`` (rot family with N >= 8, by multiples of 360/N degrees;
      interpolation), ``scale`` (scale family), ``translate`` (all: exact for ResNets away from
      the boundary, U-nets only for shifts that are multiples of ``2**depth``).

    BatchNorm in train mode: UM / Mag hidden features are invariant, so batch statistics do not
    change and UM / Mag stay exact; the rot family uses ``InnerBatchNorm`` (statistics shared by
    the N channels of a field), so rotating the *whole batch* commutes with it; the plain
    ``BatchNorm2d`` commutes with translations of the whole batch only away from the boundary.
    With cuDNN's TF32 convolutions (PyTorch's GPU default) the exact errors rise from ~1e-7 to
    ~1e-5..1e-4; set ``torch.backends.cudnn.allow_tf32 = False`` for float32-exact checks.
    """

    def __init__(self, t_in: int, n_scalars: int = 0, family: str = "plain", um: bool = False,
                 mag: bool = False, group_order: int = 4, n_scales: int = 3, kernel_size: int = 3,
                 velocity: bool = True, residual: bool = True):
        super().__init__()
        self.residual = bool(residual)
        self.t_in = int(t_in)
        self.n_scalars = int(n_scalars)
        self.velocity = bool(velocity)
        self.n_vel = 2 if self.velocity else 0
        self.channels = self.n_vel + self.n_scalars
        self.kernel_size = int(kernel_size)
        if not self.velocity and self.n_scalars < 1:
            raise ModelError("a scalar-only model (velocity=False) needs n_scalars >= 1.",
                             fix="pass n_scalars=1 for one scalar field, or velocity=True")
        heads = [k for flag, on in (("um", um), ("mag", mag)) if on for k in SWITCH_SYMMETRIES[flag]]
        check_compatible(family, heads, self.velocity)
        self.fam = make_family(family, group_order=group_order, n_scales=n_scales)
        self.um, self.mag = bool(um), bool(mag)
        self.config: dict = {}
        self.symmetries: tuple = ()

    #: kinds of :mod:`xequi.symmetry` the model class itself adds to its family's and heads'
    #: (e.g. a model averaged over a group)
    provides: tuple[str, ...] = ()

    # -- helpers for subclasses -------------------------------------------------------------
    def _lift(self, fields: int) -> Lift:
        k = self.kernel_size
        return Lift(self.fam.lift_conv(self.t_in, self.n_vel, self.n_scalars, fields, k), k,
                    um=self.um, mag=self.mag, n_vel=self.n_vel)

    def _project(self, fields: int) -> Project:
        # with the residual the increment is UM-invariant: the mean is not added back
        proj = Project(self.fam.project_conv(fields, self.n_vel, self.n_scalars),
                       um=self.um and not self.residual, mag=self.mag)
        if self.residual:
            scale_parameters(proj, RESIDUAL_INIT_SCALE)
        return proj

    def _output(self, x, increment):
        """The next frame: ``x[:, -1] + increment`` with the residual, else ``increment``."""
        return x[:, -1] + increment if self.residual else increment

    def _unit(self, cin: int, cout: int) -> nn.Sequential:
        f = self.fam
        return nn.Sequential(f.conv(cin, cout, 3, bias=False), f.norm(cout), f.act())

    def check_input(self, x) -> None:
        """Raise :class:`~xequi.errors.ModelError` unless ``x`` is ``(batch, t_in, C, H, W)`` float."""
        if not isinstance(x, torch.Tensor):
            raise ModelError(f"{self.config.get('name', 'model')} expects a torch.Tensor, got {type(x).__name__}.",
                             fix="convert with torch.as_tensor(x, dtype=torch.float32)")
        if x.ndim != 5:
            raise ModelError(f"input must have 5 dims (batch, t_in, C, H, W), got shape {tuple(x.shape)}.",
                             fix="add a batch dim with x[None] or stack windows along dim 0")
        if x.shape[1] != self.t_in:
            raise ModelError(f"expected t_in={self.t_in} input frames (dim 1), got {x.shape[1]}.",
                             fix=f"pass the last {self.t_in} frames, or create the model with t_in={x.shape[1]}")
        if x.shape[2] != self.channels:
            if not self.velocity:
                raise ModelError(f"expected {self.channels} scalar channel(s) in dim 2 (a "
                                 f"scalar-only model), got {x.shape[2]}.",
                                 fix=f"create the model with n_scalars={x.shape[2]}")
            raise ModelError(f"expected {self.channels} channels (u, v + {self.n_scalars} scalars) in dim 2, "
                             f"got {x.shape[2]}.",
                             fix=f"create the model with n_scalars={x.shape[2] - 2}" if x.shape[2] >= 2
                             else "channels must start with the velocity components u, v, or "
                                  "create a scalar-only model with velocity=False")
        if not x.is_floating_point():
            raise ModelError(f"input must be floating point, got {x.dtype}.", fix="convert with x.float()")
        if min(x.shape[-2:]) < self.kernel_size:
            raise GridError(f"grid {tuple(x.shape[-2:])} is smaller than the kernel ({self.kernel_size}).",
                            fix="use a larger window")

    def _e2cnn_cache_keys(self, prefix: str = "") -> set:
        keys = set()
        for name, m in self.named_modules():
            if type(m).__name__ == "R2Conv":
                for b in ("filter", "expanded_bias"):
                    keys.add(f"{prefix}{name}.{b}")
        return keys

    def state_dict(self, *args, **kwargs):
        """The state dict without e2cnn's eval-mode caches (expanded filters), so that weights
        saved in either mode load into a model in either mode."""
        sd = super().state_dict(*args, **kwargs)
        for key in self._e2cnn_cache_keys(kwargs.get("prefix", "")):
            sd.pop(key, None)
        return sd

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Load weights (e2cnn's cached filters, if present, are ignored and re-expanded)."""
        drop = self._e2cnn_cache_keys()
        state_dict = {k: v for k, v in state_dict.items() if k not in drop}
        mode = self.training
        self.train()  # e2cnn drops its caches in train mode ...
        try:
            return super().load_state_dict(state_dict, strict=strict, assign=assign)
        finally:
            self.train(mode)  # ... and re-expands the loaded weights in eval mode

    def export(self) -> nn.Module:
        """A copy made of plain torch modules (e2cnn modules exported), in eval mode.

        Returns
        -------
        torch.nn.Module
            Same call signature and ``config``/``symmetries``; outputs agree with this model in
            eval mode to float rounding. The original model is left untouched.
        """
        was_training = self.training
        self.train()  # e2cnn caches non-leaf expanded filters in eval mode; they cannot be deep-copied
        try:
            model = copy.deepcopy(self)
        finally:
            self.train(was_training)
        model.eval()

        def convert(module: nn.Module) -> None:
            for name, child in module.named_children():
                if isinstance(child, GWrap) or hasattr(child, "export") and child.__class__.__name__ == "_RotLiftConv":
                    new = child.export()
                    new.eval()
                    setattr(module, name, new)
                else:
                    convert(child)

        convert(model)
        model.fam = None  # construction-time helper (holds e2cnn objects); not needed to run
        model.exported = True
        return model


def check_compatible(family: str, heads, velocity: bool) -> None:
    """Refuse heads that act on a velocity the model has not, or a family that takes no heads.

    ``heads``: the kinds the UM / Mag switches provide (``SWITCH_SYMMETRIES``); the messages use
    the registry's labels (:mod:`xequi.symmetry`).
    """
    from xequi import symmetry

    claimed = symmetry.groups(heads)
    for g in claimed:
        if g.needs_velocity and not velocity:
            raise ModelError(f"{g.label()} ({g.action}) acts on the velocity: a scalar-only "
                             f"model (velocity=False) cannot be {g.adjective} equivariant.",
                             fix="use a model without UM ('resnet', 'mag-resnet', 'rot-resnet', "
                                 "...) for scalar fields")
    fam = FAMILIES.get(family)
    if claimed and fam is not None and not fam.takes_heads:
        labels = " / ".join(g.label() for g in claimed)
        raise ModelError(f"the {family} family does not combine with the {labels} heads.",
                         fix="use family='plain' or 'rot' with um / mag")


class ResNet(EquiModel):
    """Residual network without downsampling (see module docstring).

    Parameters
    ----------
    t_in : int
    n_scalars : int
    widths : sequence of int
        Width (fields; channels = fields × group size) of each residual block.
    **kwargs
        Family switches of :class:`EquiModel`.

    Examples
    --------
    >>> import torch
    >>> net = ResNet(t_in=2, widths=(8, 8)).eval()
    >>> net(torch.randn(1, 2, 2, 16, 16)).shape
    torch.Size([1, 2, 16, 16])
    """

    def __init__(self, t_in: int, n_scalars: int = 0, widths=(16, 16, 32, 32), **kwargs):
        super().__init__(t_in, n_scalars, **kwargs)
        widths = [int(w) for w in widths]
        f = self.fam
        self.lift = self._lift(widths[0])
        self.lift_post = nn.Sequential(f.norm(widths[0]), f.act())
        blocks, shortcuts = [], []
        prev = widths[0]
        for w in widths:
            blocks.append(nn.Sequential(f.conv(prev, w, 3, bias=False), f.norm(w), f.act(),
                                        f.conv(w, w, 3, bias=False), f.norm(w)))
            shortcuts.append(nn.Identity() if w == prev else f.conv(prev, w, 1, bias=False))
            prev = w
        self.blocks = nn.ModuleList(blocks)
        self.shortcuts = nn.ModuleList(shortcuts)
        self.act = f.act()
        self.project = self._project(prev)

    def forward(self, x):
        self.check_input(x)
        h, stats = self.lift(x)
        h = self.lift_post(h)
        for block, short in zip(self.blocks, self.shortcuts):
            h = self.act(block(h) + short(h))
        return self._output(x, self.project(h, stats))


class UNet(EquiModel):
    """U-net with 2×2 max pooling and nearest upsampling (see module docstring).

    Parameters
    ----------
    t_in : int
    n_scalars : int
    widths : sequence of int
        Width (fields) of each level, finest first; ``depth = len(widths) - 1`` poolings, so
        H and W must be divisible by ``2**depth``.
    **kwargs
        Family switches of :class:`EquiModel`.

    Raises
    ------
    GridError
        (at call time) if H or W is not divisible by ``2**depth``.

    Examples
    --------
    >>> import torch
    >>> net = UNet(t_in=2, widths=(8, 16)).eval()
    >>> net(torch.randn(1, 2, 2, 16, 16)).shape
    torch.Size([1, 2, 16, 16])
    """

    def __init__(self, t_in: int, n_scalars: int = 0, widths=(16, 32, 64), **kwargs):
        super().__init__(t_in, n_scalars, **kwargs)
        widths = [int(w) for w in widths]
        self.depth = len(widths) - 1
        f = self.fam
        self.lift = self._lift(widths[0])
        self.lift_post = nn.Sequential(f.norm(widths[0]), f.act())
        self.enc = nn.ModuleList()
        prev = widths[0]
        for w in widths:
            self.enc.append(nn.Sequential(self._unit(prev, w), self._unit(w, w)))
            prev = w
        self.pool = nn.MaxPool2d(2)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.up_conv = nn.ModuleList()
        self.dec = nn.ModuleList()
        for i in range(self.depth - 1, -1, -1):
            self.up_conv.append(self._unit(widths[i + 1], widths[i]))
            self.dec.append(nn.Sequential(self._unit(2 * widths[i], widths[i]), self._unit(widths[i], widths[i])))
        self.project = self._project(widths[0])

    def check_input(self, x) -> None:
        super().check_input(x)
        n = 2 ** self.depth
        for name, size in zip(("H", "W"), x.shape[-2:]):
            if size % n or size < n:
                lo, hi = (size // n) * n, (size // n + 1) * n
                sugg = f"{lo} or {hi}" if lo >= n else f"{hi}"
                raise GridError(f"{name}={size} is not divisible by 2**depth={n} (U-net with "
                                f"{self.depth} poolings).", fix=f"crop or pad to {sugg}")

    def forward(self, x):
        self.check_input(x)
        h, stats = self.lift(x)
        h = self.lift_post(h)
        skips = []
        for i, enc in enumerate(self.enc):
            if i > 0:
                h = self.pool(h)
            h = enc(h)
            skips.append(h)
        skips.pop()
        for up_conv, dec in zip(self.up_conv, self.dec):
            h = up_conv(self.up(h))
            h = dec(torch.cat([h, skips.pop()], dim=1))
        return self._output(x, self.project(h, stats))
