# llmsim — run `make help` for the list of targets.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
.DEFAULT_GOAL := help

VENV     := .venv
BIN      := $(VENV)/bin
PY       := $(BIN)/python
STAMP    := $(VENV)/.installed
ARGS     ?=

CLUSTER_BINS ?= kube etcd helm

.PHONY: help venv run serve test lint typecheck pytest bench soak e2e crds crds-check images clean cluster-bins cluster test-bins

help: ## Show this help
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  \033[36m%-12s\033[0m %s\n",$$1,$$2}'

$(STAMP): pyproject.toml constraints.txt scripts/find-python.sh
	@PYTHON=$$(scripts/find-python.sh) && echo "using $$PYTHON" && \
	  { [ -x $(PY) ] && $(PY) -c 'import sys; sys.exit(sys.version_info < (3,12))' || $$PYTHON -m venv --clear $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip 2>&1 | { grep -v 'is ignored: it is neither' || true; }
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]' 2>&1 | { grep -Ev 'is ignored: it is neither|BuildBackendWarning|Please be careful|name as your package|with strategy|^\s*(!!|\*+)?\s*$$' || true; }
	@touch $(STAMP)

venv: $(STAMP) ## Create .venv/ with a Python >= 3.12 and install llmsim with its test extras

run: $(STAMP) ## Start `llmsim serve`, run a short demo load against it and print the report (ARGS=--forever keeps the server up)
	$(PY) scripts/demo.py $(ARGS)

serve: $(STAMP) ## Run `llmsim serve` in the foreground on 127.0.0.1:8080
	$(BIN)/llmsim serve $(ARGS)

lint: $(STAMP) ## ruff
	$(BIN)/ruff check sidecar operator tests scripts bench
	$(BIN)/ruff format --check sidecar operator tests scripts bench
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP) ## mypy --strict on the packages
	$(BIN)/mypy sidecar/llmsim operator/llmsim_operator

crds: $(STAMP) ## Regenerate crds/, the JSON Schemas and docs/reference.md from the pydantic models
	$(BIN)/python -m llmsim.crdgen
	cp crds/*.yaml charts/llmsim/crds/
	$(BIN)/python -m llmsim.docgen

crds-check: $(STAMP) ## Fail when crds/, schemas/ or docs/reference.md differ from what the models generate
	$(BIN)/python -m llmsim.crdgen --check
	$(BIN)/python -m llmsim.docgen --check

soak: $(STAMP) ## 10-minute soak: 300 concurrent streams against `llmsim serve`; fails on a lost/truncated stream or RSS growth over 5% (not in CI; ARGS="--duration 60 --streams 50" for a short run)
	$(PY) -m bench.soak $(ARGS)

pytest: $(STAMP) ## pytest (without benchmarks and e2e)
	$(BIN)/pytest $(ARGS)

test: $(STAMP) ## Everything CI runs: lint, typecheck, generated-artifact check, control-plane binaries, pytest
	$(MAKE) --no-print-directory lint typecheck crds-check test-bins pytest

test-bins:
	@if command -v go >/dev/null 2>&1; then \
	  tests/cluster/build.sh $(CLUSTER_BINS) >/dev/null; \
	else \
	  echo "make test: no Go toolchain, so no control-plane binaries: tests/cluster will be skipped" >&2; \
	fi

cluster-bins: ## Build (or find cached) kube-apiserver, kube-controller-manager, kubectl, etcd and helm for tests/cluster (Go; ~20 min the first time)
	tests/cluster/build.sh $(CLUSTER_BINS)

cluster: $(STAMP) cluster-bins ## Start a local control plane until Ctrl-C (ARGS=--chart also installs the chart, webhook at 127.0.0.1:9443)
	$(PY) tests/cluster/cluster_up.py $(ARGS)

bench: $(STAMP) ## Benchmarks (timing accuracy, throughput); prints figures side by side with references
	$(BIN)/python -m bench $(ARGS)

e2e: $(STAMP) ## End-to-end suite against a kind cluster (needs Docker and kind)
	@$(PY) tests/e2e/kind_env.py --check
	$(BIN)/pytest -m e2e tests/e2e $(ARGS)

images: ## Build the operator and sidecar images (needs Docker)
	@command -v docker >/dev/null && docker info >/dev/null 2>&1 || { echo "make images: no Docker engine reachable" >&2; exit 1; }
	docker build -f sidecar/Dockerfile -t llmsim/sidecar:dev .
	docker build -f operator/Dockerfile -t llmsim/operator:dev .
	docker build -t llmsim/demo-app:dev examples/demo-app

clean: ## Remove the venv and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info
