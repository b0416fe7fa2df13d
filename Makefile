# `make run` and `make test` work on a fresh machine with only Python 3.11+: they create .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint format check-migrations bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Orchestra needs Python 3.11 or newer ($(PYTHON) is older); run: make PYTHON=python3.11 ..."; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || \
		{ echo "Could not create a virtualenv; on Debian/Ubuntu run: sudo apt-get install python3-venv"; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# The legacy orchestra-sdk 0.0.9 (orcProcess) shares its package name with 0.2.0: a folder of its own,
	# which tests/integration/test_script_and_external_steps.py puts on a script step's PYTHONPATH.
	$(BIN)/python -m pip install --quiet --no-deps --upgrade --target $(VENV)/legacy-sdk orchestra-sdk==0.0.9
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/orchestra serve --load-examples --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/mypy --strict src/orchestra/engine

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks examples
	$(BIN)/ruff check --fix src tests benchmarks examples

check-migrations: $(STAMP)
	$(BIN)/orchestra makemigrations --check --dry-run orchestra

bench: $(STAMP)
	$(BIN)/python benchmarks/engine.py

clean:
	rm -rf $(VENV) .orchestra .pytest_cache .ruff_cache .mypy_cache
