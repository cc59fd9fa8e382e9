# `make demo` and `make test` set everything up on a fresh machine (python3 -m venv + pip).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WORKSPACE ?= workspace/fashion-small
CONFIG ?= configs/fashion-small.yaml
# Python writes bytecode for what it imports, once, even where the environment says not to (CI,
# containers set PYTHONDONTWRITEBYTECODE): without it every process compiled torch and
# transformers from source again (importing the pipeline: 38 s instead of 18). Compiling only
# what is imported costs the first run 23 s; compiling the whole venv up front cost 70 s of
# every fresh install (4,500 of its 21,600 modules are ever imported by the demo).
export PYTHONDONTWRITEBYTECODE :=

.PHONY: install demo test bench lint explore

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --no-compile -e '.[dev]'
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
