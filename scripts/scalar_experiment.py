"""Scalar-field experiment: forecast the Rayleigh–Bénard temperature *alone* with scalar-only models.

Trains a scalar-only ``rot-resnet`` and a scalar-only plain ``resnet`` (``xequi.train.fit`` on the
``temperature`` DataArray builds them with ``velocity=False``) on the first frames of the
built-in ``default`` Rayleigh–Bénard simulation, then forecasts the last frames with
``da.equi.forecast`` and scores the RMSE per lead time against persistence, on the test data and
on a 90-degree-rotated copy of them, plus the measured pipeline equivariance error
(``da.equi.equivariance_error``). One command::

    .venv/bin/python scripts/scalar_experiment.py            # defaults = the documented run

Writes ``--results-dir``/``scalar_temperature.md`` (the table and the command).
"""
from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
import warnings
from pathlib import Path

import numpy as np


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--models", nargs="+", default=["resnet", "rot-resnet"])
    p.add_argument("--train-frames", type=int, default=140, help="first frames for training")
    p.add_argument("--t-in", type=int, default=4)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--window", type=int, default=32)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--n-init", type=int, default=8, help="init times in the test frames")
    p.add_argument("--widths", type=int, nargs="+", default=None,
                   help="model widths (default: the registry's small preset)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--results-dir", type=Path, default=Path("docs/results"))
    return p.parse_args(argv)


def main(argv=None) -> int:
    import torch

    import xequi
    from xequi.train import fit

    args = parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    warnings.simplefilter("ignore", UserWarning)  # e2cnn's deprecation notices
    ds = xequi.catalog().rayleigh_benard(preset="default").read()  # the built-in default (cached)
    temp = ds["temperature"]
    train = temp.isel(time=slice(0, args.train_frames))
    test = temp.isel(time=slice(args.train_frames, None))
    last = test.sizes["time"] - args.steps - 1
    pos = np.linspace(args.t_in - 1, last, args.n_init).round().astype(int)
    inits = test.time.values[pos]
    rotated = test.equi.transform("rot90", k=1)

    rows, eq = {}, {}
    t0 = time.perf_counter()
    for name in args.models:
        model, hist = fit(name, train, t_in=args.t_in, epochs=args.epochs, window=args.window,
                          batch_size=16, seed=args.seed, progress=False,
                          model_kwargs={"widths": args.widths} if args.widths else None)
        for label, da in (("original", test), ("rotated 90°", rotated)):
            fc = da.equi.forecast(model, steps=args.steps, init_time=inits, progress=False)
            ev = fc.equi.evaluate(da, metrics=["rmse"], reference="persistence")
            score = ev["temperature"].sel(metric="rmse")
            rows[(name, label)] = score.sel(model="forecast").values
            rows[("persistence", label)] = score.sel(model="persistence").values
        err = test.equi.equivariance_error(model, "rot90", k=1, steps=args.steps,
                                           init_time=inits[:2])
        eq[name] = float(err.max())
        print(f"{name}: best epoch {hist['best_epoch']}, val loss {hist['best_val_loss']:.4g}, "
              f"rot90 equivariance error {eq[name]:.2e}", flush=True)
    wall = time.perf_counter() - t0

    leads = [1, args.steps // 2, args.steps]
    head = "| model | test data | " + " | ".join(f"RMSE lead {k}" for k in leads) + \
        " | mean RMSE | rot90 equivariance error |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for (name, label), r in sorted(rows.items(), key=lambda kv: kv[0][0] == "persistence"):
        cells = " | ".join(f"{r[k - 1]:.4f}" for k in leads)
        e = f"{eq[name]:.1e}" if name in eq else "–"
        lines.append(f"| {name} | {label} | {cells} | {r.mean():.4f} | {e} |")
    table = "\n".join(lines)
    print(table)
    pers = rows[("persistence", "original")].mean()
    verdict = []
    for name in args.models:
        m = rows[(name, "original")].mean()
        verdict.append(f"`{name}` {'beats' if m < pers else 'does not beat'} persistence on the "
                       f"original test data (mean RMSE {m:.4f} vs {pers:.4f})")
    verdict = "; ".join(verdict) + "."
    ratios = ", ".join(f"`{name}` {rows[(name, 'rotated 90°')].mean() / rows[(name, 'original')].mean():.3f}"
                       f" (equivariance error {eq[name]:.1e})" for name in args.models)
    machine = (f"{platform.machine()} CPU, {os.cpu_count()} cores, torch "
               f"{torch.__version__}" if not torch.cuda.is_available() else
               torch.cuda.get_device_name())
    cmd = "python scripts/scalar_experiment.py " + " ".join(map(shlex.quote, argv or sys.argv[1:]))
    text = f"""# Scalar field alone: Rayleigh–Bénard temperature

Scalar-only models (`velocity=False`: one channel, the temperature; no u, v) trained with
`xequi.train.fit(name, temperature_dataarray)` on the first {args.train_frames} frames of the
built-in `default` simulation (Ra = 1e6, 128 × 64, frame interval 0.5 free-fall times),
forecast with `temperature.equi.forecast(model, steps={args.steps})` from {args.n_init} init
times in the remaining frames and scored with `forecast.equi.evaluate(temperature,
reference="persistence")`: RMSE in the temperature's units (non-dimensional, ΔT = 1), pooled
over init times; "rotated 90°" is the test data rotated with `.equi.transform("rot90", k=1)`
(the grid becomes 64 × 128). The equivariance error is `da.equi.equivariance_error(model,
"rot90", k=1)` over the whole pipeline (max over lead times). {args.epochs} epochs,
window {args.window}, t_in {args.t_in}; {wall:.0f} s wall time on {machine}.

{table}

Mean RMSE on the rotated copy divided by mean RMSE on the original data: {ratios}. A model
that is exactly rotation-equivariant scores the same on both; one that has seen only upright
convection need not. Gravity makes real convection not rotation-invariant: the rotated set
measures generalization of the model, not physics.

At this (CPU) training budget {verdict} The temperature alone, without the velocity that advects it, is a hard input
for a next-frame model; the velocity models of [generalization.md](generalization.md) see u, v
as well.

Produced by `{cmd.strip()}`.
"""
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / "scalar_temperature.md"
    out.write_text(text)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
