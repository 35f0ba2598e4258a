# sla-operator — every target creates and uses the project virtualenv itself.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST := $(BIN)/python -m pytest

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	bash scripts/install-pdf.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

.PHONY: venv
venv: $(STAMP) ## Create the virtualenv and install the project with its dev tools

.PHONY: run
run: $(STAMP) ## Demo: local mode on examples/demo/ against the demo target (no cluster needed)
	$(BIN)/python scripts/demo.py

.PHONY: test
test: $(STAMP) ## Unit, integration, rules and docs tests (fast, no cluster; promtool/amtool from Debian)
	bash scripts/install-prometheus.sh
	bash scripts/install-pdf.sh
	$(PYTEST) tests/unit tests/integration tests/rules -q
	$(MAKE) test-docs

.PHONY: test-docs
test-docs: $(STAMP) ## Docs tier: every shell block of README.md and docs/API.md runs, every relative link resolves
	bash scripts/install-prometheus.sh
	$(PYTEST) tests/docs -q

# A cluster named by KUBECONFIG (an existing file) is tested as it is; only without one is
# the local control plane built, which needs root and apt-get.
EXTERNAL_KUBECONFIG := $(if $(KUBECONFIG),$(wildcard $(KUBECONFIG)))

.PHONY: test-e2e
test-e2e: $(STAMP) ## End-to-end tests on a real API server (built from Debian's packages when KUBECONFIG is unset), then alerts on real Prometheus and Alertmanager
ifeq ($(EXTERNAL_KUBECONFIG),)
	bash scripts/build-control-plane.sh
else
	@echo "test-e2e: testing the cluster of KUBECONFIG=$(EXTERNAL_KUBECONFIG)"
endif
	$(PYTEST) tests/e2e -q
	$(MAKE) test-browser
	bash scripts/install-prometheus.sh
	$(PYTEST) tests/alerting -q
	bash scripts/build-image.sh --base-only
	$(PYTEST) tests/image -q

.PHONY: test-browser
test-browser: $(STAMP) ## Browser tier: the status page and Atlassian's status widget (npm) in Debian's chromium via Playwright (installs both if missing)
	bash scripts/install-browser.sh
	bash scripts/install-status-widget.sh
	$(PYTEST) tests/browser -q

.PHONY: image
image: $(STAMP) ## Container image with podman on a local Debian base (TAG=localhost/sla-operator:dev)
	PYTHON=$(BIN)/python bash scripts/build-image.sh $(or $(TAG),localhost/sla-operator:dev)

.PHONY: lint
lint: $(STAMP) ## ruff, mypy --strict on the domain, import-linter contracts
	$(BIN)/ruff check operator tests dashboards
	$(BIN)/mypy
	$(BIN)/lint-imports

.PHONY: crds
crds: ## Copy crds/ into the chart and the package (both copies are generated, never edited)
	mkdir -p charts/sla-operator/crds operator/sla_operator/crds
	rm -f charts/sla-operator/crds/*.yaml operator/sla_operator/crds/*.yaml
	cp crds/*.yaml charts/sla-operator/crds/
	cp crds/*.yaml operator/sla_operator/crds/

.PHONY: dashboards
dashboards: $(STAMP) ## Generate the Grafana dashboards into dashboards/ and the chart (never edited by hand)
	$(BIN)/python dashboards/generate.py

.PHONY: bench
bench: $(STAMP) ## Probe engine benchmarks (prints figures and ratios)
	$(BIN)/python -m bench.run

# The cluster of KUBECONFIG when it names an existing file, else the local control plane of the
# e2e tests (built on first use, which needs root and apt-get). Smaller runs:
#   make bench-cluster CLUSTER_ARGS="--agreements 100 --duration 60"
.PHONY: bench-cluster
bench-cluster: $(STAMP) ## Operator on a real API server: 1,000 agreements x 10 endpoints (CLUSTER_ARGS=...)
ifeq ($(EXTERNAL_KUBECONFIG),)
	bash scripts/build-control-plane.sh
else
	@echo "bench-cluster: measuring on the cluster of KUBECONFIG=$(EXTERNAL_KUBECONFIG)"
endif
	$(BIN)/python -m bench.cluster $(CLUSTER_ARGS)

.PHONY: clean
clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
