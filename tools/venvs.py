"""Side venvs for tools that stay out of .venv (nbgrader, Sphinx, a learners' copy under test); standard library only.

A side venv is rebuilt when its requirements file changes (a SHA-256 stamp inside it), and can see
another venv's packages through one ``.pth`` line (``layered_venv``), so only what that venv lacks
is installed into it.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

STAMP_NAME = ".requirements.sha256"


def base_python() -> str:
    """The interpreter this venv was made from: a new venv is never built from a venv's own python."""
    return getattr(sys, "_base_executable", sys.executable)


def layered_venv(venv: Path, pth_line: str, with_pip: bool = True, clear: bool = False) -> Path:
    """Create ``venv`` with ``pth_line`` in a ``.pth`` file of its site-packages, the line that lets it see
    another venv's packages; returns its python."""
    options = [*([] if with_pip else ["--without-pip"]), *(["--clear"] if clear else [])]
    subprocess.run([base_python(), "-m", "venv", *options, str(venv)], check=True)
    python = venv / "bin" / "python"
    site_packages = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site_packages, "course-venv.pth").write_text(pth_line)
    return python


def ensure_venv(
    venv: Path, requirements: Path, marker: str, label: str, pth_line: str | None = None, key: bytes = b""
) -> Path:
    """``venv`` with ``requirements`` installed, (re)built only when the requirements (or ``key``) changed or
    ``bin/<marker>`` is missing; with ``pth_line`` it is layered over another venv. Returns its bin/."""
    if not requirements.is_file():
        raise FileNotFoundError(f"{requirements} not found: the {label} venv is built from it.")
    bin_dir = venv / "bin"
    stamp = venv / STAMP_NAME
    want = hashlib.sha256(requirements.read_bytes() + key).hexdigest()
    if stamp.exists() and stamp.read_text() == want and (bin_dir / marker).exists():
        return bin_dir
    print(f"[{label}] installing {requirements.name} into {venv} (first time: about a minute)", flush=True)
    if pth_line is None:
        subprocess.run([base_python(), "-m", "venv", "--clear", str(venv)], check=True)
        python = bin_dir / "python"
    else:
        python = layered_venv(venv, pth_line, clear=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(requirements)], check=True)
    stamp.write_text(want)
    return bin_dir
