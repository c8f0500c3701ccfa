"""`make assignments` end to end with the real nbgrader: source -> release -> autograde -> gradebook.

Every notebook becomes an assignment and is released. Two of them, the quickest to run, are then
submitted twice and autograded: a blank submission (the release, unchanged) must score 0 on every
exercise and a solved one (the release with the solutions typed in) full points, as nbgrader's
gradebook records them. One autograde run grades both students, one notebook at a time, so no two
kernels compete for the cores. That every exercise's hidden test rejects the wrong answers is
checked in-process, without nbgrader, by the exercises' tests.

nbgrader runs from build/instructor-venv (requirements-instructor.txt), which this test creates
when it is missing — never skipped: without nbgrader the test fails.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import nbformat
import pytest

from tools.assignments import BEGIN, END, POINTS, ensure_instructor_venv, nbgrader_env, source_notebook, write_course
from tools.student import NOTEBOOK_DIR, SOLUTIONS_HEADING

pytestmark = pytest.mark.slow

NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
ASSIGNMENTS = [p.stem for p in NOTEBOOKS]
GRADED = ASSIGNMENTS[:2]  # autograded end to end: the two quickest notebooks (01 and 02, under 10 s each)
AUTOGRADE_TIMEOUT_S = 900

READ_GRADEBOOK = """
import json, sys
from nbgrader.api import Gradebook, MissingEntry
scores, student = {}, sys.argv[2]
with Gradebook("sqlite:///" + sys.argv[1]) as gradebook:
    for assignment in gradebook.assignments:
        try:
            gradebook.find_submission(assignment.name, student)
        except MissingEntry:  # released but not submitted: not graded
            continue
        for notebook in assignment.notebooks:
            for cell in notebook.grade_cells:
                grade = gradebook.find_grade(cell.name, notebook.name, assignment.name, student)
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
    for name in GRADED:
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
    env = {**nbgrader_env(bin_dir), "COURSE_WORKERS": "1"}  # plumbing, not a lesson: one process per notebook
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
    submit(course, "blank", lambda release, source: release)
    submit(course, "solved", solved)
    autograde = subprocess.run(
        [str(bin_dir / "nbgrader"), "autograde", "*", "--create", "--log-level=WARN"],
        cwd=course,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=AUTOGRADE_TIMEOUT_S,
    )
    assert autograde.returncode == 0, f"nbgrader autograde failed:\n{autograde.stdout[-3000:]}"
    assert "without encryption" not in autograde.stdout, "nbgrader's kernels still start over TCP"
    scores = {}
    for student in ("blank", "solved"):
        out = subprocess.run(
            [str(bin_dir / "python"), "-c", READ_GRADEBOOK, str(course / "gradebook.db"), student],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        scores[student] = json.loads(out.stdout)
    return scores


def expected_cells(names: list[str] = ASSIGNMENTS) -> set[str]:
    cells = set()
    for path in (p for p in NOTEBOOKS if p.stem in names):
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
    assert set(scores) == expected_cells(GRADED)
    assert all(max_score == POINTS for _, max_score in scores.values())
    not_zero = {cell: score for cell, (score, _) in scores.items() if score != 0}
    assert not not_zero, f"a blank submission earned points: {not_zero}"


def test_solved_submission_scores_full_points(graded) -> None:
    scores = graded["solved"]
    assert set(scores) == expected_cells(GRADED)
    missing = {cell: score for cell, (score, max_score) in scores.items() if score != max_score}
    assert not missing, f"the solved submission lost points: {missing}"
    assert sum(score for score, _ in scores.values()) == POINTS * len(expected_cells(GRADED))


def test_source_has_solution_regions_and_hidden_tests_and_no_solutions_section() -> None:
    for path in NOTEBOOKS:
        source = source_notebook(nbformat.read(path, as_version=4), path.name)
        text = "\n".join(c.source for c in source.cells)
        assert text.count(BEGIN) == text.count(END) == 3 and text.count("### BEGIN HIDDEN TESTS") == 3
        assert "NBVAL_" not in text and not any(c.get("outputs") for c in source.cells if c.cell_type == "code")
        markdown = "\n".join(c.source for c in source.cells if c.cell_type == "markdown")
        assert SOLUTIONS_HEADING.search(markdown) is None, f"{path.name}: the Solutions section is still there"
