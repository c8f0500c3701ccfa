"""The quiz bank as a whole cannot be guessed: statistics over every question, and prediction ranges
that exclude the misconception each question targets.

The statistic functions are tested on deliberately bad banks too, so a check that could never fail
would show up here.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest

from course_utils.quiz_bank import load_bank
from course_utils.widgets import NumberQuiz, quiz

MAX_POSITION_SHARE = 0.35  # no answer position holds more than this share of the choice questions
MAX_LONGEST_SHARE = 0.40  # the longest option is the right one in at most this share
MAX_SHORTEST_SHARE = 0.40  # … and the shortest, so that "never the longest" is no rule to guess by either
MIN_OPTIONS = 3

Bank = dict[str, dict[str, Any]]


def choice_questions(bank: Bank) -> Bank:
    return {q: e for q, e in bank.items() if e.get("kind", "choice") == "choice"}


def number_questions(bank: Bank) -> Bank:
    return {q: e for q, e in bank.items() if e.get("kind") == "number"}


def position_shares(bank: Bank) -> dict[int, float]:
    """Answer position -> share of the choice questions whose right option sits there."""
    questions = choice_questions(bank)
    counts = Counter(e["answer"] for e in questions.values())
    return {position: count / len(questions) for position, count in sorted(counts.items())}


def longest_is_right(entry: dict[str, Any], pick: Any = max) -> bool:
    """True if the right option is (one of) the longest (``pick=min``: shortest): a guess by length finds it."""
    lengths = [len(option) for option in entry["options"]]
    return lengths[entry["answer"]] == pick(lengths)


def longest_share(bank: Bank, pick: Any = max) -> float:
    questions = choice_questions(bank)
    return sum(longest_is_right(e, pick) for e in questions.values()) / len(questions)


def shortest_share(bank: Bank) -> float:
    return longest_share(bank, min)


def normalised(text: str) -> str:
    return re.sub(r"\W+", " ", text.lower()).strip()


def repeated_questions(bank: Bank) -> list[tuple[str, str]]:
    """Pairs of ids from different notebooks whose questions or right answers are the same text."""
    seen: dict[str, str] = {}
    pairs = []
    for question_id, entry in bank.items():
        keys = [normalised(entry["question"])]
        if entry.get("kind", "choice") == "choice":
            keys.append(normalised(entry["options"][entry["answer"]]))
        for key in keys:
            if key in seen and seen[key].split(".")[0] != question_id.split(".")[0]:
                pairs.append((seen[key], question_id))
            seen.setdefault(key, question_id)
    return pairs


def range_problems(question_id: str, entry: dict[str, Any]) -> list[str]:
    """What is wrong with a prediction question's accepted range, if anything."""
    low, high = entry["accept"]
    problems = []
    measured = entry.get("measured")
    if not measured or not entry.get("measured_in"):
        problems.append(f"{question_id}: no measured values (measured, measured_in) to derive the range from")
    elif not low <= measured[0] <= measured[1] <= high:
        problems.append(f"{question_id}: the range {low}..{high} does not hold the measured {measured}")
    misconceptions = entry.get("misconceptions") or []
    if not misconceptions:
        problems.append(f"{question_id}: no misconception named")
    for wrong in misconceptions:
        if low <= wrong["value"] <= high:
            problems.append(f"{question_id}: accepts {wrong['value']}, the misconception '{wrong['belief']}'")
    return problems


def bank_problems(bank: Bank) -> list[str]:
    """Everything that would let a learner pass a quiz without reading; [] for a good bank."""
    problems = []
    shares = position_shares(bank)
    for position, share in shares.items():
        if share > MAX_POSITION_SHARE:
            problems.append(f"the answer is option {position} in {share:.0%} of the choice questions")
    if longest_share(bank) > MAX_LONGEST_SHARE:
        problems.append(f"the longest option is the answer in {longest_share(bank):.0%} of the choice questions")
    if shortest_share(bank) > MAX_SHORTEST_SHARE:
        problems.append(f"the shortest option is the answer in {shortest_share(bank):.0%} of the choice questions")
    for question_id, entry in choice_questions(bank).items():
        if len(entry["options"]) < MIN_OPTIONS:
            problems.append(f"{question_id}: only {len(entry['options'])} options")
    problems += [f"{a} and {b} ask the same" for a, b in repeated_questions(bank)]
    for question_id, entry in number_questions(bank).items():
        problems += range_problems(question_id, entry)
    return problems


# ---------------------------------------------------------------- the course's bank

BANK = load_bank()


def test_the_course_bank_has_no_problem() -> None:
    assert bank_problems(BANK) == []


