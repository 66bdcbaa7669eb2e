# airflow-aisec — the README's commands. Everything they need is installed by scripts/setup.sh.
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
export AIRFLOW_HOME ?= $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AISEC_DATA_DIR ?= $(AIRFLOW_HOME)/aisec-data
export AISEC_REPORT_DIR ?= $(AIRFLOW_HOME)/aisec-reports
export AISEC_OSV_DB ?= $(CURDIR)/data/osv/pypa-advisory-db-2024-10-10.zip

.PHONY: setup demo stack-demo test lint typecheck pytest airflow bench bench-contenders clean

setup:            ## create .venv from uv.lock (installs uv with pip when missing)
	@bash scripts/setup.sh

demo: setup       ## run every example DAG end to end and print a summary
	@$(PY) scripts/demo.py

stack-demo: setup ## the example DAGs on local Postgres + Redis + CeleryExecutor (two workers), then stop
	@$(PY) scripts/stack.py demo

test: setup       ## lint, type check, whole test suite
	$(VENV)/bin/ruff check airflow_aisec dags tests scripts benchmarks
	$(VENV)/bin/ruff format --check airflow_aisec dags tests scripts benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest

airflow: setup    ## airflow standalone (UI on http://localhost:8080) with the example DAGs
	@bash scripts/airflow_standalone.sh

bench: setup      ## benchmark scripts (figures, never pass/fail)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

CONTENDERS ?= .bench-contenders
bench-contenders: setup  ## drift benchmark with Evidently and alibi-detect, from a venv of their own
	@test -x $(CONTENDERS)/bin/python || python3 -m venv $(CONTENDERS)
	@set -o pipefail; $(CONTENDERS)/bin/pip install -q --disable-pip-version-check \
		"evidently>=0.7,<0.8" "alibi-detect==0.13.0" "pyarrow<20" 2>&1 | { grep -v "^WARNING: Location" || true; }
	@$(PY) benchmarks/bench_drift.py --repeat 3 --contenders-python $(CONTENDERS)/bin/python

clean:
	@test ! -f .stack/demo/state.json || $(PY) scripts/stack.py stop
	rm -rf .airflow .stack
