"""Train the pretrained models shipped in ``xequi/pretrained/`` (one ``<name>.xequi`` per model).

Data: 2-D Rayleigh–Bénard convection from :func:`xequi.datasets.rayleigh_benard`, velocity only
(u, v), as in Wang, Walters & Yu (ICLR 2021). The time axis is split into a fitting part (the
first 85 %, itself split by :func:`xequi.train.fit` into training and validation, 80/20) and a
held-out test part (the last 15 %), on which a 10-step rollout RMSE (square root taken: defect 2
of the paper's code) and the persistence baseline's RMSE are computed and recorded in the model
card (``metrics.test``). ``--recipe default`` (the default) trains with :func:`xequi.train.fit`'s
own defaults: increment prediction, AdamW, warmup + cosine decay over the budget (``--epochs``
and/or ``--max-time`` seconds per model), gradient clipping, a rollout curriculum up to 3 steps,
validation by rollout RMSE, the divergence guard; ``--noise`` adds input noise. ``--recipe paper``
follows the paper: rollout loss over 3 steps, Adam (weight decay 4e-4), learning rate 1e-3 (5e-3
for Mag models, 1e-4 for Scale models) × 0.95 per epoch, batch 16, up to 100 epochs with early
stopping (patience 10), best-validation weights kept, 64 × 64 windows. The small width presets are shipped (the whole set stays far below
20 MB); ``--size paper`` trains the paper's widths (tens of MB each: not for shipping).

Every model is trained with ``checkpoint_dir=<work-dir>/<preset>/<model>``, so an interrupted
run resumes where it stopped when started again with the same arguments.

Usage
-----
Smoke test (tiny data, 2 small models, 2 epochs; about 1.5 minutes on 2 busy CPU cores; writes
to build/pretrained-quick)::

    python scripts/train_pretrained.py --quick

The shipped weights (paper-like data: simulated once and cached, then every default model)::

    python scripts/train_pretrained.py --preset paper --device auto

See ``--help`` for the options (``--models``, ``--epochs``, ``--t-in``, ``--out-dir``, ...).

Expected cost (measured 2026-11-27, small presets, t_in = 24, batch 16, 64 x 64 windows)
-----------------------------------------------------------------------------------------
Per training batch (3-step rollout, forward + backward), NVIDIA H200, fp32: resnet 15 ms, unet
17 ms, um-resnet 17 ms, mag-resnet 21 ms, rot-resnet 47 ms, rot-unet 58 ms, um-mag-rot-resnet
61 ms, um-mag-rot-unet 75 ms (bf16 autocast is not faster at these widths); the window loader
adds about 20 ms per batch. On one busy CPU core: about 1.3-1.6 s per batch (resnet, unet,
rot-resnet). An epoch on the ``paper`` preset is about 630 batch-equivalents (584 training + the
validation forward passes), on the ``default`` preset about 15.

* ``--preset paper`` on a GPU: ~30 min to simulate the data on 2 CPU cores (cached, once), then
  ~20 s (plain) to ~60 s (rotation) per epoch and model: at most ~7.5 h for the 7 trainable default
  models at 100 epochs, less with early stopping. Not practical on a CPU (~15 min per epoch).
* ``--preset default`` on a GPU: ~40 s simulation + ~1-3 s per epoch and model (~15 min in all);
  on 2 CPU cores about 20-25 s per epoch and model (~5 h for 8 models at 100 epochs).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

#: trained by default (``--models all`` trains every registered model)
DEFAULT_MODELS = ("resnet", "unet", "um-resnet", "mag-resnet", "rot-resnet", "rot-unet", "scale-resnet",
                  "um-mag-rot-resnet")
QUICK_MODELS = ("resnet", "rot-resnet")
#: the simulation of --quick: small, resolved (ny >= 6 Nu), about 10-20 s on 2 CPU cores
QUICK_SIM = dict(Ra=1e5, aspect=2.0, nx=64, ny=32, spinup=20.0, frames=60, frame_interval=0.5, seed=0)
TEST_FRACTION = 0.15
TEST_STEPS = 10


def paper_lr(name: str) -> float:
    """The paper's learning rates: 5e-3 for Mag models, 1e-4 for Scale models, else 1e-3."""
    if "scale" in name:
        return 1e-4
    if "mag" in name:
        return 5e-3
    return 1e-3


