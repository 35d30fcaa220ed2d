# `make quickstart` and `make test` both create .venv when missing and install everything first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install quickstart test lint gpu-check clean

$(STAMP): pyproject.toml Makefile deploy/check_machine.sh deploy/install_gpaw.sh deploy/gpaw-siteconfig.py
	deploy/check_machine.sh $(PYTHON)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip "setuptools>=77" wheel
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e ".[dev]"
	deploy/install_gpaw.sh $(BIN)/pip
	touch $(STAMP)

install: $(STAMP)

quickstart: $(STAMP)
	$(BIN)/epdi quickstart

lint: $(STAMP)
	$(BIN)/ruff check workflows epdi_ml stores tests

test: $(STAMP) lint
	$(BIN)/pytest -q

# CUDA training path (AMP) on the reference fragments: images/s, peak memory, GPU-vs-CPU agreement
# (< 8 min on one GPU). Exit 3 without a GPU; `epdi bench gpu --device cpu --steps 2` checks the logic.
gpu-check: $(STAMP)
	$(BIN)/epdi bench gpu

clean:
	rm -rf $(VENV) epdi-data .pytest_cache .ruff_cache *.egg-info
