"""Smoke test of ``benchmarks/skill.py`` (forecast skill against reference forecasts).

``--smoke``: a tiny cached RBC run, ``resnet`` and ``um-resnet`` at size ``small``, a 3-second
training budget, 3 steps, outputs in a temporary directory. Checks the page and the CSV (every
model row, the reference columns, the targets section), resuming from the per-job cache and the
printed line when the GlobCurrent data are absent.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

from conftest import load_script


@pytest.fixture(scope="module")
def bench():
    return load_script("benchmarks/skill.py", "xequi_bench_skill")


@pytest.fixture(scope="module")
def run(bench, tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    work = tmp_path_factory.mktemp("skill")
    argv = ["--smoke", "--work-dir", str(work)]
    assert bench.main(argv) == 0
    return bench, argv, work / "out", work


def test_page(run):
    bench, _, out, _ = run
    md = (out / "skill.md").read_text()
    assert "python benchmarks/skill.py --smoke" in md
    for section in ("## rbc", "## Targets", "init times fixed before training", "training period"):
        assert section in md
    header = [ln for ln in md.splitlines() if ln.startswith("| model | size | comparison")][0]
    for col in ("pers. RMSE", "clim. RMSE", "damped RMSE", "skill vs pers. [95%]", "vs clim. [95%]",
                "vs damped [95%]", "eff. res.", "band spec. err", "params", "eff. res. cells (truth)",
                "wall / interior err"):
        assert col in header
    for model in ("resnet", "um-resnet"):
        rows = [ln for ln in md.splitlines() if ln.startswith(f"| {model} | small | equal channels |")]
        assert len(rows) == 3  # one per lead
        assert len(rows[0].strip("|").split("|")) == len(header.strip("|").split("|"))
    targets = md.split("## Targets")[1]
    assert "RBC `um-resnet` (small): RMSE <= 0.5 x persistence at every lead" in targets
    assert "GlobCurrent best equivariant skill" in targets and "not measured" in targets
    assert "plain `resnet` of equal parameters" in targets
    for target in ("band spectrum error <= persistence's", "effective resolution within 2 cells",
                   "wall-row error <= 2 x the interior's"):
        assert f"RBC `um-resnet` (small): {target}" in targets
    assert targets.count("does not diverge over 3 steps") == 2
    lines = [ln for ln in targets.splitlines() if ln.startswith("- ") and "not measured" not in ln]
    assert lines and all(("MET (" in ln) or ("MISSED (" in ln) for ln in lines)
    assert (out / "skill_rbc.png").stat().st_size < 200_000


def test_csv(run):
    bench, _, out, _ = run
    with open(out / "skill.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 3
    assert {r["model"] for r in rows} == {"resnet", "um-resnet"}
    for ref in bench.REFS:
        for k in ("rmse", "skill", "lo", "hi"):
            assert f"{ref}_{k}" in rows[0]
    for r in rows:
        assert float(r["rmse"]) > 0 and int(r["params"]) > 0
        assert float(r["persistence_lo"]) <= float(r["persistence_skill"]) <= float(r["persistence_hi"])
        # skill = 1 - RMSE / RMSE_ref on the same cells
        np.testing.assert_allclose(float(r["climatology_skill"]),
                                   1 - float(r["rmse"]) / float(r["climatology_rmse"]), rtol=1e-6)
        assert float(r["wall_ratio"]) > 0 and float(r["persistence_band_err"]) >= 0
        assert float(r["truth_eff_res_cells"]) <= float(r["eff_res_cells"]) or \
            np.isnan(float(r["eff_res_cells"]))


def test_resume_skips_finished_jobs(run, capsys):
    bench, argv, _, work = run
    before = {p.name: p.stat().st_mtime_ns for p in (work / "results" / "rbc").glob("*.json")}
    assert bench.main(argv + ["--no-figures"]) == 0
    assert capsys.readouterr().out.count("finished job") == 2
    after = {p.name: p.stat().st_mtime_ns for p in (work / "results" / "rbc").glob("*.json")}
    assert before == after and len(before) == 2


def test_globcurrent_skipped_without_data(bench, tmp_path, capsys):
    a = bench.parse_args(["--smoke", "--data-dir", str(tmp_path / "absent")])
    assert bench.load(a, "globcurrent") is None
    assert "GlobCurrent: skipped" in capsys.readouterr().out


def test_rescore_scores_finished_jobs_again_without_training(run, capsys):
    bench, argv, _, work = run
    res = work / "results" / "rbc" / "resnet-small.json"
    import json

    before = json.loads(res.read_text())
    assert bench.main(argv + ["--no-figures", "--rescore"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("rescored") == 2 and "training (budget" not in printed
    after = json.loads(res.read_text())
    assert after["train_seconds"] == before["train_seconds"]
    np.testing.assert_allclose([x["rmse"] for x in after["leads"]],
                               [x["rmse"] for x in before["leads"]], rtol=1e-5)


def test_report_writes_the_page_from_finished_jobs_only(run, capsys):
    bench, argv, out, work = run
    argv2 = [x for x in argv] + ["--no-figures", "--report", "--models", "resnet,rot-resnet"]
    assert bench.main(argv2) == 0
    printed = capsys.readouterr().out
    assert "training (budget" not in printed
    md = (out / "skill.md").read_text()
    assert "rbc rot-resnet small: not run (--report)" in md
    assert "| resnet | small | equal channels |" in md and "| rot-resnet | small |" not in md
