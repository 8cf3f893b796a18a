"""The model card: what a trained model says about itself, as one dataclass written in one place.

A card travels with a model (``model.card``, a plain dict) and inside its checkpoint (JSON in
the safetensors metadata, see :mod:`xequi.checkpoint`). Every writer (:func:`xequi.train.fit`,
:func:`xequi.forecast.as_forecast_model`, :func:`xequi.checkpoint.save_model`) builds a
:class:`ModelCard` and every reader (:func:`xequi.forecast.model_info`) reads one back with
:meth:`ModelCard.from_dict`, which also reads cards written before a key existed: the fallbacks
for missing keys live there and nowhere else.

Keys (see the :mod:`xequi.checkpoint` docstring for their meaning): ``name``, ``architecture``,
``symmetries``, ``symmetry_group``, ``t_in``, ``velocity``, ``channels``, ``grid``,
``normalization``, ``window``, ``training``, ``metrics``, ``weights_sha256``, ``xequi_version``,
``created``, ``format``, ``format_version``; any other key a user records is kept in
:attr:`ModelCard.extra` and written back unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from numbers import Integral
from typing import Any

from xequi.errors import ModelError
from xequi.units import registry

__all__ = ["ModelCard", "DEFAULT_WINDOW", "CARD_FORMAT", "quantity_to_str", "jsonable", "loads"]

#: Window size used when the model card records none (neither ``window`` nor a training window).
DEFAULT_WINDOW = 64
#: The ``format`` entry of a saved card.
CARD_FORMAT = "xequi-model-card"


def quantity_to_str(q: Any) -> str | None:
    """Write a pint quantity (or number, or string) as ``"<magnitude> <units>"``.

    Parameters
    ----------
    q : pint.Quantity, float, str or None
        A plain number is written as dimensionless; a string is returned unchanged.

    Returns
    -------
    str or None

    Examples
    --------
    >>> import pint
    >>> ureg = pint.UnitRegistry()
    >>> quantity_to_str(ureg.Quantity(5000, "m")), quantity_to_str(0.015625)
    ('5000 m', '0.015625 dimensionless')
    """
    if q is None or isinstance(q, str):
        return q
    if hasattr(q, "magnitude") and hasattr(q, "units"):
        mag = q.magnitude
        mag = mag.item() if hasattr(mag, "item") else mag
        units = format(q.units, "~")
        return f"{mag} {units or 'dimensionless'}"
    return f"{float(q)} dimensionless"


def jsonable(obj: Any) -> Any:
    """``obj`` made JSON-serialisable (numpy scalars, tuples, pint quantities, paths).

    >>> import numpy as np
    >>> jsonable({"a": (1, np.float32(2.5)), 3: None})
    {'a': [1, 2.5], '3': None}
    """
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (str, bool, int, float)) or obj is None:
        return obj
    if hasattr(obj, "magnitude") and hasattr(obj, "units"):
        return quantity_to_str(obj)
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return str(obj)


def loads(text: str) -> dict:
    """The card stored as JSON text, as a dict.

    Raises ``json.JSONDecodeError`` (a ValueError) for text that is not JSON, and
    :class:`~xequi.errors.ModelError` for JSON that is not an object.

    >>> loads('{"t_in": 2}')
    {'t_in': 2}
    """
    card = json.loads(text)
    if not isinstance(card, dict):
        raise ModelError("the model card is not a JSON object",
                         fix="re-save the model with xequi.checkpoint.save_model")
    return card


def _window(card: Mapping) -> tuple[int, int]:
    """The forecast window: the card's, else the training window, else the default."""
    window = card.get("window")
    if window is None:
        window = ((card.get("training") or {}).get("hyperparameters") or {}).get("window")
    if window is None:
        window = DEFAULT_WINDOW
    if isinstance(window, Integral):
        window = (int(window), int(window))
    elif isinstance(window, Mapping):
        window = tuple(int(v) for v in list(window.values())[-2:])
    return tuple(int(v) for v in window)


