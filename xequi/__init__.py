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
from xequi.errors import (
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

__all__ = [
    "__version__",
    "catalog",
    "datasets",
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
]
