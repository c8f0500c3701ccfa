# Freezing Layers in PyTorch: `make lab` to learn, `make test` to check everything.
PY := .venv/bin/python
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb))
IS_ROOT := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

.PHONY: setup lab test unit notebooks execute bench student pretrain clean help

help:  ## list the targets
	@grep -E '^[a-z]+:.*## ' Makefile | sed 's/:.*## /\t/'

setup:  ## create/update .venv (skipped when requirements are unchanged)
	@bash scripts/setup_venv.sh

lab: setup  ## open the course in JupyterLab
	$(PY) -m jupyter lab --notebook-dir=notebooks --ip=127.0.0.1 --no-browser $(IS_ROOT)

test: setup  ## run every test: unit, widgets, hygiene, nbval re-execution of all notebooks
	$(PY) -m pytest

unit: setup  ## unit tests only (fast: no notebook execution, no browser)
	$(PY) -m pytest tests -m "not browser and not slow"

execute: setup  ## re-execute notebooks in place, in order (NB=notebooks/03_freezing.ipynb for one)
	$(PY) -m tools.run_notebooks $(or $(NB),$(NOTEBOOKS))

bench: setup  ## time every notebook and the headline ratios; writes bench/results.md
	$(PY) -m tools.bench

student: setup  ## student copy (outputs cleared, solutions removed) in build/student/
	$(PY) -m tools.student build/student

pretrain: setup  ## regenerate the shipped checkpoint from the shipped data
	$(PY) -m tools.pretrain

clean:  ## remove build outputs (keeps .venv)
	rm -rf build bench/results.md test-artifacts
