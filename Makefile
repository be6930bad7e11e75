# Quick start: `make test` (creates .venv, installs with test extras, runs the suite).
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-test

.PHONY: test test-slow demo bench lint clean

$(STAMP): setup.cfg setup.py pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The suite spends most of its time compiling, one core per process: one process per core
# (at most 4) halves it on 2 cores. Plain `pytest` runs in one process.
PYTEST_WORKERS := -n auto --maxprocesses 4 --dist worksteal

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q $(PYTEST_WORKERS)

test-slow: $(STAMP)
	$(VENV)/bin/python -m pytest -q -m slow $(PYTEST_WORKERS)

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

# Our SimCLR/MAE/DINO steps against the official PyTorch ones on this machine's CPU; the
# CPU wheel index keeps pip from pulling CUDA builds of torch.
.PHONY: bench-pytorch
bench-pytorch: $(STAMP)
	$(VENV)/bin/python -m pip install --quiet --extra-index-url https://download.pytorch.org/whl/cpu -e '.[bench]'
	$(VENV)/bin/python experiments/bench/vs_pytorch.py
