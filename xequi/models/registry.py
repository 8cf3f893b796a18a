"""Named models: ``create(name, ...)``, ``available()``, ``parameter_count`` and ``size_table``.

Each entry names a backbone, a layer family and the UM / Mag switches, with four size presets
(:data:`SIZES`):

* ``"small"`` (CPU-friendly widths) and ``"paper"`` (the widths of Wang, Walters & Yu, ICLR
  2021): *equal channels*, the channel counts of the plain backbone (except the paper's C8
  Rot-ResNet, 128..1536 channels);
* ``"small-params"`` and ``"paper-params"``: *equal parameters*, widths chosen per model so that
  its trainable parameter count (``t_in=4``, velocity only) is within ±10% of the plain backbone
  at ``"small"`` / ``"paper"`` (the paper compared models at similar parameter counts). They were
  computed once (``match_widths`` in ``tests/test_models_registry.py``) and are hard-coded
  below; the tests recount them.

Widths of the rotation and scale families count *fields*; a field has ``group_order`` (rot) or
``n_scales`` (scale) channels, so at equal channels an equivariant model has fewer parameters.

Every model predicts the increment by default (``residual=True``: the output is the last input
frame plus the network's increment, see :class:`~xequi.models.backbones.EquiModel`);
``residual=False`` builds the next-frame models of before, bit for bit.

A model's ``symmetries`` are not listed here: they are what its layer family
(:mod:`xequi.models.families`), its UM / Mag switches (``layers.SWITCH_SYMMETRIES``) and its
model class (``provides``) declare.
"""

from __future__ import annotations

from xequi.errors import ModelError, ParameterError
from xequi.models.backbones import ResNet, UNet
from xequi.models.families import FAMILIES
from xequi.models.fno import FNO
from xequi.models.layers import SWITCH_SYMMETRIES
from xequi.models.mirror import MirrorResNet, MirrorUNet
from xequi.models.relaxed import RelaxedResNet, RelaxedUNet

__all__ = ["create", "available", "REGISTRY", "SIZES", "parameter_count", "size_table"]

#: the size presets: equal channels ("small", "paper") and equal parameters ("...-params")
SIZES = ("small", "paper", "small-params", "paper-params")
#: the preset whose plain backbone an equal-parameter preset matches, and whose group order /
#: number of scales it uses
BASE_SIZE = {"small": "small", "paper": "paper", "small-params": "small", "paper-params": "paper"}
#: settings at which the equal-parameter presets are matched (parameters depend on t_in through
#: the lifting conv only)
MATCH_SETTINGS = dict(t_in=4, n_scalars=0, velocity=True)

_RES_PAPER = (64, 64, 128, 128, 256, 256, 512, 512)
_UNET_PAPER = (64, 128, 256, 512)

#: name -> (backbone, family, um, mag, model class, symmetries, {size: widths}, extra defaults)
REGISTRY: dict[str, dict] = {}
#: the backbone classes by name
BACKBONES = {"resnet": ResNet, "unet": UNet, "fno": FNO}


def _symmetries(family: str, um: bool, mag: bool, cls, group_order: int = 4,
                n_scales: int = 3) -> tuple[str, ...]:
    """What the family, the switches and the model class declare, in that order."""
    kinds = FAMILIES[family].provides(group_order=group_order, n_scales=n_scales)
    for flag, on in (("um", um), ("mag", mag)):
        kinds += SWITCH_SYMMETRIES[flag] if on else ()
    return tuple(dict.fromkeys(kinds + tuple(cls.provides)))


