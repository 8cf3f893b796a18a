"""The paper's generalization experiment (Wang, Walters & Yu, ICLR 2021), reproduced with xequi.

One command trains every model on Rayleigh–Bénard convection (or the QG ocean), scores a
10-step rollout on the original and on transformed test sets (UM, Mag, Rot, Scale; built with
``ds.equi.transform``, one random group element per test sample), and writes the results to
``docs/results/generalization{,_ocean}.md / .csv`` and figures. Resumable: each model trains with
``fit(checkpoint_dir=...)`` and its scores are cached in a per-model JSON, so a rerun of the same
command continues where it stopped.

Usage::

    .venv/bin/python benchmarks/generalization.py                      # RBC, CPU, small widths
    .venv/bin/python benchmarks/generalization.py --data qg            # QG ocean-like data
    .venv/bin/python benchmarks/generalization.py --size paper --device auto --seeds 3  # GPU
    .venv/bin/python benchmarks/generalization.py --quick --out /tmp/g # smoke run (seconds)
    .venv/bin/python benchmarks/generalization.py --models resnet,rot-resnet,mirror-rot-resnet \
        --extra-sets mirror                                            # + a mirrored test set

Data and split
--------------
RBC: ``rayleigh_benard("paper")`` (Ra 1e6, Pr 1, aspect 7, 64 x 448, spin-up 50, 2000 frames every
0.4 free-fall times; simulated once, ~15-25 min on 2 cores, then cached as zarr). Velocity (u, v)
only. The record is split by time with :func:`xequi.windows.split_by_time` into train /
validation / test (fractions ``--fractions``) with ``gap = t_in + steps`` unused frames between
splits, so no training, validation or test window crosses a split. Training uses fit's windowing:
``window = stride = 64`` over the 64 x 448 domain = the paper's 7 tiles of 64 x 64, every time
start. On CPU only the last ``--train-frames`` frames of the training split and the first
``--val-frames`` of the validation split are used (to fit the budget; ``0`` = all).

Test sets (from the test split; sample = one 64 x 64 tile x one init time, ``t_in + steps`` frames;
``--test-inits`` init times evenly spread over the test split, times every tile), each sample
transformed with its own random element drawn by :func:`xequi.symmetry.random_params` from a fixed
test seed (the same test sets for every model and training seed):
  * ``original``;
  * ``um``: ``w + c``, ``c ~ U(-2, 2)^2 x u_rms`` where ``u_rms`` is the rms speed of the training
    split (the paper's range in units of the data's rms speed; the RBC data are non-dimensional
    with ``u_rms ~ 0.3``);
  * ``mag``: ``lam w``, ``lam ~ U(0.05, 2)`` (near 0 excluded);
  * ``rot``: a rotation by ``k x 90`` degrees, ``k`` uniform in {1, 2, 3} (every sample actually
    rotated: grid AND vector components; tiles are square);
  * ``scale``: ``lam w(lam x, lam^2 t)``, ``lam ~ U(0.5, 1)`` (the paper's "resample by s in space,
    s^2 in time, divide by s" with s = 1/lam; lam <= 1 keeps every resampled point inside the
    sample), bilinear in space, linear in time.

CPU settings (``--size small``, the defaults) and budget
---------------------------------------------------
t_in 4 (paper 24), training rollout 2 steps (paper 3-4), at most 6 epochs, patience 3, batch 16,
lr 1e-3 for every model (the paper used 5e-3 for Mag and 1e-4 for Scale), training on the last 96
frames of the training split (637 samples = 91 time starts x 7 tiles, 40 batches) and validating
on the first 48 of the validation split (301 samples), 6 test init times x 7 tiles = 42 samples
per test set. Measured (2026-11-27, 1 torch thread, machine shared, load average ~8 on 2 cores):
one ResNet epoch (train + validation) 29 s of CPU time (72-115 s wall under that load); scoring
one test set of 42 samples x 10 steps 10 s of CPU (24 s wall). The other models cost 0.85-4x a
ResNet batch (``REL_COST``, measured; Scale-U-net the most); the 12 RBC models sum to 18.4
ResNet-epochs per epoch. Estimate with these settings on 2 otherwise idle cores: training
18.4 x 6 x 29 s ~ 55 min, evaluation ~15 min, figures ~1 min, plus ~15-25 min for simulating
the ``paper`` preset once: ~1.5 h; with the load measured above ~2.5x longer. The script prints,
after each model, its measured s/epoch and the remaining estimate. ``--size paper`` uses the
paper's widths, t_in 24, rollout 3, 100 epochs, patience 10, all frames: a GPU job
(``--device auto``).

Metrics: over the 10-step rollout (:func:`xequi.forecast.forecast` on the transformed samples,
:func:`xequi.diagnostics.evaluate`): RMSE of the velocity (a true square root of the mean square
error pooled over samples, lead times, grid points and both components; data units) and the
paper's ESE (RMSE of log10 TKE spectra, test-set-mean log spectra, as the released code).
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import json
import math
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

TRANSFORMS_ALL = ("rot90", "uniform_motion", "magnitude", "scale")
RBC_MODELS = ("resnet", "unet", "resnet+aug", "um-resnet", "um-unet", "mag-resnet", "mag-unet",
              "rot-resnet", "rot-unet", "scale-resnet", "scale-unet", "um-mag-rot-resnet")
QG_MODELS = ("resnet", "rot-resnet", "um-resnet", "mag-resnet", "um-mag-rot-resnet")
RBC_SETS = ("original", "um", "mag", "rot", "scale")
QG_SETS = ("future", "um", "mag", "rot", "new_domain")


def set_kind(name: str):
    """The symmetry kind of a test set named by a kind or alias (``"um"``, ``"rot"``, ``"scale"``
    ...; :mod:`xequi.symmetry`'s registry), None for the untransformed sets."""
    from xequi import symmetry

    return symmetry.KINDS.get(name)


def own_sets(model: str, sets) -> tuple:
    """The transformed test sets whose symmetry the registered model claims (for the findings)."""
    from xequi.models.registry import REGISTRY

    claimed = REGISTRY[model]["symmetries"] if model in REGISTRY else ()
    return tuple(s for s in sets if set_kind(s) is not None and set_kind(s) in claimed)


#: relative cost of one training batch (measured on CPU, 1 thread, t_in 4, small widths;
#: resnet = 1): used only for the printed runtime estimate
REL_COST = {"resnet": 1.0, "unet": 0.85, "resnet+aug": 1.05, "um-resnet": 1.05, "um-unet": 0.95,
            "mag-resnet": 1.05, "mag-unet": 0.95, "rot-resnet": 1.55, "rot-unet": 1.2,
            "scale-resnet": 3.1, "scale-unet": 4.0, "um-mag-rot-resnet": 1.65}
TEST_SEED = 12345


def log(msg: str) -> None:
    print(f"[{_dt.datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", choices=("rbc", "qg"), default="rbc")
    p.add_argument("--size", choices=("small", "paper", "small-params", "paper-params"), default="small",
                   help="model widths: registry 'small' (CPU) or the paper's (GPU), equal channels; "
                        "'-params': the same at equal parameter counts")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--seeds", type=int, default=1, help="training seeds 0..N-1 (mean ± std)")
    p.add_argument("--models", default=None, help="comma-separated subset of the models")
    p.add_argument("--t-in", type=int, default=None, help="input frames (paper 24; CPU default 4)")
    p.add_argument("--steps", type=int, default=10, help="test rollout steps")
    p.add_argument("--rollout-train", type=int, default=None,
                   help="training rollout steps (paper 3-4; CPU default 2)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--patience", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--train-frames", type=int, default=None,
                   help="last N frames of the training split used for training (0 = all)")
    p.add_argument("--val-frames", type=int, default=None,
                   help="first N frames of the validation split (0 = all)")
    p.add_argument("--fractions", default="0.7,0.1,0.2", help="train,validation,test shares")
    p.add_argument("--test-inits", type=int, default=None, help="init times per tile in the test split")
    p.add_argument("--tile", type=int, default=64)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--out", default=None,
                   help="markdown / csv / figures (default docs/results; --quick: under --work)")
    p.add_argument("--work", default=None,
                   help="checkpoints and per-model result JSON (default build/generalization/...)")
    p.add_argument("--quick", action="store_true", help="tiny data and models: smoke test")
    p.add_argument("--no-figures", action="store_true")
    p.add_argument("--extra-sets", default="",
                   help="comma-separated further test sets, each a symmetry kind of xequi.symmetry "
                        "(e.g. mirror: a symmetry of Rayleigh-Benard convection, not of the "
                        "rotating QG ocean)")
    a = p.parse_args(argv)
    paper = a.size.startswith("paper")  # "-params": equal parameters instead of equal channels
    defaults = dict(t_in=24 if paper else 4, rollout_train=3 if paper else 2,
                    epochs=100 if paper else 6, patience=10 if paper else 3,
                    train_frames=0 if paper else 96, val_frames=0 if paper else 48,
                    test_inits=20 if paper else 6)
    if a.quick:
        defaults.update(t_in=2, rollout_train=1, epochs=1, patience=1, train_frames=0,
                        val_frames=0, test_inits=2)
        if a.tile == 64:
            a.tile = 32
        if a.steps == 10:
            a.steps = 3
    for k, v in defaults.items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    a.fractions = tuple(float(f) for f in a.fractions.split(","))
    all_models = RBC_MODELS if a.data == "rbc" else QG_MODELS
    a.extra_sets = tuple(s.strip() for s in a.extra_sets.split(",") if s.strip())
    if any(set_kind(s) is None for s in a.extra_sets):
        from xequi import symmetry

        p.error(f"--extra-sets {list(a.extra_sets)}: each must be a kind of {sorted(symmetry.KINDS)}")
    if a.models:
        from xequi.models import available

        a.models = tuple(m.strip() for m in a.models.split(",") if m.strip())
        bad = [m for m in a.models if m not in all_models and m.split("+")[0] not in available()]
        if bad:
            p.error(f"unknown model(s) {bad}; choose from {list(all_models)}")
    else:
        a.models = all_models
    tag = f"{a.data}-{a.size}" + ("-quick" if a.quick else "")
    a.work = Path(a.work) if a.work else ROOT / "build" / "generalization" / tag
    a.out = Path(a.out) if a.out else (a.work / "out" if a.quick else ROOT / "docs" / "results")
    return a


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------
def load_data(a):
    """(dataset with u, v loaded, description, new-domain dataset or None)."""
    from xequi.datasets import qg_ocean, rayleigh_benard

    new = None
    if a.data == "rbc":
        if a.quick:
            kw = dict(Ra=1e5, nx=64, ny=32, aspect=2.0, spinup=10.0, frames=60, frame_interval=0.4)
            ds = rayleigh_benard("default", cache=True, progress=False, **kw)
            desc = f"rayleigh_benard('default', {', '.join(f'{k}={v}' for k, v in kw.items())}) [quick]"
        else:
            ds = rayleigh_benard("paper", progress=True)
            desc = ("rayleigh_benard('paper'): Ra 1e6, Pr 1, aspect 7, 64 x 448 grid (7 tiles of "
                    "64 x 64), spin-up 50, 2000 frames every 0.4 free-fall times, xequi's solver")
    else:
        if a.quick:
            kw = dict(frames=60, spinup=30 * 86400.0)
            ds = qg_ocean("default", cache=True, progress=False, **kw)
            new = qg_ocean("new_domain", nx=64, L=1.0e6, frames=30, spinup=30 * 86400.0,
                           cache=True, progress=False)
            desc = "qg_ocean('default', frames=60, spin-up 30 d) [quick]; new domain: 'new_domain' at 64 x 64"
        else:
            ds = qg_ocean("experiment", progress=True)
            new = qg_ocean("new_domain", progress=True)
            desc = ("qg_ocean('experiment'): two-layer QG (pyqg-jax), 128 x 128, L = 2000 km, "
                    "rd 15 km, beta 1.5e-11, 1500 daily frames after a 730-day spin-up; new "
                    "domain: qg_ocean('new_domain') (rd 25 km, beta 2e-11, seed 1, 500 frames)")
        new = new[["u", "v"]].load() if new is not None else None
    return ds[["u", "v"]].load(), desc, new


