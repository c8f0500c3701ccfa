"""`make assignments`: the course as an nbgrader course directory, one assignment per notebook.

    python -m tools.assignments [COURSE_DIR]     # default: build/nbgrader

Each notebook becomes ``source/NN_name/NN_name.ipynb``:

- every exercise cell is the exercise with its solution filled in between
  ``### BEGIN SOLUTION`` / ``### END SOLUTION`` (an nbgrader "solution" cell);
- after it, a locked, autograded test cell worth ``POINTS`` points: the course's own checker must
  pass, plus hidden tests (``### BEGIN HIDDEN TESTS``, from ``tools/templates/hidden_tests.py``) that
  students never see;
- the Solutions section, the outputs and the ``# NBVAL_...`` markers are removed.

The solution comes from the notebook's Solutions section: the cell that calls the same checker
as the exercise cell. Its names are mapped to the exercise's names through the checker call they
share (``ex.check_frozen_backbone(solution_model, ...)`` -> ``exercise_model``).

Then ``nbgrader generate_assignment`` makes the students' version in ``release/``. nbgrader
lives in its own environment, ``build/instructor-venv`` (``requirements-instructor.txt``), never in
``.venv``: this command creates it when needed and runs nbgrader with its ``bin/`` first on ``PATH``
(nbgrader runs ``alembic``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import nbformat

from tools import NOTEBOOK_DIR, REPO_ROOT
from tools.student import NBVAL_MARKER, clear_cell, solutions_start
from tools.templates import TEMPLATE_DIR, fill
from tools.venvs import ensure_venv

DEFAULT_COURSE_DIR = REPO_ROOT / "build" / "nbgrader"
INSTRUCTOR_VENV = REPO_ROOT / "build" / "instructor-venv"
INSTRUCTOR_REQUIREMENTS = REPO_ROOT / "requirements-instructor.txt"
COURSE_ID = "freezing-layers"
POINTS = 2
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB_MARK = "YOUR CODE HERE"
PLACEHOLDERS = {"...", "pass", "return {}", "return None", "return", "raise NotImplementedError()"}
CHECKER_CALL = re.compile(r"\bex\.(check_\w+)\((.*)\)\s*;?\s*$")
EXERCISE_COMMENT = re.compile(r"^\s*#\s*Exercise\s*\d+\b.*$")

SECTION = re.compile(r"^# %% (\d\d)\.(\d+)$", re.MULTILINE)


def hidden_tests(path: Path = TEMPLATE_DIR / "hidden_tests.py") -> dict[tuple[str, int], str]:
    """The hidden test of each exercise, by (notebook number, exercise number), from the sections of
    ``tools/templates/hidden_tests.py`` (a real file, read by the linters): checks the students never see,
    written independently of the course's checkers."""
    text = path.read_text(encoding="utf-8")
    marks = list(SECTION.finditer(text))
    if not marks:
        raise ValueError(f"{path}: no section like '# %% 01.1'")
    ends = [m.start() for m in marks[1:]] + [len(text)]
    tests = {(m.group(1), int(m.group(2))): text[m.end() : end].strip() for m, end in zip(marks, ends)}
    if len(tests) != len(marks):
        raise ValueError(f"{path}: an exercise has two sections")
    return tests


HIDDEN_TESTS = hidden_tests()


@dataclass
class Exercise:
    """One exercise: its cell, its solution cell and the checker call they share."""

    number: int
    stub: str
    solution: str


def checker_call(source: str) -> tuple[str, list[str]] | None:
    """(checker name, argument texts) of the ``ex.check_...(...)`` line in ``source``."""
    for line in source.splitlines():
        match = CHECKER_CALL.search(line)
        if match:
            return match.group(1), [a.strip() for a in _split_arguments(match.group(2))]
    return None


def _split_arguments(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char in "([{"
        depth -= char in ")]}"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current] if current.strip() else parts


