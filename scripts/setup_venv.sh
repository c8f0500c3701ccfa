#!/usr/bin/env bash
# Create or update .venv with the pinned requirements and course_utils (editable).
# Skips the install when requirements.txt and pyproject.toml are unchanged since the last one.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
VENV=.venv
STAMP="$VENV/.requirements.sha256"
want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    echo "[setup] .venv is up to date"
    exit 0
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
echo "[setup] installing pinned requirements into .venv (first time: a few minutes)"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements.txt
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
echo "$want" > "$STAMP"
echo "[setup] done"
