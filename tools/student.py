"""`make student`: the classroom copy of the course.

    python -m tools.student build/student

Copies every notebook with outputs and execution counts cleared and the Solutions section
removed (from the Markdown heading that names "Solutions" to the end of the notebook), and
writes a short README that tells learners how to open them. The committed notebooks are
only read, never changed.
"""
from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import nbformat

from course_utils.paths import REPO_ROOT

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
SOLUTIONS_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+.*\bSolutions\b", re.IGNORECASE | re.MULTILINE)
TAKEAWAYS_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+.*\bKey takeaways\b", re.IGNORECASE | re.MULTILINE)
SOLUTIONS_NOTE = (
    "*This is the student copy: the worked solutions are not included. "
    "Ask your instructor for them once you have tried the exercises.*"
)
SKIPPED_NAMES = {".ipynb_checkpoints", "__pycache__"}

STUDENT_README = """\
# Freezing Layers in PyTorch — student copy

These are the course notebooks with their outputs cleared and the solutions removed:
you run every cell yourself and commit to an answer before each quiz reveals it.

## How to start

1. In the course folder, run `make lab` once (it sets up the Python environment the first
   time, which takes a few minutes, then opens JupyterLab and prints a URL with a token).
2. Stop it with Ctrl-C and open this folder instead:

   ```bash
   .venv/bin/python -m jupyter lab --notebook-dir={folder} --no-browser
   ```

   (add `--allow-root` if you work as root, e.g. in a container), then open the printed URL.
3. Work through the notebooks in order, starting with `{first}`. In each one, use
   *Run → Run All Cells* once, or run the cells one by one with Shift-Enter.

Everything runs offline on a laptop CPU; a GPU is used when present.

## The notebooks

{table}

## When something goes wrong

- A cell fails after you changed it: *Kernel → Restart Kernel and Run All Cells*.
- An exercise cell prints "Not there yet": read the hints, change your code, run it again.
  The checker never crashes your notebook.
"""


def _heading_offset(cell, pattern: re.Pattern) -> int | None:
    if cell.cell_type != "markdown":
        return None
    match = pattern.search(cell.source)
    return None if match is None else match.start()


def solutions_start(cells: list) -> tuple[int, int] | None:
    """(cell index, character offset) where the Solutions section begins, or None.

    It is the first Markdown heading naming "Solutions" after the Key takeaways heading
    (the skeleton puts Solutions last), or the first one at all when there is no Key
    takeaways heading. Sub-headings like "### Solution to exercise 1" stay inside it.
    """
    takeaways = next((i for i, c in enumerate(cells) if _heading_offset(c, TAKEAWAYS_HEADING) is not None), 0)
    for index in range(takeaways, len(cells)):
        offset = _heading_offset(cells[index], SOLUTIONS_HEADING)
        if offset is not None:
            return index, offset
    return None


def student_notebook(notebook: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    """A copy of ``notebook`` without outputs, execution counts, widget state or Solutions."""
    notebook = nbformat.from_dict(notebook)  # a deep copy: the original is untouched
    start = solutions_start(notebook.cells)
    if start is None:
        raise ValueError(f"{name} has no Markdown heading naming 'Solutions'; the course skeleton requires one.")
    index, offset = start
    kept = notebook.cells[:index]
    before = notebook.cells[index].source[:offset].rstrip()
    if before:  # the heading shares a cell with text that is not part of the solutions
        notebook.cells[index].source = before
        kept.append(notebook.cells[index])
    kept.append(nbformat.v4.new_markdown_cell(SOLUTIONS_NOTE))
    for cell in kept:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    notebook.cells = kept
    notebook.metadata.pop("widgets", None)  # saved widget state would show stale widgets
    return notebook


def _first_heading(notebook: nbformat.NotebookNode) -> str:
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return ""


def build(out_dir: Path, source_dir: Path = NOTEBOOK_DIR) -> list[Path]:
    """Write the student copy of every notebook in ``source_dir`` to ``out_dir``; returns the notebooks written."""
    source_dir, out_dir = Path(source_dir), Path(out_dir)
    paths = sorted(source_dir.glob("[0-9]*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no numbered notebooks (like 01_layers.ipynb) in {source_dir}")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    for extra in source_dir.iterdir():  # images or small files the notebooks refer to
        if extra.suffix == ".ipynb" or extra.name in SKIPPED_NAMES or extra.name.startswith("."):
            continue
        copy = shutil.copytree if extra.is_dir() else shutil.copy2
        copy(extra, out_dir / extra.name)
    written, rows = [], []
    for path in paths:
        notebook = student_notebook(nbformat.read(path, as_version=4), path.name)
        target = out_dir / path.name
        nbformat.write(notebook, target)
        written.append(target)
        rows.append(f"| `{path.name}` | {_first_heading(notebook)} |")
    try:
        folder = out_dir.resolve().relative_to(REPO_ROOT)
    except ValueError:
        folder = out_dir
    table = "\n".join(["| notebook | title |", "| --- | --- |", *rows])
    (out_dir / "README.md").write_text(STUDENT_README.format(folder=folder, first=paths[0].name, table=table))
    return written


def main(argv: list[str], source_dir: Path = NOTEBOOK_DIR) -> int:
    out_dir = Path(argv[0]) if argv else REPO_ROOT / "build" / "student"
    try:
        written = build(out_dir, source_dir)
    except (ValueError, FileNotFoundError) as error:
        print(f"student copy not built: {error}", file=sys.stderr)
        return 1
    for path in written:
        print(f"  {path.name}")
    print(f"{len(written)} student notebooks and README.md written to {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
