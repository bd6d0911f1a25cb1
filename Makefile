# Two set-up commands matter: `make local` (the main job on this machine) and `make test` (the gate).
# Each creates .venv and installs what it needs on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8080
DEMO_MODEL_DIR := build/demo-model
MODEL_DIR ?= $(DEMO_MODEL_DIR)
STACK ?= prod

.PHONY: help venv test lint typecheck pytest local serve demo-model plan capacity simulate watch bench clean

help:
	@echo "make local     train the demo model if absent, serve it and a local API front door"
	@echo "make test      pyright, ruff, hadolint, then pytest"
	@echo "make serve     the serving container's Gunicorn on 127.0.0.1:\$$PORT (MODEL_DIR=$(MODEL_DIR))"
	@echo "make plan      offline plan of a stack under mocks with the policy pack (STACK=$(STACK), ARGS=\"--set k=v\")"
	@echo "make capacity  load-test a URL and derive the autoscaling settings"
	@echo "make simulate  play a stack through traffic and failures (STACK=$(STACK) ARGS=\"...\")"
	@echo "make watch     read the deployed endpoint, its subnets and metrics every few seconds (STACK=$(STACK))"
	@echo "make bench     the benchmarks in bench/, results to bench/results/"

venv: $(STAMP)

$(STAMP): requirements.txt container/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

typecheck: $(STAMP)
	$(VENV)/bin/pyright

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/hadolint container/Dockerfile

# pytest exits 5 when it collects nothing: that is a failure here, never a pass.
pytest: $(STAMP)
	@$(PY) -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing the run"; fi; \
	exit $$rc

test: typecheck lint pytest

# Only the default path is trained into: a mistyped MODEL_DIR fails here instead of receiving a
# freshly trained demo model that would then be served as if it were the user's.
demo-model: $(STAMP)
	@if [ -f "$(MODEL_DIR)/xgboost-model" ]; then :; \
	elif [ "$(MODEL_DIR)" = "$(DEMO_MODEL_DIR)" ]; then $(PY) -m tools.demo_model --out $(MODEL_DIR); \
	else echo "MODEL_DIR=$(MODEL_DIR) has no xgboost-model file: fix the path, or leave MODEL_DIR unset to use the demo model" >&2; exit 2; fi

serve: demo-model
	MODEL_DIR=$(MODEL_DIR) PORT=$(PORT) BIND_HOST=127.0.0.1 $(PY) container/serve

local: demo-model
	MODEL_DIR=$(MODEL_DIR) $(PY) -m tools.local

plan: $(STAMP)
	$(PY) -m tools.plan --stack $(STACK) $(ARGS)

capacity: $(STAMP)
	$(PY) -m tools.capacity $(ARGS)

simulate: $(STAMP)
	$(PY) -m tools.simulate --stack $(STACK) $(ARGS)

watch: $(STAMP)
	$(PY) -m tools.watch --stack $(STACK) $(ARGS)

bench: $(STAMP)
	$(PY) -m bench.run_all

clean:
	rm -rf build .pytest_cache .ruff_cache .hypothesis
