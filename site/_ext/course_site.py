"""Sphinx extension of the course's website: alt texts on figures, the Solutions section folded away.

tools/site.py prepares the notebooks: it stores each figure's alt text in its cell's metadata
(``course_site.alt``, one per figure, from site/alt_text.json) and puts the label
``course-solutions-<notebook>`` on the Solutions heading. Here, after parsing:

- every figure of a cell gets its alt text; a figure left without one is a build warning
  (an error under ``sphinx-build -W``, as ``make site`` runs it);
- the Solutions section's content goes into a ``<details>`` toggle ("Show solutions") with the
  class ``no-search``, which Sphinx's search index skips: the solutions are on the page for
  whoever asks for them, but no search finds them and nothing shows them by default.
"""

from __future__ import annotations

from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.transforms import SphinxTransform
from sphinx.util import logging

logger = logging.getLogger(__name__)
SOLUTIONS_LABEL_PREFIX = "course-solutions-"
SUMMARY = "Show solutions (try the exercises first)"


class solutions_toggle(nodes.General, nodes.Element):  # noqa: N801 (docutils names nodes in lower case)
    """The folded Solutions section: rendered as <details>, skipped by the search index."""


def visit_solutions_toggle(translator: Any, node: solutions_toggle) -> None:
    translator.body.append(f'<details class="{" ".join(node["classes"])}"><summary>{SUMMARY}</summary>\n')


def depart_solutions_toggle(translator: Any, node: solutions_toggle) -> None:
    translator.body.append("</details>\n")


class FigureAltText(SphinxTransform):
    """Give every figure of a notebook cell the alt text tools/site.py stored in the cell's metadata."""

    default_priority = 500

    def apply(self, **kwargs: Any) -> None:
        for cell in self.document.findall(nodes.container):
            if cell.get("nb_element") != "cell_code":
                continue
            texts = cell.get("cell_metadata", {}).get("course_site", {}).get("alt", [])
            images = list(cell.findall(nodes.image))
            if len(texts) != len(images):
                logger.warning(
                    f"cell {cell.get('cell_index')}: {len(images)} figure(s), {len(texts)} alt text(s)", location=cell
                )
            for image, text in zip(images, texts):
                image["alt"] = text
        for image in self.document.findall(nodes.image):
            if not str(image.get("alt", "")).strip():
                logger.warning(f"figure without alt text: {image.get('uri')}", location=image)


class FoldSolutions(SphinxTransform):
    """Move the content of the labelled Solutions section (and anything after it) into a ``solutions_toggle``."""

    default_priority = 500  # after docutils has moved the label onto the section (PropagateTargets, 260)

    def apply(self, **kwargs: Any) -> None:
        sections = [
            s
            for s in self.document.findall(nodes.section)
            if any(name.startswith(SOLUTIONS_LABEL_PREFIX) for name in s["names"])
        ]
        if not sections:
            return
        section = sections[0]
        toggle = solutions_toggle(classes=["course-solutions", "no-search"])
        content = [child for child in section.children if not isinstance(child, nodes.title)]
        later = section.parent.children[section.parent.index(section) + 1 :]
        for child in [*content, *later]:
            child.parent.remove(child)
            toggle += child
        section += toggle


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_node(solutions_toggle, html=(visit_solutions_toggle, depart_solutions_toggle))
    app.add_transform(FigureAltText)
    app.add_transform(FoldSolutions)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
