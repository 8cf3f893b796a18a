"""The zarr cache of generated datasets (xequi.datasets._cache)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from xequi.datasets import _cache
from xequi.datasets._cache import MARKER, cache_dir, cache_path, cached_simulation, clear_cache
from xequi.errors import CacheError

rbmod = importlib.import_module("xequi.datasets.rayleigh_benard")


@pytest.fixture
def cachedir(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("XEQUI_CACHE_DIR", str(d))
    return d


class Builder:
    def __init__(self, value=1.0):
        self.calls = 0
        self.value = value

    def __call__(self):
        self.calls += 1
        return xr.Dataset({"a": (("t", "x"), np.full((3, 4), self.value, dtype=np.float32))},
                          attrs={"note": "test"})


def test_cache_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("XEQUI_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("XEQUI_CACHE_DIR")
    assert cache_dir() == tmp_path / "xdg" / "xequi"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "xequi"


def test_build_once_then_reuse(cachedir):
    b = Builder()
    ds1 = cached_simulation("toy", {"n": 1}, b)
    ds2 = cached_simulation("toy", {"n": 1}, b)
    assert b.calls == 1
    np.testing.assert_array_equal(ds1.a.values, ds2.a.values)
    assert ds2.attrs["note"] == "test"
    path = cache_path("toy", {"n": 1})
    assert path.parent == cachedir and (path / MARKER).is_file()
    assert not [p for p in cachedir.iterdir() if ".tmp-" in p.name]


def test_different_params_different_entry(cachedir):
    b1, b2 = Builder(1.0), Builder(2.0)
    ds1 = cached_simulation("toy", {"n": 1}, b1)
    ds2 = cached_simulation("toy", {"n": 2}, b2)
    assert b1.calls == b2.calls == 1
    assert cache_path("toy", {"n": 1}) != cache_path("toy", {"n": 2})
    assert float(ds1.a[0, 0]) == 1.0 and float(ds2.a[0, 0]) == 2.0
    assert len(list(cachedir.glob("toy-*.zarr"))) == 2


def test_version_is_part_of_the_key(cachedir, monkeypatch):
    p1 = cache_path("toy", {"n": 1})
    monkeypatch.setattr(_cache, "__version__", "999.0")
    assert cache_path("toy", {"n": 1}) != p1


def test_stale_marker_is_rebuilt(cachedir):
    b = Builder()
    cached_simulation("toy", {"n": 1}, b)
    path = cache_path("toy", {"n": 1})
    info = json.loads((path / MARKER).read_text())
    info["key"] = "0" * 16  # entry written for other parameters
    (path / MARKER).write_text(json.dumps(info))
    with pytest.warns(UserWarning, match="rebuilding"):
        cached_simulation("toy", {"n": 1}, b)
    assert b.calls == 2
    assert json.loads((path / MARKER).read_text())["key"] == _cache.cache_key({"n": 1})


def test_store_without_completion_marker_is_not_used(cachedir):
    b = Builder()
    cached_simulation("toy", {"n": 1}, b)
    path = cache_path("toy", {"n": 1})
    (path / MARKER).unlink()  # as if the write had been interrupted before completion
    with pytest.warns(UserWarning):
        ds = cached_simulation("toy", {"n": 1}, b)
    assert b.calls == 2 and (path / MARKER).is_file()
    assert float(ds.a.sum()) == 12.0


def test_corrupt_store_is_rebuilt(cachedir):
    b = Builder()
    cached_simulation("toy", {"n": 1}, b)
    path = cache_path("toy", {"n": 1})
    # destroy the data but keep the marker: unreadable store
    for p in path.iterdir():
        if p.name != MARKER:
            if p.is_dir():
                import shutil

                shutil.rmtree(p)
            else:
                p.write_bytes(b"garbage")
    with pytest.warns(UserWarning):
        ds = cached_simulation("toy", {"n": 1}, b)
    assert b.calls == 2
    assert float(ds.a.sum()) == 12.0


def test_attrs_mismatch_is_rebuilt(cachedir):
    b = Builder()
    cached_simulation("toy", {"n": 1}, b)
    other = cached_simulation("toy", {"n": 2}, b)  # a valid store for other params
    assert other is not None
    p1, p2 = cache_path("toy", {"n": 1}), cache_path("toy", {"n": 2})
    # replace entry 1's data by entry 2's, keeping entry 1's marker: attrs key mismatch
    import shutil

    marker = (p1 / MARKER).read_text()
    shutil.rmtree(p1)
    shutil.copytree(p2, p1)
    (p1 / MARKER).write_text(marker)
    with pytest.warns(UserWarning):
        cached_simulation("toy", {"n": 1}, b)
    assert b.calls == 3


def test_failed_build_leaves_nothing(cachedir):
    def boom():
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        cached_simulation("toy", {"n": 1}, boom)
    assert not cache_path("toy", {"n": 1}).exists()
    assert not [p for p in cachedir.iterdir() if ".tmp-" in p.name]


def test_interrupted_write_leaves_no_complete_store(cachedir, monkeypatch):
    def failing_to_zarr(self, store, **kw):
        Path(store).mkdir(parents=True)
        (Path(store) / "partial").write_text("x")
        raise OSError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_zarr", failing_to_zarr)
    with pytest.raises(CacheError, match="cannot write"):
        cached_simulation("toy", {"n": 1}, Builder())
    assert not cache_path("toy", {"n": 1}).exists()
    assert not list(cachedir.iterdir())


def test_unwritable_cache_dir(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("XEQUI_CACHE_DIR", str(blocker / "sub"))
    with pytest.raises(CacheError) as info:
        cached_simulation("toy", {"n": 1}, Builder())
    assert info.value.fix and "XEQUI_CACHE_DIR" in info.value.fix


def test_clear_cache(cachedir):
    cached_simulation("toy", {"n": 1}, Builder())
    cached_simulation("other", {"n": 1}, Builder())
    assert clear_cache("toy") == 1
    assert clear_cache() == 1
    assert clear_cache() == 0


def test_rayleigh_benard_uses_cache(cachedir, monkeypatch):
    kw = dict(Ra=1e4, nx=32, ny=16, spinup=1.0, frames=2, progress=False, cache=True)
    ds1 = rbmod.rayleigh_benard(**kw)
    ds1 = ds1.load()

    def no_simulation(*a, **k):
        raise AssertionError("simulated again instead of using the cache")

    monkeypatch.setattr(rbmod, "_simulate", no_simulation)
    ds2 = rbmod.rayleigh_benard(**kw).load()
    for v in ("u", "v", "temperature"):
        np.testing.assert_array_equal(ds1[v].values, ds2[v].values)
    assert ds2.attrs["Ra"] == 1e4 and ds2.u.attrs["standard_name"] == "sea_water_x_velocity"
    # another seed is another entry -> must simulate
    with pytest.raises(AssertionError, match="simulated again"):
        rbmod.rayleigh_benard(**{**kw, "seed": 3})


def test_docstring_examples_run(monkeypatch):
    import doctest

    monkeypatch.delenv("XEQUI_CACHE_DIR", raising=False)
    result = doctest.testmod(_cache)
    assert result.attempted >= 3 and result.failed == 0
