"""Every measured number that README.md and docs/INSTRUCTOR.md quote is one the repository shows.

A *quoted quantity* is a number followed by a unit of something measured: ``%``, ``×`` (or ``x``
written right after the number), ``s``/``ms``/``seconds``, ``points``. Ranges and spreads
(``85.4–89.7%``, ``92.4 ± 1.0 %``) count every number in them. A dimension such as ``5×5`` is
not a ratio and is skipped.

A quoted quantity is *found* when the committed notebook outputs (stream text, text/plain,
text/markdown, text/html of every code cell in ``notebooks/``) or ``docs/benchmark.md``
(written by ``make bench``) contain

1. the same number with the same unit (``×`` and ``x`` are one unit, as are ``s`` and
   ``seconds``, ``points`` and ``pts``), or
2. for a number with at least three significant digits (``93.5``, ``2.48``, ``104``), the same
   number on its own, e.g. in a table whose header gives the unit.

"The same number" means the same digits *and the same rounding*: ``2.5×`` is not found in an
output that prints ``2.48×``, and ``100 s`` is not found in ``100.4 s``. Round in the notebook
(or the report), not in the docs, so that a reader can find the number. Thousands separators
and signs are ignored (``24,949`` = ``24949``; ``−0.8`` = ``0.8``).

Numbers that are not measurements (a budget, a time estimate for a human) are listed in
``NOT_MEASURED`` with the reason; keep it short.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "docs/INSTRUCTOR.md")
REPORT = "docs/benchmark.md"

# Not measurements: (document, exact phrase around the number, why). A quoted quantity inside one
# of these phrases is not checked. Every entry must still occur in its document (tested below).
NOT_MEASURED: tuple[tuple[str, str, str], ...] = (
    ("README.md", "a 10× lower learning rate", "a setting of examples/finetune.py, not a result"),
    ("docs/INSTRUCTOR.md", "debate a 10 % difference", "advice on timing noise, not a result"),
    ("docs/INSTRUCTOR.md", "2 points: the course's own checker", "grading points of the nbgrader kit"),
    ("docs/INSTRUCTOR.md", "42 points for the course", "grading points of the nbgrader kit"),
)

UNITS = {  # spelling in a document -> canonical unit
    "%": "%",
    "×": "×",
    "x": "×",
    "s": "s",
    "sec": "s",
    "seconds": "s",
    "second": "s",
    "ms": "ms",
    "points": "points",
    "point": "points",
    "pts": "points",
}
_NUMBER = r"\d[\d,]*(?:\.\d+)?"
_UNIT = r"(?:%|×|(?<=\d)x|ms|seconds?|sec|s|points?|pts)"
QUANTITY = re.compile(
    rf"(?<![\w.,])(?P<first>{_NUMBER})"
    rf"(?:\s*(?:–|—|-|to|±)\s*(?P<second>{_NUMBER}))?"
    rf"\s?(?P<unit>{_UNIT})(?![\w])"
    r"(?!\s*\d)"  # 5×5, 28 × 28: a dimension, not a ratio
)


@dataclass(frozen=True)
class Quoted:
    """One number a document quotes, with its unit and where it stands."""

    number: str  # normalised: no sign, no thousands separators
    unit: str  # canonical unit
    line: int
    context: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.number} {self.unit} in “{self.context}”"


def normalise(number: str) -> str:
    """``'24,949'`` -> ``'24949'``; signs are dropped by the caller's pattern."""
    return number.replace(",", "")


def significant_digits(number: str) -> int:
    """``'93.5'`` -> 3, ``'0.43'`` -> 2, ``'104'`` -> 3, ``'100'`` -> 1 (a round number proves little)."""
    digits = normalise(number)
    if "." in digits:
        return len(digits.replace(".", "").lstrip("0"))
    return len(digits.strip("0"))


def quoted_quantities(text: str, not_measured: Iterable[str] = ()) -> list[Quoted]:
    """Every quoted quantity of a document, except those inside a ``not_measured`` phrase."""
    skipped: list[range] = []
    for phrase in not_measured:
        skipped += [range(m.start(), m.end()) for m in re.finditer(re.escape(phrase), text)]
    found = []
    for match in QUANTITY.finditer(text):
        if any(match.start() in span for span in skipped):
            continue
        line = text.count("\n", 0, match.start()) + 1
        start, end = text.rfind("\n", 0, match.start()) + 1, text.find("\n", match.end())
        context = text[max(start, match.start() - 60) : (end if end >= 0 else len(text))][:140].strip()
        unit = UNITS[match["unit"]]
        for number in filter(None, (match["first"], match["second"])):
            found.append(Quoted(normalise(number), unit, line, context))
    return found


def source_text(paths: Iterable[Path]) -> str:
    """The text a quoted number may come from: notebook outputs and Markdown reports, separators removed."""
    parts = []
    for path in paths:
        if path.suffix == ".ipynb":
            for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
                for output in cell.get("outputs", []):
                    parts.append("".join(output.get("text", "")))
                    data = output.get("data", {})
                    for mime in ("text/plain", "text/markdown", "text/html"):
                        parts.append("".join(data.get(mime, "")))
        else:
            parts.append(path.read_text(encoding="utf-8"))
    return re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", "\n".join(parts))


def is_found(quoted: Quoted, sources: str) -> bool:
    """Rule 1 (same number, same unit) or rule 2 (same number alone, if it has >= 3 significant digits)."""
    number = rf"(?<![\d.]){re.escape(quoted.number)}(?!\d|\.\d)"
    spellings = "|".join(re.escape(s) for s, unit in UNITS.items() if unit == quoted.unit)
    if re.search(rf"{number}\s?(?:{spellings})(?![a-zA-Z])", sources):
        return True
    return significant_digits(quoted.number) >= 3 and re.search(number, sources) is not None


