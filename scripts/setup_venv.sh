#!/usr/bin/env bash
# Create or update .venv: every package at its locked version and hash (requirements.lock), then course_utils
# (editable). Skips the install when the lock, pyproject.toml and the venv's Python are unchanged since the last one.
#
# The interpreter: PYTHON=... if set, else the newest supported python3.X on PATH (scripts/select_python.sh).
# An existing .venv on a supported Python is kept unless PYTHON names another version.
#
# course_utils is installed with `pip install --no-deps --no-build-isolation -e .`: the build backend
# (setuptools) comes from the lock like every other package, so the install needs no network of its own and
# does not depend on the setuptools a venv may or may not bundle (Python 3.12+ venvs bundle none).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/select_python.sh
VENV=.venv
LOCK=requirements.lock
STAMP="$VENV/.requirements.sha256"
have=""
pip_install() { "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$@"; }

if [ -x "$VENV/bin/python" ] && have=$(python_version "$VENV/bin/python") && is_supported_python "$have"; then
    if [ -n "${PYTHON:-}" ]; then
        select_python || exit 1
        if [ "$PYTHON_VERSION" != "$have" ]; then
            echo "[setup] .venv has Python $have, $PYTHON_WHY asks for $PYTHON_VERSION: re-creating .venv"
            rm -rf "$VENV"
        fi
    fi
    [ -d "$VENV" ] && echo "[setup] Python $have (.venv's; \`rm -rf .venv\` or PYTHON=... to switch)"
elif [ -e "$VENV" ]; then
    echo "[setup] .venv has no working supported Python${have:+ (it has $have)}: re-creating it"
    rm -rf "$VENV"
fi
if [ ! -d "$VENV" ]; then
    select_python || exit 1
    echo "[setup] Python $PYTHON_VERSION ($PYTHON): $PYTHON_WHY"
    "$PYTHON" -m venv "$VENV" || {
        echo "[setup] $PYTHON cannot create a venv; on Debian/Ubuntu: apt install python$PYTHON_VERSION-venv" >&2
        rm -rf "$VENV"
        exit 1
    }
fi

want=$( (cat "$LOCK" pyproject.toml; "$VENV/bin/python" -VV) | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    echo "[setup] .venv is up to date"
    exit 0
fi
echo "[setup] installing $LOCK into .venv (first time: a few minutes)"
pip_install --require-hashes -r "$LOCK"
pip_install --no-deps --no-build-isolation -e .
echo "$want" > "$STAMP"
echo "[setup] done"
