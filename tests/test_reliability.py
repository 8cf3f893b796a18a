"""Reliability: every mistake explained, nothing lost, nothing unsafe.

* the error table ``docs/errors.md`` matches the code (``scripts/gen_error_table.py``);
* no public function modifies its input;
* interrupted writes (a subprocess killed with SIGKILL mid-write) leave the previous output
  intact and nothing that looks complete; a later write works;
* a forecast written with ``resume=True`` and a training run with ``checkpoint_dir`` survive a
  kill and resume to bit-identical results;
* the cache detects stale / corrupt entries; checkpoints never unpickle; no shell is ever run.

Bad-input fuzzing is in ``tests/test_reliability_fuzz.py``, concurrency in
``tests/test_reliability_load.py``.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

import xequi
import xequi.errors as E
from xequi.checkpoint import load_model, save_model
from xequi.datasets import _cache
from xequi.datasets._cache import MARKER, cache_path, cached_simulation
from xequi.diagnostics import evaluate, persistence_forecast, spectrum
from xequi.errors import ParameterError
from xequi.fields import to_model_frame
from xequi.forecast import forecast
from xequi.io import write_dataset
from xequi.symmetry import transform
from xequi.train import fit

from conftest import load_script, make_cf_dataset, tiny_model

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
torch.set_num_threads(1)


def _load_script(name):
    return load_script(f"scripts/{name}.py")


def _tiny_model(seed=0, t_in=2):
    return tiny_model("resnet", t_in=t_in, seed=seed, widths=(4,))


# ============================================================================================
# 2. the error table
# ============================================================================================
def test_error_table_is_up_to_date():
    gen = _load_script("gen_error_table")
    text = (ROOT / "docs" / "errors.md").read_text()
    assert text == gen.render(), \
        "docs/errors.md is out of date: run `python scripts/gen_error_table.py`"


def test_error_table_lists_every_class_and_only_real_ones():
    text = (ROOT / "docs" / "errors.md").read_text()
    classes = {n for n in E.__all__ if isinstance(getattr(E, n), type)}
    # subclasses defined beside the code that raises them
    elsewhere = {"DataFilesNotFoundError": xequi.ocean.DataFilesNotFoundError}
    in_table = set(re.findall(r"^\| `(\w+)` \|", text, flags=re.M))
    assert classes | set(elsewhere) <= in_table, \
        f"not in docs/errors.md: {(classes | set(elsewhere)) - in_table}"
    assert in_table <= classes | set(elsewhere), \
        f"rows for classes that do not exist: {in_table - classes - set(elsewhere)}"
    for name in in_table:
        assert issubclass(getattr(E, name, None) or elsewhere[name], E.XequiError)
    classes |= set(elsewhere)
    # every class but the base is raised somewhere, and every raise has a fix
    gen = _load_script("gen_error_table")
    rows = gen.scan()
    raised = {r[0] for r in rows}
    assert classes - {"XequiError"} <= raised, f"never raised: {classes - raised}"
    no_fix = [r[:3] for r in rows if not r[3].strip()]
    assert len(no_fix) <= 2, f"errors without a fix= string: {no_fix}"


# raises of built-in exceptions that are not user mistakes
_BUILTIN_OK = {
    "xequi/windows.py RuntimeError": "internal invariant (xbatcher semantics changed): a bug report",
    "xequi/windows.py IndexError": "the sequence protocol of WindowDataset.sample_info",
}


def test_package_raises_no_bare_builtin_errors_for_user_input():
    """``raise ValueError/TypeError/KeyError(...)`` in xequi would bypass the hierarchy."""
    bad = []
    for path in sorted((ROOT / "xequi").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and \
                    isinstance(node.exc.func, ast.Name) and node.exc.func.id in (
                        "ValueError", "TypeError", "KeyError", "IndexError", "RuntimeError"):
                if f"{path.relative_to(ROOT)} {node.exc.func.id}" not in _BUILTIN_OK:
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.exc.func.id}")
    assert not bad, bad


# ============================================================================================
# 3a. inputs are never modified
# ============================================================================================
def _input_dataset():
    ds = make_cf_dataset(nt=6, ny=16, nx=16)
    ds.attrs["history"] = "made for the tests"
    for n in ("u", "v"):
        ds[n].encoding = {"dtype": "float32", "_FillValue": -999.0}
    ds["time"].encoding = {"units": "hours since 2020-01-01", "calendar": "standard"}
    return ds


def _snapshot(ds):
    return (ds.copy(deep=True), copy.deepcopy(ds.attrs),
            {k: (copy.deepcopy(dict(v.attrs)), copy.deepcopy(dict(v.encoding)))
             for k, v in ds.variables.items()})


def _assert_unchanged(ds, snap):
    before, attrs, per_var = snap
    xr.testing.assert_identical(ds, before)
    assert ds.attrs == attrs
    assert {k: (dict(v.attrs), dict(v.encoding)) for k, v in ds.variables.items()} == per_var


def _call_forecast(ds, tmp):
    forecast(ds, _tiny_model(), steps=2, window=16, progress=False, out=tmp / "f.zarr")


def _call_forecast_resume(ds, tmp):
    forecast(ds, _tiny_model(), steps=2, window=16, progress=False, out=tmp / "r.zarr",
             resume=True, init_time=slice(None, None))


def _call_evaluate(ds, tmp):
    fc = persistence_forecast(ds, init_time=ds.time.values[2], steps=2)
    snap = _snapshot(fc)
    evaluate(fc, ds)
    _assert_unchanged(fc, snap)


def _call_fit(ds, tmp):
    fit("resnet", ds, t_in=1, rollout_steps=1, epochs=1, batch_size=2,
        model_kwargs={"widths": (2,)}, val_fraction=0.0, window=8, progress=False)


def _call_open_dataset(ds, tmp):
    src = tmp / "in.nc"
    make_cf_dataset(nt=3, ny=5, nx=6, latlon=True).to_netcdf(src)  # a lat/lon current file
    raw = src.read_bytes()
    xequi.open_dataset(str(src)).load()
    assert src.read_bytes() == raw


API = {
    "forecast": _call_forecast,
    "forecast_resume": _call_forecast_resume,
    "spectrum": lambda ds, tmp: spectrum(ds),
    "evaluate": _call_evaluate,
    "transform_rot90": lambda ds, tmp: transform(ds, "rot90", k=1),
    "transform_um": lambda ds, tmp: transform(ds, "uniform_motion", c=(0.3, 0.1)),
    "fit": _call_fit,
    "to_model_frame": lambda ds, tmp: to_model_frame(ds, target_units="m s-1"),
    "open_dataset": _call_open_dataset,
    "write_dataset": lambda ds, tmp: write_dataset(ds, tmp / "w.zarr"),
    "write_dataset_nc": lambda ds, tmp: write_dataset(ds, tmp / "w.nc"),
    "accessor_forecast": lambda ds, tmp: ds.equi.forecast(_tiny_model(), steps=1, window=16,
                                                          progress=False),
}


@pytest.mark.parametrize("name", sorted(API))
def test_public_functions_do_not_modify_their_input(name, tmp_path):
    ds = _input_dataset()
    snap = _snapshot(ds)
    API[name](ds, tmp_path)
    _assert_unchanged(ds, snap)


def test_model_is_not_modified_by_forecast_or_fit(cf_dataset):
    ds = cf_dataset(nt=6, ny=16, nx=16)
    m = _tiny_model()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    forecast(ds, m, steps=2, window=16, progress=False)
    fit(m.model, ds, rollout_steps=1, epochs=1, batch_size=2, val_fraction=0.0, window=8,
        progress=False)
    after = m.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


# ============================================================================================
# 3b. interrupted writes: SIGKILL mid-write
# ============================================================================================
def _spawn(code: str, tmp: Path) -> subprocess.Popen:
    script = tmp / f"child-{time.monotonic_ns()}.py"
    script.write_text(textwrap.dedent(code))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
               OMP_NUM_THREADS="1")
    return subprocess.Popen([PY, str(script)], env=env, cwd=tmp,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _kill_when(proc, ready, timeout=60.0) -> bool:
    """SIGKILL ``proc`` as soon as ``ready()``; True if it was killed mid-run."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if ready():
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            return True
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the child finished before it could be killed:\n{err.decode()}")
        time.sleep(0.005)
    proc.kill()
    raise AssertionError("the child never started writing")


