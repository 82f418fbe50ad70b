# Two commands on a fresh machine (Python 3.11+ and make):
#   make demo   run the real sidecar against an embedded moto server seeded with example secrets
#   make test   run the whole test suite (container tests run when a Docker engine answers)
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python

.PHONY: demo test lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(PY) examples/demo.py

test: $(VENV)/.installed
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[dev]'
	$(VENV)/bin/ruff check sidecar tests examples bench
	$(VENV)/bin/mypy

bench: $(VENV)/.installed
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
