"""`make assignments` end to end with the real nbgrader: source -> release -> autograde -> gradebook.

A blank submission (the release, unchanged) must score 0 on every exercise and a solved one
(the release with the solutions typed in) full points, as nbgrader's gradebook records them.
nbgrader runs from build/instructor-venv (requirements-instructor.txt), which this test creates
when it is missing — never skipped: without nbgrader the test fails. The two submissions are
graded in two copies of the course directory at once (each kernel uses one CPU thread).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from tools.assignments import BEGIN, END, POINTS, ensure_instructor_venv, nbgrader_env, source_notebook, write_course
from tools.student import NOTEBOOK_DIR, SOLUTIONS_HEADING

pytestmark = pytest.mark.slow

NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
ASSIGNMENTS = [p.stem for p in NOTEBOOKS]
AUTOGRADE_TIMEOUT_S = 900

READ_GRADEBOOK = """
import json, sys
from nbgrader.api import Gradebook
scores = {}
with Gradebook("sqlite:///" + sys.argv[1]) as gradebook:
    for assignment in gradebook.assignments:
        for notebook in assignment.notebooks:
            for cell in notebook.grade_cells:
                grade = gradebook.find_grade(cell.name, notebook.name, assignment.name, sys.argv[2])
                scores[f"{assignment.name}/{cell.name}"] = [grade.score, grade.max_score]
print(json.dumps(scores))
"""


def solved(release: nbformat.NotebookNode, source: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The release with every answer cell replaced by its solution, as a student would type it."""
    answers = {
        c.metadata["nbgrader"]["grade_id"]: c.source
        for c in source.cells
        if c.metadata.get("nbgrader", {}).get("solution")
    }
    notebook = nbformat.from_dict(release)
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = "\n".join(line for line in answers[grade_id].splitlines() if line.strip() not in (BEGIN, END))
    return notebook


def submit(course: Path, student: str, make) -> None:
    for name in ASSIGNMENTS:
        folder = course / "submitted" / student / name
        folder.mkdir(parents=True)
        release = nbformat.read(course / "release" / name / f"{name}.ipynb", as_version=4)
        source = nbformat.read(course / "source" / name / f"{name}.ipynb", as_version=4)
        nbformat.write(make(release, source), folder / f"{name}.ipynb")
        (folder / "timestamp.txt").write_text("2026-01-15 10:00:00.000000 UTC")


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict[str, dict[str, list[float]]]:
    """{student: {"assignment/grade cell": [score, max score]}} after the real nbgrader autograde."""
    bin_dir = ensure_instructor_venv()
    env = {**nbgrader_env(bin_dir), "COURSE_WORKERS": "1"}  # two autogrades share the cores: no extra workers
    root = tmp_path_factory.mktemp("nbgrader")
    course = root / "course"
    assert write_course(course) == ASSIGNMENTS
    subprocess.run(
        [str(bin_dir / "nbgrader"), "generate_assignment", "*", "--force", "--log-level=WARN"],
        cwd=course,
        env=env,
        check=True,
        timeout=300,
    )
    courses = {"blank": course, "solved": root / "course-solved"}
    shutil.copytree(course, courses["solved"])
    (courses["solved"] / "nbgrader_config.py").write_text(
        (course / "nbgrader_config.py").read_text().replace(str(course), str(courses["solved"]))
    )
    submit(courses["blank"], "blank", lambda release, source: release)
    submit(courses["solved"], "solved", solved)
    running = {
        student: subprocess.Popen(
            [str(bin_dir / "nbgrader"), "autograde", "*", "--create", f"--student={student}", "--log-level=WARN"],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for student, folder in courses.items()
    }
    logs = {student: process.communicate(timeout=AUTOGRADE_TIMEOUT_S)[0] for student, process in running.items()}
    for student, process in running.items():
        assert process.returncode == 0, f"nbgrader autograde ({student}) failed:\n{logs[student][-3000:]}"
    scores = {}
    for student, folder in courses.items():
        out = subprocess.run(
            [str(bin_dir / "python"), "-c", READ_GRADEBOOK, str(folder / "gradebook.db"), student],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        scores[student] = json.loads(out.stdout)
    return scores


def expected_cells() -> set[str]:
    cells = set()
    for path in NOTEBOOKS:
        source = source_notebook(nbformat.read(path, as_version=4), path.name)
        cells |= {
            f"{path.stem}/{c.metadata['nbgrader']['grade_id']}"
            for c in source.cells
            if c.metadata.get("nbgrader", {}).get("grade")
        }
    return cells


def test_every_exercise_has_an_autograded_cell() -> None:
    cells = expected_cells()
    assert len(cells) == 3 * len(NOTEBOOKS), sorted(cells)


def test_blank_submission_scores_zero_on_every_exercise(graded) -> None:
    scores = graded["blank"]
    assert set(scores) == expected_cells()
    assert all(max_score == POINTS for _, max_score in scores.values())
    not_zero = {cell: score for cell, (score, _) in scores.items() if score != 0}
    assert not not_zero, f"a blank submission earned points: {not_zero}"


def test_solved_submission_scores_full_points(graded) -> None:
    scores = graded["solved"]
    assert set(scores) == expected_cells()
    missing = {cell: score for cell, (score, max_score) in scores.items() if score != max_score}
    assert not missing, f"the solved submission lost points: {missing}"
    assert sum(score for score, _ in scores.values()) == POINTS * len(expected_cells())


def test_source_has_solution_regions_and_hidden_tests_and_no_solutions_section() -> None:
    for path in NOTEBOOKS:
        source = source_notebook(nbformat.read(path, as_version=4), path.name)
        text = "\n".join(c.source for c in source.cells)
        assert text.count(BEGIN) == text.count(END) == 3 and text.count("### BEGIN HIDDEN TESTS") == 3
        assert "NBVAL_" not in text and not any(c.get("outputs") for c in source.cells if c.cell_type == "code")
        markdown = "\n".join(c.source for c in source.cells if c.cell_type == "markdown")
        assert SOLUTIONS_HEADING.search(markdown) is None, f"{path.name}: the Solutions section is still there"
