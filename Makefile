# jobstream developer entry points. `make test` and `make run` work on a fresh clone: they build the
# virtualenv, the generated protobuf code and make sure redis-server (and, for `make test`, Chromium
# for the browser tests) is installed first.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

PYTHON ?= $(firstword $(shell command -v python3.11 python3 2>/dev/null))
VENV := .venv
BIN := $(VENV)/bin
VENV_STAMP := $(VENV)/.installed
GEN := gen
PROTO_STAMP := $(GEN)/.generated
NODE_STAMP := examples/node/node_modules/.installed
PROTOS := $(shell find protos -name '*.proto' 2>/dev/null | sort)
# googleapis protos our protos import, vendored in third_party/ (so a fresh clone's protos load in
# any stock generator) from the googleapis-common-protos wheel by `make vendor-protos`.
GOOGLEAPIS := $(addprefix google/api/,annotations http field_behavior resource client launch_stage) \
	google/rpc/status
# Native tracebacks: pytest's own styles (even --tb=short) re-parse sources with the ast module,
# which on CPython <= 3.11.8 can crash the whole run with INTERNALERROR (cpython gh-106905).
PYTEST_FLAGS ?= --tb=native

export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help venv protos vendor-protos node-example curl redis browser lint fmt test test-cluster run bench clean distclean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

venv: $(VENV_STAMP)  ## virtualenv with the project and its dev tools (rebuilt when pyproject changes)

$(VENV_STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "python3.11 (or python3) is not on PATH" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

protos: $(PROTO_STAMP)  ## generated protobuf/gRPC code in gen/ (import root `jobs`)

$(PROTO_STAMP): $(VENV_STAMP) $(PROTOS) $(addprefix third_party/,$(addsuffix .proto,$(GOOGLEAPIS)))
	site=$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
	rm -rf $(GEN) && mkdir -p $(GEN); \
	grpc_tools=$$($(BIN)/python -c 'import grpc_tools, os; print(os.path.dirname(grpc_tools.__file__))'); \
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m grpc_tools.protoc \
		-I protos -I third_party -I "$$grpc_tools/_proto" \
		--python_out=$(GEN) --mypy_out=$(GEN) --grpc_python_out=$(GEN) --mypy_grpc_out=$(GEN) \
		$(PROTOS); \
	echo "$(CURDIR)/$(GEN)" > "$$site/jobstream-gen.pth"
	touch $@

vendor-protos: $(VENV_STAMP)  ## refresh third_party/'s googleapis protos from the installed googleapis-common-protos
	site=$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
	for proto in $(GOOGLEAPIS); do \
		install -D -m 644 "$$site/$$proto.proto" "third_party/$$proto.proto"; \
	done; \
	install -m 644 "$$site"/googleapis_common_protos-*.dist-info/licenses/LICENSE third_party/LICENSE

node-example: $(NODE_STAMP)  ## the Node example's packages (@grpc/grpc-js, @grpc/proto-loader), from its package-lock.json

$(NODE_STAMP): examples/node/package-lock.json
	npm ci --prefix examples/node --no-audit --no-fund --loglevel=error
	touch $@

redis:  ## make sure redis-server 7+ is installed (Debian package redis-server)
	scripts/ensure-redis.sh

curl:  ## make sure curl is installed (Debian package curl): the suite runs the README's REST examples
	scripts/ensure-curl.sh

browser:  ## make sure /usr/bin/chromium is installed for the browser tests (Debian package chromium)
	scripts/ensure-chromium.sh

lint: protos  ## ruff, format check, mypy --strict, buf lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/buf lint

fmt: venv  ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: protos redis browser curl node-example  ## whole suite on one Redis, then the scheduler's suite on a 3-master Redis Cluster
	$(BIN)/pytest $(PYTEST_FLAGS)
	$(BIN)/pytest $(PYTEST_FLAGS) tests/scheduler --redis=cluster

test-cluster: protos redis  ## only the cluster stage
	$(BIN)/pytest $(PYTEST_FLAGS) tests/scheduler --redis=cluster

run: protos redis  ## dev stack: embedded Redis (unless REDIS_URL), scheduler, worker, REST gateway on :8080; Ctrl-C stops
	$(BIN)/python -m services.devstack

bench: protos redis browser  ## store vs raw Redis streams, workers vs plain taskiq, gateway vs gRPC and SSE fan-out, list pages and the dashboard over 100k jobs (BENCH_ARGS="--jobs 2000" GATEWAY_BENCH_ARGS=--quick: quick)
	$(BIN)/python -m bench.store_bench
	$(BIN)/python -m bench.worker_bench $(BENCH_ARGS)
	$(BIN)/python -m bench.gateway_bench $(GATEWAY_BENCH_ARGS)
	$(BIN)/python -m bench.listing_bench
	$(BIN)/python -m bench.dashboard_bench

clean:  ## generated code, caches (keeps .venv and the dev data in .data)
	rm -rf $(GEN) build .mypy_cache .ruff_cache .pytest_cache
	find services tests bench -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean  ## also the virtualenv and the dev Redis data
	rm -rf $(VENV) .data
