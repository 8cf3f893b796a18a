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
    for model in ("rot-resnet", "um-mag-rot-resnet", "resnet", "persistence"):
        assert f"original     {model} " in out and f"rotated 90°  {model} " in out
    assert "spectrum_error" in out
    # the skill section states plainly, per model, whether it beats persistence
    assert "skill against persistence" in out
    for model in ("rot-resnet", "um-mag-rot-resnet", "resnet"):
        assert any(line.strip().startswith(f"-> {model} ") and "persistence" in line
                   for line in out.splitlines()), model
    for name in ("fields.png", "spectra.png", "metrics.png"):
        assert (tmp_path / name).stat().st_size > 10_000
    fc = xr.open_zarr(tmp_path / "forecast.zarr")
    assert fc.sizes["lead_time"] == 10 and fc.attrs["model"] == "um-mag-rot-resnet"
    met = xr.open_dataset(tmp_path / "metrics.nc")
    rmse = met["velocity"].sel(metric="rmse")
    # the equivariant models score the same on the rotated copy; the plain ResNet does not
    for model in ("rot-resnet", "um-mag-rot-resnet"):
        a, b = (rmse.sel(model=model, data=d) for d in ("original", "rotated 90°"))
        np.testing.assert_allclose(b, a, rtol=1e-4)
    a, b = (float(rmse.sel(model="resnet", data=d).mean()) for d in ("original", "rotated 90°"))
    assert b > 1.2 * a


def test_train_forecast_evaluate_chain(tmp_path, capsys):
    data = tmp_path / "rbc.zarr"
    assert main(["simulate", "rbc", "--Ra", "1e4", "--nx", "32", "--ny", "16", "--frames", "30",
                 "--frame-interval", "0.5", "--spinup", "2", "--quiet", "--out", str(data)]) == 0
    model = tmp_path / "m.xequi"
    assert main(["train", "--data", str(data), "--variables", "u,v", "--model", "resnet",
                 "--t-in", "2", "--epochs", "1", "--batch-size", "4", "--window", "16",
                 "--device", "cpu", "--quiet", "--out", str(model)]) == 0
    fc = tmp_path / "f.zarr"
    assert main(["forecast", "--data", str(data), "--model", str(model), "--steps", "3",
                 "--init-time", "4.0..6.0", "--quiet", "--out", str(fc)]) == 0
    out = xr.open_zarr(fc)
    assert out.sizes["lead_time"] == 3 and out.sizes["init_time"] >= 2
    assert out["lead_time"].attrs["standard_name"] == "forecast_period"
    metrics = tmp_path / "metrics.nc"
    assert main(["evaluate", "--forecast", str(fc), "--data", str(data), "--persistence",
                 "--out", str(metrics)]) == 0
    met = xr.open_dataset(metrics)
    assert "rmse" in met["metric"].values.tolist()
    assert np.isfinite(met["velocity"].sel(metric="rmse")).all()
    # a scalar-only model of the temperature alone, and its forecast from the same data
    tmodel = tmp_path / "t.xequi"
    assert main(["train", "--data", str(data), "--scalars", "temperature", "--no-velocity",
                 "--model", "rot-resnet", "--t-in", "2", "--epochs", "1", "--batch-size", "4",
                 "--window", "16", "--device", "cpu", "--quiet", "--max-time", "600",
                 "--budget-clock", "cpu", "--out", str(tmodel)]) == 0
    from xequi.checkpoint import read_card

    assert read_card(tmodel)["training"]["budget"]["clock"] == "cpu"
    tfc = tmp_path / "t.zarr"
    assert main(["forecast", "--data", str(data), "--model", str(tmodel), "--steps", "2",
                 "--quiet", "--out", str(tfc)]) == 0
    tout = xr.open_zarr(tfc)
    assert list(tout.data_vars) == ["temperature"] and tout.sizes["lead_time"] == 2
    capsys.readouterr()
    assert main(["train", "--data", str(data), "--no-velocity", "--model", "resnet",
                 "--out", str(tmp_path / "x.xequi")]) == 2
    assert "--scalars" in capsys.readouterr().err
    # the forecast exists now: a second run without --overwrite is refused with one line
    capsys.readouterr()
    assert main(["forecast", "--data", str(data), "--model", str(model), "--steps", "3",
                 "--quiet", "--out", str(fc)]) == 2
    assert "overwrite" in capsys.readouterr().err


def test_input_errors_are_one_line(tmp_path, capsys):
    assert main(["forecast", "--data", str(tmp_path / "nope.zarr"), "--model", "resnet",
                 "--out", str(tmp_path / "f.zarr")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["forecast", "--entry", "no_such_entry", "--model", "resnet",
                 "--out", str(tmp_path / "f.zarr")]) == 2
    err = capsys.readouterr().err
    assert "no entry 'no_such_entry'" in err and err.count("\n") == 1


def test_progress_bars_are_not_redrawn_into_a_log(tmp_path, capfd):
    """Issue 16.8: ``make demo > log 2>&1`` filled the log with hundreds of kB of tqdm redraws;
    on a stream that is not a terminal (capfd's) a bar is drawn at its start and end only."""
    args = ["simulate", "rbc", "--Ra", "1e4", "--nx", "32", "--ny", "16", "--frames", "6",
            "--frame-interval", "0.5", "--spinup", "2", "--out", str(tmp_path / "a.zarr")]
    assert main(args) == 0  # progress on (no --quiet), as in the demo
    err = capfd.readouterr().err
    assert "rayleigh_benard" in err and err.count("\r") <= 3, (err.count("\r"), len(err))