# Equal-parameter widths (fields), computed once with match_widths of
# tests/test_models_registry.py (an exact quadratic count fitted from small builds, then a search
# over one scale factor on the equal-channel widths) at t_in=4, velocity only. Plain-family
# models keep the equal-channel widths (the UM / Mag switches and the mirror average add no
# parameters); um-mag-rot-* and mirror-rot-* take the rot-* widths. Trainable parameters,
# model / plain backbone (ratio):
#   small-params: rot-resnet 44,990 / 44,146 (1.019); rot-unet 135,030 / 133,554 (1.011);
#                 scale-resnet 45,064 / 44,146 (1.021); scale-unet 135,691 / 133,554 (1.016)
#   paper-params: rot-resnet (C8) 11,182,548 / 11,179,202 (1.000); rot-unet (C8) 8,604,368 /
#                 8,601,794 (1.000); scale-resnet 11,218,447 / 11,179,202 (1.004);
#                 scale-unet 8,615,351 / 8,601,794 (1.002)
_PARAM_WIDTHS = {
    "rot-resnet": {"small-params": (10, 10, 20, 20), "paper-params": (20, 20, 41, 41, 81, 81, 244, 244)},
    "rot-unet": {"small-params": (10, 20, 39), "paper-params": (28, 55, 111, 222)},
    "scale-resnet": {"small-params": (9, 9, 19, 19), "paper-params": (36, 36, 73, 73, 146, 146, 298, 298)},
    "scale-unet": {"small-params": (9, 19, 37), "paper-params": (37, 73, 147, 299)},
    # relaxed C4 (relax=1; psi and relaxed_weights counted, about 2.4x the rot convs): small
    # 45,334 / 44,146 (1.027), 128,718 / 133,554 (0.964); paper 11,189,403 / 11,179,202
    # (1.001), 8,597,391 / 8,601,794 (1.000) (resnet / unet)
    "relaxed-rot-resnet": {"small-params": (6, 6, 13, 13), "paper-params": (25, 25, 50, 50, 99, 99, 198, 198)},
    "relaxed-rot-unet": {"small-params": (6, 12, 25), "paper-params": (25, 50, 99, 198)},
    # C4 only; 4 fields² = channels² of the plain fno (see xequi.models.fno)
    "rot-fno": {"small-params": (6, 6, 6, 6), "paper-params": (10, 10, 10, 10)},
}


def _register(name, backbone, family, um=False, mag=False, small=None, paper=None, cls=None,
              **extra):
    cls = BACKBONES[backbone] if cls is None else cls
    # claimed with the largest group the entry offers (C8: rotate too); create() narrows them
    sym = _symmetries(family, um, mag, cls, group_order=max(extra.get("group_order", {8: 8}).values()))
    widths = {"small": tuple(small), "paper": tuple(paper)}
    if family == "plain":  # the switches and the mirror average add no parameters
        widths.update({"small-params": widths["small"], "paper-params": widths["paper"]})
    else:  # the rot / scale widths of the model without switches or mirror averaging
        key = f"{family}-{backbone}"
        widths.update(_PARAM_WIDTHS[key])
    REGISTRY[name] = dict(backbone=backbone, family=family, um=um, mag=mag, cls=cls, symmetries=sym,
                          widths=widths, extra=extra)


for _bb, _small, _paper in (("resnet", (16, 16, 32, 32), _RES_PAPER), ("unet", (16, 32, 64), _UNET_PAPER)):
    _register(_bb, _bb, "plain", small=_small, paper=_paper)
    _register(f"um-{_bb}", _bb, "plain", um=True, small=_small, paper=_paper)
    _register(f"mag-{_bb}", _bb, "plain", mag=True, small=_small, paper=_paper)
_register("rot-resnet", "resnet", "rot", small=(4, 4, 8, 8), paper=(16, 16, 32, 32, 64, 64, 192, 192),
          group_order={"small": 4, "paper": 8})
_register("rot-unet", "unet", "rot", small=(4, 8, 16), paper=(8, 16, 32, 64),
          group_order={"small": 4, "paper": 8})
_register("scale-resnet", "resnet", "scale", small=(6, 6, 12, 12), paper=(22, 22, 44, 44, 88, 88, 180, 180),
          n_scales={"small": 3, "paper": 3})
_register("scale-unet", "unet", "scale", small=(6, 12, 24), paper=(27, 54, 108, 220),
          n_scales={"small": 3, "paper": 3})
_register("um-mag-rot-resnet", "resnet", "rot", um=True, mag=True, small=(4, 4, 8, 8),
          paper=(16, 16, 32, 32, 64, 64, 192, 192), group_order={"small": 4, "paper": 8})
_register("um-mag-rot-unet", "unet", "rot", um=True, mag=True, small=(4, 8, 16), paper=(8, 16, 32, 64),
          group_order={"small": 4, "paper": 8})
_register("mirror-resnet", "resnet", "plain", cls=MirrorResNet, small=(16, 16, 32, 32), paper=_RES_PAPER)
_register("mirror-unet", "unet", "plain", cls=MirrorUNet, small=(16, 32, 64), paper=_UNET_PAPER)
_register("mirror-rot-resnet", "resnet", "rot", cls=MirrorResNet, small=(4, 4, 8, 8),
          paper=(16, 16, 32, 32, 64, 64, 192, 192), group_order={"small": 4, "paper": 8})
_register("mirror-rot-unet", "unet", "rot", cls=MirrorUNet, small=(4, 8, 16), paper=(8, 16, 32, 64),
          group_order={"small": 4, "paper": 8})
