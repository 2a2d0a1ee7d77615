# The two commands a newcomer needs: `make demo` and `make test`. Both install what they need
# (a virtualenv with pinned packages, the Kafka artifacts, PostgreSQL) and start the stack.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: install demo test test-unit bench docs docs-check up down status

$(VENV)/.installed: pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

install: $(VENV)/.installed

demo: install
	$(PY) -m deploy.demo $(ARGS)

test: install docs-check
	$(PY) -m pytest -q -p no:cacheprovider $(ARGS)

test-unit: install
	$(PY) -m pytest -q tests/unit

bench: install
	$(PY) -m bench $(ARGS)

docs: install
	$(PY) -m deploy.apidocs

docs-check: install
	$(PY) -m deploy.apidocs --check

up: install
	$(PY) -m deploy.local up

down: install
	$(PY) -m deploy.local down

status: install
	$(PY) -m deploy.local status
