"""`make student`: a learners' copy that stands alone and spoils nothing.

The fast tests check the notebook transformation and the folder's layout, and grep every file of
the real copy for every quiz answer, explanation and solution line: none may be found. The slow one
installs the copy into a fresh venv from that folder alone and runs the learner's own `make test`
checks there on the first notebook (top to bottom, exercises unanswered: each checker says "not
yet", nothing crashes). Every notebook of the copy is run once, in JupyterLab, by the browser test
(tests/test_browser.py); running them all here again would execute the course twice.

Shortcut, so the test runs offline and in seconds: the fresh venv does not download the pinned
packages again; a .pth file lets it see .venv's site-packages (torch, JupyterLab, ...), and only
the copy's own package is installed into it (`pip install --no-deps -e FOLDER`). .venv's own
.pth files are not processed, so the teacher's course_utils stays invisible to it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sysconfig
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from course_utils.quiz_bank import load_bank
from tools import REPO_ROOT
from tools.student import (
    MARKER,
    NOTEBOOK_DIR,
    SOLUTIONS_HEADING,
    STUDENT_MAKEFILE,
    STUDENT_PYPROJECT,
    build,
    main,
    solutions_start,
    student_notebook,
)
from tools.templates import fill
from tools.venvs import layered_venv

REAL_NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9]*.ipynb"))
BINARY_SUFFIXES = {".npz", ".pt", ".png", ".zip", ".jpg", ".pdf"}


def executed_code_cell(source: str, count: int) -> nbformat.NotebookNode:
    cell = new_code_cell(source, execution_count=count)
    cell.outputs = [new_output("stream", name="stdout", text="printed\n")]
    return cell


def small_notebook(solutions_heading: str = "## Solutions") -> nbformat.NotebookNode:
    notebook = new_notebook(
        cells=[
            new_markdown_cell("# 01 Tiny\n\n## Learning objectives\n\n- read the solutions only at the end"),
            executed_code_cell("# NBVAL_CHECK_OUTPUT\nimport torch", 1),
            new_markdown_cell("## Exercises"),
            executed_code_cell("answer = None  # YOUR CODE HERE\ncheck_answer(answer)", 2),
            new_markdown_cell("## Key takeaways\n\n- freezing is a flag"),
            new_markdown_cell(solutions_heading),
            executed_code_cell("answer = 42  # the solution", 3),
            new_markdown_cell("### Solution to exercise 2"),
            executed_code_cell("answer2 = 43", 4),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    notebook.cells[1].metadata["tags"] = ["nbval-ignore-output", "keep-me"]
    notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    return notebook


def all_source(notebook: nbformat.NotebookNode) -> str:
    return "\n".join(cell.source for cell in notebook.cells)


def test_solutions_removed_outputs_and_markers_cleared_exercises_kept() -> None:
    original = small_notebook()
    student = student_notebook(original)
    assert "answer = 42" not in all_source(student) and "answer2" not in all_source(student)
    assert "YOUR CODE HERE" in all_source(student) and "Key takeaways" in all_source(student)
    assert "NBVAL" not in all_source(student) and student.cells[1].source == "import torch"
    assert student.cells[1].metadata["tags"] == ["keep-me"]
    code = [c for c in student.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == [None, None]
    assert all(c.outputs == [] for c in code)
    assert "widgets" not in student.metadata
    nbformat.validate(student)
    assert len(original.cells) == 9 and original.cells[1].outputs and "widgets" in original.metadata


def test_a_mention_before_the_takeaways_is_not_the_start() -> None:
    notebook = small_notebook()
    notebook.cells.insert(2, new_markdown_cell("## Where the solutions are\n\nAt the end."))
    index, offset = solutions_start(notebook.cells)
    assert notebook.cells[index].source.startswith("## Solutions") and offset == 0


def test_heading_sharing_a_cell_with_the_takeaways() -> None:
    notebook = small_notebook()
    notebook.cells[4].source += "\n\nNext: notebook 02.\n\n## Solutions\n\nRun these after trying."
    del notebook.cells[5]
    text = all_source(student_notebook(notebook))
    assert "Next: notebook 02." in text and "Run these after trying" not in text and "answer = 42" not in text


@pytest.mark.parametrize("heading", ["## Solutions", "# 8. Solutions", "### Solutions to the exercises"])
def test_heading_variants(heading: str) -> None:
    assert "answer = 42" not in all_source(student_notebook(small_notebook(heading)))


def test_a_notebook_without_solutions_is_an_error() -> None:
    with pytest.raises(ValueError, match="Solutions"):
        student_notebook(small_notebook("## Appendix"), "tiny.ipynb")


def tiny_source(tmp_path: Path) -> Path:
    source = tmp_path / "notebooks"
    source.mkdir()
    nbformat.write(small_notebook(), source / "01_tiny.ipynb")
    nbformat.write(small_notebook(), source / "02_tiny.ipynb")
    nbformat.write(small_notebook(), source / "scratch.ipynb")  # not numbered: not a course notebook
    (source / "figure.png").write_bytes(b"png")
    return source


def test_build_writes_a_folder_that_stands_alone_and_a_zip(tmp_path: Path) -> None:
    source = tiny_source(tmp_path)
    before = (source / "01_tiny.ipynb").read_bytes()
    out = tmp_path / "learners"
    written = build(out, source)
    assert [p.name for p in written] == ["01_tiny.ipynb", "02_tiny.ipynb"]
    assert (out / "notebooks" / "figure.png").read_bytes() == b"png"
    assert not (out / "notebooks" / "scratch.ipynb").exists()
    for needed in [
        "README.md",
        "Makefile",
        "requirements.txt",
        "pyproject.toml",
        "data/SHA256SUMS",
        "course_utils/__init__.py",
        "course_utils/quiz_bank/bank.sealed",
        "course_utils/exercises/checkers.sealed",
        "tests/test_my_exercises.py",
        "tests/kernels.py",
        "jupyter-config/jupyter_server_config.json",
    ]:
        assert (out / needed).exists(), needed
    assert not list((out / "course_utils" / "quiz_bank").glob("*.json")), "the readable bank was copied"
    assert sorted(p.name for p in (out / "course_utils" / "exercises").glob("*.py")) == ["__init__.py", "_feedback.py"]
    makefile = (out / "Makefile").read_text()
    assert "\nlab: setup" in makefile and "\ntest: setup" in makefile
    assert (
        "playwright" not in (out / "requirements.txt").read_text()
        and "torch==" in (out / "requirements.txt").read_text()
    )
    readme = (out / "README.md").read_text()
    assert "01_tiny.ipynb" in readme and "make lab" in readme and "make test" in readme
    assert (tmp_path / "learners.zip").stat().st_size > 0
    assert (source / "01_tiny.ipynb").read_bytes() == before
    build(out, source)  # rebuilding over an earlier copy works


def test_build_refuses_the_checkout_and_foreign_folders(tmp_path: Path) -> None:
    source = tiny_source(tmp_path)
    with pytest.raises(ValueError, match="inside the course checkout"):
        build(REPO_ROOT / "build" / "student", source)
    foreign = tmp_path / "my-thesis"
    foreign.mkdir()
    (foreign / "chapter1.tex").write_text("precious")
    with pytest.raises(ValueError, match="not an earlier learners' copy"):
        build(foreign, source)
    assert (foreign / "chapter1.tex").read_text() == "precious" and not (foreign / MARKER).exists()


def test_main_reports_a_bad_notebook_without_a_traceback(tmp_path: Path, capsys) -> None:
    source = tmp_path / "notebooks"
    source.mkdir()
    nbformat.write(small_notebook("## Appendix"), source / "01_tiny.ipynb")
    assert main([str(tmp_path / "out")], source) == 1
    assert "no Markdown heading naming 'Solutions'" in capsys.readouterr().err


@pytest.mark.parametrize("path", REAL_NOTEBOOKS, ids=lambda p: p.name)
def test_real_notebook_loses_its_solutions_keeps_its_exercises(path: Path) -> None:
    original = nbformat.read(path, as_version=4)
    student = student_notebook(original, path.name)
    index, _ = solutions_start(original.cells)
    solution_code = [c.source for c in original.cells[index:] if c.cell_type == "code" and c.source.strip()]
    kept_code = {c.source for c in student.cells if c.cell_type == "code"}
    assert solution_code, f"{path.name}: the Solutions section has no code"
    assert not kept_code & set(solution_code), f"{path.name}: solution code survived"
    markdown = "\n".join(c.source for c in student.cells if c.cell_type == "markdown")
    assert SOLUTIONS_HEADING.search(markdown) is None
    for heading in ["Learning objectives", "Exercises", "Key takeaways"]:
        assert heading.lower() in markdown.lower(), f"{path.name} lost its {heading!r} section"
    assert "YOUR CODE HERE" in all_source(student), f"{path.name}: the exercise stubs are gone"
    assert "NBVAL_" not in all_source(student)
    assert all(c.outputs == [] and c.execution_count is None for c in student.cells if c.cell_type == "code")
    nbformat.validate(student)


# ---------------------------------------------------------------- the real copy, end to end


def source_lines(text: str) -> set[str]:
    return {line.strip() for line in text.splitlines() if line.strip()}


def readable_text(path: Path) -> str:
    """What a learner reads in ``path``: a notebook's cell sources, any other file's text."""
    if path.suffix == ".ipynb":
        return "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells)
    return path.read_text(encoding="utf-8", errors="replace")


def shown_anyway() -> set[str]:
    """Lines the course shows on purpose: lesson cells (before Solutions) and the library's own code.

    The exercise checkers are not in it: they hold the expected answers.
    """
    lines = set()
    for path in REAL_NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        index, _ = solutions_start(notebook.cells)
        lines |= {line for cell in notebook.cells[:index] for line in source_lines(cell.source)}
    for path in [*(REPO_ROOT / "course_utils").rglob("*.py"), *(REPO_ROOT / "examples").rglob("*.py")]:
        if "exercises" not in path.parts or path.name in ("__init__.py", "_feedback.py"):
            lines |= source_lines(path.read_text())
    return lines


def solution_lines() -> set[str]:
    """Lines of the Solutions sections' code that the course does not show anywhere else.

    A line the lesson shows (the loop that freezes a block, say) is not a secret; comment lines,
    short lines and the checker calls are left out too.
    """
    shown, lines = shown_anyway(), set()
    for path in REAL_NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        index, _ = solutions_start(notebook.cells)
        for cell in notebook.cells[index:]:
            for line in source_lines(cell.source) if cell.cell_type == "code" else ():
                for candidate in {line, line.split("  #")[0].strip()}:
                    if (
                        len(candidate) >= 12
                        and not candidate.startswith("#")
                        and "ex.check_" not in candidate
                        and candidate not in shown
                    ):
                        lines.add(candidate)
    return lines


def quiz_secrets() -> set[str]:
    """The explanation and the right option of every question.

    A right option shorter than 20 characters (like "block3") is a word the lesson uses anyway;
    a proof ("the claim check in section 3") points to a cell and reveals nothing.
    """
    secrets = set()
    for entry in load_bank().values():
        secrets.add(entry["explanation"])
        if entry.get("kind", "choice") == "choice" and len(entry["options"][entry["answer"]]) >= 20:
            secrets.add(entry["options"][entry["answer"]])
    return {s for s in secrets if len(s) >= 12}


def text_files(folder: Path) -> dict[Path, str]:
    return {
        path: readable_text(path)
        for path in folder.rglob("*")
        if path.is_file() and path.suffix not in BINARY_SUFFIXES and ".venv" not in path.parts
    }


@pytest.fixture(scope="module")
def learners_copy(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("learners") / "freezing-course-student"
    build(folder)
    return folder


def test_copy_holds_no_answer_and_no_solution(learners_copy: Path) -> None:
    files = text_files(learners_copy)
    secrets, solutions = quiz_secrets(), solution_lines()
    assert len(secrets) > 20 and len(solutions) > 15, "the grep would find nothing because it looks for nothing"
    found = {
        secret[:60]: str(path.relative_to(learners_copy))
        for secret in secrets
        for path, text in files.items()
        if secret in text
    }
    assert not found, f"quiz answers readable in the learners' copy: {found}"
    found = {
        line: str(path.relative_to(learners_copy))
        for path, text in files.items()
        for line in solutions & source_lines(text)
    }
    assert not found, f"solution lines readable in the learners' copy: {found}"
    assert not any("BEGIN SOLUTION" in text or "NBVAL_" in text for text in files.values())


@pytest.mark.slow
def test_copy_installs_alone_and_its_own_tests_run(learners_copy: Path, tmp_path: Path) -> None:
    first = REAL_NOTEBOOKS[0].name
    copy = tmp_path / "freezing-course-student"
    shutil.copytree(learners_copy, copy)
    for path in (copy / "notebooks").glob("[0-9]*.ipynb"):
        if path.name != first:  # the learner's tests run what is there: one notebook is enough here
            path.unlink()
    learners_copy = copy
    # a bare folder in the .pth file: .venv's packages, but not .venv's own .pth files (see the docstring)
    python = layered_venv(tmp_path / "venv", sysconfig.get_paths()["purelib"] + "\n", with_pip=False)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("COURSE_", "PYTHON", "JUPYTER"))}
    env.update(
        JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
        JUPYTER_DATA_DIR=str(tmp_path / "jupyter-data"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"),
        COURSE_WORKERS="1",  # plumbing: no worker processes beside the notebook's own kernel
    )
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-build-isolation",
            "-e",
            str(learners_copy),
        ],
        check=True,
        env=env,
        cwd=tmp_path,
    )
    where = subprocess.run(
        [
            str(python),
            "-c",
            "import course_utils.exercises.layers as m, course_utils as c; print(c.__file__); print(m.__spec__.origin)",
        ],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    ).stdout.split()
    assert all(line.startswith(str(learners_copy)) for line in where), where
    report = tmp_path / "report.xml"
    result = subprocess.run(
        [str(python), "-m", "pytest", "-q", f"--junitxml={report}"],
        cwd=learners_copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    outcomes = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        failure = case.find("failure")
        outcomes[case.get("name")] = "" if failure is None else failure.get("message", "")
    runs = {name: message for name, message in outcomes.items() if name.startswith("test_runs_top_to_bottom")}
    solved = {name: message for name, message in outcomes.items() if name.startswith("test_exercises_solved")}
    assert len(runs) == len(solved) == 1, result.stdout[-3000:]
    assert all(message == "" for message in runs.values()), f"a learner notebook crashed: {runs}"
    for name, message in solved.items():
        first_line = message.splitlines()[0] if message else ""
        assert first_line.count("Exercise:") == 3 and "not solved yet" in first_line, f"{name}: {message}"
    assert not (learners_copy / "notebooks" / ".ipynb_checkpoints").exists()


def test_templates_are_real_files_filled_completely() -> None:
    """tools/templates/student/ holds the copy's Makefile, pyproject, README and test file as files the linters read."""
    with pytest.raises(ValueError, match=r"no value for \['@NOTEBOOK_TABLE@'\]"):
        fill("student/README.md", first_notebook="01_layers.ipynb")
    for text in (STUDENT_MAKEFILE, STUDENT_PYPROJECT, fill("student/test_my_exercises.py")):
        assert not re.search(r"@[A-Z_]+@", text)
    assert "\ttouch $@" in STUDENT_MAKEFILE, "make's own $@ is not a placeholder"