def exercises(notebook: nbformat.NotebookNode, name: str) -> list[Exercise]:
    """The exercises of ``notebook``: each ``YOUR CODE HERE`` cell with the Solutions cell calling its checker."""
    start = solutions_start(notebook.cells)
    if start is None:
        raise ValueError(f"{name} has no Solutions section")
    index = start[0]
    stubs = [c.source for c in notebook.cells[:index] if c.cell_type == "code" and STUB_MARK in c.source]
    solutions = [c.source for c in notebook.cells[index:] if c.cell_type == "code" and checker_call(c.source)]
    found = []
    for number, stub in enumerate(stubs, start=1):
        call = checker_call(stub)
        if call is None:
            raise ValueError(f"{name}, exercise {number}: the exercise cell calls no ex.check_... checker")
        match = next((s for s in solutions if checker_call(s)[0] == call[0]), None)
        if match is None:
            raise ValueError(f"{name}, exercise {number}: no cell in the Solutions section calls ex.{call[0]}")
        solutions.remove(match)
        found.append(Exercise(number, stub, match))
    return found


def _rename(text: str, names: dict[str, str]) -> str:
    for old, new in names.items():
        text = re.sub(rf"\b{re.escape(old)}\b", new, text)
    return text


def source_cell_text(exercise: Exercise, names: dict[str, str], where: str) -> str:
    """The exercise cell with its solution between the nbgrader delimiters; updates ``names``."""
    stub_call, solution_call = checker_call(exercise.stub), checker_call(exercise.solution)
    if stub_call is None or solution_call is None or stub_call[0] != solution_call[0]:
        raise ValueError(f"{where}: the exercise and its solution must call the same ex.check_... checker")
    for mine, theirs in zip(solution_call[1], stub_call[1]):
        if re.fullmatch(r"\w+", mine) and re.fullmatch(r"\w+", theirs) and mine != theirs:
            names[mine] = theirs
    stub_lines = exercise.stub.splitlines()
    mark = next(i for i, line in enumerate(stub_lines) if STUB_MARK in line)
    end = mark + 1
    while end < len(stub_lines) and stub_lines[end].strip() in PLACEHOLDERS:
        end += 1
    prefix, suffix = stub_lines[:mark], stub_lines[end:]
    indent = re.match(r"\s*", stub_lines[mark]).group(0)
    body = [
        line
        for line in _rename(NBVAL_MARKER.sub("", exercise.solution), names).splitlines()
        if not CHECKER_CALL.search(line) and not EXERCISE_COMMENT.match(line)
    ]
    while body and prefix and body[0].strip() in {p.strip() for p in prefix}:  # lines the exercise already has
        body.pop(0)
    while body and not body[-1].strip():
        body.pop()
    while body and not body[0].strip():
        body.pop(0)
    if not body:
        raise ValueError(f"{where}: the solution adds nothing to the exercise cell")
    if indent and not body[0].startswith(indent):
        body = [indent + line if line.strip() else line for line in body]
    return "\n".join([*prefix, indent + BEGIN, *body, indent + END, *suffix])


def test_cell_text(exercise: Exercise, notebook_number: str, where: str) -> str:
    call = CHECKER_CALL.search(next(line for line in exercise.stub.splitlines() if CHECKER_CALL.search(line)))
    hidden = HIDDEN_TESTS.get((notebook_number, exercise.number))
    if hidden is None:
        raise ValueError(
            f"{where}: no hidden test in tools/templates/hidden_tests.py: add a section "
            f"'# %% {notebook_number}.{exercise.number}'"
        )
    return "\n".join(
        [
            f"# Autograded: exercise {exercise.number} ({POINTS} points). The course's checker must pass.",
            f"assert ex.{call.group(1)}({call.group(2)}), "
            f'"Exercise {exercise.number} is not solved yet: read the hints above."',
            "### BEGIN HIDDEN TESTS",
            hidden,
            "### END HIDDEN TESTS",
        ]
    )


def _nbgrader(cell: nbformat.NotebookNode, grade_id: str, solution: bool, points: int | None = None) -> None:
    cell.metadata["nbgrader"] = {
        "grade": points is not None,
        "grade_id": grade_id,
        "locked": not solution,
        "schema_version": 3,
        "solution": solution,
        "task": False,
    }
    if points is not None:
        cell.metadata["nbgrader"]["points"] = points


