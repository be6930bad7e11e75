# Quick start: `make test` (creates .venv, installs with test extras, runs the suite).
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-test

.PHONY: test test-slow demo bench lint clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

test-slow: $(STAMP)
	$(VENV)/bin/python -m pytest -q -m slow

bench: $(STAMP)
	$(VENV)/bin/python experiments/bench/losses.py
	$(VENV)/bin/python experiments/bench/models.py
	$(VENV)/bin/python experiments/bench/input.py
	$(VENV)/bin/python experiments/bench/train.py

lint: $(STAMP)
	$(VENV)/bin/python -m pip install --quiet ruff
	$(VENV)/bin/ruff check jax_ssl tests experiments configs

demo: $(STAMP)
	$(VENV)/bin/python experiments/demo.py

clean:
	rm -rf $(VENV) build *.egg-info
