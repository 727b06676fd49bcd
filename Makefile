# kreplay: `make demo` runs the main job on the bundled traces, `make test` runs the tests.
# Both create the virtualenv and install the project on a fresh machine.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DB     ?= demo.duckdb

.PHONY: all demo test bench lint clean nightly chromium

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
	$(BIN)/kreplay replay numa-migrate --rev D38852 --db $(DB)  # on its sidecar's machine
	$(BIN)/kreplay replay numa-migrate --rev D38852-r-wrongarena --db $(DB)
	$(BIN)/kreplay check --db $(DB) --report reports/demo
	$(BIN)/kreplay diff base D38852 --db $(DB) || [ $$? -eq 1 ]  # 1: differences found
	@echo "the nightly report: file://$(CURDIR)/reports/demo/index.html"

test: $(STAMP) chromium
	$(BIN)/python -m pytest -q

# Debian's chromium for the HTML report's browser test: apt-get as root, else unpacked
# under .venv/chromium/. Never fails the build (the test then skips, saying why).
chromium: | $(BIN)/python
	@sh tests/install-chromium.sh $(VENV)/chromium-status.txt

# One directory per run, named by its UTC date: index.html plots the metric history from
# the report.json of the earlier runs beside it (docs/regression.md).
nightly: $(STAMP)
	$(BIN)/kreplay check --db $(DB) --report reports/nightly/$$(date -u +%Y-%m-%d)

bench: $(STAMP)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/ktrace.py
	$(BIN)/python bench/replay.py
	$(BIN)/python bench/check.py

lint: $(STAMP)
	$(BIN)/ruff check kreplay tests bench
	$(BIN)/ruff format --check kreplay tests bench

clean:
	rm -rf $(VENV) *.duckdb *.duckdb.wal .pytest_cache bench/out reports/demo