_register("um-mag-mirror-rot-resnet", "resnet", "rot", um=True, mag=True, cls=MirrorResNet,
          small=(4, 4, 8, 8), paper=(16, 16, 32, 32, 64, 64, 192, 192), group_order={"small": 4, "paper": 8})
# relaxed (approximately equivariant) C4 models, xequi.models.relaxed: equal channels at both sizes
_RELAXED = dict(group_order={"small": 4, "paper": 4}, relax={"small": 1, "paper": 1},
                penalty={"small": 1e-3, "paper": 1e-3})
for _bb, _cls, _small, _paper in (("resnet", RelaxedResNet, (4, 4, 8, 8), (16, 16, 32, 32, 64, 64, 128, 128)),
                                  ("unet", RelaxedUNet, (4, 8, 16), (16, 32, 64, 128))):
    _register(f"relaxed-rot-{_bb}", _bb, "relaxed-rot", cls=_cls, small=_small, paper=_paper, **_RELAXED)
    _register(f"um-mag-relaxed-rot-{_bb}", _bb, "relaxed-rot", um=True, mag=True, cls=_cls, small=_small,
              paper=_paper, **_RELAXED)
# Fourier neural operators (xequi.models.fno): small ~ the plain resnet's parameters; paper: the
# FNO-2D of Li et al. (ICLR 2021), width 20, 12 modes, 4 layers; rot: C4 only
_FNO = dict(modes={"small": 4, "paper": 12}, padding={"small": 8, "paper": 8})
for _name, _um, _mag in (("fno", False, False), ("um-fno", True, False), ("mag-fno", False, True)):
    _register(_name, "fno", "plain", um=_um, mag=_mag, small=(12,) * 4, paper=(20,) * 4, **_FNO)
for _name, _um in (("rot-fno", False), ("um-mag-rot-fno", True)):
    _register(_name, "fno", "rot", um=_um, mag=_um, small=(3,) * 4, paper=(5,) * 4,
              group_order={"small": 4, "paper": 4}, **_FNO)


def _clear_e2cnn_cache() -> None:
    try:
        from e2cnn.nn.modules.r2_conv import basisexpansion_singleblock as _bs
    except ImportError:  # pragma: no cover - layout of another e2cnn version
        return
    getattr(_bs, "_stored_filters", {}).clear()


def available() -> list[str]:
    """Names accepted by :func:`create`.

    Examples
    --------
    >>> "rot-unet" in available()
    True
    """
    return list(REGISTRY)


