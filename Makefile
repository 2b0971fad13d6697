# Two set-up commands, both safe on a fresh machine:
#   make demo   installs everything and runs dldoctor on the shipped digits example
#   make test   installs everything and runs the test suite
#   make lint   installs everything and runs ruff and mypy (zero findings is the bar)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# pytest-xdist workers for the parallel phases of `make test` (auto: one per CPU);
# PYTEST_ARGS go to every phase (e.g. PYTEST_ARGS=-x, or -k NAME).
TEST_JOBS ?= auto
PYTEST_ARGS ?=
PYTEST := $(BIN)/python -m pytest $(PYTEST_ARGS)

.PHONY: install demo test lint zoo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml requirements-dev.txt
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	$(BIN)/python -m pip install -q -e .
	touch $@

# The training frameworks script mode is tested against (requirements-optional.txt): `make test`
# installs them, `make demo` does not need them; tests that need one skip without it, saying so.
$(VENV)/.frameworks: $(VENV)/.installed requirements-optional.txt
	$(BIN)/python -m pip install -q -r requirements-optional.txt
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/dldoctor run examples/digits_script/train.py -- --epochs 5

# Every test once, in three phases (markers in pyproject.toml): the fast tests first, in
# parallel; then the slow ones and the bug zoo, in parallel; then the tests that load the
# machine or time a deadline, alone. A failing phase does not stop the next ones; the target
# fails if any did. Exit status 5 (no test selected, e.g. with PYTEST_ARGS=-k...) is no failure.
# The parallel phases give torch one thread per worker: with xdist's one worker per core, torch's
# default of one thread per core oversubscribes the machine (OpenMP threads spin while they
# wait); measured on 2 cores, six zoo cases took 37 s that way and 19 s with one thread each.
test: install $(VENV)/.frameworks
	@phase() { echo "== make test: $$1 (-m '$$2' $$3)"; began=$$(date +%s); \
	           $(PYTEST) $$3 -m "$$2"; rc=$$?; \
	           echo "== make test: $$1: exit $$rc in $$(( $$(date +%s) - began )) s"; \
	           [ $$rc -eq 0 ] || [ $$rc -eq 5 ]; }; \
	failed=0; \
	export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1; \
	phase "fast tests"             "not (slow or zoo or serial)"  "-n $(TEST_JOBS)" || failed=1; \
	phase "slow tests and the zoo" "(slow or zoo) and not serial" "-n $(TEST_JOBS)" || failed=1; \
	unset OMP_NUM_THREADS MKL_NUM_THREADS; \
	phase "serial tests"           "serial"                       "-p no:xdist"     || failed=1; \
	exit $$failed

# The lint and type gates (rules and their reasons in pyproject.toml): ruff over every Python
# tree, mypy over the package (strict on dldoctor.api and dldoctor.core). Both run; the target
# fails if either found anything.
LINT_PATHS ?= src tests benchmarks examples
lint: install
	@failed=0; \
	echo "== make lint: ruff check $(LINT_PATHS)"; $(BIN)/ruff check $(LINT_PATHS) || failed=1; \
	echo "== make lint: mypy (files from pyproject.toml)"; $(BIN)/mypy || failed=1; \
	exit $$failed

zoo: install
	$(BIN)/python benchmarks/diagnosis_accuracy.py examples/bugs

clean:
	rm -rf $(VENV) build src/*.egg-info
