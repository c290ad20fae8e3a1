# Coop 85 portal. The two commands of the README:
#   make run   - set everything up and serve the demo on http://127.0.0.1:5000 (SQLite)
#   make test  - set everything up and run the whole suite on SQLite, then on PostgreSQL
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
FLASK := COOP85_ENV=development FLASK_APP=wsgi.py $(VENV)/bin/flask
STAMP := $(VENV)/.installed
# axe-core for the browser tests (accessibility), from npm, pinned in package.json/package-lock.json.
NPM_STAMP := node_modules/.installed

.PHONY: run test test-sqlite test-postgres setup browser test-tools lint format bench clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(FLASK) db upgrade
	@test -f instance/.demo-loaded || ($(FLASK) demo && touch instance/.demo-loaded)
	$(FLASK) run --host 127.0.0.1 --port 5000

# Browser tests use Debian's Chromium (Playwright's own download is not available here).
browser:
	@command -v chromium >/dev/null || { \
	  echo "Chromium manquant : installation avec apt-get"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

# Test tools from npm (never needed by `make run`); reinstalled only when the lock file changes.
$(NPM_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { \
	  echo "npm manquant : installation avec apt-get"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq npm >/dev/null; }
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NPM_STAMP)

test-tools: $(NPM_STAMP)

test: setup browser test-tools
	$(MAKE) --no-print-directory test-sqlite
	$(MAKE) --no-print-directory test-postgres

test-sqlite: setup test-tools
	$(PY) -m pytest

test-postgres: setup test-tools
	$(PY) scripts/pytest_postgres.py

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: setup
	$(PY) bench/all.py

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache .hypothesis