def _t_in(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# the entries written only when set (absent from cards that never had them)
_OPTIONAL = ("training", "metrics", "weights_sha256", "xequi_version", "created", "format",
             "format_version")


@dataclass(frozen=True)
class ModelCard:
    """A model card (see the module docstring); :meth:`to_dict` is what ``model.card`` holds.

    Examples
    --------
    >>> card = ModelCard(name="resnet", t_in=2, grid={"dx": "5 km", "dt": "1 h"},
    ...                  channels=({"name": "u", "standard_name": None, "units": "m s-1"},))
    >>> ModelCard.from_json(card.to_json()) == card
    True
    >>> old = ModelCard.from_dict({"architecture": {"name": "rot-resnet"}, "t_in": 4})
    >>> old.name, old.velocity, old.window
    ('rot-resnet', True, (64, 64))
    >>> str(card.quantity("dy").to("m"))
    '5000.0 meter'
    """

    name: str = "unnamed"
    architecture: dict = field(default_factory=dict)
    symmetries: tuple = ()
    symmetry_group: str = ""
    t_in: int | None = None
    velocity: bool = True
    channels: tuple = ()
    grid: dict = field(default_factory=dict)
    normalization: dict = field(default_factory=dict)
    #: (wy, wx); None: the training window, else :data:`DEFAULT_WINDOW` (filled on creation)
    window: tuple | None = None
    training: dict | None = None
    metrics: dict | None = None
    weights_sha256: str | None = None
    xequi_version: str | None = None
    created: str | None = None
    format: str | None = None
    format_version: int | None = None
    #: entries of no field above (a user's own), kept as given
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "window", _window({"window": self.window, "training": self.training}))

    @classmethod
    def from_dict(cls, card: Mapping) -> ModelCard:
        """Read a card dict, old or new: missing keys get the fallbacks readers always used.

        ``velocity``: the architecture's ``velocity``, else True (cards written before the key
        existed are velocity models); ``name``: the architecture's name, else ``"unnamed"``;
        ``window``: the training window, else :data:`DEFAULT_WINDOW`; an unreadable ``t_in``
        is None. :attr:`model_config` reads the architecture for rebuilding the network.
        """
        card = dict(card or {})
        arch = dict(card.get("architecture") or {})
        velocity = card.get("velocity")
        if velocity is None:
            velocity = arch.get("velocity", True)
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        return cls(
            name=card.get("name") or arch.get("name") or "unnamed",
            architecture=arch,
            symmetries=tuple(card.get("symmetries") or ()),
            symmetry_group=card.get("symmetry_group") or "",
            t_in=_t_in(card.get("t_in")),
            velocity=bool(velocity),
            channels=tuple(dict(c) for c in card.get("channels") or ()),
            grid=dict(card.get("grid") or {}),
            normalization=dict(card.get("normalization") or {}),
            window=card.get("window"),
            **{k: card.get(k) for k in _OPTIONAL},
            extra={k: v for k, v in card.items() if k not in known},
        )

    @property
    def model_config(self) -> dict:
        """The architecture as :func:`xequi.models.create` takes it to rebuild the network.

        An architecture recorded before increment prediction existed (no ``residual`` key)
        predicts the full state: ``residual=False``; the card itself is left as stored.

        >>> ModelCard.from_dict({"architecture": {"name": "resnet"}}).model_config["residual"]
        False
        """
        return {**self.architecture, "residual": self.architecture.get("residual", False)} \
            if self.architecture else {}

    def to_dict(self) -> dict:
        """The card as a JSON-ready dict (what ``model.card`` holds and checkpoints store)."""
        out = dict(jsonable(self.extra))
        out.update(
            name=self.name, architecture=jsonable(self.architecture),
            symmetries=list(self.symmetries), symmetry_group=self.symmetry_group,
            t_in=self.t_in, velocity=bool(self.velocity), channels=jsonable(self.channels),
            grid={k: quantity_to_str(v) for k, v in self.grid.items()},
            normalization=jsonable(self.normalization), window=list(self.window))
        out.update({k: jsonable(getattr(self, k)) for k in _OPTIONAL
                    if getattr(self, k) is not None})
        return out

    def to_json(self) -> str:
        """The card as JSON text (sorted keys), as stored in a checkpoint."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        """Read a card from JSON text (see :meth:`from_dict`)."""
        return cls.from_dict(loads(text))

    def replace(self, **changes) -> ModelCard:
        """A copy with some entries changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    @property
    def n_velocity(self) -> int:
        """2 for a velocity model (channels ``[u, v, *scalars]``), 0 for a scalar-only one."""
        return 2 if self.velocity else 0

    def quantity(self, key: str):
        """The grid entry ``key`` (``"dx"``, ``"dy"``: default ``dx``, ``"dt"``) as a quantity of
        :func:`xequi.units.registry`, or None when the card does not record it."""
        text = self.grid.get(key, self.grid.get("dx") if key == "dy" else None)
        if text is None:
            return None
        if hasattr(text, "magnitude") and hasattr(text, "units"):
            text = f"{text.magnitude} {text.units}"
        try:
            return registry().Quantity(str(text))
        except Exception as err:
            raise ModelError(f"the model card's grid entry {key}={text!r} cannot be parsed ({err}).",
                             fix="re-save the model with a card whose grid entries are quantity "
                                 "strings such as '5000 m' (see as_forecast_model)") from None