def _chunk_files(store: Path) -> int:
    return sum(1 for p in store.rglob("*") if p.is_file() and p.name[0].isdigit())


_BIG = """
    import numpy as np, xarray as xr
    # ~12 MB in 3000 chunks: writing takes long enough to be interrupted
    big = xr.Dataset({f"a{i}": (("t", "x"), np.full((300, 1000), float(i))) for i in range(5)})
    big = big.chunk({"t": 1})
"""


def test_killed_write_dataset_keeps_previous_output(tmp_path):
    target = tmp_path / "out.zarr"
    old = xr.Dataset({"a0": (("t", "x"), np.zeros((2, 3)))}, attrs={"v": "old"})
    write_dataset(old, target)
    proc = _spawn(_BIG + f"""
    from xequi.io import write_dataset
    write_dataset(big, {str(target)!r}, overwrite=True)
    """, tmp_path)
    tmps = lambda: [p for p in tmp_path.iterdir() if p.name.startswith(".out.zarr.tmp-")]  # noqa
    assert _kill_when(proc, lambda: any(_chunk_files(p) > 50 for p in tmps()))
    # the previous output is intact; what is left is hidden, not at the target
    back = xr.open_zarr(target).load()
    xr.testing.assert_identical(back, old)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".zarr")] == ["out.zarr"]
    assert all(p.name.startswith(".") for p in tmps())
    # and a later write works
    new = old.assign(a0=old.a0 + 1)
    write_dataset(new, target, overwrite=True)
    xr.testing.assert_identical(xr.open_zarr(target).load(), new)


def test_killed_save_model_keeps_previous_checkpoint(tmp_path):
    target = tmp_path / "m.xequi"
    m_old = _tiny_model(seed=0)
    save_model(m_old, target)
    digest = target.read_bytes()
    # save a big model in a child, killed while the temporary file grows
    proc = _spawn(f"""
    import torch
    from xequi import models
    from xequi.checkpoint import save_model
    from xequi.forecast import as_forecast_model
    net = models.create("resnet", t_in=2, widths=(256, 256, 256, 256))
    m = as_forecast_model(net, dx="10 km", dt="1 h")
    while True:
        save_model(m, {str(target)!r}, overwrite=True)
    """, tmp_path)
    tmps = lambda: [p for p in tmp_path.iterdir() if p.name.startswith(".m.xequi.tmp-")]  # noqa

    def growing():  # the temporary file exists: the write is under way (it may still be empty)
        return bool(tmps())
    assert _kill_when(proc, growing, timeout=180.0)  # the child's imports are slow on a busy host
    # old or new, the target is always a complete, loadable checkpoint
    loaded = load_model(target)
    if target.read_bytes() == digest:
        x = torch.zeros(1, 2, 2, 8, 8)
        with torch.no_grad():
            assert torch.equal(loaded(x), m_old(x))
    assert all(p.name.startswith(".") for p in tmps())
    save_model(m_old, target, overwrite=True)
    assert target.read_bytes() != b""


