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

.PHONY: run run-aws demo test lint format package rollout-sim bench
N ?= 50
CONCURRENCY ?= 10
STAGE ?= dev
OUT ?= build/package

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check . .chalice
	$(BIN)/ruff format --check . .chalice

format: $(STAMP)
	$(BIN)/ruff format . .chalice
	$(BIN)/ruff check --fix . .chalice

test: lint
	$(BIN)/pytest -q

# Local mode: moto (IAM + STS, AWS managed policies loaded) and `chalice local`, both on 127.0.0.1.
# Fake credentials and an empty AWS config make sure nothing reaches real AWS.
define LOCAL_ENV
export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_SESSION_TOKEN=local
export AWS_DEFAULT_REGION=$(REGION) AWS_REGION=$(REGION) AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
unset AWS_PROFILE AWS_ENDPOINT_URL_IAM AWS_ENDPOINT_URL_STS
export AWS_ENDPOINT_URL=http://$(HOST):$(MOTO_PORT) MOTO_IAM_LOAD_MANAGED_POLICIES=true
export MIB_PREREQS_ENDPOINT=http://$(HOST):$(PORT)
$(BIN)/moto_server -H $(HOST) -p $(MOTO_PORT) > moto-server.log 2>&1 &
pids=$$!
trap 'kill $$pids 2>/dev/null || true' EXIT INT TERM
for _ in $$(seq 100); do (echo > /dev/tcp/$(HOST)/$(MOTO_PORT)) 2>/dev/null && break; sleep 0.1; done
kill -0 $$pids 2>/dev/null || { echo "moto server did not start: see moto-server.log"; exit 1; }
endef

run: $(STAMP)
	@$(LOCAL_ENV)
	echo
	echo "IAM emulator (moto): $$AWS_ENDPOINT_URL    log: moto-server.log"
	echo "mib-prereqs API:     http://$(HOST):$(PORT)    (Ctrl-C stops both)"
	echo
	echo "Try:  curl -s -X PUT http://$(HOST):$(PORT)/prerequisites/demo -H 'content-type: application/json' -d '{}'"
	echo " or:  $(BIN)/python -m chalicelib.client apply demo     (plan, show, list, delete; --help)"
	echo
	$(BIN)/chalice local --stage local --host $(HOST) --port $(PORT) --no-autoreload

# A full life cycle against the embedded default, step by step, with the CLI.
demo: $(STAMP)
	@$(LOCAL_ENV)
	$(BIN)/chalice local --stage local --host $(HOST) --port $(PORT) --no-autoreload > chalice-local.log 2>&1 &
	pids="$$pids $$!"
	for _ in $$(seq 150); do (echo > /dev/tcp/$(HOST)/$(PORT)) 2>/dev/null && break; sleep 0.1; done
	cli="$(BIN)/python -m chalicelib.client"
	step() { echo; echo "== $$1"; echo "\$$ $${*:2}"; "$${@:2}"; }
	step "1. plan: what a new set would take" $$cli plan demo
	step "2. apply: create it" $$cli apply demo
	step "3. apply again: nothing to do" $$cli apply demo
	step "4. someone widens the instance role by hand" $(BIN)/python -c "import boto3; boto3.client('iam').put_role_policy(RoleName='demo-InstanceRole', PolicyName='widen', PolicyDocument='{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}]}')"
	step "5. show --check: drift found (exit 2)" $$cli show demo --check || echo "(exit $$?)"
	step "6. apply: repair" $$cli apply demo
	step "7. show --check: in sync (exit 0)" $$cli show demo --check
	step "8. delete" $$cli delete demo
	echo; echo "Demo done; servers stopped."

# Explicitly against the real AWS account of your current credentials (no emulator).
run-aws: $(STAMP)
	@echo "mib-prereqs API on http://$(HOST):$(PORT), acting on REAL AWS with your current credentials"
	$(BIN)/chalice local --stage dev --host $(HOST) --port $(PORT) --no-autoreload

# The deployable hub: Chalice's template merged with templates/service.yaml, and the zip, with
# bytecode for what a cold start imports (see .chalice/precompile.py).
# Offline: no AWS call is made; the region only fills Chalice's template.
package: $(STAMP)
	rm -rf $(OUT)
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-$(REGION)} $(BIN)/chalice package --stage $(STAGE) --merge-template templates/service.yaml $(OUT)
	$(BIN)/python .chalice/precompile.py $(OUT)/deployment.zip
	@echo "wrote $(OUT)/sam.yaml and $(OUT)/deployment.zip"

# A simulated organization on moto: N member accounts through the hub, with a summary table.
rollout-sim: $(STAMP)
	$(BIN)/python -m bench.rollout_sim --accounts $(N) --concurrency $(CONCURRENCY)

# What the service costs, each figure beside its baseline (medians of several runs).
bench: $(STAMP)
	$(BIN)/python -m bench.run
