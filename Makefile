# lambda-ocr: the commands people and CI run. `make test` needs nothing
# installed beforehand but the Rust toolchain and python3.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY_REQUIREMENTS := tests/requirements.txt
VENV_STAMP := $(VENV)/.installed
# SAM CLI, cargo-lambda and Zig live in a venv of their own: their pins clash with moto's.
DEPLOY_VENV := .venv-sam
DEPLOY_REQUIREMENTS := tools/deploy-requirements.txt
DEPLOY_STAMP := $(DEPLOY_VENV)/.installed
# schemathesis, which the tests run against openapi.yaml on `ocr dev`: its pins clash with moto's too.
SCHEMA_VENV := .venv-schemathesis
SCHEMA_REQUIREMENTS := tests/requirements-schemathesis.txt
SCHEMA_STAMP := $(SCHEMA_VENV)/.installed
FUNCTIONS := upload-api status-api ingest ocr-worker notifier sweeper
export SAM_CLI_TELEMETRY := 0

PORT ?= 3000
WEB_STAMP := web/node_modules/.installed
IAM_STAMP := tests/iam/node_modules/.installed

.PHONY: help setup setup-deploy setup-schemathesis setup-ocr setup-browser setup-iam documents bench test fmt lint unit openapi template package build deploy dev clean

help:
	@echo "make setup  install the test tools (Python venv with moto's server)"
	@echo "make test   every check and test: fmt, clippy, openapi.yaml, template lint, unit and integration tests on moto, sam build"
	@echo "make dev    the whole stack on this machine (moto, Tesseract, the demo page) on 127.0.0.1:$(PORT)"
	@echo "make bench  figures: pipeline time, quota throughput, cost, memory, SHA-256, CPU per job, init, package sizes"
	@echo "make package  arm64 Lambda bootstraps of every function, with their sizes"
	@echo "make deploy   sam build, then sam deploy (AWS credentials needed)"

## setup: idempotent; reinstalls only when the pinned requirements change.
setup: $(VENV_STAMP)

$(VENV_STAMP): $(PY_REQUIREMENTS)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r $(PY_REQUIREMENTS)
	$(VENV)/bin/python cli/src/moto_launcher.py --help > /dev/null
	touch $@

## API fuzzing: schemathesis in a venv of its own.
setup-schemathesis: $(SCHEMA_STAMP)

$(SCHEMA_STAMP): $(SCHEMA_REQUIREMENTS)
	$(PYTHON) -m venv $(SCHEMA_VENV)
	$(SCHEMA_VENV)/bin/pip install --quiet --disable-pip-version-check -r $(SCHEMA_REQUIREMENTS)
	$(SCHEMA_VENV)/bin/schemathesis --version
	touch $@

## The offline OCR engine: Debian's tesseract (Korean + English) and poppler; Nanum fonts for the documents.
OCR_PACKAGES := tesseract-ocr tesseract-ocr-kor tesseract-ocr-script-hang tesseract-ocr-eng tesseract-ocr-osd poppler-utils fonts-nanum
setup-ocr:
	@if command -v tesseract > /dev/null && tesseract --list-langs 2> /dev/null | grep -qx kor \
	    && tesseract --list-langs 2> /dev/null | grep -qx Hangul \
	    && tesseract --list-langs 2> /dev/null | grep -qx osd \
	    && command -v pdftoppm > /dev/null && [ -d /usr/share/fonts/truetype/nanum ]; then \
	  echo "OCR tools present: $$(tesseract --version 2>&1 | head -1)"; \
	else \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(OCR_PACKAGES) > /dev/null; \
	  tesseract --list-langs 2> /dev/null | grep -qx Hangul || { echo "tesseract with Korean and the Hangul script could not be installed" >&2; exit 1; }; \
	  tesseract --list-langs 2> /dev/null | grep -qx osd || { echo "tesseract's orientation detection (tesseract-ocr-osd) could not be installed" >&2; exit 1; }; \
	fi

## The demo page's browser test: Debian's Chromium driven by playwright-core (npm, pinned in web/package-lock.json).
setup-browser: $(WEB_STAMP)
	@if [ ! -x /usr/bin/chromium ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium > /dev/null; \
	fi
	@/usr/bin/chromium --version 2> /dev/null

$(WEB_STAMP): web/package.json web/package-lock.json
	@command -v npm > /dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends nodejs npm > /dev/null; }
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