def test_killed_cache_write_is_not_used_and_rebuilt(tmp_path, monkeypatch):
    cdir = tmp_path / "cache"
    monkeypatch.setenv("XEQUI_CACHE_DIR", str(cdir))
    proc = _spawn(_BIG + """
    from xequi.datasets._cache import cached_simulation
    cached_simulation("big", {"n": 1}, lambda: big)
    """, tmp_path)  # the child inherits XEQUI_CACHE_DIR through os.environ

    def writing():
        return cdir.is_dir() and any(_chunk_files(p) > 50 for p in cdir.iterdir()
                                     if ".zarr.tmp-" in p.name)
    assert _kill_when(proc, writing)
    path = cache_path("big", {"n": 1})
    assert not path.exists()  # nothing that looks complete
    calls = []

    def small():
        calls.append(1)
        return xr.Dataset({"a0": ("x", np.arange(3.0))})
    ds = cached_simulation("big", {"n": 1}, small)
    assert calls == [1] and ds.a0.values.tolist() == [0.0, 1.0, 2.0]
    assert (path / MARKER).is_file()
    assert _cache.clear_cache() == 1
    assert not any(".zarr.tmp-" in p.name for p in cdir.iterdir())  # leftovers cleared too


# ============================================================================================
# 3c. resumable forecast and training, killed mid-run
# ============================================================================================
_FC_SETUP = """
    import torch, xarray as xr
    torch.set_num_threads(1)
    from xequi.checkpoint import load_model
    from xequi.forecast import forecast
    ds = xr.open_dataset({data!r}).load()
    m = load_model({model!r})
    KW = dict(steps=4, window=16, init_time=slice(None, None), progress=False)
"""


@pytest.fixture
def forecast_inputs(tmp_path):
    ds = make_cf_dataset(nt=41, ny=24, nx=24)
    ds.to_netcdf(tmp_path / "in.nc")
    save_model(_tiny_model(seed=1), tmp_path / "m.xequi")
    return tmp_path / "in.nc", tmp_path / "m.xequi"


def test_resumable_forecast_survives_sigkill_bit_identical(tmp_path, forecast_inputs):
    data, model = forecast_inputs
    out = tmp_path / "fc.zarr"
    record = tmp_path / ".fc.zarr.partial.json"
    setup = _FC_SETUP.format(data=str(data), model=str(model))
    proc = _spawn(setup + f"""
    forecast(ds, m, out={str(out)!r}, resume=True, **KW)
    """, tmp_path)

    def progressed():
        try:
            return json.loads(record.read_text())["done"] >= 3
        except (OSError, ValueError, KeyError):
            return False
    assert _kill_when(proc, progressed)
    done = json.loads(record.read_text())["done"]
    assert 3 <= done < 40 and not out.exists()  # interrupted: no output that looks complete

    ds = xr.open_dataset(data).load()
    m = load_model(model)
    kw = dict(steps=4, window=16, init_time=slice(None, None), progress=False)
    resumed = forecast(ds, m, out=out, resume=True, **kw).load()
    full = forecast(ds, m, **kw)
    assert resumed.sizes["init_time"] == 40
    for n in ("u", "v"):
        assert resumed[n].dtype == full[n].dtype
        np.testing.assert_array_equal(resumed[n].values, full[n].values)  # bit-identical
    for c in ("init_time", "lead_time", "valid_time", "x", "y"):
        np.testing.assert_array_equal(resumed[c].values, full[c].values)
    assert not record.exists() and not (tmp_path / ".fc.zarr.partial").exists()
    # the store on disk is a normal, complete forecast
    np.testing.assert_array_equal(xr.open_zarr(out).u.values, full.u.values)


