# taskq — `make help` lists the targets. Everything installs into the project-local
# .venv with pip and the pinned constraints.txt, so a fresh clone needs only Python
# 3.11, 3.12 or 3.13. Another interpreter gets its own venv, e.g.
#   make test PYTHON=python3.13 VENV=.venv-3.13
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
PIP_VERSION := 26.3
VENV ?= .venv
# The minor versions every package's requires-python admits; test-all runs each one found.
SUPPORTED_PYTHONS := 3.11 3.12 3.13
BIN := $(VENV)/bin
STAMP := $(VENV)/.taskq-installed
# The runtime members go into the image (deploy/docker/Dockerfile); taskq-dev (make run,
# the local PostgreSQL, the bench and test SQL) only into this .venv.
MEMBERS := packages/taskq-core services/api services/worker services/cli packages/taskq-dev
MEMBER_FILES := $(foreach member,$(MEMBERS),$(member)/pyproject.toml)

.PHONY: help lock install run run-api run-worker migrate test test-all lint format openapi bench bench-peers bench-quick soak fuzz clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet pip==$(PIP_VERSION)

$(STAMP): $(BIN)/python pyproject.toml constraints.txt $(MEMBER_FILES)
	$(BIN)/python -m pip install --quiet -c constraints.txt --group dev $(foreach member,$(MEMBERS),-e $(member))
	@touch $@

install: $(STAMP) ## Install everything into .venv (only what changed since last time)

run: install ## Migrate, then start the API (:8080) and one worker; a local PostgreSQL if POSTGRES_DSN is unset
	$(BIN)/python -m taskq_dev.devrun

run-api: install ## Start the API alone against POSTGRES_DSN
	$(BIN)/taskq-api

run-worker: install ## Start one worker replica against POSTGRES_DSN (run again for more)
	$(BIN)/taskq-worker

migrate: install ## Install PGMQ and taskq's schema into POSTGRES_DSN (idempotent)
	$(BIN)/taskq-migrate

# Parallel by default: most tests wait on PostgreSQL, processes or sockets, not the CPU.
# Each xdist worker has its own template and databases; `make test TEST_WORKERS=0` runs
# in one process. Tests marked `serial` run afterwards, alone.
TEST_WORKERS ?= auto

test: install ## Run the whole test suite (needs a PostgreSQL: TASKQ_TEST_DSN, Docker, or the embedded one)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup -m "not serial"
	$(BIN)/pytest -m serial

# Every found version runs even after one fails (a flake on one hides nothing on the
# others); skipped versions are named first, so that on success pytest's closing line
# stays the last line of the output.
test-all: ## Run the whole test suite once per supported Python on this machine (.venv-3.X each)
	@set -euo pipefail; plan=""; \
	for version in $(SUPPORTED_PYTHONS); do \
	  if interpreter=$$(.ci/find-python "$$version"); then plan="$$plan $$version=$$interpreter"; \
	  else echo "Python $$version: not found here, skipped"; fi; \
	done; \
	[ -n "$$plan" ] || { echo "no supported Python found ($(SUPPORTED_PYTHONS))" >&2; exit 1; }; \
	failed=""; \
	for entry in $$plan; do \
	  version=$${entry%%=*}; interpreter=$${entry#*=}; venv=.venv-$$version; \
	  if [ -x $(BIN)/python ] && [ "$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" = "$$version" ]; then \
	    venv=$(VENV); \
	  fi; \
	  echo "=== Python $$version ($$interpreter, $$venv)"; \
	  $(MAKE) --no-print-directory test PYTHON="$$interpreter" VENV=$$venv || failed="$$failed $$version"; \
	done; \
	[ -z "$$failed" ] || { echo "the suite failed on Python$$failed" >&2; exit 1; }

lint: install ## ruff, mypy (strict), the import contracts and the declared dependencies
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	@for member in $(MEMBERS); do \
	  echo "deptry $$member"; \
	  $(BIN)/deptry --config "$$member/pyproject.toml" "$$member/src" || exit 1; \
	done

format: install ## Format and autofix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

openapi: install ## Export the OpenAPI spec to docs/openapi.json and docs/openapi.yaml
	$(BIN)/python -m taskq_api.openapi_export docs

PEERS_VENV := .venv-bench-peers
PEERS_STAMP := $(PEERS_VENV)/.installed

# The peers taskq is measured against (pgqueuer, aiohttp) live in their own
# environment: they are never dependencies of taskq.
$(PEERS_STAMP): bench/requirements-peers.txt
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet -r bench/requirements-peers.txt
	@touch $@

bench-peers: $(PEERS_STAMP) ## Install the benchmark's peers into .venv-bench-peers (not .venv)

bench: install bench-peers ## Full benchmark suite; RESULTS=file.jsonl, SCENARIO=name[,name] for some only
	$(BIN)/python -m bench $${SCENARIO:+--only $$SCENARIO} --results $${RESULTS:-bench-results.jsonl}

bench-quick: install bench-peers ## A benchmark pass that finishes in a few minutes
	$(BIN)/python -m bench --quick --results $${RESULTS:-bench-results-quick.jsonl}

fuzz: install ## Schemathesis over the whole OpenAPI spec, long run (FUZZ_EXAMPLES per operation, default 1000)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-1000} $(BIN)/pytest tests/fuzz -p no:cacheprovider -o timeout=3600

soak: install ## 30 min steady load with worker restarts; reports RSS growth, lost and duplicated messages (SOAK_MINUTES)
	$(BIN)/python -m tests.soak

lock: ## Re-pin constraints.txt from what is installed in .venv
	{ echo "# Pinned versions a fresh install reproduces (pip -c). Regenerate after changing dependencies:"; \
	  echo "#   make lock"; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v -e '^-e' -e '^#' | LC_ALL=C sort -f; } > constraints.txt

clean: ## Remove the virtual environment and local data
	rm -rf $(VENV) $(PEERS_VENV) .venv-3.* .taskq .mypy_cache .ruff_cache .pytest_cache
