"""Files the tools write out (the learners' Makefile, pyproject and tests, nbgrader's config), kept as real
files that the linters read; ``@NAME@`` marks a value filled in when the file is written."""

from __future__ import annotations

import re
from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parent
PLACEHOLDER = re.compile(r"@[A-Z_]+@")


def fill(template: str, **values: str) -> str:
    """The template file ``template`` (relative to tools/templates/) with each ``@NAME@`` replaced by
    ``values["name"]``; a placeholder left without a value is an error."""
    text = (TEMPLATE_DIR / template).read_text(encoding="utf-8")
    for name, value in values.items():
        text = text.replace(f"@{name.upper()}@", value)
    left = PLACEHOLDER.findall(text)
    if left:
        raise ValueError(f"{template}: no value for {sorted(set(left))}")
    return text
