# Two commands matter: `make run` and `make test`. Everything else is what they are made of.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format migrate serve clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	@echo "Installing agentplatform and its dependencies into $(VENV)/ ..."
	@echo "The first install compiles llama.cpp for the offline model (about 5 minutes on"
	@echo "2 cores); pip caches the wheel, so later installs take seconds."
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(BIN)/python -m pip install --quiet -e '.[dev,local]'
	@touch $(STAMP)

migrate: $(STAMP)
	$(BIN)/agentplatform migrate

serve: $(STAMP)
	$(BIN)/agentplatform serve

run: migrate
	@echo "agentplatform on http://127.0.0.1:8000 (SQLite under ./data/). Ctrl-C stops it."
	$(BIN)/agentplatform serve

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy src tests/support
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

test: lint
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python -m bench.api

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
