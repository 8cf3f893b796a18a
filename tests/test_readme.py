"""The README's code runs as written (the ten-line example)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs(rbc_default, tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python example"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)  # noqa: S102 - our own README
    assert (tmp_path / "rmse.png").stat().st_size > 0
    fc, E = namespace["fc"], namespace["E"]
    assert fc.sizes["lead_time"] == 10 and "wavenumber" in E.dims