def test_resume_refuses_another_run_and_netcdf(tmp_path, forecast_inputs):
    data, model = forecast_inputs
    ds = xr.open_dataset(data).load()
    m = load_model(model)
    kw = dict(window=16, init_time=slice(None, None), progress=False)
    with pytest.raises(ParameterError, match="resume=True needs a .zarr"):
        forecast(ds, m, steps=1, out=tmp_path / "f.nc", resume=True, **kw)
    with pytest.raises(ParameterError, match="resume=True needs a .zarr"):
        forecast(ds, m, steps=1, resume=True, **kw)
    # a partial store of another run (other steps) is refused, not silently mixed
    out = tmp_path / "f.zarr"

    class Stop(Exception):
        pass

    import xequi.forecast as F
    real = F._write_record
    calls = []

    def stop_after_two(record, key, done):
        real(record, key, done)
        calls.append(done)
        if done == 2:
            raise Stop
    F._write_record = stop_after_two
    try:
        with pytest.raises(Stop):
            forecast(ds, m, steps=2, out=out, resume=True, **kw)
    finally:
        F._write_record = real
    with pytest.raises(ParameterError, match="different run"):
        forecast(ds, m, steps=3, out=out, resume=True, **kw)
    with pytest.raises(ParameterError, match="different run"):
        forecast(ds.assign(u=ds.u + 1e-6), m, steps=2, out=out, resume=True, **kw)
    # the same call resumes; the result equals a plain forecast
    res = forecast(ds, m, steps=2, out=out, resume=True, **kw)
    np.testing.assert_array_equal(res.v.values, forecast(ds, m, steps=2, **kw).v.values)
    # an existing complete output is not overwritten without overwrite=True
    with pytest.raises(ParameterError, match="already exists"):
        forecast(ds, m, steps=2, out=out, resume=True, **kw)


def test_training_resume_after_sigkill_is_bit_identical(tmp_path):
    data = make_cf_dataset(nt=12, ny=8, nx=8)
    data.to_netcdf(tmp_path / "train.nc")
    kw = dict(t_in=2, rollout_steps=1, epochs=4, batch_size=4, model_kwargs={"widths": (4,)},
              val_fraction=0.25, window=8, seed=2, patience=None, progress=False,
              device="cpu")
    ckdir = tmp_path / "run"
    marker = tmp_path / "epoch2"
    proc = _spawn(f"""
    import time, torch, xarray as xr
    torch.set_num_threads(1)
    from pathlib import Path
    from xequi.train import fit
    ds = xr.open_dataset({str(tmp_path / "train.nc")!r}).load()
    def slow(epoch, net, logs):
        if epoch == 2:
            Path({str(marker)!r}).touch()
            time.sleep(60)
    fit("resnet", ds, checkpoint_dir={str(ckdir)!r}, callbacks=[slow], **{kw!r})
    """, tmp_path)
    assert _kill_when(proc, marker.exists, timeout=120)
    ds = xr.open_dataset(tmp_path / "train.nc").load()
    resumed, h_res = fit("resnet", ds, checkpoint_dir=ckdir, **kw)
    full, h_full = fit("resnet", ds, **kw)
    assert h_res == h_full
    for (k, a), (_, b) in zip(sorted(resumed.state_dict().items()),
                              sorted(full.state_dict().items())):
        assert torch.equal(a, b), k


# ============================================================================================
# 3d. cache keyed by parameters and version; stale / corrupt entries rebuilt
# ============================================================================================
def test_cache_entry_of_another_version_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("XEQUI_CACHE_DIR", str(tmp_path))
    calls = []

    def build():
        calls.append(1)
        return xr.Dataset({"a": ("x", np.arange(4.0))})
    cached_simulation("toy", {"n": 1}, build)
    path = cache_path("toy", {"n": 1})
    info = json.loads((path / MARKER).read_text())
    info["xequi_version"] = "0.0.0-old"  # same path, written by another xequi
    (path / MARKER).write_text(json.dumps(info))
    with pytest.warns(UserWarning, match="rebuilding"):
        cached_simulation("toy", {"n": 1}, build)
    assert len(calls) == 2
    assert json.loads((path / MARKER).read_text())["xequi_version"] == _cache.__version__


def test_cache_with_a_truncated_chunk_is_rebuilt(tmp_path, monkeypatch):
    """Corruption anywhere in the store, not only in the first chunk, is detected."""
    monkeypatch.setenv("XEQUI_CACHE_DIR", str(tmp_path))
    calls = []

    def build():
        calls.append(1)
        return xr.Dataset({"a": (("t", "x"), np.arange(40.0).reshape(10, 4))}).chunk({"t": 2})
    cached_simulation("toy", {"n": 2}, build)
    path = cache_path("toy", {"n": 2})
    last = path / "a" / "4.0"
    assert last.is_file()
    last.write_bytes(last.read_bytes()[:5])  # a truncated chunk (interrupted copy, full disk)
    with pytest.warns(UserWarning, match="rebuilding"):
        ds = cached_simulation("toy", {"n": 2}, build)
    assert len(calls) == 2
    np.testing.assert_array_equal(ds.a.values, np.arange(40.0).reshape(10, 4))


