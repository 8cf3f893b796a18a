"""The ``.equi`` accessors on xarray objects.

Thin and stateless: every method forwards to a plain function of another module, which users can
import and call directly. The accessor holds nothing but the object it was created for. What
both kinds of object support is written once in :class:`_EquiAccessor`.
"""

from __future__ import annotations

import xarray as xr


class _EquiAccessor:
    """The operations shared by ``ds.equi`` and ``da.equi``."""

    def __init__(self, obj):
        self._obj = obj

    def transform(self, kind: str, **params):
        """Apply a symmetry (a DataArray is a scalar field): :func:`xequi.symmetry.transform`."""
        from xequi.symmetry import transform

        return transform(self._obj, kind, **params)

    def grid(self, **kwargs):
        """Grid spacing, orientation and metric: :func:`xequi.fields.grid_spacing`."""
        from xequi.fields import grid_spacing

        return grid_spacing(self._obj, **kwargs)

    def spectrum(self, **kwargs):
        """Isotropic spectrum (kinetic energy of a velocity Dataset, half the variance of a
        DataArray): :func:`xequi.diagnostics.spectrum`."""
        from xequi.diagnostics import spectrum

        return spectrum(self._obj, **kwargs)

    def rmse(self, truth, **kwargs):
        """RMSE against ``truth``: :func:`xequi.diagnostics.rmse`."""
        from xequi.diagnostics import rmse

        return rmse(self._obj, truth, **kwargs)

    def evaluate(self, truth, **kwargs):
        """Score this forecast against ``truth`` (a DataArray against a DataArray: one scalar
        field): :func:`xequi.diagnostics.evaluate`."""
        from xequi.diagnostics import evaluate

        return evaluate(self._obj, truth, **kwargs)

    def forecast(self, model, steps: int = 10, **kwargs):
        """Forecast with a model: :func:`xequi.forecast.forecast` (a DataArray needs a
        one-channel scalar-only model and gives a DataArray)."""
        from xequi.forecast import forecast

        return forecast(self._obj, model, steps=steps, **kwargs)

    def equivariance_error(self, model, kind: str, **kwargs) -> xr.DataArray:
        """Measured equivariance error of a model here: :func:`xequi.forecast.equivariance_error`."""
        from xequi.forecast import equivariance_error

        return equivariance_error(self._obj, model, kind, **kwargs)

    def fit(self, model_or_name, **kwargs):
        """Train a model on these data (a DataArray trains a scalar-only model):
        :func:`xequi.train.fit`."""
        from xequi.train import fit

        return fit(model_or_name, self._obj, **kwargs)


@xr.register_dataset_accessor("equi")
class EquiDatasetAccessor(_EquiAccessor):
    """``ds.equi``: xequi's operations on a :class:`xarray.Dataset`."""

    def fields(self, **kwargs):
        """The model frame of this Dataset: :func:`xequi.fields.to_model_frame`."""
        from xequi.fields import to_model_frame

        return to_model_frame(self._obj, **kwargs)

    def tke_spectrum(self, **kwargs):
        """The paper's TKE spectrum: :func:`xequi.diagnostics.tke_spectrum`."""
        from xequi.diagnostics import tke_spectrum

        return tke_spectrum(self._obj, **kwargs)


@xr.register_dataarray_accessor("equi")
class EquiDataArrayAccessor(_EquiAccessor):
    """``da.equi``: xequi's operations on a :class:`xarray.DataArray` (a scalar field)."""