def splits(a, n_time):
    from xequi.windows import split_by_time

    gap = a.t_in + max(a.steps, a.rollout_train)
    tr, va, te = split_by_time(n_time, a.fractions, t_in=a.t_in,
                               t_out=max(a.steps, a.rollout_train), gap=gap)
    nt = len(tr) if a.train_frames in (0, None) else min(a.train_frames, len(tr))
    nv = len(va) if a.val_frames in (0, None) else min(a.val_frames, len(va))
    fit_lo, fit_hi = tr.stop - nt, va.start + nv
    return dict(train=tr, val=va, test=te, gap=gap, fit_range=range(fit_lo, fit_hi),
                train_used=range(tr.stop - nt, tr.stop), val_used=range(va.start, va.start + nv),
                val_fraction=nv / (nt + nv))


def rms_speed(ds, rng_t):
    u = ds.u.isel(time=slice(rng_t.start, rng_t.stop)).values.astype(np.float64)
    v = ds.v.isel(time=slice(rng_t.start, rng_t.stop)).values.astype(np.float64)
    return float(np.sqrt(np.mean(u ** 2 + v ** 2)))


def _local(seg, T, dx, dy):
    """A tile with local coordinates shared by all tiles (so samples can be concatenated)."""
    return seg.assign_coords(x=("x", np.arange(T) * dx, seg.x.attrs),
                             y=("y", (np.arange(T) + 0.5) * dy, seg.y.attrs))


