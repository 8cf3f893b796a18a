"""Bad input, systematically: every public entry point either succeeds with valid output or
raises an :class:`xequi.errors.XequiError` that names the culprit -- never a bare exception from
deep inside torch, numpy or xarray, and never a hang.

The datasets come from ``tests/_reliability_gen.py``: random dims order and names, missing or
wrong units and axis attrs, odd variable names and standard names, NaN / inf / all-NaN / huge
values, int / bool / object / float16 / complex dtypes, 1×1 up to 3000×1 grids, missing,
non-uniform, descending or duplicate times. Outcomes are counted per function (printed by the
last test, run ``pytest -s`` to see them).
"""

from __future__ import annotations

import collections
import warnings

import numpy as np
import pytest
import torch
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _reliability_gen import bad_datasets
from conftest import make_cf_dataset, tiny_model
from xequi.diagnostics import evaluate, persistence_forecast, spectrum
from xequi.errors import XequiError
from xequi.forecast import forecast
from xequi.symmetry import transform
from xequi.train import fit

torch.set_num_threads(1)

OUTCOMES: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)

_FUZZ = dict(deadline=None, suppress_health_check=list(HealthCheck), database=None,
             derandomize=True)


@pytest.fixture(scope="module")
def model():
    return tiny_model("resnet", t_in=2, seed=0, widths=(4,))


def _culprits(desc, ds) -> set[str]:
    """Strings one of which a good error message about this dataset mentions."""
    words = {str(n) for n in ds.variables} | {str(d) for d in ds.dims}
    words |= {str(u) for u in (desc["vunits"], desc["cunits"]) if u}
    words |= {desc["dtype"], "time", "NaN", "inf", "velocity", "units", "axis", "grid",
              "t_in", "dimension", "coordinate", "spacing", "point"}
    return {w for w in words if w}


def _run(fn_name, desc, ds, call, check):
    """Call; classify the outcome; check output or error quality."""
    before = ds.copy(deep=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = call(ds)
    except XequiError as err:
        OUTCOMES[fn_name][type(err).__name__] += 1
        msg = str(err)
        assert msg.strip(), f"{fn_name}: empty message for {desc}"
        assert any(w in msg for w in _culprits(desc, ds)), \
            f"{fn_name}: the message does not name the culprit for {desc}:\n{msg}"
    except Exception as err:  # noqa: BLE001 - the point of the test
        OUTCOMES[fn_name]["UNEXPECTED " + type(err).__name__] += 1
        raise AssertionError(f"{fn_name} raised {type(err).__name__} (not an XequiError) for "
                             f"{desc}: {err}") from err
    else:
        OUTCOMES[fn_name]["ok"] += 1
        assert desc["dtype"] not in ("bool", "object", "complex64"), \
            f"{fn_name} accepted a {desc['dtype']} velocity instead of refusing it: {desc}"
        check(out)
    xr.testing.assert_identical(ds, before)  # never modified, even on error


def _finite_input(ds) -> bool:
    return all(np.issubdtype(v.dtype, np.number) and np.isfinite(v.values.astype("complex128"
               if np.iscomplexobj(v.values) else "float64")).all() for v in ds.data_vars.values())


@pytest.mark.timeout(120)
@settings(max_examples=100, **_FUZZ)
@given(case=bad_datasets())
def test_forecast_bad_input(model, case):
    desc, ds = case

    def check(fc):
        for n in fc.data_vars:
            assert fc[n].dims[:2] == ("init_time", "lead_time")
            assert set(fc[n].dims[2:]) == set(ds[n].dims) - {"time"}
            if _finite_input(ds):
                assert np.isfinite(fc[n].values).all()

    _run("forecast", desc, ds,
         lambda d: forecast(d, model, steps=1, window=8, progress=False, device="cpu"), check)
    if desc["dtype"] != "object":  # dask-backed: errors surface at compute time, same classes
        _run("forecast(dask)", desc, ds,
             lambda d: forecast(d.chunk(), model, steps=1, window=8, progress=False,
                                device="cpu").compute(scheduler="synchronous"), check)


@pytest.mark.timeout(120)
@settings(max_examples=60, **_FUZZ)
@given(case=bad_datasets())
def test_spectrum_bad_input(case):
    desc, ds = case

    def check(E):
        assert E.dims[-1] == "wavenumber"
        if _finite_input(ds) and desc["values"] != "huge":
            assert np.isfinite(E.values).all()

    _run("spectrum", desc, ds, spectrum, check)


@pytest.mark.timeout(120)
@settings(max_examples=100, **_FUZZ)
@given(case=bad_datasets())
def test_transform_bad_input(case):
    desc, ds = case

    def check(out):
        assert set(out.data_vars) == set(ds.data_vars)
        for n in out.data_vars:
            assert set(out[n].dims) == set(ds[n].dims)
            if _finite_input(ds) and desc["values"] != "huge":
                assert np.isfinite(out[n].values).all()

    _run("transform(rot90)", desc, ds, lambda d: transform(d, "rot90", k=1), check)
    _run("transform(uniform_motion)", desc, ds,
         lambda d: transform(d, "uniform_motion", c=(0.1, -0.2)), check)


@pytest.mark.timeout(120)
@settings(max_examples=20, **_FUZZ)
@given(case=bad_datasets())
def test_evaluate_bad_input(case):
    desc, ds = case

    def call(d):
        it = d["time"].values[0] if "time" in d.coords else 0
        fc = persistence_forecast(d, init_time=it, steps=1)
        return evaluate(fc, d, metrics=("rmse", "acc", "spectrum_error"))

    def check(scores):
        assert "lead_time" in scores.dims

    _run("persistence_forecast+evaluate", desc, ds, call, check)


@pytest.mark.timeout(120)
@settings(max_examples=60, **_FUZZ)
@given(case=bad_datasets())
def test_fit_bad_input(case):
    desc, ds = case

    def call(d):
        return fit("resnet", d, t_in=1, rollout_steps=1, epochs=1, batch_size=2,
                   model_kwargs={"widths": (2,)}, val_fraction=0.0, window=None,
                   progress=False, device="cpu")

    def check(res):
        net, hist = res
        assert np.isfinite(hist["train_loss"][0]) or not _finite_input(ds)

    _run("fit", desc, ds, call, check)


# --------------------------------------------------------------------------------------------
# bad arguments on a good dataset
# --------------------------------------------------------------------------------------------
_W = st.sampled_from
_GOOD = make_cf_dataset(nt=6, ny=12, nx=10)
_FC = persistence_forecast(_GOOD, init_time=_GOOD.time.values[1], steps=2)

_ARGS = {
    "forecast": st.fixed_dictionaries({}, optional={
        "steps": _W([0, -1, 1.5, "3", None, True, 2]),
        "window": _W([0, 1, 2, 3, -8, (8,), "8", 1000, (8, 0), (4, 4), 8.5, None]),
        "overlap": _W([-1, 100, 0, 2, (1,), "x", 7]),
        "init_time": _W(["2020-01-01T01", "bogus", slice(None, None, 2), [],
                         np.datetime64("2019-01-01"), 3, slice("2020", "2019"),
                         [_GOOD.time.values[-1]] * 2]),
        "periodic": _W(["yes", (True,), (True, False), 1, None]),
        "units": _W([{"u": "bogus"}, {"x": "kg"}, "m/s", {"u": None}, {"zz": "m"}]),
        "u": _W(["nonexistent", "v", 3]), "fill": _W(["nan", None, "zero"]),
        "grid_rtol": _W([0, float("nan"), -1, 1e9, "1"]), "batch_size": _W([0, -1, 2.0, "4", 1]),
        "device": _W(["tpu", "cuda:9", 3, None, "cpu"]), "scalars": _W([["nope"], "u", []]),
        "out": _W(["x.txt", "/proc/nope/x.zarr", ""]), "resume": _W([True, "yes"]),
    }),
    "spectrum": st.fixed_dictionaries({}, optional={
        "detrend": _W(["quadratic", 1, "linear"]),
        "window": _W(["hann", "kaiser", ("tukey", 2.0), ("tukey",), 3, ("tukey", "a")]),
        "land": _W(["nan", 0, "rectangle"]), "convention": _W(["deg", None]),
        "length_units": _W(["kg", "km", None, 3, "bogus"]),
        "dk": _W([0, -1, float("nan"), "1", 1e-9, 1e9]), "x": _W(["time", "nope", "y"]),
        "u": _W(["v", "time", 3]), "units": _W(["m/s", {"x": "kg"}])}),
    "transform": st.fixed_dictionaries(
        {"kind": _W(["rot90", "rotate", "translate", "um", "uniform_motion", "magnitude", "mag",
                     "scale", "galilean", "nope", 3])},
        optional={"k": _W([1.5, "1", -1, 10**9, None]), "angle": _W([float("nan"), "30", 45]),
                  "shift": _W([(1,), (0.5, 1), "1", (10**6, 0), (1, 2)]),
                  "c": _W([(1,), "0", (float("inf"), 0), (1, 2, 3), (0.1, 0.2), None]),
                  "lam": _W([0, -1, float("nan"), "2", 1e-12, 2.0]),
                  "periodic": _W(["no", None]), "bogus": _W([1])}),
    "evaluate": st.fixed_dictionaries({}, optional={
        "metrics": _W([("nope",), "rmse", (), ("rmse", "rmse")]),
        "reference": _W(["nope", "persistence", 3]),
        "climatology": _W([_GOOD.isel(time=0), "x", _GOOD.u]), "time": _W(["nope", "x"]),
        "init_dim": _W(["nope", "x"]), "lead_dim": _W(["nope"]),
        "spectrum_kwargs": _W([{"nope": 1}, "x", {"window": "kaiser"}]),
        "u": _W(["nope", "v"])}),
    "fit": st.fixed_dictionaries({}, optional={
        "t_in": _W([0, -1, 100, 1.5, "2"]), "rollout_steps": _W([0, 100, "1"]),
        "epochs": _W([0, 1.5]), "batch_size": _W([0, 10**6]),
        "lr": _W([0, -1, float("nan"), float("inf")]),
        "val_fraction": _W([1.0, -0.1, 0.5, float("nan")]),
        "window": _W([0, 1, 100, (8,), "8", (2, 2)]), "stride": _W([0, -1, (1,), 100]),
        "augment": _W([("nope",), "rot90", ("scale",), ("magnitude",)]),
        "model_kwargs": _W([{"widths": ()}, {"widths": (0,)}, {"nope": 1}, {"widths": "4"}]),
        "size": _W(["huge", None]), "device": _W(["tpu", 3]),
        "fields_kwargs": _W([{"fill": "x"}, {"nope": 1}, "zero", {"units": "m/s"}]),
        "seed": _W([-1, 1.5, "0"]), "callbacks": _W([[3], "x"]), "gap": _W([-1, 100]),
        "patience": _W([0, -1]), "weight_decay": _W([-1.0]), "lr_decay": _W([0, 2.0])}),
}


def _call_with(name, model, tmp):
    if name == "forecast":
        def call(kw):
            kw = dict(kw)
            if kw.get("out"):
                kw["out"] = str(tmp / kw["out"]) if not kw["out"].startswith("/") else kw["out"]
            return forecast(_GOOD, model, progress=False, **kw)
    elif name == "spectrum":
        def call(kw):
            return spectrum(_GOOD, **kw)
    elif name == "transform":
        def call(kw):
            return transform(_GOOD, **kw)
    elif name == "evaluate":
        def call(kw):
            return evaluate(_FC, _GOOD, **kw)
    else:
        def call(kw):
            base = dict(t_in=1, rollout_steps=1, epochs=1, batch_size=2,
                        model_kwargs={"widths": (2,)}, val_fraction=0.0, window=8,
                        progress=False, device="cpu")
            return fit("resnet", _GOOD, **{**base, **kw})
    return call


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name,n", [("forecast", 120), ("spectrum", 60), ("transform", 120),
                                    ("evaluate", 40), ("fit", 60)])
