"""Smoke test of scripts/scalar_experiment.py: tiny scalar-only models, 1 epoch."""
from __future__ import annotations

from conftest import load_script


def test_scalar_experiment_runs_and_writes_its_table(rbc_default, tmp_path, capsys):
    mod = load_script("scripts/scalar_experiment.py")
    assert mod.main(["--epochs", "1", "--widths", "2", "--train-frames", "60", "--steps", "3",
                     "--n-init", "2", "--results-dir", str(tmp_path)]) == 0
    text = (tmp_path / "scalar_temperature.md").read_text()
    rows = [r for r in text.splitlines() if r.startswith("| ") and "test data" not in r]
    assert [r.split("|")[1:3] for r in rows] == [
        [f" {m} ", f" {d} "] for m in ("resnet", "rot-resnet", "persistence")
        for d in ("original", "rotated 90°")]
    rot = [r for r in rows if r.startswith("| rot-resnet")]
    # the rotation model scores the same on the rotated copy, to float rounding
    assert rot[0].split("|")[3:6] == rot[1].split("|")[3:6]
    assert float(rot[0].split("|")[-2]) < 1e-4
    assert "Produced by `python scripts/scalar_experiment.py --epochs 1" in text
