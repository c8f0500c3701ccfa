"""`make lab`'s workspace: the learner's own notebooks, cleared, without solutions, edits kept across runs.

    python -m tools.workspace [FOLDER]      # default: workspace/ (git-ignored)

The notebooks are built as the learners' copy builds them (``tools.student.student_notebook``:
outputs, widget state and the Solutions section removed). The executed notebooks in ``notebooks/``
stay as they are, for reading on GitHub, for instructors (``make teacher``) and for nbval.

Run again, it never overwrites the learner's work silently:

- a notebook the workspace lacks (new in the course, or deleted by the learner) is added;
- a notebook whose course version changed since it was added is replaced only where the learner
  has not edited a cell since; an edited one stays, and the new version is written beside it as
  ``NAME (course update).ipynb``, with a message;
- a notebook that did not change in the course is left alone, edited or not.

``.course-versions.json`` in the workspace records, per notebook, the cell sources it was built with.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import nbformat

from tools import NOTEBOOK_DIR, REPO_ROOT
from tools.student import student_notebook

DEFAULT_FOLDER = REPO_ROOT / "workspace"
VERSIONS_FILE = ".course-versions.json"
UPDATE_SUFFIX = " (course update)"


def cell_sources(notebook: nbformat.NotebookNode) -> str:
    """A fingerprint of what a learner edits: each cell's type and source (not outputs or metadata)."""
    text = json.dumps([[cell.cell_type, cell.source] for cell in notebook.cells])
    return hashlib.sha256(text.encode()).hexdigest()


def sync(folder: Path = DEFAULT_FOLDER, source_dir: Path = NOTEBOOK_DIR) -> list[str]:
    """Create or update the workspace in ``folder``; returns one message per change (empty: nothing to do)."""
    folder.mkdir(parents=True, exist_ok=True)
    versions_path = folder / VERSIONS_FILE
    versions: dict[str, str] = json.loads(versions_path.read_text()) if versions_path.exists() else {}
    messages = []
    for path in sorted(source_dir.glob("[0-9][0-9]_*.ipynb")):
        course = student_notebook(nbformat.read(path, as_version=4), path.name)
        new_version = cell_sources(course)
        mine = folder / path.name
        if not mine.exists():
            nbformat.write(course, mine)
            messages.append(f"added {path.name}")
        elif versions.get(path.name) == new_version:
            continue  # the course did not change: the learner's file is theirs
        elif cell_sources(nbformat.read(mine, as_version=4)) == versions.get(path.name):
            nbformat.write(course, mine)
            messages.append(f"updated {path.name} to the new course version (you had not edited it)")
        else:
            beside = folder / f"{path.stem}{UPDATE_SUFFIX}.ipynb"
            nbformat.write(course, beside)
            messages.append(
                f"{path.name} changed in the course and you have edited yours: yours is kept, the new version "
                f"is {beside.name} beside it"
            )
        versions[path.name] = new_version
    versions_path.write_text(json.dumps(versions, indent=1, sort_keys=True) + "\n")
    return messages


def main(argv: list[str]) -> int:
    folder = Path(argv[0]).resolve() if argv else DEFAULT_FOLDER
    try:
        messages = sync(folder)
    except (ValueError, OSError) as error:
        print(f"workspace not prepared: {error}", file=sys.stderr)
        return 1
    for message in messages:
        print(f"[workspace] {message}")
    shown = folder.relative_to(REPO_ROOT) if folder.is_relative_to(REPO_ROOT) else folder
    print(f"[workspace] your notebooks: {shown}/ (outputs cleared, no solutions; your edits are kept)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
