"""Ship the GlobCurrent ocean model: the skill benchmark's best equivariant model, chosen on
validation, as ``xequi/pretrained/<family>-globcurrent.xequi`` with a card that says so.

``benchmarks/skill.py --datasets globcurrent`` trains every family on GlobCurrent L4 (Agulhas,
0.25 deg, daily) **2002-01-01..2002-09-30** with ``xequi.train.fit`` (the last 20 % of that period
validates and picks the epoch), keeps each job's best weights in
``<work-dir>/checkpoints/globcurrent/<model>-<size>/best.xequi`` and scores the forecasts from init
times fixed in **2002-10-01..2002-12-31** in ``<work-dir>/results/globcurrent/<model>-<size>.json``.

This script

1. takes the equivariant families of that run (at ``--size``, equal parameters by default) and
   picks the one with the lowest *validation* score (fit's ``best_val``: a rollout RMSE on the
   validation part of the training period) -- the test period never chooses the model;
2. copies its weights into the package with a card recording the data, the split, the selection
   rule, the training budget and device, and the test skill against persistence, climatology and
   damped persistence with the 95 % intervals over init times, per lead, plus a plain verdict.

Usage::

    python benchmarks/skill.py --datasets globcurrent --sizes small-params --budget globcurrent=360
    python scripts/ship_ocean_model.py                    # -> xequi/pretrained/<family>-globcurrent.xequi
    python scripts/ship_ocean_model.py --out-dir /tmp/x   # anywhere else
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFS = ("persistence", "climatology", "damped_persistence")
DATA = ("GlobCurrent L4 total surface currents (CUReul_hs, ALT_SUM v02.0; Agulhas region, "
        "0.25 deg, daily), ../shared/data/globcurrent_agulhas_2002")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work-dir", default=str(ROOT / "build" / "skill"),
                   help="benchmarks/skill.py --work-dir of the GlobCurrent run")
    p.add_argument("--size", default="small-params", help="size preset of the candidates")
    p.add_argument("--out-dir", default=str(ROOT / "xequi" / "pretrained"))
    return p.parse_args(argv)


def candidates(work: Path, size: str) -> list[dict]:
    """The equivariant GlobCurrent jobs of ``size`` with results and best weights."""
    found = []
    for res in sorted((work / "results" / "globcurrent").glob(f"*-{size}.json")):
        r = json.loads(res.read_text())
        best = work / "checkpoints" / "globcurrent" / f"{r['model']}-{size}" / "best.xequi"
        if r["equivariant"] and best.is_file():
            found.append({**r, "weights": best})
    return found


def test_section(r: dict) -> dict:
    """The card's ``metrics.test``: per-lead RMSE and skill with intervals, and a verdict."""
    leads = r["leads"]
    test = {"definition": "RMSE of the velocity vector (u and v pooled) over ocean cells per lead "
                          "(xequi.skill.skill); skill = 1 - RMSE / RMSE_reference, paired "
                          "bootstrap 95% interval over the init times; references on exactly "
                          "the same cells and times",
            "period": "2002-10-01..2002-12-31", "n_initial_times": len(r["config"]["inits"]),
            "lead_days": [x["lead"] for x in leads], "rmse": [x["rmse"] for x in leads],
            "rmse_units": r["units"]["rmse"]}
    for ref in REFS:
        test[f"{ref}_rmse"] = [x[f"{ref}_rmse"] for x in leads]
        test[f"skill_vs_{ref}"] = [[round(x[f"{ref}_{k}"], 3) for k in ("skill", "lo", "hi")]
                                   for x in leads]
    test["verdict"] = verdict(leads)
    return test


def verdict(leads: list[dict]) -> str:
    """A plain sentence: where the model beats persistence (interval above 0) and where not."""
    above = [x["lead"] for x in leads if x["persistence_lo"] > 0]
    below = [x["lead"] for x in leads if x["persistence_hi"] < 0]
    d1 = leads[0]
    head = (f"day-1 skill vs persistence {d1['persistence_skill']:.2f} "
            f"[{d1['persistence_lo']:.2f}, {d1['persistence_hi']:.2f}]")
    if len(above) == len(leads):
        return f"beats persistence at every lead 1..{len(leads)} d (95% intervals above 0); {head}"
    parts = [head, f"beats persistence (interval above 0) at day(s) {above or 'none'}"]
    if below:
        parts.append(f"LOSES to persistence (interval below 0) at day(s) {below}")
    return "; ".join(parts)


def main(argv=None) -> int:
    a = parse_args(argv)
    from xequi import checkpoint

    found = candidates(Path(a.work_dir), a.size)
    if not found:
        print(f"no equivariant GlobCurrent job at size {a.size} under {a.work_dir}: run "
              "benchmarks/skill.py --datasets globcurrent first", file=sys.stderr)
        return 1
    for r in found:
        print(f"{r['model']:20s} validation {r['best_val']:.5f}  params {r['params']:,}")
    best = min(found, key=lambda r: r["best_val"])
    name = f"{best['model']}-globcurrent"
    model = checkpoint.load_model(best["weights"])
    cfg = best["config"]
    training = {**(model.card.get("training") or {}),
                "data": f"{DATA}; trained on 2002-01-01..2002-09-30 (fit: last "
                        f"{cfg['val_fraction']:.0%} of it validates), tested on init times in "
                        "2002-10-01..2002-12-31; land filled with 0 for the model, masked in "
                        "the scores",
                "selection": f"lowest validation rollout RMSE among the equivariant families "
                             f"({', '.join(r['model'] for r in found)}) at size {a.size} "
                             "(equal parameters); the test period chose nothing",
                "budget": {"max_time_s": cfg["budget"],
                           "clock": f"{cfg.get('budget_clock', 'wall')} (fit budget_clock)",
                           "wall_seconds": round(best["train_seconds"], 1),
                           "epochs_run": best["epochs_run"], "device": "cpu, 1 thread",
                           "note": "trained while other benchmark jobs shared the 2 cores"},
                "produced_by": "benchmarks/skill.py --datasets globcurrent, then "
                               "scripts/ship_ocean_model.py"}
    metrics = {**(model.card.get("metrics") or {}), "test": test_section(best)}
    out = Path(a.out_dir) / f"{name}{checkpoint.SUFFIX}"
    checkpoint.save_model(model, out, card={"training": training, "metrics": metrics},
                          overwrite=True)
    print(f"wrote {out}: {metrics['test']['verdict']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
