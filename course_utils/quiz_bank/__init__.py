"""The quiz questions, kept out of the notebooks so the answers are not in plain sight.

One JSON file per notebook (``01_layers.json`` …) maps a question id such as
``"03.frozen-vs-removed"`` to its question. A choice question has ``options`` and the index
``answer``; a prediction question (``"kind": "number"``) has the accepted range ``accept``.
The learner copy ships the same questions sealed in one file, ``bank.sealed`` (see
``course_utils.sealed``), so no answer or explanation can be read or grepped there.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from ..sealed import seal, unseal

BANK_DIR = Path(__file__).resolve().parent
SEALED_BANK = "bank.sealed"


class QuestionNotFoundError(KeyError):
    """A question id that no bank file defines."""

    def __str__(self) -> str:
        return str(self.args[0])


def bank_files(bank_dir: Path = BANK_DIR) -> list[Path]:
    """The readable bank files, one per notebook (none in the learner copy)."""
    return sorted(bank_dir.glob("[0-9][0-9]_*.json"))


def read_bank(bank_dir: Path = BANK_DIR) -> dict[str, dict[str, Any]]:
    """Every question in ``bank_dir``: the JSON files if there are any, else the sealed bank."""
    files = bank_files(bank_dir)
    if not files and (bank_dir / SEALED_BANK).exists():
        return unseal((bank_dir / SEALED_BANK).read_text(encoding="utf-8"))
    bank: dict[str, dict[str, Any]] = {}
    for path in files:
        for question_id, entry in json.loads(path.read_text(encoding="utf-8")).items():
            if question_id in bank:
                raise ValueError(f"Question id {question_id!r} is defined twice (again in {path.name}).")
            bank[question_id] = entry
    return bank


@cache
def load_bank() -> dict[str, dict[str, Any]]:
    """Every question of every notebook, keyed by id."""
    return read_bank(BANK_DIR)


def sealed_bank(bank_dir: Path = BANK_DIR) -> str:
    """The whole bank as the sealed text the learner copy ships (``bank.sealed``)."""
    return seal(read_bank(bank_dir))


def question(question_id: str) -> dict[str, Any]:
    """The bank entry for ``question_id`` (e.g. ``"03.frozen-vs-removed"``)."""
    bank = load_bank()
    if question_id not in bank:
        prefix = question_id.split(".")[0]
        known = ", ".join(q for q in bank if q.startswith(prefix + ".")) or "none"
        raise QuestionNotFoundError(f"No quiz question {question_id!r}. Questions of notebook {prefix}: {known}.")
    return bank[question_id]
