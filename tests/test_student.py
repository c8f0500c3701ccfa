"""`make student`: outputs cleared, Solutions removed, exercises kept, originals untouched."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from tools.student import NOTEBOOK_DIR, SOLUTIONS_HEADING, build, main, solutions_start, student_notebook

REAL_NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9]*.ipynb"))


def executed_code_cell(source: str, count: int) -> nbformat.NotebookNode:
    cell = new_code_cell(source, execution_count=count)
    cell.outputs = [new_output("stream", name="stdout", text="printed\n")]
    return cell


def small_notebook(solutions_heading: str = "## Solutions") -> nbformat.NotebookNode:
    notebook = new_notebook(
        cells=[
            new_markdown_cell("# 01 Tiny\n\n## Learning objectives\n\n- read the solutions only at the end"),
            executed_code_cell("import torch", 1),
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
    notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    return notebook


def all_source(notebook: nbformat.NotebookNode) -> str:
    return "\n".join(cell.source for cell in notebook.cells)


def test_solutions_removed_outputs_cleared_exercises_kept() -> None:
    original = small_notebook()
    student = student_notebook(original)
    assert "answer = 42" not in all_source(student) and "answer2" not in all_source(student)
    assert "YOUR CODE HERE" in all_source(student) and "Key takeaways" in all_source(student)
    code = [c for c in student.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == [None, None]
    assert all(c.outputs == [] for c in code)
    assert "widgets" not in student.metadata
    assert student.metadata["kernelspec"]["name"] == "python3"
    nbformat.validate(student)
    # the original is not modified
    assert len(original.cells) == 9 and original.cells[1].outputs and "widgets" in original.metadata


def test_a_mention_before_the_takeaways_is_not_the_start() -> None:
    notebook = small_notebook()
    notebook.cells.insert(2, new_markdown_cell("## Where the solutions are\n\nAt the end."))
    # "Where the solutions are" is a heading naming solutions, but it comes before Key takeaways
    index, offset = solutions_start(notebook.cells)
    assert notebook.cells[index].source.startswith("## Solutions") and offset == 0


def test_heading_sharing_a_cell_with_the_takeaways() -> None:
    notebook = small_notebook()
    notebook.cells[4].source += "\n\nNext: notebook 02.\n\n## Solutions\n\nRun these after trying."
    del notebook.cells[5]
    student = student_notebook(notebook)
    text = all_source(student)
    assert "Next: notebook 02." in text and "Run these after trying" not in text and "answer = 42" not in text


@pytest.mark.parametrize("heading", ["## Solutions", "# 8. Solutions", "### Solutions to the exercises"])
def test_heading_variants(heading: str) -> None:
    assert "answer = 42" not in all_source(student_notebook(small_notebook(heading)))


def test_a_notebook_without_solutions_is_an_error() -> None:
    notebook = small_notebook("## Appendix")
    with pytest.raises(ValueError, match="Solutions"):
        student_notebook(notebook, "tiny.ipynb")


def test_build_writes_notebooks_and_a_readme(tmp_path: Path) -> None:
    source = tmp_path / "notebooks"
    source.mkdir()
    nbformat.write(small_notebook(), source / "01_tiny.ipynb")
    nbformat.write(small_notebook(), source / "02_tiny.ipynb")
    nbformat.write(small_notebook(), source / "scratch.ipynb")  # not numbered: not a course notebook
    (source / "figure.png").write_bytes(b"png")
    before = (source / "01_tiny.ipynb").read_bytes()
    out = tmp_path / "student"
    written = build(out, source)
    assert [p.name for p in written] == ["01_tiny.ipynb", "02_tiny.ipynb"]
    assert (out / "figure.png").read_bytes() == b"png" and not (out / "scratch.ipynb").exists()
    readme = (out / "README.md").read_text()
    assert "01_tiny.ipynb" in readme and "jupyter lab" in readme and "course_utils" not in readme
    assert (source / "01_tiny.ipynb").read_bytes() == before
    build(out, source)  # rebuilding over an existing copy works


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
    assert all(c.outputs == [] and c.execution_count is None for c in student.cells if c.cell_type == "code")
    nbformat.validate(student)


def test_real_build_leaves_the_committed_notebooks_untouched(tmp_path: Path) -> None:
    if not REAL_NOTEBOOKS:
        pytest.skip("no notebooks yet")
    before = {p: p.read_bytes() for p in REAL_NOTEBOOKS}
    written = build(tmp_path / "student")
    assert [p.name for p in written] == [p.name for p in REAL_NOTEBOOKS]
    assert all(p.read_bytes() == data for p, data in before.items())
