"""Smoke test of scripts/ocean_experiment.py: tiny models, 1 epoch, January 2002 only."""
from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

import pytest

from conftest import load_script

ROOT = Path(__file__).resolve().parents[1]


def _gc_dir() -> Path:
    env = os.environ.get("XEQUI_GLOBCURRENT_DIR", "").strip()
    path = Path(env) if env else (ROOT / ".." / "shared" / "data" / "globcurrent_agulhas_2002").resolve()
    if not path.is_dir() or not list(path.glob("200201*.nc")):
        raise FileNotFoundError(
            f"GlobCurrent test data not found at {path}: set XEQUI_GLOBCURRENT_DIR to the folder "
            "of the GlobCurrent Agulhas 2002 files, or put shared/ beside the clone.")
    return path


@pytest.fixture(scope="module")
def experiment():
    return load_script("scripts/ocean_experiment.py")


@pytest.fixture(scope="module")
def run(experiment, tmp_path_factory):
    import torch

    threads = torch.get_num_threads()
    tmp = tmp_path_factory.mktemp("ocean_experiment")
    argv = ["--data", str(_gc_dir() / "200201*.nc"),
            "--train-period", "2002-01-01:2002-01-20", "--test-period", "2002-01-21:2002-01-31",
            "--models", "resnet", "rot-resnet", "--t-in", "2", "--rollout-steps", "2",
            "--epochs", "1", "--widths", "4", "--lead-days", "2", "--init-every", "4",
            "--out-dir", str(tmp / "build"), "--results-dir", str(tmp / "results")]
    try:
        out = experiment.main(argv)
    finally:
        torch.set_num_threads(threads)
    return tmp, argv, out


def test_outputs_written(run):
    tmp, _, _ = run
    res = tmp / "results"
    for name in ("ocean.md", "ocean_metrics.csv", "ocean_rmse.png", "ocean_fields.png"):
        assert (res / name).is_file() and (res / name).stat().st_size > 0, name
    for m in ("resnet", "rot-resnet"):
        d = tmp / "build" / m
        assert (d / "model.xequi").is_file()
        info = json.loads((d / "train.json").read_text())
        assert info["epochs_run"] == 1 and info["parameters"] > 0
        assert (d / "metrics_original.nc").is_file() and (d / "metrics_rot90.nc").is_file()


def test_csv_layout(run, experiment):
    tmp, _, _ = run
    with open(tmp / "results" / "ocean_metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0].keys()) == experiment.CSV_FIELDS
    keys = {(r["model"], r["test_set"], int(r["lead_day"])) for r in rows}
    for m in ("resnet", "rot-resnet", "persistence"):
        for s in ("original", "rot90"):
            assert {(m, s, 1), (m, s, 2)} <= keys
    assert len(rows) == len(keys) == 3 * 2 * 2        # persistence once per test set
    vals = {k: r for k, r in zip(((r["model"], r["test_set"], int(r["lead_day"])) for r in rows), rows)}
    for r in rows:
        assert 0 < float(r["rmse_m_s-1"]) < 5 and float(r["spectrum_error_log10"]) >= 0
    # persistence RMSE does not depend on the index rotation (same values, permuted)
    p0, p1 = (float(vals[("persistence", s, 1)]["rmse_m_s-1"]) for s in ("original", "rot90"))
    assert p1 == pytest.approx(p0, rel=1e-4)
    # the C4 model is exactly equivariant to the 90-degree index rotation (land zero is invariant)
    r0, r1 = (float(vals[("rot-resnet", s, 1)]["rmse_m_s-1"]) for s in ("original", "rot90"))
    assert r1 == pytest.approx(r0, rel=1e-3)


def test_markdown_layout(run):
    tmp, argv, _ = run
    md = (tmp / "results" / "ocean.md").read_text()
    for heading in ("## How it was produced", "## Models", "## RMSE (m s-1) per lead time",
                    "## Kinetic-energy spectrum error", "## Does the model beat persistence at day 1?",
                    "## 90-degree rotated test data"):
        assert heading in md
    assert "--epochs 1" in md and "land" in md and "rectangle" in md
    lines = md.splitlines()
    i = lines.index(next(l for l in lines if l.startswith("## RMSE")))
    table = lines[i + 2:i + 7]
    assert table[0] == "| model | day 1 | day 2 |"
    assert [l.split("|")[1].strip() for l in table[2:5]] == ["resnet", "rot-resnet", "persistence"]


def test_resume_uses_cache(run, experiment):
    tmp, argv, out = run
    import torch

    threads = torch.get_num_threads()
    before = (tmp / "build" / "resnet" / "model.xequi").stat().st_mtime_ns
    t0 = time.perf_counter()
    try:
        again = experiment.main(argv + ["--no-figures"])
    finally:
        torch.set_num_threads(threads)
    assert (tmp / "build" / "resnet" / "model.xequi").stat().st_mtime_ns == before
    assert again["rows"] == out["rows"]
    assert time.perf_counter() - t0 < 15
    with pytest.raises(SystemExit, match="other settings"):
        experiment.main(argv[:-2] + ["--results-dir", str(tmp / "r2"), "--lead-days", "3"])
