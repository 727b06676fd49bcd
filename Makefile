# kreplay: `make demo` runs the main job on the bundled traces, `make test` runs the tests.
# Both create the virtualenv and install the project on a fresh machine.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DB     ?= demo.duckdb
MODEL  := kreplay/model/compiled.json

.PHONY: all demo test bench lint clean nightly chromium fuzz shellcheck

all: test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,compile]'
	touch $(STAMP)

# The allocator model compiled with mypyc, in place, and again whenever a source of it
# changes; until then it runs from source: same results, slower (kreplay/model/native.py).
$(MODEL): $(STAMP) $(wildcard kreplay/model/*.py) tools/compile_model.py
	$(BIN)/python tools/compile_model.py

demo: $(MODEL)
	rm -f $(DB) $(DB).wal
	$(BIN)/kreplay ingest --db $(DB) traces/*.kdump*
	$(BIN)/kreplay traces --db $(DB)
	$(BIN)/kreplay revisions
	$(BIN)/kreplay replay numa-migrate --rev D38852 --db $(DB)  # on its sidecar's machine
	$(BIN)/kreplay replay numa-migrate --rev D38852-r-wrongarena --db $(DB)
	$(BIN)/kreplay check --db $(DB) --report reports/demo
	$(BIN)/kreplay diff base D38852 --db $(DB) || [ $$? -eq 1 ]  # 1: differences found
	@echo "the nightly report: file://$(CURDIR)/reports/demo/index.html"

test: $(MODEL) chromium shellcheck
	KREPLAY_EXPECT_COMPILED=1 $(BIN)/python -m pytest -q

# Debian's chromium for the HTML report's browser test: apt-get as root, else unpacked
# under .venv/chromium/. Never fails the build (the test then skips, saying why).
chromium: | $(BIN)/python
	@sh tests/install-chromium.sh $(VENV)/chromium-status.txt

# Debian's shellcheck for the recording script's test: apt-get as root (or password-less
# sudo), else the test skips saying why. Never fails the build.
shellcheck: | $(BIN)/python
	@sh tests/install-shellcheck.sh $(VENV)/shellcheck-status.txt

# One directory per run, named by its UTC date (the check's label in the store): index.html
# plots the metric history of the store's earlier checks (docs/regression.md).
nightly: $(MODEL)
	$(BIN)/kreplay check --db $(DB) --report reports/nightly/$$(date -u +%Y-%m-%d)

# Fuzzing at length (tests/test_fuzz.py and tests/test_model_invariants.py run briefly in
# `make test`): N text cases, a fifth as many binary ones, KILLS kill -9 trials, and
# EXAMPLES model-invariant sequences per case, in JOBS processes (1: the same cases as
# earlier sessions for a seed); docs/reliability.md keeps the figures.
N ?= 10000
KILLS ?= 10
SEED ?= 1
JOBS ?= 1
EXAMPLES ?= 200
fuzz: $(MODEL)
	$(BIN)/python tools/fuzz.py --text $(N) --binary $$(( $(N) / 5 )) --kill $(KILLS) --seed $(SEED) \
		--jobs $(JOBS)
	KREPLAY_FUZZ_EXAMPLES=$(EXAMPLES) $(BIN)/python -m pytest -q -p no:cacheprovider \
		tests/test_model_invariants.py

bench: $(MODEL)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/ktrace.py
	$(BIN)/python bench/replay.py
	$(BIN)/python bench/check.py

lint: $(STAMP)
	$(BIN)/ruff check kreplay tests bench tools
	$(BIN)/ruff format --check kreplay tests bench tools
	$(BIN)/mypy kreplay/model
	$(BIN)/mypy kreplay/snapshot kreplay/record
	$(BIN)/mypy kreplay/ops.py kreplay/events.py kreplay/lifecycle.py kreplay/validate.py kreplay/result.py kreplay/cells.py kreplay/replay.py kreplay/work.py kreplay/check.py kreplay/executors.py

clean:
	rm -rf $(VENV) build kreplay/model/*.so $(MODEL) *.duckdb *.duckdb.wal .pytest_cache bench/out reports/demo
