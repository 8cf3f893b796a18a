import subprocess
import sys

import numpy as np
import xarray as xr

from xequi.cli import main


def test_simulate_writes_zarr_and_netcdf(tmp_path):
    args = ["simulate", "rbc", "--Ra", "1e4", "--nx", "32", "--ny", "16", "--frames", "3",
            "--frame-interval", "0.5", "--spinup", "1", "--quiet"]
    assert main(args + ["--out", str(tmp_path / "a.zarr")]) == 0
    assert main(args + ["--out", str(tmp_path / "a.nc")]) == 0
    z = xr.open_zarr(tmp_path / "a.zarr")
    n = xr.open_dataset(tmp_path / "a.nc")
    assert z.sizes == {"time": 3, "y": 16, "x": 32}
    np.testing.assert_array_equal(z["u"].values, n["u"].values)


def test_bad_input_is_one_line_and_nonzero(tmp_path, capsys):
    code = main(["simulate", "rbc", "--Ra", "-5", "--out", str(tmp_path / "a.zarr"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("xequi: error:") and "Ra" in err
    assert not (tmp_path / "a.zarr").exists()


def test_existing_output_refused(tmp_path, capsys):
    (tmp_path / "a.zarr").mkdir()
    args = ["simulate", "rbc", "--Ra", "1e4", "--nx", "32", "--ny", "16", "--frames", "2",
            "--spinup", "0.5", "--quiet", "--out", str(tmp_path / "a.zarr")]
    assert main(args) == 2
    assert "overwrite" in capsys.readouterr().err


def test_help_and_entry_point():
    out = subprocess.run([sys.executable, "-m", "xequi.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "simulate" in out.stdout and "demo" in out.stdout


def test_demo_runs_on_the_default(rbc_default, tmp_path, capsys):
    assert main(["demo", "--out-dir", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Nusselt" in out and "Ra = 1e+06" in out
    assert (tmp_path / "rayleigh_benard.zarr").exists()
