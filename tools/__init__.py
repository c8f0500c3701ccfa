"""Maintainers' commands (not imported by the notebooks): run, time and package the course.

Run them from the repository root (each one is also a make target):

    python -m tools.run_notebooks notebooks/03_freezing.ipynb   # re-execute in place
    python -m tools.bench                                        # time the course
    python -m tools.student ../freezing-course-student          # learners' copy (outside the checkout) + .zip
    python -m tools.assignments build/nbgrader                   # nbgrader course (source/ + release/)
    python -m tools.pretrain                                     # regenerate the checkpoint

They import course_utils like any notebook does; course_utils never imports them.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]  # the tools run from a checkout: python -m tools.X in its root
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
