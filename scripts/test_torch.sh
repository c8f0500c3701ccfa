#!/usr/bin/env bash
# `make test-torch TORCH=2.15.0 TORCHVISION=0.29.2 [PYTHON=python3.13]`: the course against another PyTorch.
# `make test-torch TORCH=newest`: the newest torch/torchvision pair on the package index (the weekly CI run).
#
# Builds build/torch-<TORCH>-py<X.Y>: requirements.txt with its torch and torchvision lines replaced by the
# given pair (every other package at the course's pin, what they pull in resolved by pip), plus course_utils
# (editable), then runs the unit tests and nbval over every notebook there, without the browser test
# (it drives .venv's JupyterLab) and the nbgrader test (it needs build/instructor-venv).
# pip constraint files from pip's own configuration are ignored (PIP_CONSTRAINT=/dev/null): the pair is the point.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/select_python.sh
: "${TORCH:?say which PyTorch, e.g. make test-torch TORCH=2.15.0 TORCHVISION=0.29.2}"
select_python || exit 1
echo "[test-torch] Python $PYTHON_VERSION ($PYTHON): $PYTHON_WHY"
export PIP_CONSTRAINT=/dev/null  # a machine-wide cap on torch in pip.conf would otherwise refuse the pair
if [ "$TORCH" = newest ]; then  # what pip would install today: torchvision's own pin picks the torch
    read -r TORCH TORCHVISION < <("$PYTHON" -m pip install --quiet --disable-pip-version-check --dry-run \
        --ignore-installed --report - torch torchvision | "$PYTHON" -c 'import json, sys
found = {p["metadata"]["name"]: p["metadata"]["version"] for p in json.load(sys.stdin)["install"]}
print(found["torch"], found["torchvision"])')
    echo "[test-torch] the newest pair: torch $TORCH, torchvision $TORCHVISION"
fi
: "${TORCHVISION:?say which torchvision goes with TORCH=$TORCH, e.g. TORCHVISION=0.29.2}"
VENV="build/torch-$TORCH-py$PYTHON_VERSION"
STAMP="$VENV/.requirements.sha256"

requirements=$(grep -vE '^(torch|torchvision)[=<>~! ]' requirements.txt; echo "torch==$TORCH"; echo "torchvision==$TORCHVISION")
want=$( (echo "$requirements"; cat pyproject.toml; "$PYTHON" -VV) | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    echo "[test-torch] $VENV is up to date"
else
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    echo "$requirements" > "$VENV/requirements.txt"
    echo "[test-torch] installing torch $TORCH, torchvision $TORCHVISION and the course's pins into $VENV"
    start=$SECONDS
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$VENV/requirements.txt"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
    echo "[test-torch] installed in $((SECONDS - start)) s"
    echo "$want" > "$STAMP"
fi
"$VENV/bin/python" -c 'import sys, torch, torchvision
print(f"[test-torch] testing torch {torch.__version__}, torchvision {torchvision.__version__}, Python {sys.version.split()[0]}")'
start=$SECONDS
status=0
"$VENV/bin/python" -m pytest -n 2 --dist loadfile tests notebooks -m "not browser" --ignore=tests/test_nbgrader.py "$@" \
    || status=$?
echo "[test-torch] tests took $((SECONDS - start)) s (torch $TORCH, torchvision $TORCHVISION, Python $PYTHON_VERSION)"
exit $status
