"""The ``.equi`` accessors on xarray objects.

Thin and stateless: every method forwards to a plain function of another module, which users can
import and call directly. The accessor holds nothing but the object it was created for.
"""

from __future__ import annotations

import xarray as xr


@xr.register_dataset_accessor("equi")
class EquiDatasetAccessor:
    """``ds.equi``: xequi's operations on a :class:`xarray.Dataset`."""

    def __init__(self, ds: xr.Dataset):
        self._obj = ds


@xr.register_dataarray_accessor("equi")
class EquiDataArrayAccessor:
    """``da.equi``: xequi's operations on a :class:`xarray.DataArray`."""

    def __init__(self, da: xr.DataArray):
        self._obj = da
