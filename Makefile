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

# The whole chain on the embedded synthetic cohort: synth -> cohort -> run -> QA -> evaluate -> release -> verify.
# Real mediastinal anatomy (--great-vessels): aortic arch, descending aorta against the heart, aortic,
# valvular, nodal and costal-cartilage calcium, which the model must not count as coronary.
DEMO := $(OUT)/demo
DC := $(VENV)/bin/deepcac2
demo: setup system-deps
	$(DC) synth --cohort demo --great-vessels --out $(DEMO)/dicom
	$(DC) cohort --from-dir $(DEMO)/dicom --policy all -o $(DEMO)/cohort.parquet
	$(DC) run --cohort $(DEMO)/cohort.parquet --out $(DEMO)/run --overwrite
	$(DC) qa $(DEMO)/run --cohort $(DEMO)/cohort.parquet
	$(DC) evaluate --pred $(DEMO)/run --ref $(DEMO)/dicom --out $(DEMO)/evaluate
	$(DC) release build $(DEMO)/run --version 0.1.0-demo --out $(DEMO)/release --cohort $(DEMO)/cohort.parquet --overwrite
	$(DC) release verify $(DEMO)/release
	@echo
	@echo "dashboard:    $(abspath $(DEMO))/release/dashboard/index.html"
	@echo "dataset card: $(abspath $(DEMO))/release/DATASET_CARD.md"

test: setup system-deps
	# the slowest tests are listed so CI's time budget (30 min) can be watched
	$(PY) -m pytest -q --durations=25

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
