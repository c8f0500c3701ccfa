"""`make student`: the learners' copy of the course, a folder (and a .zip) that stands on its own.

    python -m tools.student [FOLDER]      # default: ../freezing-course-student, beside the checkout

The folder holds everything a learner needs and nothing that spoils the exercises:

- ``notebooks/``: every notebook with outputs, execution counts and widget state cleared,
  the Solutions section removed and the ``# NBVAL_...`` test markers stripped;
- ``course_utils/``: the helpers, with the quiz answers and the exercise checkers *sealed*
  (``course_utils.sealed``: compressed and encoded, so no answer can be read or grepped);
- ``data/``, ``examples/`` (scripts a notebook runs), ``requirements.txt``, ``pyproject.toml``,
  the JupyterLab settings (``jupyter-config/``);
- a ``README.md`` and a ``Makefile`` with the same two commands as the course:
  ``make lab`` and ``make test`` (which runs every notebook and reports each exercise).

The folder must lie outside the teacher's checkout, so learners never work next to the executed
notebooks with their solutions. The committed notebooks are only read, never changed.
"""

from __future__ import annotations

import re
import shutil
import sys
import tomllib
from pathlib import Path

import nbformat

from course_utils.quiz_bank import sealed_bank
from course_utils.sealed import seal
from tools import NOTEBOOK_DIR, REPO_ROOT
from tools.templates import fill

DEFAULT_FOLDER = REPO_ROOT.parent / "freezing-course-student"
MARKER = ".course-student-copy"  # lets a rebuild replace an earlier copy, and nothing else
SOLUTIONS_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+.*\bSolutions\b", re.IGNORECASE | re.MULTILINE)
TAKEAWAYS_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+.*\bKey takeaways\b", re.IGNORECASE | re.MULTILINE)
NBVAL_MARKER = re.compile(r"^[ \t]*#[ \t]*NBVAL_\w+[ \t]*\n?", re.MULTILINE)
SOLUTIONS_NOTE = (
    "*This is the learners' copy: the worked solutions are not included. "
    "Ask your instructor for them once you have tried the exercises.*"
)
SKIPPED_NAMES = {".ipynb_checkpoints", "__pycache__"}
# Checker modules hold the expected answers: they ship sealed. These stay readable (no answers in them).
OPEN_EXERCISE_MODULES = {"__init__.py", "_feedback.py"}
SHARED_FOLDERS = ("examples",)
DROPPED_REQUIREMENTS = ("playwright", "nbval")  # the maintainers' browser and notebook tests
COURSE_PROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
# The learners' Makefile looks for these (newest first); the course's scripts/select_python.sh names the same.
PYTHON_CLASSIFIER = re.compile(r"Programming Language :: Python :: (3\.\d+)")
SUPPORTED_PYTHONS = tuple(
    sorted(
        (m.group(1) for c in COURSE_PROJECT["classifiers"] if (m := PYTHON_CLASSIFIER.fullmatch(c))),
        key=lambda version: int(version.split(".")[1]),
        reverse=True,
    )
)

STUDENT_MAKEFILE = fill(
    "student/Makefile",
    supported_pythons=" ".join(SUPPORTED_PYTHONS),
    supported_pythons_words=f"{', '.join(SUPPORTED_PYTHONS[:0:-1])} or {SUPPORTED_PYTHONS[0]}",
)
STUDENT_PYPROJECT = fill("student/pyproject.template.toml", requires_python=COURSE_PROJECT["requires-python"])


# ---------------------------------------------------------------------------------- notebooks


def _heading_offset(cell: nbformat.NotebookNode, pattern: re.Pattern) -> int | None:
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


def clear_cell(cell: nbformat.NotebookNode) -> None:
    """Make ``cell`` as a learner should first see it: no outputs, execution count or timing, no NBVAL
    marker or tag. The learners' copy and the nbgrader source both use it."""
    cell.metadata.pop("execution", None)
    tags = [t for t in cell.metadata.get("tags", []) if not t.lower().startswith("nbval")]
    if tags:
        cell.metadata["tags"] = tags
    else:
        cell.metadata.pop("tags", None)
    if cell.cell_type == "code":
        cell.source = NBVAL_MARKER.sub("", cell.source)
        cell.outputs = []
        cell.execution_count = None


