# kreplay: `make demo` runs the main job on the bundled traces, `make test` runs the tests.
# Both create the virtualenv and install the project on a fresh machine.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DB     ?= demo.duckdb

.PHONY: all demo test bench lint clean nightly

all: test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	rm -f $(DB) $(DB).wal
	$(BIN)/kreplay ingest --db $(DB) traces/*.kdump*
	$(BIN)/kreplay traces --db $(DB)
	$(BIN)/kreplay revisions
	$(BIN)/kreplay replay build-j16 --rev base --db $(DB)
	$(BIN)/kreplay replay build-j16 --rev D38852 --db $(DB)
	$(BIN)/kreplay check --db $(DB)

test: $(STAMP)
	$(BIN)/python -m pytest -q

nightly: $(STAMP)
	$(BIN)/kreplay check --db $(DB) --report reports/nightly

bench: $(STAMP)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/ktrace.py
	$(BIN)/python bench/replay.py
	$(BIN)/python bench/check.py

lint: $(STAMP)
	$(BIN)/ruff check kreplay tests bench
	$(BIN)/ruff format --check kreplay tests bench

clean:
	rm -rf $(VENV) *.duckdb *.duckdb.wal .pytest_cache bench/out
