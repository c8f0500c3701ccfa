"""Exercise checkers, one module per notebook. They print feedback and never raise."""
from ._feedback import Feedback, check

__all__ = ["Feedback", "check"]