def source_notebook(notebook: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """The nbgrader source version of a course notebook (see the module docstring)."""
    notebook = nbformat.from_dict(notebook)
    found = exercises(notebook, name)
    index = solutions_start(notebook.cells)[0]
    by_stub = {exercise.stub: exercise for exercise in found}
    names: dict[str, str] = {}
    cells = []
    for cell in notebook.cells[:index]:
        exercise = by_stub.get(cell.source) if cell.cell_type == "code" else None
        clear_cell(cell)
        cells.append(cell)
        if exercise is not None:
            where = f"{name}, exercise {exercise.number}"
            cell.source = source_cell_text(exercise, names, where)
            _nbgrader(cell, f"ex{exercise.number}_answer", solution=True)
            test = nbformat.v4.new_code_cell(test_cell_text(exercise, name[:2], where))
            _nbgrader(test, f"ex{exercise.number}_test", solution=False, points=POINTS)
            cells.append(test)
    notebook.cells = cells
    notebook.metadata.pop("widgets", None)
    return notebook


def write_course(course_dir: Path, source_dir: Path = NOTEBOOK_DIR) -> list[str]:
    """Write ``nbgrader_config.py`` and ``source/`` into ``course_dir``; returns the assignment names."""
    course_dir = Path(course_dir).resolve()
    shutil.rmtree(course_dir / "source", ignore_errors=True)
    (course_dir / "source").mkdir(parents=True)
    (course_dir / "nbgrader_config.py").write_text(
        fill("nbgrader_config.py", course_id=COURSE_ID, root=str(course_dir), repo_root=str(REPO_ROOT))
    )
    names = []
    for path in sorted(Path(source_dir).glob("[0-9][0-9]_*.ipynb")):
        notebook = source_notebook(nbformat.read(path, as_version=4), path.name)
        folder = course_dir / "source" / path.stem
        folder.mkdir()
        nbformat.write(notebook, folder / path.name)
        names.append(path.stem)
    return names


def ensure_instructor_venv(venv: Path = INSTRUCTOR_VENV, requirements: Path = INSTRUCTOR_REQUIREMENTS) -> Path:
    """The venv with nbgrader (``requirements-instructor.txt``); created or updated when needed. Returns its bin/.

    It sees every package of the venv running this function (.venv) through a ``.pth`` file, so
    only nbgrader and the few packages .venv lacks are installed into it, and .venv is never touched.
    """
    # site.addsitedir also runs .venv's own .pth files, e.g. the editable install of course_utils.
    see_this_venv = f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n"
    return ensure_venv(venv, requirements, "nbgrader", "assignments", see_this_venv, key=sys.prefix.encode())


def nbgrader_env(bin_dir: Path) -> dict[str, str]:
    """The environment to run nbgrader in: its venv's bin/ first on PATH (nbgrader calls ``alembic``)."""
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


def generate(course_dir: Path, bin_dir: Path) -> None:
    """``nbgrader generate_assignment`` for every assignment in ``source/`` (the students' release)."""
    subprocess.run(
        [str(bin_dir / "nbgrader"), "generate_assignment", "*", "--force", "--log-level=WARN"],
        cwd=course_dir,
        env=nbgrader_env(bin_dir),
        check=True,
    )


def main(argv: list[str]) -> int:
    course_dir = (Path(argv[0]) if argv else DEFAULT_COURSE_DIR).resolve()
    try:
        names = write_course(course_dir)
        generate(course_dir, ensure_instructor_venv())
    except (ValueError, subprocess.CalledProcessError) as error:
        print(f"assignments not built: {error}", file=sys.stderr)
        return 1
    print(f"nbgrader course in {course_dir}: source/ and release/ for {', '.join(names)}")
    print(
        "Next: hand out release/ (or `nbgrader release_assignment` on JupyterHub), collect submissions into "
        "submitted/<student>/<assignment>/, then `nbgrader autograde <assignment>` (docs/INSTRUCTOR.md)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
