#!/usr/bin/env bash
# Which Python the course runs on. Sourced by setup_venv.sh and test_torch.sh; run on its own it prints the
# chosen interpreter's path (stdout) and why (stderr), or says what to do and exits 1.
#
#   PYTHON=python3.12 bash scripts/select_python.sh   # that one, if it is a supported version
#   bash scripts/select_python.sh                     # else the newest supported python3.X on PATH
#
# SUPPORTED_PYTHONS is the one list of supported versions: pyproject.toml's requires-python, the README,
# the CI matrix and the learners' Makefile agree with it (tests/test_supported_versions.py).
SUPPORTED_PYTHONS="3.13 3.12 3.11"  # newest first

# "3.12" for an interpreter that runs, nothing (and status 1) for one that does not, e.g. a pyenv shim
# whose version is not activated.
python_version() {
    "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null
}

is_supported_python() {
    case " $SUPPORTED_PYTHONS " in *" $1 "*) return 0 ;; esac
    return 1
}

supported_list() {  # "3.11, 3.12 or 3.13"
    local -a sorted
    read -r -a sorted <<<"$(tr ' ' '\n' <<<"$SUPPORTED_PYTHONS" | sort -V | paste -sd' ')"
    local last=${sorted[-1]}
    unset 'sorted[-1]'
    if [ ${#sorted[@]} -eq 0 ]; then echo "$last"; else echo "$(IFS=,; echo "${sorted[*]}" | sed 's/,/, /g') or $last"; fi
}

# Sets PYTHON (the interpreter's real path), PYTHON_VERSION ("3.13") and PYTHON_WHY; prints the reason to
# stderr and returns 1 when no supported interpreter is found.
select_python() {
    local candidate path version
    local hint="install one, or point PYTHON at one: make lab PYTHON=/path/to/python3.13"
    if [ -n "${PYTHON:-}" ]; then
        path=$(command -v "$PYTHON" 2>/dev/null) || {
            echo "[setup] PYTHON=$PYTHON is not a command; the course runs on Python $(supported_list): $hint" >&2
            return 1
        }
        version=$(python_version "$path") || {
            echo "[setup] PYTHON=$PYTHON does not run; the course runs on Python $(supported_list): $hint" >&2
            return 1
        }
        is_supported_python "$version" || {
            echo "[setup] PYTHON=$PYTHON is Python $version; the course runs on Python $(supported_list): $hint" >&2
            return 1
        }
        PYTHON_WHY="PYTHON=$PYTHON"
    else
        local found=""
        for candidate in $(for v in $SUPPORTED_PYTHONS; do echo "python$v"; done) python3; do
            path=$(command -v "$candidate" 2>/dev/null) || continue
            version=$(python_version "$path") || continue
            found="$found $candidate=$version"
            if is_supported_python "$version"; then
                PYTHON_WHY="the newest supported Python on PATH ($candidate)"
                break
            fi
            path=""
        done
        if [ -z "$path" ]; then
            echo "[setup] no supported Python on PATH (found:${found:- none}); the course runs on" \
                "Python $(supported_list): $hint" >&2
            return 1
        fi
    fi
    PYTHON=$("$path" -c 'import sys; print(sys.executable)')
    PYTHON_VERSION=$version
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then  # run, not sourced
    set -euo pipefail
    select_python || exit 1
    echo "[setup] Python $PYTHON_VERSION ($PYTHON): $PYTHON_WHY" >&2
    echo "$PYTHON"
fi
