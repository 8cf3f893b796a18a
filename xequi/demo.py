"""The demo job run by ``make demo`` / ``xequi demo`` on the built-in default data.

It opens the catalog's Rayleigh–Bénard entry (simulated on first use, then cached), forecasts 10
steps from several initial times in the held-out last 15 % of the record with the shipped
rotation-equivariant models (``um-mag-rot-resnet``: Rot + UM + Mag; ``rot-resnet``) and the plain
``resnet``, on the original data and on a copy rotated by 90 degrees (grid and vectors,
:func:`xequi.symmetry.transform`), scores them against the truth and persistence, prints the
table, writes ``forecast.zarr`` and the figures.
"""

from __future__ import annotations

import time
from pathlib import Path

__all__ = ["run_demo"]

#: shipped models compared by the demo
DEMO_MODELS = ("um-mag-rot-resnet", "rot-resnet", "resnet")
#: fraction of the record at its end that the shipped models never saw (scripts/train_pretrained.py)
TEST_FRACTION = 0.15


def _init_times(ds, t_in: int, steps: int, n: int = 4):
    """``n`` initial times in the held-out test part, each with ``steps`` frames of truth after it."""
    import numpy as np

    nt = ds.sizes["time"]
    first = max(int(round(nt * (1 - TEST_FRACTION))) + t_in - 1, t_in - 1)
    last = nt - 1 - steps
    idx = np.unique(np.linspace(first, last, n).round().astype(int))
    return list(ds["time"].values[idx])


def run_demo(out_dir: str | Path = "demo-output", progress: bool = True, steps: int = 10) -> dict:
    """Forecast the default Rayleigh–Bénard data with a Rot model and a plain ResNet; score; plot.

    Parameters
    ----------
    out_dir : str or path-like
        Directory for the outputs (created if needed): ``forecast.zarr`` (the first model's
        forecast of the original data), ``metrics.nc``, ``fields.png``, ``spectra.png``,
        ``metrics.png``.
    progress : bool
        Show progress bars.
    steps : int
        Forecast length in frames.

    Returns
    -------
    dict
        ``{"metrics": Dataset (data, model, metric, lead_time), "paths": {...}, "seconds": float}``.

    Raises
    ------
    ModelError
        The shipped ``um-mag-rot-resnet``, ``rot-resnet`` or ``resnet`` weights are missing
        from this installation.
    ParameterError
        ``steps`` not a positive integer (from :func:`xequi.forecast.forecast`).
    OSError
        ``out_dir`` cannot be created.

    Examples
    --------
    Takes about a minute on a laptop CPU (the first call also simulates the data, ~35 s), so it is
    not run as a doctest; ``xequi demo`` on the command line does the same:

    >>> result = run_demo("demo-output", progress=False)  # doctest: +SKIP
    >>> sorted(result["paths"])  # doctest: +SKIP
    ['fields', 'forecast', 'metrics', 'metrics_plot', 'spectra']
    """
    from xequi.catalog import catalog
    from xequi.checkpoint import load_model
    from xequi.io import write_dataset
    from xequi.symmetry import transform

    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ds = catalog().rayleigh_benard(preset="default").read()[["u", "v"]]
    models = {name: load_model(name) for name in DEMO_MODELS}
    t_in = max(int(m.card["t_in"]) for m in models.values())
    inits = _init_times(ds, t_in, steps)
    rotated = transform(ds, "rot90", k=1)
    datasets = {"original": (ds, (False, True)), "rotated 90°": (rotated, (True, False))}
    print("xequi demo: 2-D Rayleigh–Bénard convection (catalog entry 'rayleigh_benard', preset "
          f"'default', {dict(ds.sizes)}), {steps}-step forecasts from {len(inits)} initial times "
          "in the held-out last 15% of the record")
    metrics, forecasts = _forecast_and_score(datasets, models, inits, steps, progress)
    fc_path = write_dataset(forecasts[("original", DEMO_MODELS[0])], out / "forecast.zarr",
                            overwrite=True)
    met_path = write_dataset(metrics.drop_attrs() if hasattr(metrics, "drop_attrs") else metrics,
                             out / "metrics.nc", overwrite=True)
    _print_table(metrics, ds, len(inits))
    skill = _print_skill(datasets, forecasts)
    _print_sharpness(ds, forecasts)
    paths = {"forecast": str(fc_path), "metrics": str(met_path)}
    paths.update(_draw_figures(ds, forecasts, metrics, inits[0], out))
    seconds = time.perf_counter() - t0
    print(f"\nwrote {', '.join(paths.values())}")
    print(f"demo finished in {seconds:.1f} s")
    return {"metrics": metrics, "skill": skill, "paths": paths, "seconds": seconds}