# ============================================================================================
# 4. nothing unsafe
# ============================================================================================
_SHELL = re.compile(r"\bsubprocess\b|os\.system|shell\s*=\s*True|os\.popen|os\.exec|os\.spawn"
                    r"|\bpty\b|commands\.getoutput|getshell\s*=\s*True")
# justified uses: none today. Add "path: reason" entries here if one is ever needed.
_SHELL_ALLOWED: dict[str, str] = {}


def test_package_never_runs_a_shell():
    hits = []
    for path in sorted((ROOT / "xequi").rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        for i, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if _SHELL.search(code) and rel not in _SHELL_ALLOWED:
                hits.append(f"{rel}:{i}: {line.strip()}")
    assert not hits, hits


def test_checkpoint_loading_never_unpickles(tmp_path):
    """A pickle that would run code when unpickled is refused, and the code does not run."""
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))
    for name in ("evil.pt", "evil.xequi", "evil"):
        p = tmp_path / name
        torch.save({"state": Evil()}, p)
        with pytest.raises(E.CheckpointError):
            load_model(p)
        with pytest.raises(E.XequiError):
            forecast(make_cf_dataset(nt=3, ny=8, nx=8), str(p), steps=1, progress=False)
    assert not marker.exists()
    # the training state of fit(checkpoint_dir=) is read with weights_only=True as well
    (tmp_path / "run").mkdir()
    from xequi.train import STATE_FILE

    torch.save({"version": Evil()}, tmp_path / "run" / STATE_FILE)
    with pytest.raises(E.CheckpointError):
        fit("resnet", make_cf_dataset(nt=8, ny=8, nx=8), t_in=1, rollout_steps=1, epochs=1,
            model_kwargs={"widths": (2,)}, val_fraction=0.0, window=8, progress=False,
            checkpoint_dir=tmp_path / "run")
    assert not marker.exists()


_EVIL = ["$(touch {m})", "`touch {m}`", "; touch {m}", "| touch {m}", "&& touch {m}"]


@pytest.mark.parametrize("template", _EVIL)
def test_catalog_parameters_never_reach_a_shell(tmp_path, template, monkeypatch):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "marker"
    evil = template.format(m=marker)
    cat = xequi.catalog()
    for entry, params in (("globcurrent_agulhas_2002", {"path": evil, "pattern": evil}),
                          ("rayleigh_benard", {"preset": evil}),
                          ("rayleigh_benard", {"seed": evil})):
        if entry not in list(cat):
            continue
        try:
            cat[entry](**params).to_dask()
        except Exception:  # noqa: BLE001 - refusing is fine; running the command is not
            pass
    assert not marker.exists()


def test_user_catalog_shell_templates_are_not_run(tmp_path, monkeypatch):
    """A catalog given on the command line (``--catalog``) may hold intake's ``shell(...)``
    templating: intake runs it only with getshell=True, which xequi never passes."""
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "marker"
    yaml = tmp_path / "evil.yaml"
    yaml.write_text(textwrap.dedent(f"""
        sources:
          evil:
            driver: xequi.catalog.RayleighBenardSource
            parameters:
              preset:
                description: p
                type: str
                default: "shell(touch {marker})"
            args:
              preset: "{{{{ preset }}}}"
              seed: "{{{{ shell('touch {marker}') }}}}"
    """))
    from types import SimpleNamespace

    from xequi.cli import _open_input

    args = SimpleNamespace(data=None, catalog=str(yaml), entry="evil",
                           param=[f"preset=$(touch {marker})"])
    try:
        _open_input(args)
    except Exception:  # noqa: BLE001
        pass
    args.param = []
    try:
        _open_input(args)
    except Exception:  # noqa: BLE001
        pass
    assert not marker.exists()
