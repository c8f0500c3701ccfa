"""Committed notebooks are executed in order, error-free, portable, and follow the course skeleton."""

from __future__ import annotations

import getpass
import json
import os
import re
import socket
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
MACHINE_PATH = re.compile(r"(/root/|/home/|/Users/|/tmp/|/work/|[A-Z]:\\\\Users)")


def machine_path_excerpt(text: str) -> str | None:
    """The first machine path in text with some context around it, or None when there is none."""
    match = MACHINE_PATH.search(text)
    return None if match is None else text[max(0, match.start() - 60) : match.end() + 60]


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, "no notebooks found in notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_executed_in_order(path: Path) -> None:
    counts = [c["execution_count"] for c in _load(path)["cells"] if c["cell_type"] == "code"]
    assert counts == list(range(1, len(counts) + 1)), (
        f"{path.name} is not executed top to bottom in one run (counts {counts}); "
        f"re-run it with `make execute NB=notebooks/{path.name}`"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_errors_or_stderr(path: Path) -> None:
    for index, cell in enumerate(_load(path)["cells"]):
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", f"{path.name} cell {index} has an error output"
            assert output.get("name") != "stderr", (
                f"{path.name} cell {index} wrote to stderr: {output.get('text')!r:.200}"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_machine_specific_output(path: Path) -> None:
    text = json.dumps([c.get("outputs", []) for c in _load(path)["cells"]])
    excerpt = machine_path_excerpt(text)
    assert excerpt is None, f"{path.name} shows a machine path in an output: …{excerpt}…"
    for name in {socket.gethostname(), getpass.getuser()} - {"root", "localhost", ""}:
        if len(name) >= 4:  # shorter names occur in ordinary text
            assert name not in text, f"{path.name} shows this machine's host or user name {name!r} in an output"


def project_text_files(root: Path) -> list[Path]:
    """The project's own text files under root: not git's data, nor a folder .gitignore names (venvs, builds)."""
    ignored = (root / ".gitignore").read_text().split()
    skipped = {".git"} | {line.strip("/") for line in ignored if line.endswith("/") and "*" not in line}
    suffixes = {".py", ".md", ".txt", ".lock", ".toml", ".cfg", ".yml", ".yaml", ".json", ".sh", ".rst", ".html", ""}
    found = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if d not in skipped and not d.endswith(("_cache", ".egg-info")))
        found += [Path(folder, name) for name in sorted(names) if Path(name).suffix in suffixes or name == "Makefile"]
    return found


def test_project_text_files_name_no_machine_path() -> None:
    """A path such as file:///tmp/… in a requirements file installs only on the machine that wrote it."""
    root = Path(__file__).resolve().parents[1]
    files = project_text_files(root)
    assert root / "requirements-site.txt" in files and root / "Makefile" in files
    assert not any({".venv", "build"} & set(path.relative_to(root).parts) for path in files)
    for path in files:
        if path == Path(__file__).resolve():
            continue  # the pattern itself
        excerpt = machine_path_excerpt(path.read_text(errors="replace"))
        assert excerpt is None, f"{path.relative_to(root)} names a machine path: …{excerpt}…"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_kernel_is_python3(path: Path) -> None:
    assert _load(path)["metadata"].get("kernelspec", {}).get("name") == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_follows_the_course_skeleton(path: Path) -> None:
    cells = _load(path)["cells"]
    markdown = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    for heading in ["Learning objectives", "Claim check", "Exercises", "Key takeaways", "Solutions"]:
        assert heading.lower() in markdown.lower(), f"{path.name} lacks a '{heading}' section"
    assert "assert " in code, f"{path.name} has no claim check that asserts"
    assert "NBVAL_CHECK_OUTPUT" in code, f"{path.name} has no cell whose output nbval compares"
