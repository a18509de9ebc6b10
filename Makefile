# modelbus: `make demo` and `make test` are all a fresh machine needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export MODELBUS_PYTHON := $(abspath $(BIN)/python)

.PHONY: help setup up down status demo test test-unit lint bench schemas clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements.lock
	@echo "==> Python environment ($(VENV))"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip uv
	@$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python requirements.lock
	@$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $@

setup: $(STAMP) ## Install Python deps, fetch the Kafka broker jars, install PostgreSQL
	@infra/kafka/kafka.sh fetch
	@infra/postgres/postgres.sh install

up: setup ## Start the local stack in the background (returns when healthy)
	@infra/stack.sh up

down: ## Stop the local stack
	@infra/stack.sh down

status: ## Show what runs
	@infra/stack.sh status

demo: setup ## Start the stack and run the end-to-end scenario
	@infra/stack.sh up
	@$(BIN)/modelbus demo

lint: $(STAMP) ## ruff and mypy
	@$(BIN)/ruff check shared services devtools tests bench
	@$(BIN)/ruff format --check shared services devtools tests bench
	@$(BIN)/mypy shared services devtools bench

test: setup lint ## Set up everything and run the whole test suite (real Kafka, SQLite, PostgreSQL)
	@$(BIN)/pytest

test-unit: $(STAMP) ## Only the fast unit tests
	@$(BIN)/pytest tests/unit -q

bench: setup ## Benchmarks; results in bench/results/ (ARGS="--quick --only NAME --profile DIR")
	@$(BIN)/python -m bench.run $(ARGS)

schemas: $(STAMP) ## Regenerate schemas/ from the contract models
	@$(BIN)/modelbus schemas generate

clean: down ## Remove the venv and caches (keeps nothing running)
	rm -rf $(VENV) .cache .mypy_cache .ruff_cache .pytest_cache
