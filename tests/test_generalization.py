"""Smoke test of ``benchmarks/generalization.py`` (the paper's generalization experiment).

Tiny data (``--quick``: a small RBC run, 32 x 32 tiles, t_in 2, 1 epoch), two models, outputs in
a temporary directory: checks the files, the table layout, the CSV rows, resuming from the
per-model result cache, and that the transformed test sets really are transformed.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from conftest import load_script


@pytest.fixture(scope="module")
def gen():
    return load_script("benchmarks/generalization.py", "xequi_bench_generalization")


@pytest.fixture(scope="module")
def run(gen, tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("generalization")
    out, work = tmp / "out", tmp / "work"
    argv = ["--quick", "--models", "resnet,um-resnet", "--out", str(out), "--work", str(work)]
    assert gen.main(argv) == 0
    return gen, argv, out, work


def test_outputs_and_table_layout(run):
    gen, _, out, _ = run
    md = (out / "generalization.md").read_text()
    sets = list(gen.RBC_SETS)
    header = "| model | params | MMAC / tile | " + " | ".join(sets) + " |"
    assert md.count(header) == 2  # RMSE and ESE tables
    for section in ("## RMSE", "## ESE", "## Training", "## Findings"):
        assert section in md
    assert "python benchmarks/generalization.py --quick" in md
    rows = [ln for ln in md.splitlines() if ln.startswith("| resnet |") or ln.startswith("| um-resnet |")]
    assert len(rows) == 6  # 2 models x (RMSE, ESE, training)
    for ln in rows[:2]:
        assert len(ln.strip("|").split("|")) == 3 + len(sets)
    assert "`um-resnet` on its symmetry's set `um`" in md
    assert "plain `resnet` RMSE relative to `original`" in md
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert "generalization_spectra.png" in pngs
    assert any("fields_resnet_rot" in p for p in pngs)
    assert all((out / p).stat().st_size < 200_000 for p in pngs)


def test_csv_rows(run):
    gen, _, out, _ = run
    with open(out / "generalization.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * len(gen.RBC_SETS)
    assert {r["model"] for r in rows} == {"resnet", "um-resnet"}
    for r in rows:
        assert float(r["rmse"]) > 0 and np.isfinite(float(r["ese"]))
        assert int(r["params"]) > 0 and float(r["macs"]) > 0
    # the UM model is exactly UM-equivariant: same RMSE on the UM set as on the original
    um = {r["test_set"]: float(r["rmse"]) for r in rows if r["model"] == "um-resnet"}
    assert um["um"] == pytest.approx(um["original"], rel=1e-3)


def test_resume_uses_cached_results(run, capsys):
    gen, argv, _, work = run
    before = {p.name: p.stat().st_mtime_ns for p in (work / "results").glob("*.json")}
    assert gen.main(argv + ["--no-figures"]) == 0
    assert "cached result" in capsys.readouterr().out
    after = {p.name: p.stat().st_mtime_ns for p in (work / "results").glob("*.json")}
    assert before == after
    r = json.loads((work / "results" / "resnet-seed0.json").read_text())
    assert r["best_epoch"] == 1 and set(r["metrics"]) == set(gen.RBC_SETS)


def test_test_sets_are_transformed(gen):
    import xarray as xr

    a = gen.parse_args(["--quick"])
    rng = np.random.default_rng(0)
    T, nt = a.tile, 20
    t = np.arange(nt) * 0.4
    data = rng.standard_normal((nt, T, 2 * T)).astype("float32")
    attrs = {"units": "1"}
    ds = xr.Dataset({"u": (("time", "y", "x"), data, {**attrs, "standard_name": "sea_water_x_velocity"}),
                     "v": (("time", "y", "x"), -data, {**attrs, "standard_name": "sea_water_y_velocity"})},
                    coords={"time": ("time", t, {"units": "1", "axis": "T"}),
                            "y": ("y", (np.arange(T) + 0.5) / T, {"units": "1", "axis": "Y"}),
                            "x": ("x", np.arange(2 * T) / T, {"units": "1", "axis": "X"})})
    samples = gen.test_samples(a, ds, range(0, nt), 2)
    assert len(samples) == 4
    orig, inits, _ = gen.build_test_set(a, ds, samples, None, 1.0, np.random.default_rng(1))
    rot, inits_r, prm = gen.build_test_set(a, ds, samples, "rot90", 1.0, np.random.default_rng(1))
    L = a.t_in + a.steps
    assert orig.sizes["time"] == rot.sizes["time"] == 4 * L and inits == inits_r
    assert all(p["k"] in (1, 2, 3) for p in prm)
    # every rotated sample differs from its original (defect 1 of the released code) and is the
    # exact rotation of it (grid and vector, no quantization)
    from xequi.symmetry import rot90
    import torch

    for n, p in enumerate(prm):
        sl = slice(n * L, (n + 1) * L)
        o = np.stack([orig.u.values[sl], orig.v.values[sl]], 1)[:, :, ::-1]  # model frame: y flipped
        r = np.stack([rot.u.values[sl], rot.v.values[sl]], 1)[:, :, ::-1]
        assert not np.allclose(o, r)
        np.testing.assert_array_equal(rot90(torch.from_numpy(o.copy()), p["k"]).numpy(), r)
    mag, _, pm = gen.build_test_set(a, ds, samples, "magnitude", 1.0, np.random.default_rng(2))
    lam = pm[0]["lam"]
    np.testing.assert_allclose(mag.u.values[:L], lam * orig.u.values[:L], rtol=1e-6)
    um, _, pu = gen.build_test_set(a, ds, samples, "uniform_motion", 0.3, np.random.default_rng(3))
    assert all(abs(c) <= 0.6 for p in pu for c in p["c"])
    np.testing.assert_allclose(um.u.values[:L] - orig.u.values[:L], pu[0]["c"][0], atol=1e-6)
