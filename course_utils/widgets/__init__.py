"""Interactive pieces of the course (ipywidgets), all usable headless in tests:
set ``.value`` on a control or call ``.click()`` on a button, then read the state."""

from .finetune_explorer import FineTuneExplorer
from .freeze_panel import FreezePanel
from .quiz import NumberQuiz, Quiz, quiz

__all__ = ["FineTuneExplorer", "FreezePanel", "NumberQuiz", "Quiz", "quiz"]
