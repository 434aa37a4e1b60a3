# mpesa-bridge — the verbs. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "mpesa-bridge needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.lock
	@$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e ./sdks/python
	@touch $(STAMP)

.PHONY: install
install: $(STAMP) ## Create .venv and install the locked dependencies

.PHONY: run
run: $(STAMP) ## Migrate the SQLite database and start the bridge with the built-in simulator on :8000
	@$(BIN)/mpesa-bridge serve --dev

# One test process per core (pytest-xdist), each taking whole files: a module's bridge, browser or
# database is started once, in one process. PYTEST_WORKERS=0 runs everything in this process.
PYTEST_WORKERS ?= auto

.PHONY: test
test: $(STAMP) ## Run the whole test suite on every core (PostgreSQL/Redis tests skip loudly when unreachable)
	@$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

.PHONY: api-docs
api-docs: $(STAMP) ## Write docs/openapi.json and docs/mpesa-bridge.postman_collection.json from the app
	@$(BIN)/mpesa-bridge openapi --out docs

.PHONY: lint
lint: $(STAMP) ## ruff, mypy and the import-linter contracts
	@$(BIN)/ruff check src tests bench sdks examples
	@$(BIN)/ruff format --check src tests bench sdks examples
	@$(BIN)/mypy
	@$(BIN)/lint-imports

.PHONY: format
format: $(STAMP) ## Apply ruff's fixes and formatting
	@$(BIN)/ruff check --fix src tests bench sdks examples
	@$(BIN)/ruff format src tests bench sdks examples

.PHONY: lock
lock: $(STAMP) ## Re-resolve requirements.lock from pyproject.toml
	@$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 -o requirements.lock -q

.PHONY: bench
bench: $(STAMP) ## Benchmarks B1–B7 beside a bare ASGI app (~6 min); writes bench/results/ (BENCH_ARGS=--cases B1,B2)
	@$(BIN)/python -m bench $(BENCH_ARGS)

.PHONY: bench-smoke
bench-smoke: $(STAMP) ## The same benchmark code with tiny counts: checks that it works, measures nothing
	@$(BIN)/python -m bench --smoke $(BENCH_ARGS)

.PHONY: bench-dashboard
bench-dashboard: $(STAMP) ## The dashboard at 10^6 payments on SQLite and PostgreSQL: list pages, exports' memory, analytics (~15 min)
	@$(BIN)/python -m bench.dashboard_scale
	@$(BIN)/python -m bench.analytics_scale

.PHONY: clean
clean: ## Remove the virtual environment and local data
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache
