"""The ``.equi`` accessors forward to the library functions (forecast, equivariance, fit)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

import xequi  # noqa: F401  (registers the accessors)
from xequi.errors import ModelError
from xequi.forecast import equivariance_error, forecast

from conftest import tiny_model

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model():
    return tiny_model("um-resnet", widths=(4,))


def test_dataset_forecast_forwards(cf_dataset, model):
    ds = cf_dataset(nt=3, ny=16, nx=20)
    a = ds.equi.forecast(model, steps=2, window=16, progress=False)
    b = forecast(ds, model, steps=2, window=16, progress=False)
    xr.testing.assert_allclose(a, b)
    assert a.sizes["lead_time"] == 2


def test_dataset_equivariance_error_forwards(cf_dataset, model):
    ds = cf_dataset(nt=3, ny=16, nx=16)
    kw = dict(steps=2, c=(0.5, -1.0), forecast_kwargs={"window": 16})
    a = ds.equi.equivariance_error(model, "um", **kw)
    b = equivariance_error(ds, model, "um", **kw)
    xr.testing.assert_allclose(a, b)
    assert a.dims == ("lead_time",) and float(a.max()) < 1e-4


def test_dataarray_forecast_forwards_with_a_clear_error(cf_dataset, model):
    da = cf_dataset(nt=3, ny=16, nx=16, scalars=("temp",))["temp"]
    with pytest.raises(ModelError, match="velocity"):
        da.equi.forecast(model, steps=1)


def test_fit_forwards(cf_dataset, monkeypatch):
    import xequi.train

    seen = {}

    def fake_fit(model_or_name, data, **kw):
        seen.update(model=model_or_name, data=data, kw=kw)
        return "fitted", {}

    monkeypatch.setattr(xequi.train, "fit", fake_fit)
    ds = cf_dataset(nt=3, ny=8, nx=8)
    assert ds.equi.fit("resnet", epochs=1, t_in=2)[0] == "fitted"
    assert seen["model"] == "resnet" and seen["data"] is ds
    assert seen["kw"] == {"epochs": 1, "t_in": 2}


def test_fit_then_forecast_round_trip(cf_dataset):
    """A model fitted through the accessor carries a card that forecast accepts as is."""
    ds = cf_dataset(nt=8, ny=16, nx=16)
    fitted, history = ds.equi.fit("resnet", t_in=2, epochs=1, window=16, rollout_steps=1,
                                  val_fraction=0.0, model_kwargs={"widths": (4,)},
                                  progress=False, device="cpu")
    fc = ds.equi.forecast(fitted, steps=2, progress=False)
    assert fc.u.shape == (1, 2, 16, 16) and np.isfinite(fc.u).all()
    assert fc.attrs["forecast_window"] == [16, 16]  # the training window, from the card
    assert fc.attrs["model_weights_sha256"] == fitted.card["weights_sha256"]


def test_dataarray_fit_then_forecast_and_equivariance_error(cf_dataset):
    """da.equi.fit trains a scalar-only model; da.equi.forecast / equivariance_error use it."""
    da = cf_dataset(nt=8, ny=16, nx=16, scalars=("temp",))["temp"]
    fitted, _ = da.equi.fit("rot-resnet", t_in=2, epochs=1, window=16, rollout_steps=1,
                            val_fraction=0.0, model_kwargs={"widths": (2,)}, progress=False,
                            device="cpu")
    assert fitted.card["velocity"] is False
    fc = da.equi.forecast(fitted, steps=2, progress=False)
    xr.testing.assert_identical(fc, forecast(da, fitted, steps=2, progress=False)
                                .assign_attrs(created=fc.attrs["created"],
                                              history=fc.attrs["history"]))
    assert isinstance(fc, xr.DataArray) and fc.shape == (1, 2, 16, 16)
    err = da.equi.equivariance_error(fitted, "rot90", k=1, steps=2)
    xr.testing.assert_allclose(err, equivariance_error(da, fitted, "rot90", k=1, steps=2))
    assert float(err.max()) < 1e-4


def test_dataarray_evaluate_scores_one_scalar_field(cf_dataset):
    from xequi.diagnostics import evaluate, persistence_forecast

    da = cf_dataset(nt=6, ny=16, nx=16, scalars=("temp",))["temp"]
    fc = persistence_forecast(da.to_dataset(), da.time.values[:2], steps=3).temp
    ev = fc.equi.evaluate(da, metrics=["rmse", "acc"])
    xr.testing.assert_identical(ev, evaluate(fc.to_dataset(), da.to_dataset(),
                                             metrics=["rmse", "acc"]))
    assert list(ev.data_vars) == ["temp"] and ev.temp.dims == ("metric", "lead_time")
    direct = np.sqrt(((da.isel(time=[1, 2]).values - da.isel(time=[0, 1]).values) ** 2).mean())
    assert float(ev.temp.sel(metric="rmse").isel(lead_time=0)) == pytest.approx(direct, rel=1e-6)
    with pytest.raises(xequi.errors.ParameterError, match="two DataArrays"):
        evaluate(fc, da.to_dataset())