## The IAM policy engine the permission test evaluates each function's calls with
## (@cloud-copilot/iam-simulate, pinned in tests/iam/package-lock.json).
setup-iam: $(IAM_STAMP)

$(IAM_STAMP): tests/iam/package.json tests/iam/package-lock.json
	@command -v npm > /dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends nodejs npm > /dev/null; }
	cd tests/iam && npm ci --no-audit --no-fund --loglevel=error
	touch $@

## Re-renders the Korean test documents and their ground truth (committed under tests/fixtures/documents).
documents: setup setup-ocr
	$(VENV)/bin/python tools/render_documents.py tests/fixtures/documents

setup-deploy: $(DEPLOY_STAMP)

$(DEPLOY_STAMP): $(DEPLOY_REQUIREMENTS)
	$(PYTHON) -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/pip install --quiet --disable-pip-version-check -r $(DEPLOY_REQUIREMENTS)
	$(DEPLOY_VENV)/bin/sam --version
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

## template.yaml: CloudFormation lint and SAM's own validation, both offline.
template: setup setup-deploy
	$(VENV)/bin/cfn-lint template.yaml
	AWS_DEFAULT_REGION=us-east-1 $(DEPLOY_VENV)/bin/sam validate --lint

## arm64 bootstraps of every function (cargo-lambda cross-links with Zig), and of the
## hello-world and floor bench binaries for reference.
PACKAGE_REFERENCES := bench-hello bench-floor
package: setup-deploy
	PATH="$(CURDIR)/$(DEPLOY_VENV)/bin:$$PATH" cargo lambda build --release --arm64 $(addprefix --bin ,$(FUNCTIONS) $(PACKAGE_REFERENCES))
	@echo "packages: arm64 bootstraps of the release profile, as sam build makes them; zipped as SAM zips them (deflate)"
	@for f in $(FUNCTIONS) $(PACKAGE_REFERENCES); do \
	  $(PYTHON) -c 'import io, os, sys, zipfile; p = sys.argv[2]; b = io.BytesIO(); \
	    zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED).write(p, "bootstrap"); \
	    z = len(b.getvalue()); \
	    print(f"  {sys.argv[1]:<12} bootstrap {os.path.getsize(p) / 2**20:>6.2f} MiB   zipped {z / 2**20:>5.2f} MiB   ({z / 2**20 / 2.5:.2f}x the 2.5 MiB budget)")' \
	    $$f "$${CARGO_TARGET_DIR:-target}/lambda/$$f/bootstrap"; \
	done

## The SAM build: what `sam deploy` uploads.
build: setup-deploy
	PATH="$(CURDIR)/$(DEPLOY_VENV)/bin:$$PATH" $(DEPLOY_VENV)/bin/sam build --beta-features

## Needs AWS credentials; the first time, run `sam deploy --guided` instead.
deploy: build
	PATH="$(CURDIR)/$(DEPLOY_VENV)/bin:$$PATH" $(DEPLOY_VENV)/bin/sam deploy

test: setup setup-ocr setup-browser setup-schemathesis setup-deploy setup-iam fmt lint openapi template unit build

## Figures, not assertions, all from one run so that ratios hold: the local pipeline
## timed end to end; throughput against Upstage's quota and the cost model; `ocr dev`'s peak
## memory through each hostile input; peak memory
## of the worker and of ingest on 50 MiB uploads; SHA-256 against sha256sum; CPU per
## job in each handler; init of each release binary beside a hello-world and a floor;
## the arm64 packages as deployed.
bench: setup setup-ocr setup-deploy
	cargo bench -p ocr-cli --bench local_pipeline
	cargo bench -p ocr-cli --bench quota
	cargo bench -p ocr-cli --bench hostile
	cargo bench -p ocr-tests --bench worker_memory
	cargo bench -p ocr-tests --bench ingest_memory
	cargo bench -p ocr-tests --bench handler_cpu
	cargo build --release -p upload-api -p status-api -p ingest -p ocr-worker -p notifier -p sweeper -p bench-hello -p bench-floor
	cargo bench -p ocr-tests --bench cold_start
	$(MAKE) --no-print-directory package

## The local stack: installs what is missing, then `ocr dev` until Ctrl-C.
dev: setup setup-ocr
	cargo run --quiet -p ocr-cli --bin ocr -- dev --port $(PORT)

clean:
	rm -rf $(VENV) $(DEPLOY_VENV) $(SCHEMA_VENV) target .aws-sam web/node_modules
