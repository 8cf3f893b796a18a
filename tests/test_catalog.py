import intake
import numpy as np
import pytest

import xequi
from xequi.catalog import RayleighBenardSource, catalog_path
from xequi.errors import ParameterError


def test_catalog_file_is_the_shipped_one():
    assert catalog_path().resolve() == (catalog_path().parents[2] / "catalogs" / "xequi.yaml").resolve()
    cat = intake.open_catalog(str(catalog_path()))
    assert "rayleigh_benard" in list(cat)
    assert list(xequi.catalog()) == list(cat)


def test_default_entry_is_the_simulation(rbc_default):
    ds = rbc_default
    assert set(ds.data_vars) >= {"u", "v", "temperature"}
    assert ds.attrs["preset"] == "default"
    assert ds["u"].attrs["standard_name"] == "sea_water_x_velocity"
    assert np.isfinite(ds["u"].values).all()


def test_second_open_comes_from_cache_and_is_lazy(rbc_default):
    lazy = xequi.catalog().rayleigh_benard(preset="default").to_dask()
    assert lazy["u"].chunks is not None
    np.testing.assert_array_equal(lazy["u"].values, rbc_default["u"].values)


def test_bad_parameters():
    with pytest.raises(ParameterError, match="seed"):
        RayleighBenardSource(seed="abc")
    with pytest.raises(Exception, match="preset"):
        xequi.catalog().rayleigh_benard(preset="nope").read()
