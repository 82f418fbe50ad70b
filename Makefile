# Two commands on a fresh machine (Python 3.11+ and make):
#   make demo   run the real sidecar against an embedded moto server seeded with example secrets
#   make test   run the whole test suite (container tests run when a Docker engine answers)
#   make test-fast  the in-process tests of the core's rules only (`pytest -m fast`), in seconds
VENV ?= .venv
DEMO_VENV ?= .venv-demo
PYTHON ?= python3
PY := $(VENV)/bin/python

# The version has one source, sidecar/__init__.py; the image's labels are filled from it.
VERSION = $(shell $(PYTHON) -c 'import sidecar; print(sidecar.__version__)')
REVISION = $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
IMAGE ?= ecs-secrets-sidecar:$(VERSION)

.PHONY: demo test test-fast test-arm64 lint bench clean image

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

# The demo has an environment of its own with the package and the embedded moto server only (the `demo`
# extra), not the test toolchain.
$(DEMO_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e '.[demo]'
	touch $@

demo: $(DEMO_VENV)/.installed
	$(DEMO_VENV)/bin/python examples/demo.py

test: $(VENV)/.installed
	$(PY) -m pytest

test-fast: $(VENV)/.installed
	$(PY) -m pytest -m fast -q

# linux/arm64 (Graviton): the unchanged Dockerfile built and run under qemu against moto. Not part of `make
# test`: emulation makes it take many minutes (docs/container-image.md). scripts/arm64-base installs qemu and
# binfmt support (Debian packages; needs root) and makes the arm64 base where none can be pulled.
test-arm64: $(VENV)/.installed
	bash scripts/arm64-base
	SIDECAR_ARM64_TESTS=1 SIDECAR_REQUIRE_CONTAINER_TESTS=1 $(PY) -m pytest tests/container/test_arm64.py

lint: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[dev]'
	$(VENV)/bin/ruff check sidecar tests examples bench
	$(VENV)/bin/mypy

image:
	docker build --build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) -t $(IMAGE) .

bench: $(VENV)/.installed
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) $(DEMO_VENV) build dist *.egg-info .pytest_cache .hypothesis