def student_notebook(notebook: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    """A copy of ``notebook`` without outputs, execution counts, widget state, NBVAL markers or Solutions."""
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
        clear_cell(cell)
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


def write_notebooks(out_dir: Path, source_dir: Path = NOTEBOOK_DIR) -> tuple[list[Path], list[str]]:
    """The learner notebooks of ``source_dir`` (and the files beside them) in ``out_dir``; (paths, README rows)."""
    paths = sorted(Path(source_dir).glob("[0-9]*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no numbered notebooks (like 01_layers.ipynb) in {source_dir}")
    out_dir.mkdir(parents=True)
    for extra in Path(source_dir).iterdir():  # images or small files the notebooks refer to
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
    return written, rows


# ---------------------------------------------------------------------------------- the package


def write_course_utils(out_dir: Path, package: Path = REPO_ROOT / "course_utils") -> None:
    """Copy ``course_utils`` with the quiz bank and the checker modules sealed."""
    ignore = shutil.ignore_patterns(*SKIPPED_NAMES, "*.pyc")
    shutil.copytree(package, out_dir, ignore=ignore)
    bank = out_dir / "quiz_bank"
    for path in bank.glob("*.json"):
        path.unlink()
    (bank / "bank.sealed").write_text(sealed_bank(package / "quiz_bank"), encoding="utf-8")
    exercises = out_dir / "exercises"
    checkers = {}
    for path in sorted(exercises.glob("*.py")):
        if path.name not in OPEN_EXERCISE_MODULES:
            checkers[path.stem] = path.read_text(encoding="utf-8")
            path.unlink()
    (exercises / "checkers.sealed").write_text(seal(checkers), encoding="utf-8")


def student_requirements(text: str) -> str:
    """The course's pins without the maintainers' test tools."""
    lines = [line for line in text.splitlines() if not line.strip().lower().startswith(DROPPED_REQUIREMENTS)]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------- the folder


def inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def prepare(out_dir: Path, repo_root: Path = REPO_ROOT) -> None:
    """Refuse a folder inside the checkout or one that is not an earlier copy; clear an earlier copy."""
    if inside(out_dir, repo_root):
        raise ValueError(
            f"{out_dir} is inside the course checkout ({repo_root}); the learners' copy must stand "
            f"outside it, e.g. {DEFAULT_FOLDER}."
        )
    if out_dir.exists():
        if any(out_dir.iterdir()) and not (out_dir / MARKER).exists():
            raise ValueError(f"{out_dir} exists and is not an earlier learners' copy: choose another folder.")
        shutil.rmtree(out_dir)


def build(out_dir: Path, source_dir: Path = NOTEBOOK_DIR, repo_root: Path = REPO_ROOT) -> list[Path]:
    """Write the learners' copy to ``out_dir`` and ``out_dir``.zip; returns the notebooks written."""
    out_dir = Path(out_dir)
    prepare(out_dir, repo_root)
    written, rows = write_notebooks(out_dir / "notebooks", source_dir)
    write_course_utils(out_dir / "course_utils", repo_root / "course_utils")
    shutil.copytree(repo_root / "data", out_dir / "data", ignore=shutil.ignore_patterns(*SKIPPED_NAMES))
    shutil.copytree(repo_root / "jupyter-config", out_dir / "jupyter-config")
    for folder in SHARED_FOLDERS:  # scripts the notebooks run or point to
        if (repo_root / folder).is_dir():
            shutil.copytree(repo_root / folder, out_dir / folder, ignore=shutil.ignore_patterns(*SKIPPED_NAMES))
    (out_dir / "tests").mkdir()
    (out_dir / "tests" / "test_my_exercises.py").write_text(fill("student/test_my_exercises.py"))
    shutil.copy2(repo_root / "tools" / "kernels.py", out_dir / "tests" / "kernels.py")  # the copy has no tools/
    (out_dir / "requirements.txt").write_text(student_requirements((repo_root / "requirements.txt").read_text()))
    (out_dir / "pyproject.toml").write_text(STUDENT_PYPROJECT)
    (out_dir / "Makefile").write_text(STUDENT_MAKEFILE)
    table = "\n".join(["| notebook | title |", "| --- | --- |", *rows])
    (out_dir / "README.md").write_text(fill("student/README.md", first_notebook=written[0].name, notebook_table=table))
    (out_dir / MARKER).write_text("Built by `make student` from the course checkout; a rebuild replaces it.\n")
    shutil.make_archive(str(out_dir), "zip", root_dir=out_dir.parent, base_dir=out_dir.name)
    return written


def main(argv: list[str], source_dir: Path = NOTEBOOK_DIR, repo_root: Path = REPO_ROOT) -> int:
    out_dir = Path(argv[0]) if argv else DEFAULT_FOLDER
    try:
        written = build(out_dir, source_dir, repo_root)
    except (ValueError, FileNotFoundError) as error:
        print(f"learners' copy not built: {error}", file=sys.stderr)
        return 1
    for path in written:
        print(f"  notebooks/{path.name}")
    print(
        f"learners' copy written to {out_dir} (and {out_dir}.zip): {len(written)} notebooks, course_utils "
        "with sealed answers, data, README.md, Makefile (make lab, make test)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
