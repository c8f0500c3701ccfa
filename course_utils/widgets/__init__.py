"""Interactive pieces of the course (ipywidgets), all usable headless in tests:
set ``.value`` on a control or call ``.click()`` on a button, then read the state."""
from .quiz import Quiz

__all__ = ["Quiz"]
