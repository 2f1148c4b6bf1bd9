# The two commands: `make run` (local service on an embedded IAM emulator) and `make test`.
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST := 127.0.0.1
PORT ?= 8000
MOTO_PORT ?= 5000
REGION ?= us-east-1

.PHONY: run run-aws test lint format package rollout-sim
N ?= 50
CONCURRENCY ?= 10
STAGE ?= dev
OUT ?= build/package

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint
	$(BIN)/pytest -q

# Local mode: moto (IAM + STS, AWS managed policies loaded) and `chalice local`, both on 127.0.0.1.
# Fake credentials and an empty AWS config make sure nothing reaches real AWS.
run: $(STAMP)
	@export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_SESSION_TOKEN=local
	export AWS_DEFAULT_REGION=$(REGION) AWS_REGION=$(REGION) AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
	unset AWS_PROFILE AWS_ENDPOINT_URL_IAM AWS_ENDPOINT_URL_STS
	export AWS_ENDPOINT_URL=http://$(HOST):$(MOTO_PORT) MOTO_IAM_LOAD_MANAGED_POLICIES=true
	$(BIN)/moto_server -H $(HOST) -p $(MOTO_PORT) > moto-server.log 2>&1 &
	moto=$$!
	trap 'kill $$moto 2>/dev/null || true' EXIT INT TERM
	for _ in $$(seq 100); do (echo > /dev/tcp/$(HOST)/$(MOTO_PORT)) 2>/dev/null && break; sleep 0.1; done
	kill -0 $$moto 2>/dev/null || { echo "moto server did not start: see moto-server.log"; exit 1; }
	echo
	echo "IAM emulator (moto): $$AWS_ENDPOINT_URL    log: moto-server.log"
	echo "mib-prereqs API:     http://$(HOST):$(PORT)    (Ctrl-C stops both)"
	echo
	echo "Try:  curl -s -X PUT http://$(HOST):$(PORT)/prerequisites/demo -H 'content-type: application/json' -d '{}'"
	echo
	$(BIN)/chalice local --stage local --host $(HOST) --port $(PORT) --no-autoreload

# Explicitly against the real AWS account of your current credentials (no emulator).
run-aws: $(STAMP)
	@echo "mib-prereqs API on http://$(HOST):$(PORT), acting on REAL AWS with your current credentials"
	$(BIN)/chalice local --stage dev --host $(HOST) --port $(PORT) --no-autoreload

# The deployable hub: Chalice's template merged with templates/service.yaml, and the zip.
# Offline: no AWS call is made; the region only fills Chalice's template.
package: $(STAMP)
	rm -rf $(OUT)
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-$(REGION)} $(BIN)/chalice package --stage $(STAGE) --merge-template templates/service.yaml $(OUT)
	@echo "wrote $(OUT)/sam.yaml and $(OUT)/deployment.zip"

# A simulated organization on moto: N member accounts through the hub, with a summary table.
rollout-sim: $(STAMP)
	$(BIN)/python -m bench.rollout_sim --accounts $(N) --concurrency $(CONCURRENCY)
