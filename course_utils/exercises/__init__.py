"""Exercise checkers, one module per notebook. They print feedback and never raise."""
from ._feedback import Feedback, check, is_function

__all__ = ["Feedback", "check", "is_function"]
