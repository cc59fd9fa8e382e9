# `make demo` and `make test` set everything up on a fresh machine (python3 -m venv + pip).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WORKSPACE ?= workspace/fashion-small
CONFIG ?= configs/fashion-small.yaml

.PHONY: install demo test bench lint explore

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --no-compile -e '.[dev]'
	# Bytecode for every installed package, on every core at once (about 1 min on 2). Without it, where
	# PYTHONDONTWRITEBYTECODE is set (CI, containers) each process compiled torch and transformers from
	# source again: importing sentence-transformers took 32 s instead of 13. A file only a newer Python
	# can compile (torch ships some) fails here harmlessly, hence `|| true`.
	$(BIN)/python -m compileall -qq -j 0 $(VENV)/lib || true
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/discover run $(CONFIG) --workspace $(WORKSPACE)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4 --dist loadgroup  # a process per core (at most 4); Ray tests share one

bench: $(STAMP)
	$(BIN)/python -m benchmarks

explore: $(STAMP)
	$(BIN)/discover explore --workspace $(WORKSPACE)

lint: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
