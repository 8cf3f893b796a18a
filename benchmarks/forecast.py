"""Forecast throughput end to end against the bare exported model, and peak memory on 1024 x 1024.

Run by hand (not a test)::

    .venv/bin/python benchmarks/forecast.py [--model resnet --ny 256 --nx 256 --steps 2
                                             --batch 32 --repeat 3 --threads 1
                                             --mem-ny 1024 --mem-nx 1024 --mem-steps 2]

Throughput, in one run on the same machine and thread count:

* **bare**: the exported network (``model.export()``) under ``torch.inference_mode()`` on the
  same windows as pre-built tensors (all windows of the domain, cut once with
  ``xequi.windows.extract``, split into batches of ``--batch``), ``--steps`` times;
* **forecast**: ``xequi.forecast.forecast(ds, model, steps)`` end to end: fields and units, init
  time, export, windowing, the network, stitching each step onto the whole grid, units and
  labels back.

The ratio ``forecast windows/s ÷ bare windows/s`` is printed (target >= 0.9), from wall-clock
time and from process CPU time (the best of ``--repeat`` interleaved runs each); on a shared,
busy machine the CPU-time ratio is the reliable one (one torch thread).

Memory: a subprocess builds a ``--mem-ny x --mem-nx`` dataset and forecasts ``--mem-steps``
steps; its peak resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) is printed
together with the RSS before the forecast (data + model + imports) and the size all windows
would take if they were materialized at once (target: peak < 2 GiB).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np
import xarray as xr


def make_dataset(ny: int, nx: int, nt: int, seed: int = 0) -> xr.Dataset:
    """Random velocity on a 10 km, hourly grid (y ascending, like most netCDF files)."""
    rng = np.random.default_rng(seed)
    t = np.datetime64("2020-01-01", "ns") + np.arange(nt) * np.timedelta64(1, "h")
    coords = {"y": ("y", np.arange(ny) * 10.0, {"units": "km", "axis": "Y"}),
              "x": ("x", np.arange(nx) * 10.0, {"units": "km", "axis": "X"}),
              "time": ("time", t, {"axis": "T"})}
    data = {n: (("time", "y", "x"), rng.standard_normal((nt, ny, nx)).astype(np.float32),
                {"units": "m s-1", "standard_name": sn})
            for n, sn in (("u", "eastward_sea_water_velocity"),
                          ("v", "northward_sea_water_velocity"))}
    return xr.Dataset(data, coords=coords)


def make_model(name: str, t_in: int, widths):
    import torch

    from xequi import models
    from xequi.forecast import as_forecast_model

    torch.manual_seed(0)
    kw = {"widths": widths} if widths else {}
    return as_forecast_model(models.create(name, t_in=t_in, **kw), dx="10 km", dt="1 h")


def timed(fn) -> tuple[float, float]:
    """(wall-clock, process CPU) seconds of one call. CPU time is what a busy shared machine
    does not distort (with one torch thread, CPU time ~ the time the work itself takes)."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def throughput(args) -> None:
    import torch

    from xequi.fields import to_model_frame
    from xequi.forecast import forecast
    from xequi.windows import extract, plan_windows

    ds = make_dataset(args.ny, args.nx, args.t_in)
    model = make_model(args.model, args.t_in, args.widths)
    dev = torch.device(args.device)
    t0 = time.perf_counter()
    net = model.export().to(dev).eval()
    t_export = time.perf_counter() - t0

    spec = plan_windows((args.ny, args.nx), window=args.window)
    hist = to_model_frame(ds, target_units="m s-1").data.values  # (t_in, C, ny, nx)
    wins = torch.from_numpy(extract(hist, spec))  # (n_windows, t_in, C, w, w)
    batches = [wins[i:i + args.batch].contiguous().to(dev)
               for i in range(0, len(wins), args.batch)]
    n_windows = spec.n_windows * args.steps

    def bare():
        with torch.inference_mode():
            for _ in range(args.steps):
                for b in batches:
                    net(b)
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def end_to_end():
        forecast(ds, model, steps=args.steps, batch_size=args.batch, device=args.device,
                 window=args.window, progress=False)

    bare()  # warm up both
    end_to_end()
    # interleaved, best of each: the machine's load changes between repeats, not within a pair
    tb = tf = cb = cf = float("inf")
    for _ in range(args.repeat):
        w, c = timed(bare)
        tb, cb = min(tb, w), min(cb, c)
        w, c = timed(end_to_end)
        tf, cf = min(tf, w), min(cf, c)
    print(f"model {args.model} (t_in={args.t_in}, widths={args.widths or 'small preset'}), "
          f"{args.ny}x{args.nx} grid, window {args.window}, {spec.n_windows} windows x "
          f"{args.steps} steps, batch {args.batch}, device {args.device}, "
          f"{torch.get_num_threads()} torch thread(s), best of {args.repeat}")
    print(f"  model.export(): {t_export * 1e3:.1f} ms (forecast caches it per model while the "
          "weights are unchanged)")
    print(f"  bare exported model:  wall {tb * 1e3:8.1f} ms  {n_windows / tb:8.1f} windows/s   "
          f"CPU {cb * 1e3:8.1f} ms")
    print(f"  forecast end to end:  wall {tf * 1e3:8.1f} ms  {n_windows / tf:8.1f} windows/s   "
          f"CPU {cf * 1e3:8.1f} ms")
    print(f"  throughput ratio forecast / bare: wall {tb / tf:.3f}, CPU time {cb / cf:.3f}  "
          "(target >= 0.9)")