def _verdict(sk) -> str:
    """One plain sentence: does the model beat the reference at every lead, at some, or none?"""
    ref = sk.attrs.get("reference", "persistence")
    above = (sk["ci_low"] > 0).values
    below = (sk["ci_high"] < 0).values
    n = len(above)
    if above.all():
        return f"beats {ref} at every lead (all {n} intervals above 0)"
    if below.all():
        return f"LOSES to {ref} at every lead (all {n} intervals below 0)"
    return (f"beats {ref} at {int(above.sum())} of {n} leads, loses at {int(below.sum())}, "
            f"undecided at {n - int(above.sum()) - int(below.sum())}")


def _print_skill(datasets: dict, forecasts: dict) -> dict:
    """Skill against persistence (1 - RMSE / RMSE_persistence) per model with paired-bootstrap
    95% intervals over the initial times, and a plain verdict per model and dataset."""
    from xequi.skill import skill

    out = {}
    print("\nskill against persistence, 1 - RMSE/RMSE_persistence (velocity), 95% paired-bootstrap "
          "interval over the initial times (few init times: rough intervals):")
    for data_name, (data, _) in datasets.items():
        for name in DEMO_MODELS:
            sk = skill(forecasts[(data_name, name)], data, reference="persistence",
                       variables=["velocity"], n_boot=1000, seed=0)
            out[(data_name, name)] = sk
            leads = [0, 1, 4, sk.sizes["lead_time"] - 1] if sk.sizes["lead_time"] > 4 \
                else list(range(sk.sizes["lead_time"]))
            cells = "  ".join(f"{float(sk['skill'][i]):+.2f} [{float(sk['ci_low'][i]):+.2f}, "
                              f"{float(sk['ci_high'][i]):+.2f}]" for i in leads)
            print(f"{data_name:<13}{name:<19}{cells}")
            print(f"{'':<13}{'':<19}-> {name} {_verdict(sk)}")
    return out


def _print_sharpness(ds, forecasts: dict) -> None:
    """Original data: effective resolution (wavelength in cells down to which the KE spectrum
    stays within a factor 2 of the truth's; the truth's own is the resolved band's end), the
    spectrum error over the resolved band against persistence's, and the wall-row error over
    the interior's (the no-slip plates), at the lead times of the tables."""
    from xequi.skill import band_spectrum_error, effective_resolution, wall_error_ratio

    pers = forecasts[("original", "persistence")]
    truth_cells = effective_resolution(pers, ds).attrs["band_end_cells"]
    pers_err = band_spectrum_error(pers, ds)
    n = pers.sizes["lead_time"]
    show = [0, 1, 4, n - 1] if n > 4 else list(range(n))
    print(f"\nsharpness and walls (original data; {pers_err.attrs['band'].split(' (')[0]}; "
          f"the truth's effective resolution {truth_cells:.2f} cells):")
    for name in DEMO_MODELS:
        fc = forecasts[("original", name)]
        cells = effective_resolution(fc, ds).n_cells.values
        err = band_spectrum_error(fc, ds).values
        wall = wall_error_ratio(fc, ds).values
        print(f"{name:<19}eff. res. (cells) " + " ".join(f"{cells[i]:5.2f}" for i in show)
              + " | spectrum err (persistence) " + " ".join(
                  f"{err[i]:.2f} ({float(pers_err[i]):.2f})" for i in show)
              + " | wall/interior RMSE " + " ".join(f"{wall[i]:.2f}" for i in show))