def test_metrics(model, frame, start: int, steps: int, device, batch: int = 8) -> dict:
    """RMSE per lead time of a ``steps``-frame rollout from every ``steps``-th test start."""
    import numpy as np
    import torch

    from xequi.models import rollout

    values = frame.values  # (time, channel, y, x), physical units
    t_in = model.config["t_in"]
    # histories may reach back before `start`; every predicted frame lies in the test part
    starts = list(range(start - t_in, values.shape[0] - t_in - steps + 1, steps))
    if not starts:
        return {"note": f"test part too short for t_in={t_in} + {steps} steps"}
    se = np.zeros(steps)
    se_persist = np.zeros(steps)
    n = 0
    model = model.to(device).eval()
    with torch.no_grad():
        for i in range(0, len(starts), batch):
            chunk = starts[i:i + batch]
            x = torch.from_numpy(np.stack([values[s:s + t_in] for s in chunk])).to(device)
            y = np.stack([values[s + t_in:s + t_in + steps] for s in chunk])
            pred = rollout(model, x, steps).float().cpu().numpy()
            se += ((pred - y) ** 2).mean(axis=(0, 2, 3, 4)) * len(chunk)
            se_persist += ((x[:, -1:].cpu().numpy() - y) ** 2).mean(axis=(0, 2, 3, 4)) * len(chunk)
            n += len(chunk)
    rmse = np.sqrt(se / n)
    rmse_p = np.sqrt(se_persist / n)
    return {
        "rmse": [float(v) for v in rmse],
        "rmse_mean": float(np.sqrt((se / n).mean())),
        "persistence_rmse": [float(v) for v in rmse_p],
        "persistence_rmse_mean": float(np.sqrt((se_persist / n).mean())),
        "rollout_steps": steps,
        "n_initial_times": n,
        "time_index": [start, int(values.shape[0])],
        "note": "predicted frames all lie in the held-out test part (histories may precede it)",
        "definition": "sqrt(mean over samples, channels and grid of the squared error) per lead "
                      "time, in the channels' units; *_mean over all predicted frames",
    }


def skill_verdict(test: dict) -> dict:
    """Skill against persistence per lead (1 - RMSE / RMSE of persistence) of a card's
    ``metrics.test`` and a plain sentence saying whether the model beats persistence."""
    r, p = test.get("rmse"), test.get("persistence_rmse")
    if not r or not p:
        return {}
    skill = [1.0 - a / b for a, b in zip(r, p)]
    losing = [i + 1 for i, v in enumerate(skill) if v < 0]
    n = test.get("n_initial_times", "?")
    text = (f"beats persistence at every lead of the {len(skill)}-step test rollout "
            f"({n} initial times, point estimates)" if not losing else
            f"LOSES to persistence at lead(s) {losing} of the {len(skill)}-step test rollout "
            f"({n} initial times, point estimates): its RMSE is above persistence's there")
    return {"skill_vs_persistence": [round(v, 3) for v in skill], "verdict": text}


def annotate(names, out_dir) -> None:
    """Add the skill verdict to the cards of already trained checkpoints (weights unchanged)."""
    from xequi import checkpoint

    for name in names:
        path = out_dir / f"{name}{checkpoint.SUFFIX}"
        if not path.exists():
            continue
        model = checkpoint.load_model(path)
        metrics = dict(model.card.get("metrics") or {})
        metrics["test"] = {**metrics.get("test", {}), **skill_verdict(metrics.get("test", {}))}
        checkpoint.save_model(model, path, card={"metrics": metrics}, overwrite=True)
        print(f"{name}: {metrics['test'].get('verdict')}", flush=True)