def create(name: str, t_in: int = 4, n_scalars: int = 0, size: str = "small",
           velocity: bool = True, residual: bool = True, **overrides):
    """Build a registered model.

    Parameters
    ----------
    name : str
        One of :func:`available` (e.g. ``"resnet"``, ``"rot-unet"``, ``"um-mag-rot-resnet"``).
    t_in : int, default 4
        Number of input frames.
    n_scalars : int, default 0
        Number of scalar channels after (u, v).
    size : {"small", "paper", "small-params", "paper-params"}
        Width preset (:data:`SIZES`): equal channels (``"small"``, ``"paper"``) or equal
        parameters, within ±10% of the plain backbone (``"small-params"``, ``"paper-params"``);
        see :func:`size_table`.
    velocity : bool, default True
        ``False`` builds a scalar-only model: channels ``[*scalars]`` without (u, v), for a
        scalar field alone (e.g. temperature); needs ``n_scalars >= 1``. Not for the UM models.
    residual : bool, default True
        Increment prediction: the output is the last input frame plus the network's increment
        (every channel; every symmetry kept exactly; the untrained model forecasts close to
        persistence). ``False``: the network predicts the next frame directly (the models of
        checkpoints written before increment prediction, which have no ``residual`` key).
    **overrides
        ``widths`` (sequence of int, fields per block / level), ``group_order`` (rot: N of C_N),
        ``n_scales`` (scale), ``kernel_size`` (odd; the UM / Mag block size).

    Returns
    -------
    torch.nn.Module
        With ``.config`` (``create(**model.config)`` rebuilds it) and ``.symmetries``.

    Raises
    ------
    ModelError
        Unknown name (the message lists the valid ones) or invalid override.
    ParameterError
        Invalid ``t_in``, ``n_scalars``, ``size``, ``velocity`` or ``residual``.

    Examples
    --------
    >>> net = create("um-resnet", t_in=2)
    >>> net.config["name"], net.config["residual"], net.symmetries
    ('um-resnet', True, ('translate', 'uniform_motion'))
    """
    entry = _check_arguments(name, t_in, n_scalars, size, velocity, residual, overrides)
    widths = tuple(int(w) for w in overrides.get("widths", entry["widths"][size]))
    if not widths or min(widths) < 1:
        raise ModelError(f"widths must be positive integers, got {widths}.", fix="pass e.g. widths=(8, 16)")
    if entry["backbone"] == "unet" and len(widths) < 2:
        raise ModelError("a U-net needs at least 2 widths (levels).", fix="pass e.g. widths=(8, 16)")
    k = int(overrides.get("kernel_size", 3))
    if k < 1 or k % 2 == 0:
        raise ModelError(f"kernel_size must be odd, got {k}.", fix="pass kernel_size=3")
    kwargs = dict(family=entry["family"], um=entry["um"], mag=entry["mag"], kernel_size=k,
                  velocity=velocity, residual=residual)
    config = dict(name=name, t_in=t_in, n_scalars=n_scalars, velocity=velocity, size=size,
                  widths=list(widths), kernel_size=k, residual=residual)
    for key, default in entry["extra"].items():
        val = overrides.get(key, default[BASE_SIZE[size]])
        val = float(val) if isinstance(default[BASE_SIZE[size]], float) else int(val)  # e.g. penalty
        if key == "group_order" and (val < 1 or val % 4):
            raise ModelError(f"group_order must be a positive multiple of 4 (exact 90-degree rotations), got {val}.",
                             fix="pass group_order=4 or 8")
        if key == "n_scales" and val < 1:
            raise ModelError(f"n_scales must be >= 1, got {val}.", fix="pass n_scales=3")
        kwargs[key] = val
        config[key] = val
    cls = entry["cls"]
    if entry["family"] in ("rot", "relaxed-rot"):
        # e2cnn caches basis-expansion modules in a global dict and shares them between every
        # network built afterwards: moving one model to a GPU would move another's buffers.
        # Emptying the cache around the build gives this model its own modules.
        _clear_e2cnn_cache()
        try:
            model = cls(t_in, n_scalars, widths=widths, **kwargs)
        finally:
            _clear_e2cnn_cache()
    else:
        model = cls(t_in, n_scalars, widths=widths, **kwargs)
    model.config = config
    model.symmetries = _symmetries(entry["family"], entry["um"], entry["mag"], cls,
                                   group_order=kwargs.get("group_order", 4),
                                   n_scales=kwargs.get("n_scales", 3))
    return model


def _check_arguments(name, t_in, n_scalars, size, velocity, residual, overrides) -> dict:
    """Validate the arguments of :func:`create`; return the registry entry."""
    if name not in REGISTRY:
        raise ModelError(f"unknown model {name!r}.", fix=f"use one of {available()}")
    if size not in SIZES:
        raise ParameterError(f"size must be one of {list(SIZES)}, got {size!r}.",
                             fix="pass size='small' (equal channels) or 'small-params' (equal parameters)")
    for pname, val, lo in (("t_in", t_in, 1), ("n_scalars", n_scalars, 0)):
        if isinstance(val, bool) or not isinstance(val, int) or val < lo:
            raise ParameterError(f"{pname} must be an integer >= {lo}, got {val!r}.", fix=f"pass e.g. {pname}={max(lo, 2)}")
    for pname, val, fix in (("velocity", velocity, "pass velocity=False for a scalar-only model"),
                            ("residual", residual, "pass residual=False to predict the next "
                                                   "frame directly, True for the increment")):
        if not isinstance(val, bool):
            raise ParameterError(f"{pname} must be True or False, got {val!r}.", fix=fix)
    if not velocity and n_scalars < 1:
        raise ParameterError("a scalar-only model (velocity=False) needs n_scalars >= 1.",
                             fix="pass n_scalars=1 for one scalar field")
    entry = REGISTRY[name]
    if not velocity:
        _check_scalar_only(name, entry)
    allowed = {"widths", "kernel_size"} | set(entry["extra"])
    unknown = set(overrides) - allowed
    if unknown:
        raise ModelError(f"model {name!r} does not take {sorted(unknown)}.", fix=f"valid overrides: {sorted(allowed)}")
    return entry


def _needs_velocity(entry) -> list:
    from xequi import symmetry

    return [g for g in symmetry.groups(entry["symmetries"]) if g.needs_velocity]


