# The two commands of the README. Each creates .venv itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test bench bench-dashboard clean

run: $(VENV)/.run-installed
	$(BIN)/binome serve --demo

test: $(VENV)/.test-installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.test-installed
	$(BIN)/python bench/ingest.py

# 30 days of one million page views, rolled up as `binome maintain` does, then how long
# the dashboard takes to load (5 first loads: median and max; bench/results/dashboard.json).
bench-dashboard: $(VENV)/.test-installed
	$(BIN)/python bench/dashboard.py

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Binome needs Python 3.11 or newer (set PYTHON=python3.x)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The embedded extra brings PostgreSQL binaries (the pgserver wheel) for
# machines that have none; machines with PostgreSQL installed use their own.
$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[embedded]"
	@touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[embedded,test]"
	@touch $@ $(VENV)/.run-installed

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
