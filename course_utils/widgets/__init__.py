"""Interactive pieces of the course (ipywidgets), all usable headless in tests:
set ``.value`` on a control or call ``.click()`` on a button, then read the state."""
from .freeze_panel import FreezePanel
from .quiz import Quiz

__all__ = ["FreezePanel", "Quiz"]
from .finetune_explorer import FineTuneExplorer  # noqa: E402  (05_partial_freezing)
