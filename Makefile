# recsite — the two commands of the README, and the tools around them.
#   make demo   set up, seed the demo catalog and serve on http://127.0.0.1:8000/
#   make test   set up and run the whole test suite
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8000

# The demo runs in development mode: scripts/dev_env.py writes a .env (DEBUG
# on, a random secret key, REDIS_URL / DATABASE_URL when set) unless one
# exists, and every manage.py command in this checkout reads it afterwards.

.PHONY: demo test venv venv-dev lint format bench cluster clean

$(VENV)/.installed: requirements.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found; set PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed
venv-dev: $(VENV)/.installed-dev

demo: venv
	$(PY) scripts/dev_env.py
	$(PY) manage.py migrate --verbosity 0
	$(PY) manage.py seed_demo --accounts
	@echo "Dashboard: http://$(HOST):$(PORT)/   admin: http://$(HOST):$(PORT)/admin/   operator view: http://$(HOST):$(PORT)/ops/"
	$(PY) manage.py serve --host $(HOST) --port $(PORT)

test: venv-dev
	bash scripts/system-deps.sh
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest $(PYTEST_ARGS)

lint: venv-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: venv-dev
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) staticfiles db.sqlite3 test-artifacts .env

# nginx + 2 daphne processes on loopback (needs REDIS_URL and DATABASE_URL).
cluster: venv
	bash deploy/cluster.sh
