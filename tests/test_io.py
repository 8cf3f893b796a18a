import os

import numpy as np
import pytest
import xarray as xr

from xequi.errors import ParameterError
from xequi.io import _remove, atomic_path, output_format, write_dataset


@pytest.fixture
def ds():
    return xr.Dataset({"a": (("t", "x"), np.arange(12.0).reshape(3, 4))}, coords={"x": np.arange(4)})


@pytest.mark.parametrize("name", ["out.zarr", "out.nc"])
def test_write_roundtrip(tmp_path, ds, name):
    path = write_dataset(ds, tmp_path / name)
    back = xr.open_dataset(path, engine="zarr" if name.endswith("zarr") else None).load()
    xr.testing.assert_identical(back["a"], ds["a"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_refuses_existing_without_overwrite(tmp_path, ds):
    write_dataset(ds, tmp_path / "o.zarr")
    with pytest.raises(ParameterError, match="already exists.*\n.*overwrite=True"):
        write_dataset(ds * 2, tmp_path / "o.zarr")
    np.testing.assert_array_equal(xr.open_zarr(tmp_path / "o.zarr")["a"], ds["a"])
    write_dataset(ds * 2, tmp_path / "o.zarr", overwrite=True)
    np.testing.assert_array_equal(xr.open_zarr(tmp_path / "o.zarr")["a"], ds["a"] * 2)


def test_failed_write_keeps_previous_output(tmp_path, ds, monkeypatch):
    write_dataset(ds, tmp_path / "o.zarr")

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_zarr", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        write_dataset(ds * 3, tmp_path / "o.zarr", overwrite=True)
    monkeypatch.undo()
    np.testing.assert_array_equal(xr.open_zarr(tmp_path / "o.zarr")["a"], ds["a"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.zarr"]


def test_unknown_extension(tmp_path, ds):
    with pytest.raises(ParameterError, match=r"\.csv.*\n.*\.zarr"):
        write_dataset(ds, tmp_path / "o.csv")
    assert output_format("a.NC") == "netcdf"


def test_unwritable_directory(tmp_path, ds):
    if os.geteuid() == 0:
        # root ignores permission bits; a path under a regular file can never be created
        (tmp_path / "file").write_text("x")
        target = tmp_path / "file" / "o.zarr"
    else:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        target = ro / "o.zarr"
    with pytest.raises(ParameterError, match="directory"):
        write_dataset(ds, target)


def test_atomic_path_replaces_on_success_and_leaves_the_target_on_failure(tmp_path):
    target = tmp_path / "store.zarr"
    target.mkdir()
    (target / "old").write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "new").write_text("half")
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store.zarr"]
    assert (target / "old").read_text() == "old"  # untouched
    with atomic_path(target) as tmp:  # a directory replaced by a directory
        tmp.mkdir()
        (tmp / "new").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store.zarr"]  # no .old / .tmp left
    f = tmp_path / "a.json"
    for text in ("1", "2"):  # a file replaced in one os.replace
        with atomic_path(f) as tmp:
            tmp.write_text(text)
    assert f.read_text() == "2" and sorted(p.name for p in tmp_path.iterdir()) == ["a.json",
                                                                                "store.zarr"]
    _remove(target)
    _remove(f)
    _remove(tmp_path / "missing")  # nothing there: nothing to do
    assert list(tmp_path.iterdir()) == []
