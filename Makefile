# lambda-ocr: the commands people and CI run. `make test` needs nothing
# installed beforehand but the Rust toolchain and python3.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY_REQUIREMENTS := tests/requirements.txt
VENV_STAMP := $(VENV)/.installed

.PHONY: help setup test fmt lint unit openapi dev clean

help:
	@echo "make setup  install the test tools (Python venv with moto's server)"
	@echo "make test   every check and test: fmt, clippy, openapi.yaml, unit and integration tests on moto"
	@echo "make dev    the local stack (not yet available)"

## setup: idempotent; reinstalls only when the pinned requirements change.
setup: $(VENV_STAMP)

$(VENV_STAMP): $(PY_REQUIREMENTS)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r $(PY_REQUIREMENTS)
	$(VENV)/bin/moto_server --help > /dev/null
	touch $@

fmt:
	cargo fmt --all -- --check

lint:
	cargo clippy --workspace --all-targets -- -D warnings

unit:
	cargo test --workspace

## openapi.yaml must be a valid OpenAPI 3.1 document.
openapi: setup
	$(VENV)/bin/openapi-spec-validator openapi.yaml

test: setup fmt lint openapi unit

dev:
	@echo "make dev: the local stack (ocr dev, Tesseract engine, demo page) is not built yet." >&2
	@exit 1

clean:
	rm -rf $(VENV) target
