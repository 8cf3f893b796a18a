"""Throughput of the Rayleigh–Bénard simulator (xequi.datasets.rayleigh_benard).

Run as ``python benchmarks/simulate.py [--warm T] [--default-time T] [--paper-time T]``. For each
preset it builds the solver on the preset's simulation grid, spins the flow up for ``--warm`` time
units (untimed, so the time step is that of developed convection), then times a short, fixed
simulated time and prints time steps per second, grid points x steps per second, and an estimate
of the full generation time of the preset (its total simulated time / mean dt / steps per second).
The paper preset is never generated in full here.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def bench(preset: str, sim_time: float, warm_time: float) -> dict:
    from xequi.datasets.rayleigh_benard import _Solver, preset_parameters

    p = preset_parameters(preset)
    nx, ny = p["nx"] * p["refine"], p["ny"] * p["refine"]
    solver = _Solver(p["Ra"], p["Pr"], p["aspect"], nx, ny)
    w, th = solver.initial_state(p["seed"], 0.01)
    # untimed warm-up: let the flow develop so the time step is representative
    t = 0.0
    while t < warm_time:
        w, th, dt = solver.step(w, th, warm_time - t)
        t += dt
    steps = 0
    t = 0.0
    t0 = time.perf_counter()
    while t < sim_time:
        w, th, dt = solver.step(w, th, sim_time - t)
        t += dt
        steps += 1
    elapsed = time.perf_counter() - t0
    points = nx * (ny + 1)
    sps = steps / elapsed
    dt_mean = sim_time / steps
    total_time = p["spinup"] + p["frame_interval"] * (p["frames"] - 1)
    est = total_time / dt_mean / sps
    return dict(preset=preset, grid=f"{ny + 1} x {nx} (nodes incl. walls)", steps=steps,
                elapsed=elapsed, steps_per_s=sps, points_steps_per_s=sps * points,
                dt_mean=dt_mean, sim_total=total_time, est_total_s=est)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--default-time", type=float, default=5.0,
                    help="timed simulated time for the default preset (after the warm-up)")
    ap.add_argument("--paper-time", type=float, default=5.0,
                    help="timed simulated time for the paper preset (after the warm-up)")
    ap.add_argument("--warm", type=float, default=25.0,
                    help="untimed spin-up (time units) before timing, so dt is representative")
    args = ap.parse_args(argv)
    rows = [bench("default", args.default_time, args.warm),
            bench("paper", args.paper_time, args.warm)]
    print(f"numpy {np.__version__}; timings on this machine, single process")
    for r in rows:
        print(f"[{r['preset']}] grid {r['grid']}: {r['steps']} steps in {r['elapsed']:.2f} s -> "
              f"{r['steps_per_s']:.1f} steps/s, {r['points_steps_per_s']:.3g} grid points x steps/s;"
              f" mean dt {r['dt_mean']:.4g}; estimated full preset generation "
              f"({r['sim_total']:g} time units): {r['est_total_s'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
