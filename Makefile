# Separate virtualenvs, because kserve (runtime images) needs protobuf>=6.33.5 while
# pulumi-policy (IaC program and policy pack) pins protobuf~=5.29.5, and checkov pins its own tree:
#   .venv          the Pulumi program, policy pack and `mlops` CLI   (pip install -e '.[iac,test]')
#   .venv-runtime  collector, drift job, model servers, held to the runtime image's lock
#   .venv-checkov  checkov, the security scan `mlops validate` and `mlops preview` run
#   .venv-mlserver MLServer 1.7.1 for the model-metrics test (it needs fastapi<0.116; kserve has 0.165)
PYTHON ?= python3
IAC_VENV := .venv
RUNTIME_VENV := .venv-runtime
CHECKOV_VENV := .venv-checkov
MLSERVER_VENV := .venv-mlserver
MLSERVER_LOCK := tests/runtime/requirements-mlserver.txt
CHECKOV_VERSION := 3.3.30
RUNTIME_LOCK := images/requirements-runtime.txt
IAC_TESTS := tests/spine tests/components tests/stacks tests/policies
RUNTIME_TESTS := tests/runtime tests/smoke
SERVER_PACKAGES := prometheus prometheus-pushgateway prometheus-alertmanager postgresql chromium openssl
# apt needs root: GitHub-hosted runners and most workstations run make as a user with sudo.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

LOCAL_PLATFORM := $(IAC_VENV)/bin/python scripts/local/local_platform.py
CANARY_PERCENT ?= 10

.PHONY: dev test test-iac test-runtime servers clean local-up local-canary local-down

## Render and validate the dev stack offline (no cloud, no cluster) and print a summary.
dev: $(IAC_VENV)/.installed $(CHECKOV_VENV)/.installed
	$(IAC_VENV)/bin/mlops render --stack dev
	$(IAC_VENV)/bin/mlops validate --stack dev

## Build both virtualenvs, install the test servers, run every test (server-backed ones included).
test: test-iac test-runtime

test-iac: $(IAC_VENV)/.installed $(CHECKOV_VENV)/.installed servers
	$(IAC_VENV)/bin/python -m pytest $(IAC_TESTS)

# The training loop test renders the resolved canary with the IaC venv's `mlops render`.
test-runtime: $(RUNTIME_VENV)/.installed $(MLSERVER_VENV)/.installed $(IAC_VENV)/.installed servers
	$(RUNTIME_VENV)/bin/python -m pytest $(RUNTIME_TESTS)

$(IAC_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(IAC_VENV)
	$(IAC_VENV)/bin/pip install --quiet --upgrade pip
	$(IAC_VENV)/bin/pip install --quiet -e '.[iac,test]'
	touch $@

$(RUNTIME_VENV)/.installed: pyproject.toml $(RUNTIME_LOCK)
	$(PYTHON) -m venv $(RUNTIME_VENV)
	$(RUNTIME_VENV)/bin/pip install --quiet --upgrade pip
	$(RUNTIME_VENV)/bin/pip install --quiet -c $(RUNTIME_LOCK) -e '.[runtime,runtime-test]'
	touch $@

$(MLSERVER_VENV)/.installed: $(MLSERVER_LOCK)
	$(PYTHON) -m venv $(MLSERVER_VENV)
	$(MLSERVER_VENV)/bin/pip install --quiet --upgrade pip
	$(MLSERVER_VENV)/bin/pip install --quiet -r $(MLSERVER_LOCK)
	touch $@

$(CHECKOV_VENV)/.installed:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet 'checkov==$(CHECKOV_VERSION)'
	touch $@

## The Debian servers and tools the server-backed tests run (SERVER_PACKAGES), when any is missing.
servers:
	@if dpkg-query -W -f='$${Status}\n' $(SERVER_PACKAGES) 2>/dev/null | grep -qv '^install ok installed$$' \
	    || ! dpkg-query -W $(SERVER_PACKAGES) >/dev/null 2>&1; then \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SERVER_PACKAGES); \
	else \
	  echo "test servers present: $(SERVER_PACKAGES)"; \
	fi

## The dev stack on a local kind cluster with a trained demo model (needs Docker and kubectl).
local-up: $(IAC_VENV)/.installed $(RUNTIME_VENV)/.installed
	$(LOCAL_PLATFORM) up

## A second demo model version at CANARY_PERCENT % of the traffic (after local-up).
local-canary: $(IAC_VENV)/.installed $(RUNTIME_VENV)/.installed
	$(LOCAL_PLATFORM) canary --percent $(CANARY_PERCENT)

## Delete the kind cluster and everything under build/local/.
local-down: $(IAC_VENV)/.installed
	$(LOCAL_PLATFORM) down

clean:
	rm -rf $(IAC_VENV) $(RUNTIME_VENV) $(CHECKOV_VENV) $(MLSERVER_VENV) build .pytest_cache