def _forecast_and_score(datasets: dict, models: dict, inits, steps: int, progress: bool):
    """Every model's forecast (and persistence) of every dataset, scored against it.

    Returns the metrics ``(data, model, metric, lead_time)`` and the forecasts keyed by
    ``(data name, model name)``.
    """
    import xarray as xr

    from xequi.diagnostics import evaluate, persistence_forecast
    from xequi.forecast import forecast

    tables, forecasts = [], {}
    for data_name, (data, periodic) in datasets.items():
        per_model = []
        for name, model in models.items():
            fc = forecast(data, model, steps=steps, init_time=inits, periodic=periodic,
                          progress=progress)
            forecasts[(data_name, name)] = fc
            per_model.append(evaluate(fc, data, metrics=("rmse", "spectrum_error"))
                             .expand_dims(model=[name]))
        pers = persistence_forecast(data, inits, steps=steps)
        forecasts[(data_name, "persistence")] = pers
        per_model.append(evaluate(pers, data, metrics=("rmse", "spectrum_error"))
                         .expand_dims(model=["persistence"]))
        tables.append(xr.concat(per_model, "model", coords="minimal", compat="override")
                      .expand_dims(data=[data_name]))
    return xr.concat(tables, "data", coords="minimal", compat="override"), forecasts


def _print_table(metrics, ds, n_inits: int) -> None:
    """The velocity RMSE and spectrum error at a few lead times, and each model's RMSE ratio
    between the rotated and the original data."""
    import numpy as np

    lead = metrics["lead_time"].values
    lead_txt = [f"{float(v):g}" if np.issubdtype(np.asarray(v).dtype, np.number) else str(v)
                for v in lead]
    show = [0, 1, 4, len(lead) - 1] if len(lead) > 4 else list(range(len(lead)))
    print(f"\nvelocity RMSE and kinetic-energy spectrum error (RMSE of log10 E(k)) by lead time "
          f"(time units of the data: {ds['time'].attrs.get('units', '?')}), mean over "
          f"{n_inits} initial times:")
    header = f"{'data':<13}{'model':<19}{'metric':<16}" + "".join(f"{lead_txt[i]:>9}" for i in show)
    print(header)
    print("-" * len(header))
    for data_name in metrics["data"].values:
        for name in metrics["model"].values:
            for metric in ("rmse", "spectrum_error"):
                vals = metrics["velocity"].sel(data=data_name, model=name, metric=metric).values
                print(f"{str(data_name):<13}{str(name):<19}{metric:<16}"
                      + "".join(f"{vals[i]:9.4f}" for i in show))
    rmse = metrics["velocity"].sel(metric="rmse")
    for name in DEMO_MODELS:
        a = float(rmse.sel(data="original", model=name).mean())
        b = float(rmse.sel(data="rotated 90°", model=name).mean())
        print(f"{name}: mean RMSE {a:.4f} on the original data, {b:.4f} on the rotated copy "
              f"(ratio {b / a:.2f})")


def _draw_figures(ds, forecasts: dict, metrics, init0, out: Path) -> dict[str, str]:
    """Field maps, spectra (from ``init0``, original data) and metric curves; their paths."""
    from xequi import plot
    from xequi.diagnostics import spectrum

    lead = metrics["lead_time"].values
    fc_main = forecasts[("original", DEMO_MODELS[0])]
    truth_frames = ds.sel(time=fc_main["valid_time"].sel(init_time=init0).values)
    truth_fc = truth_frames.rename(time="lead_time").assign_coords(lead_time=fc_main["lead_time"].values)
    picks = list(fc_main["lead_time"].values[[0, len(lead) // 2, len(lead) - 1]])
    paths = {"fields": str(out / "fields.png")}
    plot.fields(ds, fc_main, lead_times=picks, variable="speed", init_time=init0,
                save=paths["fields"])
    spec = {"truth": spectrum(truth_fc)}
    for name in DEMO_MODELS:
        spec[name] = spectrum(forecasts[("original", name)].sel(init_time=init0))
    paths["spectra"] = str(out / "spectra.png")
    plot.spectra(spec, lead_times=picks, save=paths["spectra"])
    paths["metrics_plot"] = str(out / "metrics.png")
    plot.metrics({f"{m} ({d})": metrics.sel(data=d, model=m) for d in metrics["data"].values
                  for m in metrics["model"].values}, metric="rmse", save=paths["metrics_plot"])
    return paths