def _check_scalar_only(name: str, entry) -> None:
    """A scalar-only model cannot claim a symmetry that acts on the velocity (registry labels)."""
    needs = _needs_velocity(entry)
    if needs:
        g = needs[0]
        others = [n for n, e in REGISTRY.items()
                  if not _needs_velocity(e) and e["backbone"] == entry["backbone"]]
        raise ModelError(f"{name!r} is {g.adjective} equivariant ({g.action} acts on the "
                         "velocity): it cannot be built without velocity channels.",
                         fix=f"use a model without {g.label()} for scalar fields: {others}")


def parameter_count(name: str, size: str = "small", t_in: int = 4, n_scalars: int = 0,
                    velocity: bool = True, **overrides) -> int:
    """Trainable parameters of a registered model (built on the CPU and counted).

    Parameters
    ----------
    name : str
        One of :func:`available`.
    size : str, default "small"
        One of :data:`SIZES`.
    t_in, n_scalars, velocity, **overrides
        As in :func:`create` (the count does not depend on ``residual``).

    Returns
    -------
    int
        ``sum(p.numel() for p in model.parameters() if p.requires_grad)``.

    Raises
    ------
    ModelError, ParameterError
        As :func:`create`.

    Notes
    -----
    The paper-size C8 models take minutes to build on a CPU (e2cnn computes its kernel bases).

    Examples
    --------
    >>> parameter_count("resnet")
    44146
    >>> abs(parameter_count("rot-resnet", size="small-params") / 44146 - 1) < 0.1
    True
    """
    model = create(name, t_in=t_in, n_scalars=n_scalars, size=size, velocity=velocity, **overrides)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _group_size(name: str, size: str) -> int:
    entry = REGISTRY[name]
    extra = {k: v[BASE_SIZE[size]] for k, v in entry["extra"].items()}
    return int(extra.get("group_order", extra.get("n_scales", 1)))


def size_table(names=None, sizes=("small", "small-params"), t_in: int = 4, rows: bool = False):
    """Widths, channels and parameters of registered models at several size presets.

    Benchmark tables can print both comparisons: *equal channels* (``"small"``, ``"paper"``)
    and *equal parameters* (``"small-params"``, ``"paper-params"``).

    Parameters
    ----------
    names : sequence of str, optional
        Models (default: every registered one).
    sizes : sequence of str, default ("small", "small-params")
        Presets of :data:`SIZES` (the paper sizes take minutes for the C8 models).
    t_in : int, default 4
        Input frames (velocity only, no scalars).
    rows : bool, default False
        Return the rows (dicts with ``name``, ``size``, ``widths``, ``channels``, ``parameters``,
        ``ratio``: parameters over those of the plain backbone at the same preset) instead of
        the text.

    Returns
    -------
    str or list of dict
        A Markdown table (``print`` it), or the rows.

    Raises
    ------
    ModelError, ParameterError
        An unknown name or size.

    Examples
    --------
    >>> print(size_table(["resnet", "rot-resnet"]))  # doctest: +NORMALIZE_WHITESPACE
    | model | size | widths (fields) | channels | parameters | vs plain |
    |---|---|---|---|---|---|
    | `resnet` | small | 16-16-32-32 | 16-16-32-32 | 44,146 | 1.00 |
    | `resnet` | small-params | 16-16-32-32 | 16-16-32-32 | 44,146 | 1.00 |
    | `rot-resnet` | small | 4-4-8-8 | 16-16-32-32 | 7,436 | 0.17 |
    | `rot-resnet` | small-params | 10-10-20-20 | 40-40-80-80 | 44,990 | 1.02 |
    """
    names = available() if names is None else list(names)
    out, plain = [], {}
    for name in names:
        for size in sizes:
            model = create(name, t_in=t_in, size=size)
            n = sum(p.numel() for p in model.parameters() if p.requires_grad)
            backbone = REGISTRY[name]["backbone"]
            key = (backbone, BASE_SIZE[size])
            if key not in plain:
                plain[key] = n if name == backbone and size == BASE_SIZE[size] else \
                    parameter_count(backbone, size=BASE_SIZE[size], t_in=t_in)
            widths = model.config["widths"]
            g = _group_size(name, size)
            out.append(dict(name=name, size=size, widths=tuple(widths),
                            channels=tuple(w * g for w in widths), parameters=n,
                            ratio=n / plain[key]))
    if rows:
        return out
    lines = ["| model | size | widths (fields) | channels | parameters | vs plain |",
             "|---|---|---|---|---|---|"]
    for r in out:
        lines.append(f"| `{r['name']}` | {r['size']} | {'-'.join(map(str, r['widths']))} | "
                     f"{'-'.join(map(str, r['channels']))} | {r['parameters']:,} | {r['ratio']:.2f} |")
    return "\n".join(lines)
