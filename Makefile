# The two commands of the README: `make demo` (the main job on a built-in example) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test check-kernels

setup:
	@bash scripts/setup.sh

demo: setup
	$(VENV)/bin/adop demo demo

check-kernels:
	@if [ -f scripts/check_kernels.sh ]; then bash scripts/check_kernels.sh; fi

test: setup check-kernels
	$(PY) -m pytest -q -m "slow or not slow"
