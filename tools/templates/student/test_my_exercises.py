"""Your own checks (`make test`): every notebook runs top to bottom, every exercise is solved.

The notebooks run in fresh kernels, two at a time, and are not changed on disk. A notebook that
stops with an error fails `test_runs_top_to_bottom`; an exercise whose checker still prints
"Not there yet" fails `test_exercises_solved` and is named in the report.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat
import pytest
from kernels import LocalKernelManager  # tests/kernels.py: kernels over IPC sockets, never TCP ports
from nbclient import NotebookClient

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
CELL_TIMEOUT_S = 300


def run(path: Path) -> tuple[str, dict]:
    """Execute one notebook in a fresh kernel; returns (error or "", the executed notebook)."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_manager_class=LocalKernelManager,
        timeout=CELL_TIMEOUT_S,
        shutdown_kernel="immediate",
        resources={"metadata": {"path": str(path.parent)}},
    )
    try:
        client.execute()
    except Exception as error:  # reported by the test below
        name, value = getattr(error, "ename", type(error).__name__), getattr(error, "evalue", str(error))
        return f"{name}: {value}"[:2000], dict(notebook)
    return "", dict(notebook)


@pytest.fixture(scope="session")
def executed() -> dict[str, tuple[str, dict]]:
    workers = max(1, min(2, os.cpu_count() or 1))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return dict(zip((p.name for p in NOTEBOOKS), pool.map(run, NOTEBOOKS)))


def checker_reports(notebook: dict) -> list[str]:
    """The text every checker printed, in order (one "Exercise: ..." report each)."""
    reports = []
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []) if cell["cell_type"] == "code" else []:
            text = output.get("text", "")
            text = "".join(text) if isinstance(text, list) else text
            reports += ["Exercise: " + part for part in text.split("Exercise: ")[1:]]
    return reports


@pytest.mark.parametrize("name", [p.name for p in NOTEBOOKS])
def test_runs_top_to_bottom(name: str, executed) -> None:
    error, _ = executed[name]
    assert not error, f"{name} stopped with an error: {error}"


@pytest.mark.parametrize("name", [p.name for p in NOTEBOOKS])
def test_exercises_solved(name: str, executed) -> None:
    _, notebook = executed[name]
    reports = checker_reports(notebook)
    assert reports, f"{name}: no exercise checker ran"
    not_yet = [report.splitlines()[0] for report in reports if "Not there yet" in report]
    assert not not_yet, f"{name}: not solved yet: " + "; ".join(not_yet)
