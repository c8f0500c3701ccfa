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

import inspect
import re
import shutil
import sys
import tomllib
from pathlib import Path

import nbformat

from course_utils.quiz_bank import sealed_bank
from course_utils.sealed import seal
from tools import NOTEBOOK_DIR, REPO_ROOT
from tools.kernels import LocalKernelManager

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

STUDENT_README = """\
# Freezing Layers in PyTorch — learners' copy

Seven Jupyter notebooks on how and why to freeze layers in PyTorch. Outputs are cleared and
the solutions are not included: you run every cell yourself, commit to an answer before each
quiz reveals it, and check your exercises with the built-in checkers.

## Two commands

```bash
make lab    # set up .venv (first time: a few minutes, needs the network once), then open JupyterLab
make test   # run every notebook top to bottom and report which exercises are solved
```

You need Python 3.11, 3.12 or 3.13 and `make`. `make lab` prints a URL with a token; open it, and JupyterLab
starts on `{first}`. Work through the notebooks in order. Everything runs offline on a laptop
CPU once the packages are installed.

## The notebooks

{table}

## Exercises and quizzes

- Each exercise cell ends with a checker, e.g. `ex.check_sgd_step(sgd_step)`. It prints what is
  right and what is not yet; it never crashes your notebook. Change your code and run it again.
- `make test` runs every notebook in a fresh kernel (the notebooks themselves are not changed)
  and lists each exercise as solved or not yet.
- Quizzes show only the question: pick an answer, then press *Reveal answer*. The answers and
  the checkers ship encoded in `course_utils/` so that you are not tempted to peek.

## When something goes wrong

- A cell fails after you changed it: *Kernel → Restart Kernel and Run All Cells*.
- An exercise prints "Not there yet": read the hints above that line, fix, run again.
"""

STUDENT_MAKEFILE = """\
# Freezing Layers in PyTorch (learners' copy): `make lab` to learn, `make test` to check your exercises.
# Python: PYTHON=/path/to/python3.X if you set it, else the newest supported python3.X on PATH.
SUPPORTED_PYTHONS := {supported}
PY := .venv/bin/python
IS_ROOT := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

.PHONY: setup lab test

setup: .venv/.installed

.venv/.installed: requirements.txt pyproject.toml
\t@if [ ! -x $(PY) ]; then \\
\t  supported() {{ v=$$("$$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) && \\
\t    case " $(SUPPORTED_PYTHONS) " in *" $$v "*) return 0;; esac; return 1; }}; \\
\t  if [ -n "$(PYTHON)" ]; then python="$(PYTHON)"; why="PYTHON=$(PYTHON)"; \\
\t  else why="the newest supported Python on PATH"; python=""; \\
\t    for c in $(addprefix python,$(SUPPORTED_PYTHONS)) python3; do \\
\t      if supported $$c; then python=$$c; break; fi; \\
\t    done; \\
\t  fi; \\
\t  if [ -z "$$python" ] || ! supported "$$python"; then \\
\t    echo "No supported Python: $${{python:-none found on PATH}}$${{v:+ is Python $$v}}. The course runs on Python" \\
\t      "{supported_words}: install one, or point PYTHON at one, e.g. make lab PYTHON=/path/to/python3.13" >&2; \\
\t    exit 1; \\
\t  fi; \\
\t  echo "Python $$v ($$(command -v $$python)): $$why"; \\
\t  $$python -m venv .venv; \\
\tfi
\t$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
\t$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
\ttouch $@

lab: setup  ## open the course in JupyterLab (starts on the first notebook)
\tJUPYTER_CONFIG_PATH=$(CURDIR)/jupyter-config $(PY) -m jupyter lab --notebook-dir=notebooks $(IS_ROOT)

test: setup  ## run every notebook top to bottom and report which exercises are solved
\t$(PY) -m pytest tests
""".format(
    supported=" ".join(SUPPORTED_PYTHONS),
    supported_words=f"{', '.join(SUPPORTED_PYTHONS[:0:-1])} or {SUPPORTED_PYTHONS[0]}",
)

STUDENT_PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "course-utils"
dynamic = ["version"]  # course_utils.__version__, as in the course
description = "Helpers for the course 'Freezing Layers in PyTorch' (learners' copy)"
requires-python = "{requires_python}"
dependencies = []  # pinned in requirements.txt

[tool.setuptools.packages.find]
include = ["course_utils*"]

[tool.setuptools.dynamic]
version = {{ attr = "course_utils.__version__" }}

[tool.setuptools.package-data]
course_utils = ["quiz_bank/*.sealed", "exercises/*.sealed"]

[tool.pytest.ini_options]
testpaths = ["tests"]
addopts = "-p no:cacheprovider -rA"
""".format(requires_python=COURSE_PROJECT["requires-python"])

STUDENT_TESTS = '''\
"""Your own checks (`make test`): every notebook runs top to bottom, every exercise is solved.

The notebooks run in fresh kernels, two at a time, and are not changed on disk. A notebook that
stops with an error fails `test_runs_top_to_bottom`; an exercise whose checker still prints
"Not there yet" fails `test_exercises_solved` and is named in the report.
"""
from __future__ import annotations

import os
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import KernelManager
from jupyter_core.paths import jupyter_runtime_dir
from nbclient import NotebookClient
from traitlets import default

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
CELL_TIMEOUT_S = 300


LOCAL_KERNEL_MANAGER


def run(path: Path) -> tuple[str, dict]:
    """Execute one notebook in a fresh kernel; returns (error or "", the executed notebook)."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, kernel_manager_class=LocalKernelManager, timeout=CELL_TIMEOUT_S,
                            shutdown_kernel="immediate", resources={"metadata": {"path": str(path.parent)}})
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
'''


def student_tests() -> str:
    """The learners' test file, with the same IPC kernel manager as ``tools.kernels`` (the copy has no tools/)."""
    return STUDENT_TESTS.replace("LOCAL_KERNEL_MANAGER", inspect.getsource(LocalKernelManager).rstrip())


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
    (out_dir / "tests" / "test_my_exercises.py").write_text(student_tests())
    (out_dir / "requirements.txt").write_text(student_requirements((repo_root / "requirements.txt").read_text()))
    (out_dir / "pyproject.toml").write_text(STUDENT_PYPROJECT)
    (out_dir / "Makefile").write_text(STUDENT_MAKEFILE)
    table = "\n".join(["| notebook | title |", "| --- | --- |", *rows])
    (out_dir / "README.md").write_text(STUDENT_README.format(first=written[0].name, table=table))
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
