"""Named models: ``create(name, ...)`` and ``available()``.

Each entry names a backbone, a layer family and the UM / Mag switches, with two size presets:
``"small"`` (CPU-friendly widths) and ``"paper"`` (the widths of Wang, Walters & Yu, ICLR 2021).
Widths of the rotation and scale families count *fields*; a field has ``group_order`` (rot) or
``n_scales`` (scale) channels.

A model's ``symmetries`` are not listed here: they are what its layer family
(:mod:`xequi.models.families`), its UM / Mag switches (``layers.SWITCH_SYMMETRIES``) and its
model class (``provides``) declare.
"""

from __future__ import annotations

from xequi.errors import ModelError, ParameterError
from xequi.models.backbones import ResNet, UNet
from xequi.models.families import FAMILIES
from xequi.models.layers import SWITCH_SYMMETRIES
from xequi.models.mirror import MirrorResNet, MirrorUNet

__all__ = ["create", "available", "REGISTRY"]

_RES_PAPER = (64, 64, 128, 128, 256, 256, 512, 512)
_UNET_PAPER = (64, 128, 256, 512)

#: name -> (backbone, family, um, mag, model class, symmetries, {size: widths}, extra defaults)
REGISTRY: dict[str, dict] = {}
#: the backbone classes by name
BACKBONES = {"resnet": ResNet, "unet": UNet}


def _symmetries(family: str, um: bool, mag: bool, cls, group_order: int = 4,
                n_scales: int = 3) -> tuple[str, ...]:
    """What the family, the switches and the model class declare, in that order."""
    kinds = FAMILIES[family].provides(group_order=group_order, n_scales=n_scales)
    for flag, on in (("um", um), ("mag", mag)):
        kinds += SWITCH_SYMMETRIES[flag] if on else ()
    return tuple(dict.fromkeys(kinds + tuple(cls.provides)))


def _register(name, backbone, family, um=False, mag=False, small=None, paper=None, cls=None,
              **extra):
    cls = BACKBONES[backbone] if cls is None else cls
    # claimed with the largest group the entry offers (C8: rotate too); create() narrows them
    sym = _symmetries(family, um, mag, cls, group_order=8)
    REGISTRY[name] = dict(backbone=backbone, family=family, um=um, mag=mag, cls=cls, symmetries=sym,
                          widths={"small": tuple(small), "paper": tuple(paper)}, extra=extra)


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
           velocity: bool = True, **overrides):
    """Build a registered model.

    Parameters
    ----------
    name : str
        One of :func:`available` (e.g. ``"resnet"``, ``"rot-unet"``, ``"um-mag-rot-resnet"``).
    t_in : int, default 4
        Number of input frames.
    n_scalars : int, default 0
        Number of scalar channels after (u, v).
    size : {"small", "paper"}
        Width preset.
    velocity : bool, default True
        ``False`` builds a scalar-only model: channels ``[*scalars]`` without (u, v), for a
        scalar field alone (e.g. temperature); needs ``n_scalars >= 1``. Not for the UM models.
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
        Invalid ``t_in``, ``n_scalars``, ``size`` or ``velocity``.

    Examples
    --------
    >>> net = create("um-resnet", t_in=2)
    >>> net.config["name"], net.symmetries
    ('um-resnet', ('translate', 'uniform_motion'))
    """
    if name not in REGISTRY:
        raise ModelError(f"unknown model {name!r}.", fix=f"use one of {available()}")
    if size not in ("small", "paper"):
        raise ParameterError(f"size must be 'small' or 'paper', got {size!r}.", fix="pass size='small'")
    for pname, val, lo in (("t_in", t_in, 1), ("n_scalars", n_scalars, 0)):
        if isinstance(val, bool) or not isinstance(val, int) or val < lo:
            raise ParameterError(f"{pname} must be an integer >= {lo}, got {val!r}.", fix=f"pass e.g. {pname}={max(lo, 2)}")
    if not isinstance(velocity, bool):
        raise ParameterError(f"velocity must be True or False, got {velocity!r}.",
                             fix="pass velocity=False for a scalar-only model")
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
    widths = tuple(int(w) for w in overrides.get("widths", entry["widths"][size]))
    if not widths or min(widths) < 1:
        raise ModelError(f"widths must be positive integers, got {widths}.", fix="pass e.g. widths=(8, 16)")
    if entry["backbone"] == "unet" and len(widths) < 2:
        raise ModelError("a U-net needs at least 2 widths (levels).", fix="pass e.g. widths=(8, 16)")
    k = int(overrides.get("kernel_size", 3))
    if k < 1 or k % 2 == 0:
        raise ModelError(f"kernel_size must be odd, got {k}.", fix="pass kernel_size=3")
    kwargs = dict(family=entry["family"], um=entry["um"], mag=entry["mag"], kernel_size=k,
                  velocity=velocity)
    config = dict(name=name, t_in=t_in, n_scalars=n_scalars, velocity=velocity, size=size,
                  widths=list(widths), kernel_size=k)
    for key, default in entry["extra"].items():
        val = int(overrides.get(key, default[size]))
        if key == "group_order" and (val < 1 or val % 4):
            raise ModelError(f"group_order must be a positive multiple of 4 (exact 90-degree rotations), got {val}.",
                             fix="pass group_order=4 or 8")
        if key == "n_scales" and val < 1:
            raise ModelError(f"n_scales must be >= 1, got {val}.", fix="pass n_scales=3")
        kwargs[key] = val
        config[key] = val
    cls = entry["cls"]
    if entry["family"] == "rot":
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