def memory_child(args) -> None:
    import resource

    import torch

    from xequi.forecast import forecast
    from xequi.windows import plan_windows

    torch.set_num_threads(args.threads)
    ds = make_dataset(args.mem_ny, args.mem_nx, args.t_in)
    model = make_model(args.model, args.t_in, args.widths)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.perf_counter()
    fc = forecast(ds, model, steps=args.mem_steps, batch_size=args.batch, device=args.device,
                  window=args.window, progress=False)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    spec = plan_windows((args.mem_ny, args.mem_nx), window=args.window)
    all_windows = spec.n_windows * args.t_in * 2 * args.window ** 2 * 4
    print(json.dumps({"before": before, "peak": peak, "seconds": seconds,
                      "n_windows": spec.n_windows, "all_windows_bytes": all_windows,
                      "finite": bool(np.isfinite(fc.u.values).all()),
                      "input_bytes": int(ds.nbytes), "output_bytes": int(fc.nbytes)}))


def memory(args) -> None:
    cmd = [sys.executable, __file__, "--memory-child"] + sys.argv[1:]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    gib = 1024 ** 3
    print(f"memory: {args.mem_ny}x{args.mem_nx} grid, {r['n_windows']} windows, "
          f"{args.mem_steps} step(s), batch {args.batch} ({r['seconds']:.1f} s)")
    print(f"  RSS before forecast (imports, model, {r['input_bytes'] / 2**20:.0f} MiB input): "
          f"{r['before'] / 2**20:8.1f} MiB")
    print(f"  peak RSS during forecast:  {r['peak'] / 2**20:8.1f} MiB = {r['peak'] / gib:.3f} GiB "
          f"(target < 2 GiB); output {r['output_bytes'] / 2**20:.0f} MiB")
    print(f"  all windows materialized at once would take {r['all_windows_bytes'] / 2**20:.0f} MiB "
          f"of input alone; all outputs finite: {r['finite']}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnet")
    p.add_argument("--widths", type=lambda s: tuple(int(v) for v in s.split(",")), default=None,
                   help="comma-separated widths (default: the 'small' preset)")
    p.add_argument("--t-in", dest="t_in", type=int, default=2)
    p.add_argument("--ny", type=int, default=256)
    p.add_argument("--nx", type=int, default=256)
    p.add_argument("--window", type=int, default=64)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--mem-ny", dest="mem_ny", type=int, default=1024)
    p.add_argument("--mem-nx", dest="mem_nx", type=int, default=1024)
    p.add_argument("--mem-steps", dest="mem_steps", type=int, default=2)
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    if args.memory_child:
        memory_child(args)
        return
    if not args.skip_throughput:
        throughput(args)
    if not args.skip_memory:
        memory(args)


if __name__ == "__main__":
    main()
