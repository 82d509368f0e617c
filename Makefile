# Two commands for a newcomer: `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed.stamp
PYTHON ?= $(shell command -v python3.11 || command -v python3)
PYTEST_ARGS ?=
# make test runs the suite on this many pytest-xdist worker processes (pytest's -n). Most tests
# wait on a sandbox, a server or a browser, so more workers than cores pays: on 2 cores 4 beat
# 3 and 6. PYTEST_WORKERS=0 runs the tests in pytest's own process (for --pdb, or one quick
# file); `.venv/bin/pytest tests/...` run by hand never uses workers unless given -n.
PYTEST_WORKERS ?= 4
SANDBOX := $(PY) -m flashfx.sandbox serve --host 127.0.0.1 --port 8001

.PHONY: venv install lock run prod-local sandbox otp style typecheck audit lint test browser clean

venv: $(PY)

$(PY):
	$(PYTHON) -m venv $(VENV)

install: $(STAMP)

# The stamp lives inside .venv, so a fresh venv always gets installed into. Every dependency
# comes from requirements.lock, pinned with hashes (pip refuses anything else); the project
# itself is then installed editable without dependencies.
$(STAMP): pyproject.toml requirements.lock | $(PY)
	$(PY) -m pip install --require-hashes --no-deps -r requirements.lock
	$(PY) -m pip install --no-deps -e .
	touch $@

# After changing dependencies in pyproject.toml: pin them again (newest allowed versions).
# requirements-prod.lock is what the Docker image installs (no test tools); requirements.lock,
# constrained by it so both pin the same versions, adds the test tools for `make install`.
LOCK_FLAGS := --quiet --generate-hashes --strip-extras --allow-unsafe --no-emit-index-url \
	--no-emit-find-links
lock: | $(PY)
	$(PY) -m pip install -q pip-tools
	$(VENV)/bin/pip-compile $(LOCK_FLAGS) --output-file requirements-prod.lock pyproject.toml
	$(VENV)/bin/pip-compile $(LOCK_FLAGS) --extra test --constraint requirements-prod.lock \
		--output-file requirements.lock pyproject.toml

run: export DEBUG := true
run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	@echo
	@echo "  Back-office      http://127.0.0.1:8000/        sign in as one demo member per role:"
	@echo "                   viewer, operator, approver, compliance, admin  (password: demo-<role>-password,"
	@echo "                   e.g. operator / demo-operator-password); then the one-time code from"
	@echo "                   make otp user=operator   (in another terminal; each code works once)"
	@echo "  Sandbox API      http://127.0.0.1:8001/        (API user: api@sandbox.local / sandbox-password)"
	@echo "  Sandbox console  http://127.0.0.1:8001/console/"
	@echo
	@echo "  Ctrl-C stops everything."
	@echo
	exec $(PY) -m backoffice.devrun Procfile

# The production processes and settings (gunicorn over HTTPS, worker, beat; DEBUG off) against
# the local PostgreSQL and Redis, with the sandbox as FlashFX: backoffice/prodlocal.py.
prod-local: install
	exec $(PY) -m backoffice.prodlocal

otp: export DEBUG := true
otp: install
	@$(PY) manage.py demo_otp $(user)

sandbox: export DEBUG := true
sandbox: install
	exec $(SANDBOX)

# make test checks the style (ruff, with its security and Django rules); make lint adds the
# types of the code that moves money and speaks to FlashFX (mypy) and the locked dependencies'
# known vulnerabilities (pip-audit, which asks PyPI: it needs the network). .ci/run runs both.
MYPY_PATHS := flashfx/client.py flashfx/transport.py flashfx/session.py flashfx/retry.py \
	flashfx/types.py flashfx/errors.py flashfx/tokens.py payments/services parties/services \
	mirrors

style: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	DEBUG=true $(VENV)/bin/mypy $(MYPY_PATHS)

audit: install
	$(VENV)/bin/pip-audit --disable-pip --require-hashes -r requirements-prod.lock \
		--progress-spinner off

lint: style typecheck audit

test: install style browser
	DEBUG=true $(VENV)/bin/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

# tests/e2e drive Debian's Chromium (never a downloaded browser). Installed when missing and we
# may (root); otherwise those tests are skipped with the reason (they fail instead under CI=true).
browser:
	@test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		{ echo "Installing chromium for tests/e2e"; apt-get update -qq && \
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; } || \
		echo "No /usr/bin/chromium: tests/e2e will be skipped (apt-get install -y chromium)"

clean:
	rm -rf var/
