# The one developer interface. `make demo` and `make test` work on a fresh machine
# with Python 3.11+ and pip; everything else is installed into .venv / .tools.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SAM_VENV := .tools/sam
SAM := $(SAM_VENV)/bin/sam
SAM_CLI_VERSION := 1.170.0
# checkov's pins conflict with the dev tools': a venv of its own, like the SAM CLI's.
CHECKOV_VENV := .tools/checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
CHECKOV_VERSION := 3.3.30
# No telemetry from the SAM CLI, no download of Prisma Cloud's metadata by checkov.
export SAM_CLI_TELEMETRY := 0

.PHONY: help install demo local test test-unit test-integration test-e2e lint checkov format build validate bench deploy events clean

help:
	@echo "make demo              scripted scenario through the local stack"
	@echo "make local             run the local stack on http://127.0.0.1:3000"
	@echo "make test              every test suite (unit, integration, e2e, template lint)"
	@echo "make test-unit | test-integration | test-e2e"
	@echo "make fuzz              the fuzz suites full-sized (>= 10,000 cases, ~10 min)"
	@echo "make faults            the fault-injection month full-sized (150 invoices, ~2 min)"
	@echo "make lint              ruff, mypy (package, CLI, handlers), cfn-lint, sam validate --lint, checkov"
	@echo "make build             sam build (no Docker needed; Python 3.12 compiles the bytecode)"
	@echo "make validate          sam validate --lint"
	@echo "make bench             benchmarks, figures and ratios"
	@echo "make deploy            sam build + sam deploy --guided"

$(STAMP): pyproject.toml layers/common/requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/stripe-everflow demo

local: $(STAMP)
	$(BIN)/stripe-everflow local

test: $(STAMP)
	$(BIN)/python -m pytest

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

test-integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration

test-e2e: $(STAMP)
	$(BIN)/python -m pytest tests/e2e

# `make test` runs the same suites CI-sized (the same few hundred examples each time).
.PHONY: faults
faults: $(STAMP)
	FAULTS_SIZE=full $(BIN)/python -m pytest -q -rA tests/faults

.PHONY: fuzz
fuzz: $(STAMP)
	FUZZ_PROFILE=full $(BIN)/python -m pytest -q tests/fuzz

lint: $(STAMP) $(SAM) $(CHECKOV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/cfn-lint template.yaml
	$(SAM) validate --lint
	@$(MAKE) --no-print-directory checkov

# Each suppression is in template.yaml, next to the resource, with its reason.
checkov: $(CHECKOV)
	$(CHECKOV) --file template.yaml --framework cloudformation --compact --quiet --skip-download

$(CHECKOV):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check checkov==$(CHECKOV_VERSION)

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

events: $(STAMP)
	$(BIN)/python scripts/build_events.py

$(SAM):
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check aws-sam-cli==$(SAM_CLI_VERSION)

# The layers ship bytecode compiled by the runtime's Python (LAMBDA_PYTHON, found as
# python3.12 if unset): checked first, so a build without one stops before it starts.
build: $(SAM)
	@$(MAKE) --no-print-directory -s -C layers/common check-bytecode-python
	$(SAM) build

validate: $(SAM)
	$(SAM) validate --lint

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

deploy: build
	$(SAM) deploy --guided

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache
