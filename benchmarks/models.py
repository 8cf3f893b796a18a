"""Cost of the layer families at equal channel count (run by hand).

For each family, on the ResNet and U-net backbones, prints: parameters, MACs per 64x64 sample
(``torch.utils.flop_counter.FlopCounterMode`` on the exported model, MAC = FLOP / 2), forward
time of the *exported* model and training-step time (forward + backward + Adam step, unexported,
e2cnn filter expansion included), both relative to the plain model of the same backbone, all
measured in one run.

"Equal channel count": the plain model has widths ``W`` channels; the Rot model ``W / N``
regular C_N fields (``W`` channels); the Scale model ``W / S`` fields over S scales.

Usage::

    .venv/bin/python benchmarks/models.py [--width 24] [--t-in 4] [--batch 4] [--threads 1]
        [--device cpu] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from xequi.models import create


def _time(fn, repeat: int, sync) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _configs(w: int):
    ws_res = lambda div: tuple(int(c // div) for c in (w, w, 2 * w, 2 * w))  # noqa: E731
    ws_unet = lambda div: tuple(int(c // div) for c in (w, 2 * w, 4 * w))  # noqa: E731
    out = []
    for bb, ws in (("resnet", ws_res), ("unet", ws_unet)):
        out += [
            (bb, dict(widths=ws(1))),
            (f"um-{bb}", dict(widths=ws(1))),
            (f"mag-{bb}", dict(widths=ws(1))),
            (f"rot-{bb}", dict(widths=ws(4), group_order=4)),
            (f"rot-{bb}", dict(widths=ws(8), group_order=8)),
            (f"scale-{bb}", dict(widths=ws(3), n_scales=3)),
            (f"um-mag-rot-{bb}", dict(widths=ws(4), group_order=4)),
        ]
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--width", type=int, default=24, help="plain channels of the first block (divisible by 24)")
    p.add_argument("--t-in", type=int, default=4)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--grid", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeat", type=int, default=5)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    print(f"device={dev} threads={a.threads} batch={a.batch} grid={a.grid}x{a.grid} t_in={a.t_in} "
          f"plain width={a.width}; times are medians of {a.repeat}")
    head = (f"{'model':<20} {'group':>6} {'widths':<18} {'params':>9} {'MMAC/sample':>12} "
            f"{'fwd exported':>13} {'train step':>11} {'fwd rel':>8} {'train rel':>9}")
    print(head)
    print("-" * len(head))
    x = torch.randn(a.batch, a.t_in, 2, a.grid, a.grid, device=dev)
    target = torch.randn(a.batch, 2, a.grid, a.grid, device=dev)
    rows = []
    for name, kw in _configs(a.width):
        torch.manual_seed(0)
        net = create(name, t_in=a.t_in, **kw).to(dev)
        exp = net.export().to(dev)
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            exp(x[:1])
        net.train()
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        rows.append(dict(name=name, kw=kw, net=net, exp=exp, opt=opt, macs=fc.get_total_flops() / 2 / 1e6,
                         params=sum(q.numel() for q in net.parameters()), fwd=[], train=[]))

    def fwd(r):
        with torch.no_grad():
            r["exp"](x)

    def step(r):
        r["opt"].zero_grad()
        torch.nn.functional.mse_loss(r["net"](x), target).backward()
        r["opt"].step()

    # round-robin so that load changes on a shared machine hit every model alike
    for r in rows:
        fwd(r), step(r)
    sync()
    for _ in range(a.repeat):
        for r in rows:
            r["fwd"].append(_time(lambda: fwd(r), 1, sync))
            r["train"].append(_time(lambda: step(r), 1, sync))
    ref = {}
    for r in rows:
        name, kw = r["name"], r["kw"]
        t_fwd, t_train = statistics.median(r["fwd"]), statistics.median(r["train"])
        bb = "unet" if name.endswith("unet") else "resnet"
        if name == bb:
            ref[bb] = (t_fwd, t_train)
        group = f"C{kw['group_order']}" if "group_order" in kw else (f"S{kw['n_scales']}" if "n_scales" in kw else "-")
        print(f"{name:<20} {group:>6} {str(kw['widths']):<18} {r['params']:>9,d} {r['macs']:>12.1f} "
              f"{t_fwd * 1e3:>10.1f} ms {t_train * 1e3:>8.1f} ms {t_fwd / ref[bb][0]:>7.2f}x "
              f"{t_train / ref[bb][1]:>8.2f}x")


if __name__ == "__main__":
    main()
