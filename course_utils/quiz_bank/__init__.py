"""The quiz questions, kept out of the notebooks so the answers are not in plain sight.

One JSON file per notebook (``01_layers.json`` …) maps a question id such as
``"03.frozen-vs-removed"`` to its question. A choice question has ``options`` and the index
``answer``; a prediction question (``"kind": "number"``) has the accepted range ``accept``.
"""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

BANK_DIR = Path(__file__).resolve().parent


class QuestionNotFoundError(KeyError):
    """A question id that no bank file defines."""

    def __str__(self) -> str:
        return str(self.args[0])


@cache
def load_bank() -> dict[str, dict[str, Any]]:
    """Every question of every notebook, keyed by id."""
    bank: dict[str, dict[str, Any]] = {}
    for path in sorted(BANK_DIR.glob("[0-9][0-9]_*.json")):
        for question_id, entry in json.loads(path.read_text(encoding="utf-8")).items():
            if question_id in bank:
                raise ValueError(f"Question id {question_id!r} is defined twice (again in {path.name}).")
            bank[question_id] = entry
    return bank


def question(question_id: str) -> dict[str, Any]:
    """The bank entry for ``question_id`` (e.g. ``"03.frozen-vs-removed"``)."""
    bank = load_bank()
    if question_id not in bank:
        prefix = question_id.split(".")[0]
        known = ", ".join(q for q in bank if q.startswith(prefix + ".")) or "none"
        raise QuestionNotFoundError(f"No quiz question {question_id!r}. Questions of notebook {prefix}: {known}.")
    return bank[question_id]
