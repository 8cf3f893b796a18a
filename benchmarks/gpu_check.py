"""One short GPU check of the CUDA path (run on a machine with a GPU; prints a small table).

1. forecast(device="cuda") equals forecast(device="cpu") for rot-resnet and resnet (float32;
   TF32 convolutions disabled so the comparison is about the code path, not the arithmetic).
2. rot90 equivariance of the whole forecast pipeline on CUDA.
3. Throughput of the exported models on CUDA at equal channel count (forward, batch 64, 64x64).

Usage: ``python benchmarks/gpu_check.py`` (needs CUDA; about a minute).
"""

from __future__ import annotations

import time

import numpy as np
import torch
import xarray as xr


def dataset(n=192, nt=6, seed=0):
    rng = np.random.default_rng(seed)
    x = np.arange(n) * 1000.0
    da = lambda: (("time", "y", "x"), rng.standard_normal((nt, n, n)).astype("float32"),  # noqa: E731
                  {"units": "m s-1"})
    return xr.Dataset(
        {"u": da(), "v": da()},
        coords={"time": ("time", np.arange(nt) * 3600.0, {"units": "s", "axis": "T"}),
                "y": ("y", x, {"units": "m", "axis": "Y"}), "x": ("x", x, {"units": "m", "axis": "X"})})


def main() -> None:
    from xequi.forecast import as_forecast_model, forecast
    from xequi.models import create
    from xequi.symmetry import transform

    assert torch.cuda.is_available(), "no CUDA"
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    print("device:", torch.cuda.get_device_name(0), "torch", torch.__version__)
    ds = dataset()
    rows = []
    for name in ("resnet", "rot-resnet"):
        torch.manual_seed(0)
        net = create(name, t_in=4).eval()
        model = as_forecast_model(net, dx="1 km", dt="1 h")
        t = time.perf_counter()
        cpu = forecast(ds, model, steps=3, device="cpu", progress=False)
        t_cpu = time.perf_counter() - t
        forecast(ds, model, steps=1, device="cuda", progress=False)  # warm-up
        torch.cuda.synchronize()
        t = time.perf_counter()
        gpu = forecast(ds, model, steps=3, device="cuda", progress=False)
        torch.cuda.synchronize()
        t_gpu = time.perf_counter() - t
        rel = float(np.sqrt(((gpu["u"] - cpu["u"]) ** 2).mean() / (cpu["u"] ** 2).mean()))
        rot_fc = forecast(transform(ds, "rot90", k=1), model, steps=3, device="cuda", progress=False)
        ref = transform(gpu.isel(init_time=0, drop=True).rename(lead_time="time"), "rot90", k=1)
        err = float(np.sqrt(((rot_fc["u"].isel(init_time=0).values - ref["u"].values) ** 2).mean()
                            / (ref["u"].values ** 2).mean()))
        rows.append((name, rel, err, t_cpu, t_gpu))
    print(f"{'model':<12}{'gpu vs cpu':>12}{'rot90 err':>12}{'cpu s':>8}{'gpu s':>8}")
    for r in rows:
        print(f"{r[0]:<12}{r[1]:12.2e}{r[2]:12.2e}{r[3]:8.2f}{r[4]:8.2f}")

    # exported forward throughput, equal channel count (plain width 96 = 24 C4 fields x 4)
    x = torch.randn(64, 4, 2, 64, 64, device="cuda")
    times = {}
    for name, kw in (("resnet", {"widths": (96, 96, 192, 192)}),
                     ("rot-resnet", {"widths": (24, 24, 48, 48), "group_order": 4})):
        net = create(name, t_in=4, **kw).eval().cuda().export()
        with torch.inference_mode():
            for _ in range(3):
                net(x)
            torch.cuda.synchronize()
            ts = []
            for _ in range(10):
                t = time.perf_counter()
                net(x)
                torch.cuda.synchronize()
                ts.append(time.perf_counter() - t)
        times[name] = float(np.median(ts))
    print(f"exported forward, batch 64, 64x64, equal channels: resnet {times['resnet'] * 1e3:.2f} ms, "
          f"rot-resnet {times['rot-resnet'] * 1e3:.2f} ms, ratio {times['rot-resnet'] / times['resnet']:.2f}")


if __name__ == "__main__":
    main()
