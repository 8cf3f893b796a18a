"""Windows per second: xequi.windows against plain xbatcher's ``concat_input_dims=True`` path.

Run by hand (not a test)::

    .venv/bin/python benchmarks/windows.py [--ny 512 --nx 512 --nt 8 --batch 16 --repeat 3]

Both sides cut the same model-frame DataArray ``(time, channel, y, x)`` into 64 x 64 windows with
no overlap (the layout xbatcher can express) and deliver numpy arrays holding every window's
``(time, channel, 64, 64)`` block:

* xbatcher: ``BatchGenerator(da.to_dataset(), input_dims={"y": 64, "x": 64},
  concat_input_dims=True)`` (a Dataset: the concat path raises on a dask-backed DataArray),
  iterating all batches and taking ``.values`` (the time and channel dims are stacked into its
  ``sample`` dim, as xbatcher does);
* xequi: ``plan_windows`` (whose window grid comes from xbatcher's ``BatchSchema``) +
  ``iter_windows(..., batch_size)``, which loads one block per batch and gathers the windows from
  a ``sliding_window_view``. Planning is timed separately (it runs once per grid).

Two sources: an in-memory array, and a zarr store written to a temporary directory and opened
lazily with ``xr.open_zarr`` (dask-backed, synchronous scheduler so both sides use one thread).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import tempfile
import time
from pathlib import Path

import dask
import numpy as np
import xarray as xr
import xbatcher

from xequi.windows import iter_windows, plan_windows

WIN = 64


def best_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def run_xbatcher(da: xr.DataArray) -> int:
    # xbatcher gets a Dataset: its concat path tests ``name in obj``, which on a dask-backed
    # DataArray evaluates the array's truth value and raises (xbatcher 0.4.0).
    gen = xbatcher.BatchGenerator(da.to_dataset(), input_dims={"y": WIN, "x": WIN},
                                  concat_input_dims=True)
    n = 0
    for batch in gen:
        values = batch[da.name].values  # (sample = time x channel x input_batch, 64, 64)
        n += values.shape[0] // (da.sizes["time"] * da.sizes["channel"])
    return n


def run_xequi(da: xr.DataArray, spec, batch: int) -> int:
    n = 0
    for windows, idx in iter_windows(da, spec, batch_size=batch):
        n += len(idx)
    return n


def compare(label: str, da: xr.DataArray, batch: int, repeat: int, overlap: int = 0) -> float:
    n_xb = run_xbatcher(da)
    t_plan = best_time(lambda: plan_windows(da, window=WIN, overlap=overlap), repeat)
    spec = plan_windows(da, window=WIN, overlap=overlap)
    n_xe = run_xequi(da, spec, batch)
    t_xb = best_time(lambda: run_xbatcher(da), repeat)
    t_xe = best_time(lambda: run_xequi(da, spec, batch), repeat)
    r_xb, r_xe = n_xb / t_xb, n_xe / t_xe
    print(f"{label:<34s} xbatcher {n_xb:4d} windows {t_xb * 1e3:8.1f} ms {r_xb:9.0f} win/s | "
          f"xequi {n_xe:4d} windows {t_xe * 1e3:7.1f} ms {r_xe:9.0f} win/s "
          f"(plan {t_plan * 1e3:.1f} ms once) | ratio {r_xe / r_xb:6.1f}x")
    return r_xe / r_xb


def profile(da: xr.DataArray, batch: int) -> None:
    spec = plan_windows(da, window=WIN, overlap=0)
    pr = cProfile.Profile()
    pr.enable()
    run_xequi(da, spec, batch)
    pr.disable()
    s = io.StringIO()
    pstats.Stats(pr, stream=s).sort_stats("cumulative").print_stats(12)
    print(s.getvalue())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ny", type=int, default=512)
    ap.add_argument("--nx", type=int, default=512)
    ap.add_argument("--nt", type=int, default=8)
    ap.add_argument("--nc", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--profile", action="store_true", help="profile xequi's path on the zarr store")
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    data = rng.standard_normal((args.nt, args.nc, args.ny, args.nx)).astype("float32")
    da = xr.DataArray(data, dims=("time", "channel", "y", "x"), name="w",
                      coords={"time": np.arange(args.nt), "y": np.arange(args.ny),
                              "x": np.arange(args.nx)})
    print(f"data (time, channel, y, x) = {da.shape} float32, windows {WIN}x{WIN}, "
          f"xequi batch_size={args.batch}, best of {args.repeat}")
    ratios = [compare("in-memory", da, args.batch, args.repeat)]
    with tempfile.TemporaryDirectory() as tmp, dask.config.set(scheduler="synchronous"):
        path = Path(tmp) / "w.zarr"
        da.to_dataset().chunk({"time": 1, "channel": -1, "y": 128, "x": 128}).to_zarr(
            path, mode="w", consolidated=False)
        lazy = xr.open_zarr(path, consolidated=False)["w"]
        ratios.append(compare("zarr (lazy, dask 1x2x128x128)", lazy, args.batch, args.repeat))
        # Where the time goes on the store: reading + decoding every chunk once is a floor for
        # both paths (xbatcher preloads the whole array once, xequi loads one band per batch).
        t_read = best_time(lambda: lazy.values, args.repeat)
        n_win = lazy.size // (args.nt * args.nc * WIN * WIN)
        print(f"  zarr floor: reading the whole store once through dask takes "
              f"{t_read * 1e3:.1f} ms (at most {n_win / t_read:.0f} win/s for any reader)")
        if args.profile:
            profile(lazy, args.batch)
    print(f"speed-up over xbatcher concat_input_dims=True: in-memory {ratios[0]:.1f}x, "
          f"zarr {ratios[1]:.1f}x (target >= 20x)")


if __name__ == "__main__":
    main()