def test_statistics_of_the_course_bank() -> None:
    shares = position_shares(BANK)
    assert max(shares.values()) <= MAX_POSITION_SHARE, shares
    assert len(shares) >= 3, f"the answers use only positions {sorted(shares)}"
    assert longest_share(BANK) <= MAX_LONGEST_SHARE and shortest_share(BANK) <= MAX_SHORTEST_SHARE
    for notebook in sorted({q.split(".")[0] for q in choice_questions(BANK)}):
        in_notebook = {q: e for q, e in choice_questions(BANK).items() if q.startswith(notebook + ".")}
        if len(in_notebook) >= 5:  # a notebook with many questions must not repeat one position either
            assert max(position_shares(in_notebook).values()) <= 0.5, (notebook, position_shares(in_notebook))


@pytest.mark.parametrize("question_id", sorted(number_questions(BANK)))
def test_prediction_range_holds_the_measurement_and_not_the_misconception(question_id: str) -> None:
    entry = BANK[question_id]
    assert range_problems(question_id, entry) == []
    widget = quiz(question_id)
    assert isinstance(widget, NumberQuiz)
    for wrong in entry["misconceptions"]:
        widget.guess.value = f"{wrong['value']:g}"
        widget.reveal_button.click()
        assert widget.correct is False, f"{question_id}: the widget accepts the misconception {wrong}"
    widget.guess.value = f"{sum(entry['measured']) / 2:g}"
    assert widget.correct is True


# ---------------------------------------------------------------- the statistics catch a bad bank


def choice(answer: int, options: list[str], question: str = "") -> dict[str, Any]:
    return {"question": question or f"q{answer}{len(options)}{options[0]}", "options": options, "answer": answer}


def good_bank() -> Bank:
    return {
        "01.a": choice(0, ["short", "a longer wrong option", "wrong"]),  # shortest right
        "01.b": choice(1, ["a longer wrong option", "briefer", "wrong"]),  # middle
        "02.c": choice(2, ["a wrong option", "wrong", "the right option, long"]),  # longest
        "02.d": choice(0, ["right one here", "a longer wrong option", "wrong"]),  # middle
        "03.e": choice(1, ["wrong", "the right option, longest", "a longer wrong"]),  # longest
        "03.f": choice(2, ["wrong one", "a longer wrong option", "right"]),  # shortest
        "03.n": {
            "kind": "number",
            "question": "how many?",
            "accept": [60, 64],
            "measured": [62, 62],
            "measured_in": "a test",
            "misconceptions": [{"value": 2, "belief": "only fc"}],
        },
    }


def test_a_good_bank_passes() -> None:
    assert bank_problems(good_bank()) == []


def test_always_the_second_option_is_caught() -> None:
    bank = good_bank()
    for entry in choice_questions(bank).values():
        right = entry["options"].pop(entry["answer"])
        entry["options"].insert(1, right)
        entry["answer"] = 1
    assert position_shares(bank) == {1: 1.0}
    assert any("option 1 in 100%" in p for p in bank_problems(bank))


def test_always_the_longest_option_is_caught() -> None:
    bank = good_bank()
    for entry in choice_questions(bank).values():
        entry["options"][entry["answer"]] += " — the right one, with a long explanation attached"
    assert longest_share(bank) == 1.0
    assert any("longest option" in p for p in bank_problems(bank))


def test_always_the_shortest_option_is_caught() -> None:
    bank = good_bank()
    for entry in choice_questions(bank).values():
        entry["options"][entry["answer"]] = "y"
    assert shortest_share(bank) == 1.0
    assert any("shortest option" in p for p in bank_problems(bank))


def test_two_options_and_repeats_are_caught() -> None:
    bank = good_bank()
    bank["01.a"]["options"] = ["short", "wrong"]
    bank["03.e"]["question"] = bank["01.b"]["question"].upper()
    problems = bank_problems(bank)
    assert "01.a: only 2 options" in problems
    assert "01.b and 03.e ask the same" in problems


def test_a_range_that_accepts_the_misconception_is_caught() -> None:
    bank = good_bank()
    bank["03.n"]["accept"] = [55, 70]
    bank["03.n"]["misconceptions"].append({"value": 60, "belief": "only the buffers move"})
    assert bank_problems(bank) == ["03.n: accepts 60, the misconception 'only the buffers move'"]


def test_a_range_that_misses_the_measurement_or_names_nothing_is_caught() -> None:
    bank = good_bank()
    bank["03.n"]["measured"] = [58, 62]
    bank["03.n"]["misconceptions"] = []
    assert bank_problems(bank) == [
        "03.n: the range 60..64 does not hold the measured [58, 62]",
        "03.n: no misconception named",
    ]