def missing_numbers(doc_text: str, sources: str, not_measured: Iterable[str] = ()) -> list[Quoted]:
    """The quoted quantities of ``doc_text`` that ``sources`` do not show."""
    return [q for q in quoted_quantities(doc_text, not_measured) if not is_found(q, sources)]


# ---- the extractor and the matcher, on made-up documents ------------------------------------
FAKE_OUTPUTS = "frozen backbone 2.48× faster | total 104.3 s | 93.5 | reaches 61% | 7.9 s | 24,949 | 100.4 s\n"


def test_extracts_numbers_next_to_measured_units_only() -> None:
    doc = (
        "The frozen step is 2.48× faster (7.7x with caching), took 7.9 s and 18.0 ms, reached 93.5 % "
        "and +3.0 points; 24,949 parameters.\nA 5×5 filter on 28 × 28 images, Python 3.11, 3 seeds, "
        "about 3 min; block 85.4–89.7%, 92.4 ± 1.0 %."
    )
    got = [(q.number, q.unit, q.line) for q in quoted_quantities(doc)]
    assert got == [
        ("2.48", "×", 1),
        ("7.7", "×", 1),
        ("7.9", "s", 1),
        ("18.0", "ms", 1),
        ("93.5", "%", 1),
        ("3.0", "points", 1),
        ("85.4", "%", 2),
        ("89.7", "%", 2),
        ("92.4", "%", 2),
        ("1.0", "%", 2),
    ]


def test_a_number_that_no_output_shows_is_reported() -> None:
    doc = "Freezing is 3× faster per step and the course runs in 104.3 s."
    missing = missing_numbers(doc, source_text_of(FAKE_OUTPUTS))
    assert [(q.number, q.unit) for q in missing] == [("3", "×")]
    assert "3 ×" in str(missing[0]) and "line 1" in str(missing[0])


def test_same_rounding_is_required() -> None:
    sources = source_text_of(FAKE_OUTPUTS)
    assert not missing_numbers("2.48x faster", sources)  # × and x are one unit
    assert [q.number for q in missing_numbers("2.5× faster", sources)] == ["2.5"]  # the output says 2.48×
    assert [q.number for q in missing_numbers("about 100 s", sources)] == ["100"]  # the output says 100.4 s
    assert [q.number for q in missing_numbers("24,949 %", sources)] == [] and missing_numbers("2,494 %", sources)


def test_short_numbers_need_their_unit_long_ones_may_stand_alone() -> None:
    sources = source_text_of("| 7 | 93.5 | 61 |\nreaches 61%\n")
    assert [q.number for q in missing_numbers("it took 7 s", sources)] == ["7"]  # a bare 7 proves nothing
    assert not missing_numbers("it reached 93.5%", sources)  # 3 significant digits, from a table cell
    assert not missing_numbers("it reached 61 %", sources) and missing_numbers("it took 61 s", sources)
    assert missing_numbers("not 100×", source_text_of("| 100 | 93.5 |"))  # a round 100 in a table proves nothing
    assert [significant_digits(n) for n in ("93.5", "0.43", "104", "100", "24,949")] == [3, 2, 3, 1, 5]


def test_not_measured_phrases_are_skipped() -> None:
    doc = "Do not debate a 10 % difference; the frozen step was 10 % faster."
    missing = missing_numbers(doc, "", not_measured=["debate a 10 % difference"])
    assert [(q.number, q.context[:24]) for q in missing] == [("10", "Do not debate a 10 % dif")]


def source_text_of(text: str) -> str:
    return re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", text)


def test_source_text_reads_notebook_outputs_not_prose(tmp_path: Path) -> None:
    notebook = {
        "cells": [
            {"cell_type": "markdown", "source": ["prose says 55.5%"]},
            {
                "cell_type": "code",
                "source": ["print(x)"],
                "outputs": [
                    {"output_type": "stream", "name": "stdout", "text": ["speed-up 2.48×\n"]},
                    {"output_type": "display_data", "data": {"text/markdown": ["| 1 | 60.5 ± 6.5 |"]}},
                ],
            },
        ]
    }
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(notebook))
    sources = source_text([path])
    assert "2.48×" in sources and "60.5" in sources and "55.5" not in sources


# ---- the real documents ---------------------------------------------------------------------
def _sources() -> str:
    report = ROOT / REPORT
    assert report.exists(), f"{REPORT} is missing: run `make bench` and commit the report"
    return source_text([*sorted((ROOT / "notebooks").glob("*.ipynb")), report])


@pytest.mark.parametrize("doc", DOCS)
def test_docs_quote_only_numbers_the_repository_shows(doc: str) -> None:
    not_measured = [phrase for name, phrase, _why in NOT_MEASURED if name == doc]
    missing = missing_numbers((ROOT / doc).read_text(encoding="utf-8"), _sources(), not_measured)
    assert not missing, (
        f"{doc} quotes numbers that no committed notebook output and not {REPORT} shows "
        "(same number, same rounding):\n  "
        + "\n  ".join(map(str, missing))
        + "\nQuote what an output prints, re-run `make bench` for timings, or write the sentence without "
        "the number. Only a number that is not a measurement belongs in NOT_MEASURED."
    )


def test_not_measured_list_is_current() -> None:
    for doc, phrase, why in NOT_MEASURED:
        assert why and phrase in (ROOT / doc).read_text(encoding="utf-8"), (
            f"NOT_MEASURED entry {phrase!r} no longer occurs in {doc}: remove it"
        )
