# Freezing Layers in PyTorch: `make lab` to learn, `make test` to check everything.
PY := .venv/bin/python
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb))
IS_ROOT := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)
LINT := build/lint-venv/bin
LOCK_VENV := build/lock-venv/bin
LOCK_FLAGS ?= --upgrade  # make lock LOCK_FLAGS= keeps what is locked where requirements.txt allows
# PYTHON=/path/to/python3.X picks the interpreter (scripts/select_python.sh): make's variable reaches the scripts
export PYTHON

.PHONY: setup lab teacher test unit lint execute bench student assignments pretrain site clean help lock test-torch

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /\t/'

setup:  ## create/update .venv from requirements.lock (skipped when unchanged); PYTHON=python3.X picks the Python
	@bash scripts/setup_venv.sh

# --no-strip-extras keeps `jsonschema[format-nongpl]==...` whole: pip 23 (Python 3.11's) installing with hashes
# otherwise looks for the newest jsonschema to satisfy an extra and refuses it as unpinned.
lock:  ## re-resolve requirements.txt into requirements.lock (every package, hashes), then re-execute the notebooks
	[ -x $(LOCK_VENV)/uv ] || { "$$(bash scripts/select_python.sh)" -m venv build/lock-venv && \
		$(LOCK_VENV)/python -m pip install --quiet --disable-pip-version-check uv==0.13.8; }
	$(LOCK_VENV)/uv pip compile requirements.txt --universal --python-version 3.11 --generate-hashes --no-strip-extras \
		$(LOCK_FLAGS) --custom-compile-command "make lock" --quiet -o requirements.lock
	$(MAKE) execute

test-torch:  ## unit tests + nbval against another PyTorch in its own venv: TORCH=2.15.0 TORCHVISION=0.29.2 [PYTHON=...]
	@bash scripts/test_torch.sh

lab: setup  ## open YOUR workspace in JupyterLab, on 01_layers.ipynb: cleared notebooks, no solutions, edits kept
	$(PY) -m tools.workspace
	JUPYTER_CONFIG_PATH=$(CURDIR)/jupyter-config $(PY) -m jupyter lab --notebook-dir=workspace $(IS_ROOT)

teacher: setup  ## open the executed notebooks (every output and the solutions) in JupyterLab: for instructors
	JUPYTER_CONFIG_PATH=$(CURDIR)/jupyter-config $(PY) -m jupyter lab --notebook-dir=notebooks $(IS_ROOT)

# Two pytest processes (pytest-xdist): the browser run of the learners' copy beside the rest. --dist loadfile keeps
# each file, so each notebook's cells under nbval, in one process. See docs/CONTRIBUTING.md, "A suite you can trust".
TEST_PROCESSES ?= 2
test: setup  ## run every test: unit, widgets, hygiene, nbval re-execution of all notebooks
	$(PY) -m pytest -n $(TEST_PROCESSES) --dist loadfile

unit: setup  ## unit tests only (fast: no notebook execution, no browser)
	$(PY) -m pytest tests -m "not browser and not slow"

lint: setup $(LINT)/.installed  ## ruff (lint + format check; notebooks linted too) and mypy on course_utils
	$(LINT)/ruff check .
	$(LINT)/ruff format --check .
	$(LINT)/mypy
	$(LINT)/actionlint

$(LINT)/.installed: requirements-dev.txt  # the linters live in their own venv, never in .venv
	$(PY) -m venv build/lint-venv  # .venv's Python: the one setup chose
	$(LINT)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

execute: setup  ## re-execute notebooks in place, in order (NB=notebooks/03_freezing.ipynb for one)
	$(PY) -m tools.run_notebooks $(or $(NB),$(NOTEBOOKS))

bench: setup  ## time every notebook and the headline ratios; writes docs/benchmark.md (committed)
	$(PY) -m tools.bench

student: setup  ## learners' copy outside the checkout: STUDENT_DIR (default ../freezing-course-student) and its .zip
	$(PY) -m tools.student $(or $(STUDENT_DIR),../freezing-course-student)

assignments: setup  ## nbgrader course in build/nbgrader (source/ + release/); nbgrader lives in build/instructor-venv
	$(PY) -m tools.assignments build/nbgrader

pretrain: setup  ## regenerate the shipped checkpoint from the shipped data
	$(PY) -m tools.pretrain

site:  ## the course as a website in build/site (Sphinx + myst-nb in build/site-venv; no notebook is re-run)
	"$$(bash scripts/select_python.sh)" -m tools.site

clean:  ## remove build outputs (keeps .venv)
	rm -rf build bench/results.md test-artifacts
