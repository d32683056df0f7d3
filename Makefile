# Two commands matter: `make demo` and `make test`. Both install everything first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
OUT ?= out
STAMP := $(VENV)/.installed

.PHONY: setup system-deps demo test test-fast bench bench-quick lint clean

setup: $(STAMP)

# torch: where no CUDA is present, install the CPU build first (2.13.0 lies on this
# machine's disk); the project's torch range then installs nothing more.
$(STAMP): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	if ! command -v nvidia-smi >/dev/null 2>&1; then $(PY) -m pip install -q "torch==2.13.0"; fi
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# System tools the QA and tests use: dciodvfy (dicom3tools) and a headless Chromium.
# Installed only when missing and when we are allowed to (root).
system-deps:
	@if ! command -v dciodvfy >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dicom3tools chromium >/dev/null; \
	  else echo "warning: install dicom3tools and chromium (apt) for full QA" >&2; fi; \
	fi

demo: setup system-deps
	$(VENV)/bin/deepcac2 synth --cohort demo --out $(OUT)/demo/dicom

test: setup system-deps
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

bench: setup
	$(PY) -m bench.run

bench-quick: setup
	$(PY) -m bench.run --quick

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(OUT) .pytest_cache .ruff_cache
