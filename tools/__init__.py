"""Maintainers' commands (not imported by the notebooks): run, time and package the course.

    python -m tools.run_notebooks notebooks/03_freezing.ipynb   # re-execute in place
    python -m tools.bench                                        # time the course
    python -m tools.student build/student                        # learners' copy
    python -m tools.pretrain                                     # regenerate the checkpoint
"""
