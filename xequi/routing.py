"""Routing a DataArray through code written for Datasets, and back.

Several public functions (``transform``, ``forecast``, ``evaluate``, ``fit`` ...) accept a lone
scalar field as a DataArray and work on Datasets inside. :func:`as_dataset` wraps the DataArray in
a one-variable Dataset under a name that cannot clash with its coordinates, and :func:`restore`
turns the Dataset result back into a DataArray with the caller's name. Kept in one place so that
the name rules (unnamed arrays, a name equal to a coordinate's) are the same everywhere.
"""

from __future__ import annotations

from typing import NamedTuple

import xarray as xr

#: the variable name used for an unnamed DataArray (or one named like one of its coordinates)
PLACEHOLDER = "__xequi_field__"


class Routed(NamedTuple):
    """A Dataset view of the caller's object and what is needed to give the result back."""

    ds: xr.Dataset
    #: the variable holding the DataArray in ``ds`` (None when the caller passed a Dataset)
    var: str | None
    #: the caller's DataArray name (may be None)
    name: object = None

    @property
    def was_dataarray(self) -> bool:
        return self.var is not None


def as_dataset(obj, placeholder: str = PLACEHOLDER) -> Routed:
    """A Dataset for ``obj``: itself if it is one, else a one-variable wrap of the DataArray.

    The caller's object is never modified.

    >>> import numpy as np, xarray as xr
    >>> r = as_dataset(xr.DataArray(np.zeros(2), dims="x", name="T"))
    >>> list(r.ds.data_vars), r.var, r.name
    (['T'], 'T', 'T')
    >>> as_dataset(xr.DataArray(np.zeros(2), dims="x")).var
    '__xequi_field__'
    """
    if isinstance(obj, xr.Dataset):
        return Routed(obj, None, None)
    name = obj.name
    var = str(name) if name is not None and name not in obj.coords else placeholder
    return Routed(obj.to_dataset(name=var), var, name)


def restore(routed: Routed, result: xr.Dataset, attrs: dict | None = None):
    """``result`` as the caller passed it: the DataArray under its own name, else the Dataset.

    ``attrs`` (when given) become the DataArray's attributes.
    """
    if not routed.was_dataarray:
        return result
    out = result[routed.var]
    if attrs is not None:
        out = out.copy(deep=False)
        out.attrs = dict(attrs)
    return out.rename(routed.name)
