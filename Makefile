# OllyStack — `make run` starts it, `make test` proves it. Everything else is optional.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
REQ    := requirements

.DEFAULT_GOAL := help
.PHONY: help run test test-fast lint format typecheck bench requirements clean system-packages

help:
	@echo "make run        install (first time) and start OllyStack on :8080 (OTLP :4317/:4318, metrics :8888)"
	@echo "make test       install (first time) and run the whole test suite, linters included"
	@echo "make test-fast  the quick tests only (no spawned servers)"
	@echo "make bench      benchmarks; figures printed and written under var/bench/"
	@echo "make lint       ruff + mypy"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: $(BIN)/python $(REQ)/base.txt $(REQ)/prod.txt
	$(BIN)/pip install --quiet -r $(REQ)/base.txt -r $(REQ)/prod.txt
	@touch $@

$(VENV)/.dev: $(VENV)/.runtime $(REQ)/dev.txt
	$(BIN)/pip install --quiet -r $(REQ)/base.txt -r $(REQ)/prod.txt -r $(REQ)/dev.txt
	@touch $@

# Browser libraries of the UI (package.json, pinned by package-lock.json), served from node_modules.
node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null || { echo "installing Debian packages: nodejs npm"; $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

run: $(VENV)/.runtime node_modules/.installed
	$(BIN)/python manage.py serve

# Programs the tests run as real counterparts: Prometheus (PromQL results are compared with its answers),
# Alertmanager (alert notifications are delivered to it), Chromium (the UI tests drive it with Playwright).
SYSTEM_PACKAGES := prometheus prometheus-alertmanager chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

system-packages:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

test: $(VENV)/.dev node_modules/.installed system-packages lint
	$(BIN)/pytest

test-fast: $(VENV)/.dev node_modules/.installed
	$(BIN)/pytest -m "not e2e and not browser"

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

format: $(VENV)/.dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(VENV)/.dev node_modules/.installed system-packages
	$(BIN)/python -m bench

# Re-pin after editing requirements/*.in.
requirements: $(VENV)/.dev
	cd $(REQ) && ../$(BIN)/pip-compile -q --strip-extras --no-header base.in -o base.txt \
	  && ../$(BIN)/pip-compile -q --strip-extras --no-header prod.in -o prod.txt \
	  && ../$(BIN)/pip-compile -q --strip-extras --no-header dev.in -o dev.txt

clean:
	rm -rf $(VENV) node_modules .mypy_cache .ruff_cache .pytest_cache
