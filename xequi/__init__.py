"""xequi: symmetry-equivariant deep dynamics models for gridded velocity fields in xarray.

Importing xequi registers the ``.equi`` accessor on :class:`xarray.Dataset` and
:class:`xarray.DataArray`. Heavy dependencies (torch, e2cnn) are imported only when a function
that needs them is first used.
"""

from __future__ import annotations

from xequi import accessor as _accessor  # noqa: F401  (registers the .equi accessors)
from xequi import datasets
from xequi._version import __version__
from xequi.catalog import catalog
from xequi.ocean import open_dataset
from xequi.units import registry as _registry
from xequi.errors import (
    DependencyError,
    CacheError,
    CheckpointError,
    GridError,
    MissingDataError,
    ModelError,
    NumericalInstabilityError,
    ParameterError,
    UnitsError,
    VariableNotFoundError,
    XequiError,
)

# cf-xarray's unit registry becomes pint's application registry when it loads: load it now, so
# that quantities a user makes with pint after ``import xequi`` (``pint.Quantity(5, "km")``)
# share a registry with the ones xequi makes (model cards, unit conversion) and combine.
_registry()

# Public functions whose modules import torch / e2cnn: resolved on first use (PEP 562), so that
# ``import xequi`` stays light and registering the accessor costs nothing. (The forecast function
# is ``ds.equi.forecast`` or ``xequi.forecast.forecast``: ``xequi.forecast`` is its module.)
_LAZY = {
    "load_model": "xequi.checkpoint",
    "save_model": "xequi.checkpoint",
    "available_pretrained": "xequi.checkpoint",
    "fit": "xequi.train",
    "open_dataset": "xequi.ocean",
    "models": None,
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module = _LAZY[name]
        value = importlib.import_module(f"xequi.{name}") if module is None else \
            getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'xequi' has no attribute {name!r}")


__all__ = [
    "__version__",
    *_LAZY,
    "catalog",
    "datasets",
    "open_dataset",
    "XequiError",
    "ParameterError",
    "VariableNotFoundError",
    "GridError",
    "UnitsError",
    "MissingDataError",
    "ModelError",
    "CheckpointError",
    "CacheError",
    "NumericalInstabilityError",
    "DependencyError",
]
