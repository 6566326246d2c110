# Two commands for a new user: `make run` (the whole system on the simulated broker) and `make test`.
# Both create the virtual environment on first use; only Python 3.11+ and make are needed.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run run-headless stop status restart-strategies backtest test test-fast soak lint bench venv clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(PY) main.py

run-headless: $(STAMP)
	$(PY) main.py --headless

stop: $(STAMP)
	$(PY) main.py ctl shutdown

status: $(STAMP)
	-$(PY) main.py ctl status  # supervisorctl exits non-zero when any program (e.g. headless telegram) is not running

restart-strategies: $(STAMP)
	$(PY) main.py ctl restart strategy_xau strategy_btc

# The live cores on the shipped history in one process; report in reports/$(NAME). Options: ARGS="--from ...".
NAME ?= shipped
backtest: $(STAMP)
	$(PY) main.py backtest --out reports/$(NAME) $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy shared services backtest tests main.py

test: lint
	$(VENV)/bin/pytest -q

test-fast: $(STAMP)
	$(VENV)/bin/pytest -q -m "not system"

# The chaos test of `make test` for longer (default 30 minutes): SIGKILLs under supervisord with broker faults.
# Figures in the output and docs/RELIABILITY.md. Options: SOAK_SECONDS=1800 SOAK_SEED=7.
SOAK_SECONDS ?= 1800
SOAK_SEED ?= 7
soak: $(STAMP)
	CHAOS_SECONDS=$(SOAK_SECONDS) CHAOS_SEED=$(SOAK_SEED) $(VENV)/bin/pytest -q -s tests/system/test_chaos.py

bench: $(STAMP)
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