def test_samples(a, ds, time_range, n_inits):
    """[(time start, tile index)] evenly spread over ``time_range``; every tile."""
    L = a.t_in + a.steps
    last = time_range.stop - L
    if last < time_range.start:
        raise SystemExit(f"test range {time_range} shorter than t_in + steps = {L}")
    starts = np.unique(np.linspace(time_range.start, last, n_inits).round().astype(int))
    ny, nx = ds.sizes["y"], ds.sizes["x"]
    tiles = [(j, i) for j in range(ny // a.tile) for i in range(nx // a.tile)]
    return [(int(s), t) for s in starts for t in tiles]


def build_test_set(a, ds, samples, kind, u_rms, rng):
    """Concatenate the (transformed) samples along a synthetic uniform time axis.

    Returns (dataset, init times, per-sample parameters). Each sample keeps its own ``t_in +
    steps`` frames; a forecast from its init time only reads its own history and its truth lies
    inside it.
    """
    import xarray as xr

    from xequi import symmetry

    T, L = a.tile, a.t_in + a.steps
    dx = float(ds.x[1] - ds.x[0])
    dy = abs(float(ds.y[1] - ds.y[0]))
    t = ds.time
    dt = t.values[1] - t.values[0]
    segs, inits, params = [], [], []
    for n, (s, (j, i)) in enumerate(samples):
        seg = ds.isel(time=slice(s, s + L), y=slice(j * T, (j + 1) * T), x=slice(i * T, (i + 1) * T))
        seg = _local(seg, T, dx, dy)
        p = {}
        if kind is not None:
            # the registry's test-set element (rot90: k in {1, 2, 3}, every sample rotated)
            p = symmetry.test_params(kind, rng, velocity_scale=u_rms, lam_min=0.05,
                                     scale_range=(0.5, 1.0))
            seg = seg.equi.transform(kind, **p)
            seg = _local(seg, T, dx, dy)  # rot90 of a square tile keeps the coords; be explicit
        segs.append(seg)
        params.append(p)
    # a uniform synthetic time axis on which init_time + k * dt (the forecast's valid times, in
    # the forecast's own arithmetic: dt = time[1] - time[0]) are exactly the truth's times
    N = len(segs) * L
    base = t.values[0] if np.issubdtype(t.dtype, np.datetime64) else 0.0
    times = base + np.arange(N) * dt
    for n in range(len(segs)):
        init = times[n * L + a.t_in - 1]
        times[n * L + a.t_in: (n + 1) * L] = init + np.arange(1, a.steps + 1) * dt
        inits.append(init)
    assert times[1] - times[0] == dt
    segs = [sg.assign_coords(time=("time", times[n * L:(n + 1) * L], t.attrs))
            for n, sg in enumerate(segs)]
    out = xr.concat(segs, dim="time", coords="minimal", compat="override", combine_attrs="override")
    out.attrs = dict(ds.attrs)
    out.attrs["xequi_test_set"] = kind or "original"
    return out, inits, params


# ---------------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------------
def cost(model, a, dev):
    """(parameters, MACs per tile sample) of a trained network (``torch.utils.flop_counter`` on
    the exported model, MAC = FLOP / 2; the normalization wrapper adds a few elementwise ops)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    net = model.model
    params = sum(q.numel() for q in net.parameters())
    exp = net.export().to(dev).eval() if hasattr(net, "export") else net
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        exp(torch.zeros(1, a.t_in, 2, a.tile, a.tile, device=dev))
    return int(params), float(fc.get_total_flops() / 2)


def run_config(a, sp, name, seed):
    return dict(model=name, seed=seed, data=a.data, size=a.size, t_in=a.t_in, steps=a.steps,
                rollout_train=a.rollout_train, epochs=a.epochs, patience=a.patience,
                batch_size=a.batch_size, lr=a.lr, tile=a.tile, fit_range=[sp["fit_range"].start,
                                                                         sp["fit_range"].stop],
                test=[sp["test"].start, sp["test"].stop], test_inits=a.test_inits,
                quick=a.quick, **({"extra_sets": list(a.extra_sets)} if a.extra_sets else {}))


def train(a, ds, sp, name, seed, dev):
    from xequi.train import fit

    base, aug = name.split("+")[0], ("+aug" in name)
    ck = a.work / "checkpoints" / f"{name}-seed{seed}"
    data = ds.isel(time=slice(sp["fit_range"].start, sp["fit_range"].stop))
    t0 = time.perf_counter()
    model, hist = fit(base, data, t_in=a.t_in, size=a.size, rollout_steps=a.rollout_train,
                      epochs=a.epochs, patience=a.patience, batch_size=a.batch_size, lr=a.lr,
                      val_fraction=sp["val_fraction"], gap=sp["gap"], window=a.tile,
                      stride=a.tile, augment=TRANSFORMS_ALL if aug else (), seed=seed, device=dev,
                      progress=not a.quick, checkpoint_dir=ck,
                      description=f"generalization benchmark ({a.data}), frames "
                                  f"{sp['fit_range'].start}..{sp['fit_range'].stop - 1}")
    return model, hist, time.perf_counter() - t0


def score(model, test_ds, inits, steps, dev):
    """(rmse, ese, per-sample mse list, forecast)."""
    from xequi.diagnostics import evaluate
    from xequi.forecast import forecast

    fc = forecast(test_ds, model, steps=steps, init_time=list(inits),
                  device=dev, progress=False)
    ev = evaluate(fc, test_ds, metrics=("rmse", "ese"))
    ev_i = evaluate(fc, test_ds, metrics=("rmse",), keep_init_time=True)
    r_i = ev_i["velocity"].sel(metric="rmse")  # (lead_time, init_time) or (init_time, lead_time)
    mse_i = (r_i ** 2).mean("lead_time")
    rmse = float(np.sqrt(float(mse_i.mean())))   # all samples, leads and points weigh alike
    ese = float(ev["ese"].values)
    return rmse, ese, [float(m) for m in mse_i.transpose("init_time").values], fc


# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------
def _fmt(vals, digits=4):
    vals = [v for v in vals if v is not None and math.isfinite(v)]
    if not vals:
        return "—"
    if len(vals) == 1:
        return f"{vals[0]:.{digits}g}"
    return f"{np.mean(vals):.{digits}g} ± {np.std(vals, ddof=1):.2g}"


def write_csv(path, a, results, sets) -> None:
    """One CSV row per model, seed and test set."""
    rows = []
    for r in results:
        for s in sets:
            m = r["metrics"][s]
            rows.append(dict(data=a.data, model=r["model"], seed=r["seed"], test_set=s,
                             rmse=m["rmse"], ese=m["ese"], params=r["params"], macs=r["macs"],
                             best_epoch=r["best_epoch"], epochs_run=r["epochs_run"],
                             train_seconds=round(r["train_seconds"], 1),
                             eval_seconds=round(r["eval_seconds"], 1)))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def header_lines(a, meta) -> list[str]:
    """The report's title and the list of settings (data, split, training, test, seeds)."""
    L = []
    title = "Rayleigh–Bénard" if a.data == "rbc" else "QG ocean-like data"
    L.append(f"# Generalization experiment ({title})\n")
    L.append("Reproduction of the experiment of Wang, Walters & Yu (ICLR 2021) with xequi's public "
             "API, produced by `benchmarks/generalization.py`. All numbers below are computed by "
             "that script; nothing is typed in by hand.\n")
    L.append(f"- command: `{meta['command']}`")
    L.append(f"- data: {meta['data']}")
    L.append(f"- split by time (`split_by_time`, fractions {meta['fractions']}, gap {meta['gap']} "
             f"frames): train {meta['train']}, validation {meta['val']}, test {meta['test']}; "
             f"used for training: frames {meta['train_used']} (train) and {meta['val_used']} "
             f"(validation, best epoch kept); as recorded by fit's model card: train frames "
             f"{meta['fit_train']}, validation frames {meta['fit_val']}, {meta['train_samples']} "
             f"training and {meta['val_samples']} validation samples per epoch")
    L.append(f"- training: {a.tile} x {a.tile} tiles via fit's windowing (window = stride = {a.tile}, "
             f"{meta['n_tiles']} tiles), every time start; t_in {a.t_in} (paper 24), rollout loss "
             f"over {a.rollout_train} steps, batch {a.batch_size}, Adam lr {a.lr} (all models), "
             f"weight decay 4e-4, lr x 0.95 per epoch, at most {a.epochs} epochs, patience "
             f"{a.patience}, widths `{a.size}`, device {meta['device']}, torch threads "
             f"{a.threads}; augmented baseline `resnet+aug`: `fit(augment={list(TRANSFORMS_ALL)})`")
    L.append(f"- test: {meta['n_samples']} samples per set ({meta['n_inits']} init times x "
             f"{meta['n_tiles']} tiles), {a.steps}-step rollout; UM c ~ U(-2, 2)^2 x u_rms "
             f"(u_rms = {meta['u_rms']:.4g}, rms speed of the training split), Mag lam ~ "
             f"U(0.05, 2), Rot k x 90 deg with k in {{1, 2, 3}} (grid and vectors), Scale lam ~ "
             f"U(0.5, 1): lam w(lam x, lam^2 t); one element per sample, test seed {TEST_SEED}"
             + ("; new_domain: samples of the `new_domain` run" if a.data == "qg" else ""))
    L.append(f"- seeds: {a.seeds} ({'mean ± std over seeds' if a.seeds > 1 else 'one seed'}); "
             f"runtime of this invocation {meta['runtime_min']:.1f} min, summed training "
             f"{meta['train_min']:.1f} min and evaluation {meta['eval_min']:.1f} min over all "
             f"models (cached models count with their original times)")
    L.append("- RMSE: square root of the mean square velocity error over samples, lead times, "
             "grid points and both components, in the data's velocity units. ESE: the paper's "
             "energy spectrum error (RMSE of log10 TKE spectra, test-set-mean log spectra), "
             "`xequi.diagnostics.evaluate(metrics=('rmse', 'ese'))`.\n")
    return L


def write_outputs(a, results, meta, sets):
    a.out.mkdir(parents=True, exist_ok=True)
    stem = "generalization" if a.data == "rbc" else "generalization_ocean"
    write_csv(a.out / f"{stem}.csv", a, results, sets)

    by = {}
    for r in results:
        by.setdefault(r["model"], []).append(r)
    models = [m for m in a.models if m in by]

    def vals(model, s, key):
        return [r["metrics"][s][key] for r in by.get(model, [])]

    def mean(model, s, key="rmse"):
        v = vals(model, s, key)
        return float(np.mean(v)) if v else None

    L = header_lines(a, meta)
    for key, label in (("rmse", "RMSE"), ("ese", "ESE")):
        L.append(f"## {label}\n")
        L.append("| model | params | MMAC / tile | " + " | ".join(sets) + " |")
        L.append("|---|---:|---:|" + "---:|" * len(sets))
        for m in models:
            r0 = by[m][0]
            L.append(f"| {m} | {r0['params']:,} | {r0['macs'] / 1e6:.1f} | "
                     + " | ".join(_fmt(vals(m, s, key)) for s in sets) + " |")
        if key == "rmse":
            L.append("| *(truth rms speed)* | | | " + " | ".join(
                f"*{meta['truth_rms'][s]:.4g}*" for s in sets) + " |")
        L.append("")
    L.append("## Training\n")
    L.append("| model | seed | epochs run | best epoch | best val loss | train min | eval min |")
    L.append("|---|---:|---:|---:|---:|---:|---:|")
    for m in models:
        for r in by[m]:
            L.append(f"| {m} | {r['seed']} | {r['epochs_run']} | {r['best_epoch']} | "
                     f"{r['best_val_loss']:.4g} | {r['train_seconds'] / 60:.1f} | "
                     f"{r['eval_seconds'] / 60:.1f} |")
    L.append("")
    L.append("## Findings (computed from the numbers above)\n")
    orig = sets[0]
    L.extend(findings(a, by, models, sets, orig, mean, meta['truth_rms']))
    if meta.get("figures"):
        L.append("\n## Figures\n")
        for f in meta["figures"]:
            L.append(f"- ![{f}]({f})")
    L.append("")
    (a.out / f"{stem}.md").write_text("\n".join(L))
    return a.out / f"{stem}.md", a.out / f"{stem}.csv"


def findings(a, by, models, sets, orig, mean, truth_rms):
    out = []
    tol = 0.05
    for m in models:
        own = own_sets(m, sets)
        for s in own:
            ro, rs = mean(m, orig), mean(m, s)
            if ro is None or rs is None:
                continue
            ratio = rs / ro
            line = (f"- `{m}` on its symmetry's set `{s}`: RMSE {rs:.4g} vs {ro:.4g} on "
                    f"`{orig}`, ratio {ratio:.3f}")
            if s == "mag":
                exp = [r.get("mag_expected_rmse") for r in by[m]]
                exp = [e for e in exp if e is not None]
                if exp:
                    e = float(np.mean(exp))
                    line += (f". Errors of an exactly Mag-equivariant model scale with lam, so "
                             f"the reference is sqrt(mean_i lam_i^2 mse_i(original)) = {e:.4g}: "
                             f"measured / reference = {rs / e:.3f} "
                             f"({'within' if abs(rs / e - 1) <= tol else 'NOT within'} 5%)")
            else:
                line += f" ({'within' if abs(ratio - 1) <= tol else 'NOT within'} 5%)"
            if s == "scale":
                line += " (Scale is only approximately equivariant on a grid)"
            out.append(line + ".")
    for base in ("resnet", "unet"):
        ro = mean(base, orig)
        if ro is None:
            continue
        parts = []
        for s in sets:
            if set_kind(s) and mean(base, s) is not None:
                ratio = mean(base, s) / ro
                parts.append(f"`{s}` {ratio:.2f}x ({'>=' if ratio >= 1.5 else '<'} 1.5x)")
        exp = [r.get("mag_expected_rmse") for r in by[base] if r.get("mag_expected_rmse")]
        if "mag" in sets and exp:
            parts.append(f"`mag` against the lam-weighted reference sqrt(mean_i lam_i^2 mse_i) "
                         f"{mean(base, 'mag') / float(np.mean(exp)):.2f}x")
        if parts:
            out.append(f"- plain `{base}` RMSE relative to `{orig}`: " + ", ".join(parts) + ".")
    if "resnet+aug" in by and "resnet" in by:
        out.append(augmentation_finding(sets, orig, mean, tol))
    if "new_domain" in sets:
        rel = truth_rms["new_domain"] / truth_rms[orig]
        parts = [f"`{m}` {mean(m, 'new_domain') / mean(m, orig):.2f}x "
                 f"({mean(m, 'new_domain') / mean(m, orig) / rel:.2f}x relative to the rms speed)"
                 for m in models if mean(m, orig) and mean(m, "new_domain") is not None]
        out.append(f"- new domain vs future time, RMSE ratio (the new domain's rms speed is "
                   f"{rel:.2f}x that of the future-time test): " + ", ".join(parts) + ".")
    worse = []
    for m in models:
        if own_sets(m, sets):
            base = "unet" if m.endswith("unet") else "resnet"
            if base in by and mean(m, orig) is not None and mean(m, orig) > mean(base, orig):
                worse.append(f"`{m}` ({mean(m, orig):.4g} vs `{base}` {mean(base, orig):.4g}, "
                             f"{(mean(m, orig) / mean(base, orig) - 1) * 100:+.1f}%)")
    if worse:
        out.append(f"- equivariant models WORSE than their plain backbone on `{orig}`: "
                   + ", ".join(worse) + ".")
    else:
        out.append(f"- no equivariant model is worse than its plain backbone on `{orig}`.")
    if a.data == "rbc":
        out.append("- caveat: gravity makes RBC not rotation-symmetric (plates at top and bottom): "
                   "a rotated sample is not a solution of the same problem; an exactly "
                   "Rot-equivariant model's error on `rot` nevertheless equals its error on the "
                   "unrotated samples (RMSE is rotation-invariant), which is what the ratio tests.")
    return out


def augmentation_finding(sets, orig, mean, tol) -> str:
    """How far augmentation (``resnet+aug``) closes the plain ResNet's gaps on the sets."""
    ra, rp = mean("resnet+aug", orig), mean("resnet", orig)
    parts = []
    for s in sets:
        if set_kind(s):
            ga, gp = mean("resnet+aug", s) / ra, mean("resnet", s) / rp
            parts.append(f"`{s}` {ga:.2f}x (plain {gp:.2f}x; RMSE {mean('resnet+aug', s):.4g} "
                         f"vs {mean('resnet', s):.4g})")
    gaps = [s for s in sets if set_kind(s)
            and mean("resnet", s) / rp > 1 + tol]
    closes = [s for s in gaps if mean("resnet+aug", s) / ra <= 1 + tol]
    return ("- augmentation (`resnet+aug`), RMSE on each set relative to its own "
            f"`{orig}` RMSE: " + ", ".join(parts) + ". Sets where the plain ResNet has a "
            "gap (> 5%): " + (", ".join(f"`{s}`" for s in gaps) if gaps else "none")
            + "; closed by augmentation (within 5%): "
            + (", ".join(f"`{s}`" for s in closes) if closes else "none")
            + f". Cost on `{orig}`: RMSE {ra:.4g} vs {rp:.4g} for the plain ResNet "
              f"({(ra / rp - 1) * 100:+.1f}%).")


def figures(a, test_sets, models_loaded):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from xequi import plot
    from xequi.diagnostics import spectrum
    from xequi.forecast import forecast

    stem = "generalization" if a.data == "rbc" else "generalization_ocean"
    made = []
    specs = {}
    for name, model in models_loaded.items():
        for s, (ds_t, inits, _) in test_sets.items():
            if a.quick and s not in (list(test_sets)[0], "rot"):
                continue  # quick: two field figures only
            fc = forecast(ds_t, model, steps=a.steps, init_time=[inits[0]], progress=False,
                          device="cpu")
            fname = f"{stem}_fields_{name.replace('+', '_')}_{s}.png"
            leads = fc.lead_time.values
            fig = plot.fields(ds_t, fc, variable="speed",
                              lead_times=list(leads[[0, len(leads) // 2, -1]]) if len(leads) >= 3 else None)
            fig.set_size_inches(6, 5)
            fig.savefig(a.out / fname, dpi=60)
            plt.close(fig)
            made.append(fname)
            if s == list(test_sets)[0]:
                fc_all = forecast(ds_t, model, steps=a.steps, init_time=list(inits[:8]),
                                  progress=False, device="cpu")
                specs[name] = spectrum(fc_all)
                specs.setdefault("truth", spectrum(ds_t))
    if specs:
        fname = f"{stem}_spectra.png"
        truth = specs.pop("truth")
        leads = next(iter(specs.values())).lead_time.values
        fig = plot.spectra({"truth": truth, **specs},
                           lead_times=list(leads[[0, -1]]) if len(leads) >= 2 else None)
        fig.set_size_inches(7, 3.5)
        fig.savefig(a.out / fname, dpi=60)
        plt.close(fig)
        made.append(fname)
    return made


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    a = parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    if a.device == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        dev = torch.device(a.device)
    t_start = time.perf_counter()
    command = "python benchmarks/generalization.py " + " ".join(shlex.quote(x) for x in
                                                               (argv if argv is not None else sys.argv[1:]))
    a.work.mkdir(parents=True, exist_ok=True)
    (a.work / "results").mkdir(exist_ok=True)

    log(f"data {a.data}: loading / simulating (cached after the first run)")
    ds, desc, new = load_data(a)
    sp = splits(a, ds.sizes["time"])
    u_rms = rms_speed(ds, sp["train"])
    n_tiles = (ds.sizes["y"] // a.tile) * (ds.sizes["x"] // a.tile)
    log(f"{desc}; split train {sp['train']}, val {sp['val']}, test {sp['test']}, gap {sp['gap']}; "
        f"fit on {sp['fit_range']} (val fraction {sp['val_fraction']:.3f}); u_rms {u_rms:.4g}")

    # ---- test sets (the same for all models and seeds) --------------------------------------
    sets, test_sets, samples = build_test_sets(a, ds, new, sp, u_rms)
    n_inits = len(samples) // n_tiles
    log(f"test sets {list(sets)}: {len(samples)} samples each ({n_inits} init times x {n_tiles} tiles)")

    # ---- train / evaluate every model, cached ------------------------------------------------
    results = []
    done_cost, done_time = 0.0, 0.0
    jobs = [(m, s) for s in range(a.seeds) for m in a.models]
    for n_job, (name, seed) in enumerate(jobs):
        cfg = run_config(a, sp, name, seed)
        rpath = a.work / "results" / f"{name}-seed{seed}.json"
        if rpath.exists():
            r = json.loads(rpath.read_text())
            if r.get("config") == cfg:
                log(f"{name} seed {seed}: cached result {rpath}")
                results.append(r)
                continue
        log(f"{name} seed {seed}: training ({n_job + 1}/{len(jobs)})")
        r = run_job(a, ds, sp, test_sets, sets, name, seed, dev, cfg)
        tmp = rpath.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(r, indent=1))
        os.replace(tmp, rpath)
        results.append(r)
        n_ep, t_train, t_eval, metrics = r["epochs_run"], r["train_seconds"], r["eval_seconds"], r["metrics"]
        # runtime estimate from the measured epochs (relative batch costs of REL_COST)
        if n_ep:
            done_cost += REL_COST.get(name, 1.0) * n_ep
            done_time += t_train
            per_unit = done_time / done_cost
            rest = [m for m, _ in jobs[n_job + 1:]]
            est = sum(REL_COST.get(m, 1.0) * a.epochs for m in rest) * per_unit
            log(f"{name} seed {seed}: {n_ep} epochs in {t_train:.0f} s ({t_train / n_ep:.1f} s/epoch), "
                f"eval {t_eval:.0f} s; original RMSE {metrics[sets[0]]['rmse']:.4g}; remaining "
                f"training at most ~{est / 60:.0f} min (+ evaluation)")

    # ---- figures and report --------------------------------------------------------------------
    figs = [] if a.no_figures else report_figures(a, test_sets)
    truth_rms = {s: float(np.sqrt(float((v[0].u ** 2 + v[0].v ** 2).mean())))
                 for s, v in test_sets.items()}
    r0 = results[0]
    meta = dict(command=command, truth_rms=truth_rms,
                fit_train="..".join(map(str, r0.get("fit_train_frames", ["?", "?"]))),
                fit_val="..".join(map(str, r0.get("fit_val_frames", ["?", "?"]))),
                train_samples=r0.get("train_samples", "?"), val_samples=r0.get("val_samples", "?"), data=desc, fractions=a.fractions, gap=sp["gap"],
                train=_r(sp["train"]), val=_r(sp["val"]), test=_r(sp["test"]),
                train_used=_r(sp["train_used"]), val_used=_r(sp["val_used"]), n_tiles=n_tiles,
                n_inits=n_inits, n_samples=len(samples), u_rms=u_rms, device=str(dev),
                runtime_min=(time.perf_counter() - t_start) / 60,
                train_min=sum(r["train_seconds"] for r in results) / 60,
                eval_min=sum(r["eval_seconds"] for r in results) / 60, figures=figs)
    md, csv_path = write_outputs(a, results, meta, list(sets))
    log(f"wrote {md}, {csv_path} and {len(figs)} figures in {(time.perf_counter() - t_start) / 60:.1f} min")
    return 0


def build_test_sets(a, ds, new, sp, u_rms):
    """(set names, {set: build_test_set(...)}, the test samples): the same for every model and
    seed, drawn from one generator seeded with TEST_SEED."""
    rng = np.random.default_rng(TEST_SEED)
    samples = test_samples(a, ds, sp["test"], a.test_inits)
    sets = (RBC_SETS if a.data == "rbc" else QG_SETS) + a.extra_sets
    test_sets = {}
    for s in sets:
        if s == "new_domain":
            ns = test_samples(a, new, range(0, new.sizes["time"]), a.test_inits)
            test_sets[s] = build_test_set(a, new, ns, None, u_rms, rng)
        else:
            test_sets[s] = build_test_set(a, ds, samples, set_kind(s), u_rms, rng)
    return sets, test_sets, samples


def run_job(a, ds, sp, test_sets, sets, name, seed, dev, cfg) -> dict:
    """Train one model with one seed and score it on every test set: its result record."""
    model, hist, t_train = train(a, ds, sp, name, seed, dev)
    params, macs = cost(model, a, dev)
    t0 = time.perf_counter()
    metrics = {}
    for s, (ds_t, inits, prm) in test_sets.items():
        rmse, ese, mse_i, _ = score(model, ds_t, inits, a.steps, dev)
        metrics[s] = {"rmse": rmse, "ese": ese}
        metrics[s]["_mse_i"] = mse_i
    t_eval = time.perf_counter() - t0
    # what an exactly Mag-equivariant model would score on the Mag set: errors times lambda
    mag_exp = None
    if "mag" in metrics:
        lam = np.array([p["lam"] for p in test_sets["mag"][2]])
        mag_exp = float(np.sqrt(np.mean(lam ** 2 * np.array(metrics[sets[0]]["_mse_i"]))))
    for s in metrics:
        metrics[s].pop("_mse_i")
    n_ep = len(hist["epoch"])
    off = sp["fit_range"].start
    tr_i, va_i = model.card["training"]["train_time_index"], model.card["training"]["val_time_index"]
    return dict(config=cfg, model=name, seed=seed, params=params, macs=macs,
                fit_train_frames=[off + tr_i[0], off + tr_i[1] - 1],
                fit_val_frames=[off + va_i[0], off + va_i[1] - 1],
                train_samples=model.card["training"]["train_samples"],
                val_samples=model.card["training"]["val_samples"],
                best_epoch=hist["best_epoch"], best_val_loss=hist["best_val_loss"],
                epochs_run=n_ep, stopped_early=hist["stopped_early"],
                train_seconds=t_train, eval_seconds=t_eval, metrics=metrics,
                mag_expected_rmse=mag_exp, history={k: hist[k] for k in ("train_loss", "val_loss")})


def report_figures(a, test_sets) -> list:
    """The figures of the report, from the best checkpoints of one or two models (seed 0)."""
    from xequi.checkpoint import load_model

    pref = ("resnet", "um-mag-rot-resnet", "rot-resnet", "resnet+aug")
    fig_models = list(dict.fromkeys([m for m in pref if m in a.models] + list(a.models)))
    fig_models = fig_models[:1 if a.quick else 2]  # quick: one model's figures only
    loaded = {m: load_model(a.work / "checkpoints" / f"{m}-seed0" / "best.xequi")
              for m in fig_models}
    a.out.mkdir(parents=True, exist_ok=True)
    return figures(a, test_sets, loaded)


def _r(r):
    return f"{r.start}..{r.stop - 1}"


if __name__ == "__main__":
    sys.exit(main())
