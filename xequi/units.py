"""The one pint unit registry xequi uses.

Every module that parses or converts units asks :func:`registry` for it, so that quantities made in
one module (a model card's grid spacing, a dataset's units) compare and convert in another. It is
cf-xarray's registry, which reads CF / UDUNITS strings such as ``m s-1`` and ``degrees_north`` and is
the one pint-xarray's ``.pint`` accessor uses when xequi quantifies a Dataset.
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def registry():
    """cf-xarray's pint registry (imported on first use: importing it loads pint's definitions).

    >>> from xequi.units import registry
    >>> str(registry().Quantity("5 km").to("m"))
    '5000.0 meter'
    """
    from cf_xarray.units import units

    return units
