# The two commands of the README. Each sets up what it needs in .venv on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: example test lint

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

example: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[example]"
	$(BIN)/uvicorn example_app.main:app --host 127.0.0.1 --port 8000

test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest -q

# Benchmarks (not part of `make test`): a separate venv with the peers installed.
.PHONY: bench bench-quick

bench/.venv/bin/python:
	sh bench/setup.sh

# Sections 1-6 of BENCHMARKS.md, ~6 min; the first run also provisions 11,000 tenants into bench/data/ (~3 min, once).
bench: bench/.venv/bin/python
	sh bench/run.sh

# Smoke run of every script (< 30 s each); writes bench/results/*.quick.json
bench-quick: bench/.venv/bin/python
	sh bench/run.sh --quick
