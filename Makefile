# Two commands for a newcomer: `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed.stamp
PYTHON ?= $(shell command -v python3.11 || command -v python3)
PYTEST_ARGS ?=
SANDBOX := $(PY) -m flashfx.sandbox serve --host 127.0.0.1 --port 8001

.PHONY: venv install run sandbox lint test clean

venv: $(PY)

$(PY):
	$(PYTHON) -m venv $(VENV)

install: $(STAMP)

# The stamp lives inside .venv, so a fresh venv always gets installed into.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -e '.[test]'
	touch $@

run: export DEBUG := true
run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	@echo
	@echo "  Back-office      http://127.0.0.1:8000/        (admin: admin / admin at /admin/)"
	@echo "  Sandbox API      http://127.0.0.1:8001/        (API user: api@sandbox.local / sandbox-password)"
	@echo "  Sandbox console  http://127.0.0.1:8001/console/"
	@echo
	@echo "  Ctrl-C stops everything."
	@echo
	exec $(VENV)/bin/honcho start -f Procfile

sandbox: export DEBUG := true
sandbox: install
	exec $(SANDBOX)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: install lint
	DEBUG=true $(VENV)/bin/pytest $(PYTEST_ARGS)

clean:
	rm -rf var/
