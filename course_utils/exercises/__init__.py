"""Exercise checkers, one module per notebook. They print feedback and never raise.

In the learner copy the checker modules (which hold the expected answers) ship sealed in
``checkers.sealed``; importing them works the same (see ``course_utils.sealed``).
"""

from pathlib import Path

from ..sealed import install_sealed_modules
from ._feedback import Feedback, check, is_function

install_sealed_modules(__name__, Path(__file__).resolve().parent / "checkers.sealed")

__all__ = ["Feedback", "check", "is_function"]
