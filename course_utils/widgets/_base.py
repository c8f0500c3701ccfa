"""What every course widget shares: its ipywidget display and a readable plain-text fallback."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets


class CourseWidget:
    """Shows ``self.widget`` in Jupyter. Where widgets cannot run (a static notebook view, a
    terminal) the output reads ``plain_text()`` instead of the raw ``VBox(children=…`` repr."""

    widget: widgets.Widget

    def plain_text(self) -> str:
        """What a viewer that cannot run widgets shows; subclasses say what they are."""
        return "Interactive widget: run the cell to use it."

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = dict(self.widget._repr_mimebundle_(**kwargs) or {})
        bundle["text/plain"] = self.plain_text()
        return bundle
