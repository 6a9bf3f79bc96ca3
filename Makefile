# Every target bootstraps .venv from requirements.txt when missing, so on a fresh machine with
# only Python 3.11+ `make book` and `make test` need no other command first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LAB ?=
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
PIP := $(BIN)/pip install -q --disable-pip-version-check
# pip here warns about unused local index folders; keep the log readable without hiding failures
QUIET := 2>&1 | { grep -v "^WARNING: Location" || true; }

.PHONY: venv test test-fast book lab release grade selfcheck mutants course bench clean

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (found " + sys.version.split()[0] + ")")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing the pinned course environment into $(VENV) (first time: a few minutes)..."
	@set -o pipefail; $(PIP) -r requirements.txt $(QUIET)
	@set -o pipefail; $(PIP) --no-deps -e . $(QUIET)
	@$(BIN)/python -c "import labkit, boto3, moto, duckdb, sklearn, nbgrader" || { echo "environment is incomplete"; exit 1; }
	@touch $@

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not browser"

book: $(STAMP)
	$(BIN)/python book/make_toc.py
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "The course site is at $(CURDIR)/_build/html/index.html"

lab: $(STAMP)
	$(BIN)/python -m labkit lab

release: $(STAMP)
	$(BIN)/python -m grader release $(LAB)
	$(BIN)/python book/make_toc.py

# make grade [LAB=NN] [JOBS=N] [SCHEDULER=tcp://HOST:8786]: a local Dask cluster of JOBS processes,
# or the existing Dask cluster at SCHEDULER (DASK_SCHEDULER_ADDRESS works too)
grade: $(STAMP)
	$(BIN)/python -m grader autograde $(LAB) --jobs $(JOBS) $(if $(SCHEDULER),--scheduler $(SCHEDULER))

selfcheck: $(STAMP)
	$(BIN)/python -m grader selfcheck $(LAB)

mutants: $(STAMP)
	$(BIN)/python -m grader mutants $(LAB) --jobs $(JOBS)

course: $(STAMP)
	$(BIN)/python -m grader course

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf _build .pytest_cache autograded feedback submitted gradebook.db
