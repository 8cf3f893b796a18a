"""The documentation: the site builds without warnings, the CLI page matches the parser, the
notebooks are stored without outputs, every page and notebook the docs link to exists.

The notebooks themselves are executed by ``pytest --nbmake docs/notebooks`` (see the Makefile).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import load_script

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
NOTEBOOKS = sorted((DOCS / "notebooks").glob("*.ipynb"))


def _load_gen_cli():
    return load_script("scripts/gen_cli_docs.py")


def test_cli_page_in_sync_with_parser():
    gen = _load_gen_cli()
    expected = gen.render()
    assert (DOCS / "cli.md").read_text() == expected, (
        "docs/cli.md is out of date with xequi.cli.build_parser(): run "
        "`python scripts/gen_cli_docs.py`")


def test_cli_page_lists_every_subcommand_and_option():
    from xequi.cli import build_parser

    text = (DOCS / "cli.md").read_text()
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, p in sub.choices.items():
        assert f"## `xequi {name}`" in text
        for action in p._actions:
            for opt in action.option_strings:
                if opt not in ("-h", "--help"):
                    assert f"`{opt}`" in text, (name, opt)


def test_notebooks_exist():
    names = {p.name for p in NOTEBOOKS}
    assert {"quickstart.ipynb", "ocean.ipynb"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_stored_without_outputs(path):
    nb = json.loads(path.read_text())
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        assert not cell.get("outputs"), f"{path.name} cell {i} has stored outputs: strip them"
        assert cell.get("execution_count") is None, f"{path.name} cell {i} has an execution count"


def test_quickstart_uses_the_shipped_models():
    src = "".join("".join(c["source"]) for c in
                  json.loads((DOCS / "notebooks" / "quickstart.ipynb").read_text())["cells"])
    for needle in ('rayleigh_benard(preset="default")', 'load_model("rot-resnet")',
                   'load_model("resnet")', 'transform("rot90", k=1)', "write_dataset"):
        assert needle in src, needle


def test_internal_markdown_links_resolve():
    """Relative links between the docs pages (and from the README) point at existing files."""
    pages = [ROOT / "README.md", *DOCS.glob("*.md"), *DOCS.glob("*/*.md")]
    bad = []
    for page in pages:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = target.split("#")[0]
            if path and not (page.parent / path).exists():
                bad.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not bad, bad


def test_api_pages_cover_the_modules():
    modules = ["fields", "symmetry", "windows", "models", "train", "checkpoint", "forecast",
               "diagnostics", "plot", "io", "ocean", "datasets", "catalog", "errors"]
    for m in modules:
        assert f"::: xequi.{m}" in (DOCS / "api" / f"{m}.md").read_text(), m


def test_docs_site_builds_strict(tmp_path):
    """``mkdocs build --strict``: every warning (broken link, bad docstring, missing page) fails."""
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "WARNING" not in log, log[-4000:]
    assert (tmp_path / "site" / "api" / "forecast" / "index.html").stat().st_size > 10_000
    assert (tmp_path / "site" / "cli" / "index.html").exists()


def test_readme_commands_parse():
    """Every ``xequi ...`` command line in the README is accepted by the parser."""
    import shlex

    from xequi.cli import build_parser

    text = (ROOT / "README.md").read_text()
    lines = [ln.split("#")[0].strip() for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S)
             for ln in block.splitlines()]
    commands = [ln for ln in lines if ln.startswith("xequi ")]
    assert len(commands) >= 5
    parser = build_parser()
    for cmd in commands:
        args = parser.parse_args(shlex.split(cmd)[1:])
        assert callable(args.func), cmd


def test_readme_keeps_setup_commands_first():
    text = (ROOT / "README.md").read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, flags=re.S).group(1)
    assert first_block.splitlines()[0].startswith("make demo")
    assert first_block.splitlines()[1].startswith("make test")
