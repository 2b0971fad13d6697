# Two set-up commands, both safe on a fresh machine:
#   make demo   installs everything and runs dldoctor on the shipped digits example
#   make test   installs everything and runs the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test zoo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml requirements-dev.txt
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	$(BIN)/python -m pip install -q -e .
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/dldoctor run examples/digits/train.py

test: install
	$(BIN)/python -m pytest

zoo: install
	$(BIN)/python benchmarks/diagnosis_accuracy.py examples/bugs

clean:
	rm -rf $(VENV) build src/*.egg-info