def test_bad_arguments(name, n, model, tmp_path_factory):
    call = _call_with(name, model, tmp_path_factory.mktemp("args"))
    label = f"{name}(bad arguments)"

    @settings(max_examples=n, **_FUZZ)
    @given(kw=_ARGS[name])
    def run(kw):
        before = _GOOD.copy(deep=True)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                call(kw)
        except XequiError as err:
            OUTCOMES[label][type(err).__name__] += 1
            assert str(err).strip()
        except Exception as err:  # noqa: BLE001
            OUTCOMES[label]["UNEXPECTED " + type(err).__name__] += 1
            raise AssertionError(f"{name}(**{kw!r}) raised {type(err).__name__}: {err}") from err
        else:
            OUTCOMES[label]["ok"] += 1
        xr.testing.assert_identical(_GOOD, before)

    run()


def test_zz_report_counts():
    """Print how many generated cases each function saw and how they ended (pytest -s)."""
    total = sum(sum(c.values()) for c in OUTCOMES.values())
    for name, counts in sorted(OUTCOMES.items()):
        print(f"\n{name}: {sum(counts.values())} cases: {dict(counts)}")
    print(f"\nreliability fuzz: {total} calls")
    assert not any(k.startswith("UNEXPECTED") for c in OUTCOMES.values() for k in c)
