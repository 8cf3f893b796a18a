# xequi: set-up, demo and tests. Everything installs into a local virtual environment.
#   make demo   create .venv, install xequi (CPU torch first), run the main job on the built-in default
#   make test   same environment, run the whole test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.xequi-installed
# torch is pinned here (not in pyproject, which stays permissive: torch>=2.3) so that a fresh
# machine gets the CPU build that lies on local disk instead of resolving a multi-GB CUDA build.
TORCH_PIN ?= torch==2.13.0

.PHONY: install demo test test-slow test-gpu bench docs docs-serve cli-docs errors-table clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_PIN)"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/xequi demo

test: install
	$(PY) -m pytest

# Slow physics / training-quality checks: not selected by CI, run by hand.
test-slow: install
	$(PY) -m pytest -m slow

# CUDA-only tests (bf16 training, GPU forecast): run on a machine with a GPU.
test-gpu: install
	$(PY) -m pytest -m gpu

# documentation site (strict: a warning fails the build); also built by a test in `make test`
docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

docs-serve: install
	$(VENV)/bin/mkdocs serve

# regenerate docs/cli.md and docs/errors.md from the code (tests check they are up to date)
cli-docs: install
	$(PY) scripts/gen_cli_docs.py

errors-table: install
	$(PY) scripts/gen_error_table.py

bench: install
	$(PY) benchmarks/simulate.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis demo-output build/site
