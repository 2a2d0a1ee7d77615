# The two commands a newcomer needs: `make demo` and `make test`. Both install what they need
# (a virtualenv with pinned packages, the Kafka artifacts, PostgreSQL) and start the stack.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: install demo test test-unit lint bench docs docs-check up down status reliability

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

# Lint (ruff: pycodestyle, pyflakes, bugbear, pyupgrade, simplify, isort rules) and types (mypy,
# with pydantic's plugin) of the code; .ci/run runs it before the tests.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test-unit: install
	$(PY) -m pytest -q tests/unit

# Security and bad-input suites with more fuzzing than CI (schemathesis examples per operation),
# then the process-level fault suite (its own Kafka and PostgreSQL on free ports, the services as
# processes, kill -9 / broker and database restarts / failing webhook and SMTP targets under load;
# writes bench/results/reliability.md). Bounded: about ten minutes on 2 cores.
reliability: install
	PORTEVOIX_FUZZ_EXAMPLES=$${PORTEVOIX_FUZZ_EXAMPLES:-100} $(PY) -m pytest -q -p no:cacheprovider \
		tests/integration/test_security_api.py tests/integration/test_security_guard.py \
		tests/integration/test_security_fuzz.py tests/integration/test_reliability_dlq.py \
		tests/integration/test_faults.py tests/unit/test_properties.py $(ARGS)
	$(PY) -m deploy.reliability

bench: install
	$(PY) -m bench $(or $(ARGS),all)

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