def train_one(fit, name, fit_frame, args, t_in, epochs, window, device, description, work):
    """One model with ``--recipe`` (fit's defaults, or the paper's hyperparameters); resumable
    through ``work/<name>``."""
    common = dict(t_in=t_in, size=args.size, rollout_steps=args.rollout_steps, epochs=epochs,
                  batch_size=args.batch_size, patience=args.patience, val_fraction=0.2,
                  window=window, periodic=(False, True), seed=args.seed, device=device,
                  amp=args.amp, progress=not args.quiet, checkpoint_dir=work / name,
                  description=description)
    if args.recipe == "paper":
        return fit(name, fit_frame, lr=paper_lr(name), weight_decay=4e-4, lr_decay=0.95,
                   schedule="exponential", optimizer="adam", clip_grad=None, curriculum=0,
                   guard=None, model_kwargs={"residual": False}, **common)
    return fit(name, fit_frame, max_time=args.max_time, budget_clock=args.budget_clock,
               noise=args.noise, **common)


def model_frame(ds):
    """``(ModelFrame, dt override or None)`` of a simulation (non-dimensional time is accepted)."""
    from xequi.fields import to_model_frame

    return to_model_frame(ds), None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="paper", choices=["paper", "default"],
                        help="rayleigh_benard preset of the training data (default: %(default)s)")
    parser.add_argument("--data", default=None,
                        help="read the training data from this .nc / .zarr (a saved rayleigh_benard "
                             "output) instead of simulating the preset")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: tiny simulation, 2 small models, 2 epochs, t_in=4, "
                             "written to build/pretrained-quick unless --out-dir is given")
    parser.add_argument("--models", nargs="+", default=None,
                        help=f"model names, or 'all' (default: {' '.join(DEFAULT_MODELS)})")
    parser.add_argument("--size", default="small",
                        choices=["small", "small-params", "paper", "paper-params"])
    parser.add_argument("--recipe", default="default", choices=["default", "paper"],
                        help="fit's defaults (increment, cosine, ...) or the paper's recipe")
    parser.add_argument("--max-time", type=float, default=None,
                        help="wall-clock budget per model in seconds (default recipe)")
    parser.add_argument("--budget-clock", default="wall", choices=["wall", "cpu"],
                        help="what --max-time counts: wall-clock seconds, or CPU seconds of the "
                             "process (equal compute on a busy machine)")
    parser.add_argument("--noise", type=float, default=0.0,
                        help="input noise, fraction of the normalized std (default recipe)")
    parser.add_argument("--t-in", type=int, default=None, help="input frames (default 24; quick: 4)")
    parser.add_argument("--epochs", type=int, default=None, help="max epochs (default 100; quick: 2)")
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rollout-steps", type=int, default=3)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast on CUDA")
    parser.add_argument("--out-dir", default=None,
                        help="where <name>.xequi go (default: the package's xequi/pretrained)")
    parser.add_argument("--work-dir", default="build/pretrain",
                        help="resumable training states (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="retrain models already in --out-dir")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--annotate", action="store_true",
                        help="only add the skill verdict to the cards of existing checkpoints")
    args = parser.parse_args(argv)

    import torch

    from xequi import checkpoint, models
    from xequi.datasets import rayleigh_benard
    from xequi.train import fit

    quick = args.quick
    names = list(args.models or (QUICK_MODELS if quick else DEFAULT_MODELS))
    if names == ["all"]:
        names = models.available()
    unknown = [n for n in names if n not in models.available()]
    if unknown:
        parser.error(f"unknown models {unknown}; available: {models.available()}")
    if args.annotate:
        annotate(names, Path(args.out_dir) if args.out_dir else checkpoint.PRETRAINED_DIR)
        return 0
    t_in = args.t_in or (4 if quick else 24)
    epochs = args.epochs or (2 if quick else 100)
    window = 32 if quick and args.window == 64 else args.window
    out_dir = Path(args.out_dir) if args.out_dir else (
        Path("build/pretrained-quick") if quick else checkpoint.PRETRAINED_DIR)
    label = "quick" if quick else args.preset
    work = Path(args.work_dir) / label
    out_dir.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    if args.data:
        import xarray as xr

        ds = (xr.open_zarr(args.data) if args.data.endswith(".zarr") else xr.open_dataset(args.data)).load()
        label = str(ds.attrs.get("preset", label))
    elif quick:
        ds = rayleigh_benard("default", progress=not args.quiet, cache=False, **QUICK_SIM)
    else:
        ds = rayleigh_benard(args.preset, progress=not args.quiet)  # the paper preset is cached
    ds = ds[["u", "v"]]
    print(f"data: {dict(ds.sizes)} in {time.perf_counter() - t0:.0f} s", flush=True)
    frame, dt_text = model_frame(ds)
    n_time = frame.data.sizes["time"]
    n_fit = int(round(n_time * (1 - TEST_FRACTION)))
    fit_frame, _ = model_frame(ds.isel(time=slice(0, n_fit)))
    description = (f"Rayleigh-Benard convection simulated by xequi.datasets.rayleigh_benard "
                   f"(preset {label!r}: Ra={ds.attrs.get('Ra', '?')}, Pr={ds.attrs.get('Pr', '?')}, "
                   f"{dict(ds.sizes)}), velocity only; fitted on time indices 0..{n_fit - 1} "
                   f"(train/validation 80/20 by time), tested on {n_fit}..{n_time - 1}")
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))

    summary, failed = {}, {}
    for name in names:
        target = out_dir / f"{name}{checkpoint.SUFFIX}"
        if target.exists() and not args.overwrite:
            print(f"{name}: {target} exists, skipped (--overwrite to retrain)", flush=True)
            continue
        t1 = time.perf_counter()
        try:
            model, hist = train_one(fit, name, fit_frame, args, t_in, epochs, window, device,
                                    description, work)
        except Exception as err:  # keep going with the other models; report at the end
            failed[name] = f"{type(err).__name__}: {err}"
            print(f"{name}: FAILED ({failed[name].splitlines()[0]})", flush=True)
            continue
        train_s = time.perf_counter() - t1
        metrics = dict(model.card["metrics"])
        metrics["test"] = test_metrics(model, frame.data, n_fit, 5 if quick else TEST_STEPS, device)
        metrics["test"].update(skill_verdict(metrics["test"]))
        metrics["train_seconds"] = round(train_s, 1)
        extra = {"metrics": metrics}
        if dt_text is not None:
            extra["grid"] = {**model.card.get("grid", {}), "dt": dt_text}
        path = checkpoint.save_model(model.cpu(), target, card=extra, overwrite=True)
        summary[name] = {"epochs": len(hist["epoch"]), "best_epoch": hist["best_epoch"],
                         "best_val_loss": hist["best_val_loss"],
                         "test_rmse": metrics["test"].get("rmse_mean"),
                         "persistence_rmse": metrics["test"].get("persistence_rmse_mean"),
                         "seconds": round(train_s, 1), "bytes": path.stat().st_size,
                         "params": sum(p.numel() for p in model.parameters())}
        print(f"{name}: {json.dumps(summary[name])}", flush=True)

    total = sum(p.stat().st_size for p in out_dir.glob(f"*{checkpoint.SUFFIX}"))
    print(f"wrote {len(summary)} model(s) to {out_dir}; all checkpoints there: {total / 1e6:.2f} MB; "
          f"total {time.perf_counter() - t0:.0f} s", flush=True)
    for name, why in failed.items():
        print(f"FAILED {name}: {why}", file=sys.stderr)
    if failed:
        return 1
    if out_dir.resolve() == checkpoint.PRETRAINED_DIR.resolve() and total > 20e6:
        print("WARNING: shipped checkpoints exceed 20 MB; use --size small or fewer models",
              file=sys.stderr)
        return 1
    return 0 if all(math.isfinite(s["best_val_loss"] or math.inf) for s in summary.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
