"""Model checkpoints: safetensors weights plus a JSON model card, never a pickle.

File format (``FORMAT_VERSION = 1``)
------------------------------------
A checkpoint is **one file**, conventionally named ``<name>.xequi``, in the `safetensors
<https://huggingface.co/docs/safetensors>`_ format:

* the tensors are the network's ``state_dict`` (taken in training mode, so e2cnn layers store
  their learnable weights, not the cached expanded filters), in float32 as trained;
* the safetensors metadata holds one entry, ``"xequi.model_card"``: the model card as JSON.

Loading reads a small JSON header and raw tensor bytes; nothing is unpickled, so a checkpoint
from an untrusted source cannot run code. Pickle files (``torch.save``: ``.pt``, ``.pth``,
``.ckpt``) are refused by content, whatever their name. The card can be read without building
the model (:func:`read_card`), e.g. ``python -c "import xequi.checkpoint as c;
print(c.read_card('m.xequi'))"``.

The model card
--------------
``format``, ``format_version``
    ``"xequi-model-card"`` and the integer version of this layout.
``name``, ``architecture``
    The registered model name and the model's ``config`` (``xequi.models.create(**architecture)``
    rebuilds the network).
``symmetries``, ``symmetry_group``
    The symmetry kinds the architecture is built to respect (``model.symmetries``) and a readable
    name of the group (e.g. ``"C8 rotations (exact for multiples of 90 degrees) x translations"``).
``t_in``
    Number of input frames.
``velocity``
    Whether channels 0 and 1 are the velocity (u, v); ``false`` for a scalar-only model
    (``velocity=False``). Cards without the key are velocity models.
``channels``
    One entry per channel in model-frame order ``[u, v, *scalars]`` (``[*scalars]`` when
    ``velocity`` is false): ``name``, ``standard_name``, ``units`` (the units the network's inputs
    and outputs are in).
``grid``
    ``dx``, ``dy``, ``dt`` as pint quantity strings (``"5000 m"``, ``"0.015625 dimensionless"``).
``normalization``
    How the training data were scaled *outside* the network (see :mod:`xequi.train`): per-channel
    ``scale`` and ``offset`` (``x_net = (x - offset) / scale``), the single ``velocity_scale``,
    and what it was computed on (the training split only).
``training``
    Description of the data and the hyperparameters.
``metrics``
    Per-epoch ``history`` (train / validation loss, learning rate), ``best_epoch`` and
    ``best_val_loss``; the weights stored are those of ``best_epoch``.
``xequi_version``, ``created``
    Who wrote it, when (UTC, ISO 8601).
``weights_sha256``
    ``"sha256:<hex>"`` of the weights (tensor names, dtypes, shapes and bytes, in name order;
    independent of the card). Checked on load; forecasts record it as provenance.

Shipped weights
---------------
``load_model("rot-resnet")`` looks for ``xequi/pretrained/rot-resnet.xequi`` inside the package
(:func:`pretrained_path`, :func:`available_pretrained`); those files are produced by
``scripts/train_pretrained.py``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import struct
from collections.abc import Mapping
from pathlib import Path

import pint
import torch

from xequi import models
from xequi._version import __version__
from xequi.errors import CheckpointError, ModelError, ParameterError
from xequi.io import atomic_path
from xequi.models.card import CARD_FORMAT, ModelCard, jsonable, loads, quantity_to_str
from xequi.models.normalized import NormalizedModel

__all__ = [
    "FORMAT_VERSION",
    "SUFFIX",
    "PRETRAINED_DIR",
    "save_model",
    "load_model",
    "read_card",
    "weights_digest",
    "pretrained_path",
    "available_pretrained",
    "quantity_to_str",
    "card_quantity",
]

#: Version of the checkpoint layout and card schema this xequi writes and reads.
FORMAT_VERSION = 1
#: Conventional file suffix of an xequi checkpoint.
SUFFIX = ".xequi"
#: Where shipped pretrained checkpoints live inside the package.
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"

_CARD_KEY = "xequi.model_card"
_PICKLE_SUFFIXES = {".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".tar"}
_MAX_HEADER = 100_000_000  # safetensors' own limit on the JSON header


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------
def card_quantity(card: Mapping, key: str):
    """Parse the grid entry ``key`` (``"dx"``, ``"dy"``, ``"dt"``) of a model card with pint.

    Parameters
    ----------
    card : dict
        A model card (``model.card`` or :func:`read_card`).
    key : str

    Returns
    -------
    pint.Quantity or None
        ``None`` when the card does not record it.

    Examples
    --------
    >>> str(card_quantity({"grid": {"dx": "5000 m"}}, "dx").to("km"))
    '5.0 kilometer'
    """
    text = (card.get("grid") or {}).get(key)
    if text is None:
        return None
    # Deliberately pint's *application* registry, not xequi.units.registry(): this quantity is
    # handed to the user, to be compared with quantities they make with pint's default
    # (application) registry. Once xequi.units.registry() has loaded cf-xarray's units (any
    # forecast or unit conversion does), that registry IS the application registry and the two
    # agree; before that, only the application registry combines with the user's quantities.
    return pint.get_application_registry().Quantity(text)


def _tensors_for_saving(module) -> dict:
    """The state dict in training mode (e2cnn drops its cached filters there), CPU, contiguous."""
    was_training = module.training
    if not was_training:
        module.train()
    try:
        state = module.state_dict()
    finally:
        if not was_training:
            module.eval()
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}


def weights_digest(tensors: Mapping) -> str:
    """Content digest of a mapping of tensors: ``"sha256:<hex>"``.

    Hashes, in name order, each tensor's name, dtype, shape and raw bytes, so the digest does
    not depend on the file layout or on the model card.

    Parameters
    ----------
    tensors : mapping of str to torch.Tensor
        E.g. a ``state_dict``.

    Returns
    -------
    str

    Examples
    --------
    >>> import torch
    >>> d = weights_digest({"w": torch.zeros(2)})
    >>> d.startswith("sha256:"), d == weights_digest({"w": torch.zeros(2)})
    (True, True)
    >>> d == weights_digest({"w": torch.ones(2)})
    False
    """
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        if t.numel():
            h.update(t.view(-1).view(torch.uint8).numpy().tobytes())
    return "sha256:" + h.hexdigest()


#: kept for code that imported it from here; the one home is :func:`xequi.models.card.jsonable`
_jsonable = jsonable


def _group_name(config: Mapping, symmetries) -> str:
    """A readable name of the symmetry group the architecture claims: the registry's labels
    (:mod:`xequi.symmetry`) of the claimed kinds, in registry order; translations always."""
    from xequi import symmetry

    kinds = set(symmetries) | {"translate"}
    if config.get("group_order") and "relax" not in config:  # relaxed models leave C4
        kinds.add("rot90")
    labels = (g.label(config) for g in symmetry.groups(kinds))
    return " x ".join(dict.fromkeys(label for label in labels if label))


def _inner(model):
    """The bare network of a (possibly normalization-wrapped) model."""
    return model.model if isinstance(model, NormalizedModel) else model


def _base_card(model) -> ModelCard:
    """The model's card (``model.card``) with what the model itself says: architecture,
    symmetries, T_in, velocity, and the normalization of a :class:`NormalizedModel`."""
    net = _inner(model)
    config = getattr(net, "config", None)
    if not isinstance(config, Mapping):
        raise ModelError(
            f"cannot save a {type(net).__name__}: it has no `config` dict to rebuild it from.",
            fix="save models made by xequi.models.create (or give your module a JSON-serialisable "
                "`config` that xequi.models.create(**config) accepts)",
        )
    config = jsonable(dict(config))
    own = dict(getattr(model, "card", None) or {})
    symmetries = list(getattr(net, "symmetries", ()) or ())
    card = ModelCard.from_dict({**own, "architecture": config}).replace(
        name=config.get("name"),
        symmetries=tuple(symmetries),
        symmetry_group=_group_name(config, symmetries),
        t_in=config.get("t_in"),
        velocity=bool(config.get("velocity", own.get("velocity", True))),
    )
    if isinstance(model, NormalizedModel):
        card = card.replace(normalization={**card.normalization, **model.normalization_card()})
    return card


# --------------------------------------------------------------------------------------------
# saving
# --------------------------------------------------------------------------------------------
def save_model(model, path: str | os.PathLike, card: Mapping | None = None, *,
               overwrite: bool = False) -> Path:
    """Save a model's weights and model card atomically to one ``.xequi`` (safetensors) file.

    Parameters
    ----------
    model : torch.nn.Module
        A model from :func:`xequi.models.create`, or the normalization wrapper returned by
        :func:`xequi.train.fit` / :func:`load_model`. It must have a ``config`` dict.
    path : str or path-like
        Target file; ``.xequi`` is appended when the name has no suffix.
    card : dict, optional
        Card entries to record (``channels``, ``grid``, ``normalization``, ``training``,
        ``metrics``, ...), merged over the model's own ``card`` attribute. The entries xequi
        derives itself (``format``, ``format_version``, ``architecture``, ``symmetries``,
        ``xequi_version``, ``weights_sha256``) cannot be overridden.
    overwrite : bool, default False
        Replace an existing file (the old file stays intact until the new one is complete).

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    ParameterError
        If the file exists and ``overwrite`` is False, or the directory cannot be written.
    ModelError
        If the model has no ``config`` to rebuild it from.

    Examples
    --------
    >>> import tempfile
    >>> from xequi import models
    >>> net = models.create("resnet", t_in=2, widths=(4,))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = save_model(net, Path(d) / "tiny")
    ...     p.name, read_card(p)["format_version"], read_card(p)["architecture"]["name"]
    ('tiny.xequi', 1, 'resnet')
    """
    from safetensors.torch import save_file  # the file format's own writer, needed here only

    target = Path(path)
    if not target.suffix:
        target = target.with_suffix(SUFFIX)
    if target.exists() and not overwrite:
        raise ParameterError(
            f"checkpoint {str(target)!r} already exists.",
            fix="choose another path, or pass overwrite=True",
        )
    base = _base_card(model)
    tensors = _tensors_for_saving(_inner(model))
    full = ModelCard.from_dict({**base.to_dict(), **jsonable(dict(card or {}))}).replace(
        format=CARD_FORMAT,
        format_version=FORMAT_VERSION,
        name=base.name,
        architecture=base.architecture,
        symmetries=base.symmetries,
        symmetry_group=base.symmetry_group,
        t_in=base.t_in,
        xequi_version=__version__,
        created=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        weights_sha256=weights_digest(tensors),
    )
    if base.normalization:
        full = full.replace(normalization=base.normalization)

    parent = target.parent if str(target.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ParameterError(f"cannot create the directory {str(parent)!r}: {err.strerror}.",
                             fix="choose a path in a directory you can write to") from None
    try:
        with atomic_path(target) as tmp:  # readers see the old or the new file
            save_file(tensors, str(tmp), metadata={_CARD_KEY: full.to_json()})
    except PermissionError as err:
        raise ParameterError(f"cannot write the checkpoint {str(target)!r}: {err.strerror}.",
                             fix="choose a path in a directory you can write to") from None
    return target


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------
def _refuse_pickle(path: Path, why: str) -> CheckpointError:
    return CheckpointError(
        f"{str(path)!r} {why}. xequi never unpickles checkpoints: unpickling can run arbitrary "
        "code from the file.",
        fix="load xequi checkpoints (.xequi, safetensors with a model card). To convert a torch "
            "checkpoint you trust, load it yourself with torch.load(path, weights_only=True), put "
            "the state dict into a model from xequi.models.create, and call "
            "xequi.checkpoint.save_model",
    )


def _check_file(path: Path) -> None:
    """Refuse pickles and obviously broken files before handing the file to safetensors."""
    if not path.exists():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist.",
                              fix="check the path, or pass a registered model name for shipped "
                                  "weights (see xequi.checkpoint.available_pretrained())")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {str(path)!r} is a directory, not a .xequi file.",
                              fix="pass the .xequi file inside it")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(9)
    # safetensors: an 8-byte little-endian header length, then the JSON header. Its first byte can
    # be 0x80 (a header of 0x..80 bytes), so the pickle test must not look at that byte alone.
    looks_safetensors = len(head) == 9 and head[8:9] == b"{" and \
        8 < int.from_bytes(head[:8], "little") + 8 <= size
    if head[:4] == b"PK\x03\x04":
        raise _refuse_pickle(path, "is a zip archive (torch.save format, pickle inside)")
    if path.suffix.lower() in _PICKLE_SUFFIXES or (
            not looks_safetensors and len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5):
        raise _refuse_pickle(path, "looks like a pickle / torch.save file")
    if len(head) < 8:
        raise CheckpointError(f"checkpoint {str(path)!r} is truncated or corrupt ({size} bytes).",
                              fix="re-download or re-save the checkpoint")
    (n,) = struct.unpack("<Q", head[:8])
    if n > _MAX_HEADER or n + 8 > size:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is truncated or corrupt (header of {n} bytes in a file of "
            f"{size} bytes); it is not a valid safetensors file.",
            fix="re-download or re-save the checkpoint",
        )


def _corrupt(path: Path, err: BaseException) -> CheckpointError:
    return CheckpointError(f"checkpoint {str(path)!r} is truncated or corrupt: {err}.",
                           fix="re-download or re-save the checkpoint")


def _check_version(card: Mapping, path: Path) -> None:
    version = card.get("format_version")
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        fix = (f"upgrade xequi (pip install -U xequi) to read format version {version}" if newer else
               f"load it with the xequi version that wrote it ({card.get('xequi_version', 'unknown')}) "
               f"and re-save it with this one, or retrain")
        raise CheckpointError(
            f"checkpoint {str(path)!r} has format version {version!r}; xequi {__version__} reads "
            f"format version {FORMAT_VERSION}.",
            fix=fix,
        )


def _read_card_only(path: Path) -> dict:
    from safetensors import safe_open  # the file format's own reader

    _check_file(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as err:  # safetensors raises its own error types
        raise _corrupt(path, err) from None
    if _CARD_KEY not in meta:
        raise CheckpointError(
            f"{str(path)!r} is a safetensors file without an xequi model card.",
            fix="save models with xequi.checkpoint.save_model (it writes the card)",
        )
    try:
        card = loads(meta[_CARD_KEY])
    except ModelError as err:  # JSON, but not an object
        raise _corrupt(path, ValueError(err.problem)) from None
    except ValueError as err:  # not JSON
        raise _corrupt(path, err) from None
    _check_version(card, path)
    return card


def read_card(path: str | os.PathLike) -> dict:
    """Read the model card of a checkpoint without loading the weights or building the model.

    Parameters
    ----------
    path : str or path-like
        A ``.xequi`` file, or a registered name with shipped weights.

    Returns
    -------
    dict

    Raises
    ------
    CheckpointError
        Missing, corrupt, pickle, or another format version.
    ModelError
        A name without shipped weights.

    Examples
    --------
    >>> import tempfile
    >>> from xequi import models
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = save_model(models.create("resnet", t_in=2, widths=(4,)), Path(d) / "m")
    ...     card = read_card(p)
    >>> card["format"], card["t_in"]
    ('xequi-model-card', 2)
    """
    return _read_card_only(_resolve(path))


def pretrained_path(name: str) -> Path:
    """Path of the shipped pretrained checkpoint of model ``name``.

    Parameters
    ----------
    name : str
        A registered model name (``xequi.models.available()``), e.g. ``"rot-resnet"``.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ModelError
        If no weights are shipped for ``name``; the message lists the names that have some.

    Examples
    --------
    >>> try:
    ...     pretrained_path("no-such-model")
    ... except ModelError as err:
    ...     print(str(err).splitlines()[0][:45])
    no pretrained weights are shipped for model '
    """
    key = str(name).strip().lower()
    path = PRETRAINED_DIR / f"{key}{SUFFIX}"
    if path.is_file():
        return path
    shipped = available_pretrained()
    listing = ", ".join(repr(s) for s in shipped) if shipped else "none in this installation"
    raise ModelError(
        f"no pretrained weights are shipped for model {name!r}. Models with shipped weights: "
        f"{listing}.",
        fix="load one of those, pass the path of a .xequi file, or train your own with "
            "xequi.train.fit(...) and save it with xequi.checkpoint.save_model",
    )


def available_pretrained() -> list[str]:
    """Names of the models whose pretrained weights are shipped with xequi.

    Returns
    -------
    list of str
        Sorted; empty when none are installed.

    Examples
    --------
    >>> isinstance(available_pretrained(), list)
    True
    """
    if not PRETRAINED_DIR.is_dir():
        return []
    return sorted(p.name[: -len(SUFFIX)] for p in PRETRAINED_DIR.glob(f"*{SUFFIX}") if p.is_file())


def _resolve(name_or_path) -> Path:
    p = Path(name_or_path)
    if p.exists():
        return p
    text = str(name_or_path)
    looks_like_name = (isinstance(name_or_path, str) and not p.suffix and os.sep not in text
                       and "/" not in text)
    if looks_like_name:
        return pretrained_path(text)
    _check_file(p)  # raises "does not exist"
    return p


def load_model(name_or_path, device: str = "cpu"):
    """Load a model from a ``.xequi`` checkpoint or from the shipped pretrained weights.

    Parameters
    ----------
    name_or_path : str or path-like
        Path of a ``.xequi`` file, or a registered model name whose weights ship with xequi
        (:func:`available_pretrained`).
    device : str or torch.device, default "cpu"

    Returns
    -------
    xequi.train.NormalizedModel
        In eval mode, on ``device``. Called on model-frame tensors ``(B, t_in, C, H, W)`` in the
        units of ``model.card["channels"]``, it returns the next frame in the same units (the
        normalization recorded in the card is applied around the network). ``model.card`` is the
        model card, ``model.model`` the bare network, ``model.config`` / ``model.symmetries`` are
        the network's.

    Raises
    ------
    CheckpointError
        Missing, truncated or corrupt file, weights that do not match the architecture or the
        recorded digest, a pickle (``torch.save``) file, or another format version.
    ModelError
        A name without shipped weights (the message lists those that have some), or an
        architecture this xequi does not know.

    Examples
    --------
    >>> import tempfile, torch
    >>> from xequi import models
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = save_model(models.create("resnet", t_in=2, widths=(4,)), Path(d) / "m")
    ...     m = load_model(p)
    ...     m(torch.zeros(1, 2, 2, 8, 8)).shape, m.card["weights_sha256"][:7]
    (torch.Size([1, 2, 8, 8]), 'sha256:')
    """
    from safetensors import safe_open  # the file format's own reader

    path = _resolve(name_or_path)
    card = _read_card_only(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:
        raise _corrupt(path, err) from None
    digest = weights_digest(tensors)
    if card.get("weights_sha256") not in (None, digest):
        raise CheckpointError(
            f"checkpoint {str(path)!r} is corrupt: its weights have digest {digest}, the card "
            f"records {card['weights_sha256']}.",
            fix="re-download or re-save the checkpoint",
        )
    arch = card.get("architecture")
    if isinstance(arch, Mapping):
        arch = ModelCard.from_dict(card).model_config  # old architectures: residual=False
    if not isinstance(arch, Mapping) or "name" not in arch:
        raise CheckpointError(f"the model card of {str(path)!r} has no architecture to rebuild.",
                              fix="re-save the model with xequi.checkpoint.save_model")
    net = models.create(**arch)
    net.train()
    try:
        net.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        raise CheckpointError(
            f"the weights in {str(path)!r} do not fit the architecture {arch.get('name')!r} "
            f"recorded in its card: {str(err).splitlines()[0]}",
            fix="re-save the checkpoint with this xequi version",
        ) from None
    norm = card.get("normalization") or {}  # the card is returned as stored (see read_card)
    model = NormalizedModel(net, scale=norm.get("scale"), offset=norm.get("offset"),
                            velocity_scale=norm.get("velocity_scale"))
    model.card = card
    model.eval()
    return model.to(torch.device(device))
