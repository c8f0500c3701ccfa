"""`make lab`'s workspace: built cleared on the first run, the learner's edits kept on every later run."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from tools import workspace
from tools.student import SOLUTIONS_HEADING
from tools.workspace import UPDATE_SUFFIX, sync


def course_notebook(lesson: str = "x = 1") -> nbformat.NotebookNode:
    code = new_code_cell(lesson, execution_count=1)
    code.outputs = [new_output("stream", name="stdout", text="a result the learner must predict first\n")]
    return new_notebook(
        cells=[
            new_markdown_cell("# 01 Tiny"),
            code,
            new_markdown_cell("## Solutions"),
            new_code_cell("answer = 42  # the solution", execution_count=2),
        ]
    )


def write_course(source: Path, **notebooks: nbformat.NotebookNode) -> None:
    source.mkdir(exist_ok=True)
    for name, notebook in notebooks.items():
        nbformat.write(notebook, source / f"{name}.ipynb")


def learner_edits(path: Path, text: str) -> None:
    notebook = nbformat.read(path, as_version=4)
    notebook.cells[1].source = text
    nbformat.write(notebook, path)


def test_first_run_builds_cleared_notebooks_without_solutions(tmp_path: Path) -> None:
    source, folder = tmp_path / "notebooks", tmp_path / "workspace"
    write_course(source, **{"01_tiny": course_notebook(), "02_tiny": course_notebook()})
    assert sync(folder, source) == ["added 01_tiny.ipynb", "added 02_tiny.ipynb"]
    notebook = nbformat.read(folder / "01_tiny.ipynb", as_version=4)
    text = "\n".join(cell.source for cell in notebook.cells)
    assert "answer = 42" not in text and SOLUTIONS_HEADING.search(text) is None
    assert all(cell.outputs == [] for cell in notebook.cells if cell.cell_type == "code")


def test_a_rerun_keeps_the_learners_edit_and_adds_what_is_new(tmp_path: Path) -> None:
    source, folder = tmp_path / "notebooks", tmp_path / "workspace"
    write_course(source, **{"01_tiny": course_notebook()})
    sync(folder, source)
    learner_edits(folder / "01_tiny.ipynb", "x = 2  # my prediction")
    assert sync(folder, source) == [], "nothing changed in the course: nothing to do"
    write_course(source, **{"02_tiny": course_notebook()})
    assert sync(folder, source) == ["added 02_tiny.ipynb"]
    assert nbformat.read(folder / "01_tiny.ipynb", as_version=4).cells[1].source == "x = 2  # my prediction"
    (folder / "02_tiny.ipynb").unlink()  # a learner who wants a fresh copy deletes theirs
    assert sync(folder, source) == ["added 02_tiny.ipynb"]


def test_a_course_update_never_overwrites_an_edited_notebook(tmp_path: Path) -> None:
    source, folder = tmp_path / "notebooks", tmp_path / "workspace"
    write_course(source, **{"01_tiny": course_notebook(), "02_tiny": course_notebook()})
    sync(folder, source)
    learner_edits(folder / "01_tiny.ipynb", "x = 2  # my work")
    write_course(source, **{"01_tiny": course_notebook("x = 10"), "02_tiny": course_notebook("y = 10")})
    messages = sync(folder, source)
    assert messages[0].startswith("01_tiny.ipynb changed in the course and you have edited yours")
    assert messages[1] == "updated 02_tiny.ipynb to the new course version (you had not edited it)"
    assert nbformat.read(folder / "01_tiny.ipynb", as_version=4).cells[1].source == "x = 2  # my work"
    offered = folder / f"01_tiny{UPDATE_SUFFIX}.ipynb"
    assert nbformat.read(offered, as_version=4).cells[1].source == "x = 10"
    assert nbformat.read(folder / "02_tiny.ipynb", as_version=4).cells[1].source == "y = 10"
    assert sync(folder, source) == [], "an update is offered once"


def test_running_cells_is_not_an_edit(tmp_path: Path) -> None:
    source, folder = tmp_path / "notebooks", tmp_path / "workspace"
    write_course(source, **{"01_tiny": course_notebook()})
    sync(folder, source)
    notebook = nbformat.read(folder / "01_tiny.ipynb", as_version=4)
    notebook.cells[1].outputs = [new_output("stream", name="stdout", text="ran it\n")]
    notebook.cells[1].execution_count = 7
    nbformat.write(notebook, folder / "01_tiny.ipynb")
    write_course(source, **{"01_tiny": course_notebook("x = 3")})
    assert sync(folder, source) == ["updated 01_tiny.ipynb to the new course version (you had not edited it)"]


def test_main_builds_the_real_workspace_and_says_where(tmp_path: Path, capsys) -> None:
    assert workspace.main([str(tmp_path / "ws")]) == 0
    out = capsys.readouterr().out
    assert "[workspace] added 01_layers.ipynb" in out and "your edits are kept" in out
    assert len(list((tmp_path / "ws").glob("[0-9][0-9]_*.ipynb"))) == 7
    assert workspace.main([str(tmp_path / "ws")]) == 0
    assert "added" not in capsys.readouterr().out


def test_the_workspace_is_ignored_by_git() -> None:
    from tools import REPO_ROOT

    assert "/workspace/" in (REPO_ROOT / ".gitignore").read_text().splitlines()
