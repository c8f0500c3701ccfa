"""The commit-to-your-answer quiz: the answer is revealed only after a choice."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets

from ._base import CourseWidget

RUN_TO_ANSWER = "(Run this cell in JupyterLab to answer; the answer is revealed only after you commit.)"


class Quiz(CourseWidget):
    """A multiple-choice question whose answer is revealed only after the learner commits.

    >>> q = Quiz("Does freezing remove a layer?", ["yes", "no"], answer=1,
    ...          explanation="It stays in the forward pass.", proof="see the claim check in section 3")
    >>> q.choice.value = "no"; q.reveal_button.click(); q.correct
    True
    """

    def __init__(
        self,
        question: str,
        options: Sequence[str],
        answer: int,
        explanation: str,
        proof: str = "",
    ) -> None:
        if len(options) < 2:
            raise ValueError("A quiz needs at least two options.")
        if not 0 <= answer < len(options):
            raise ValueError(f"answer must index options (0..{len(options) - 1}), got {answer}.")
        self.question, self.options, self.answer = question, list(options), answer
        self.explanation, self.proof = explanation, proof
        self.choice = widgets.RadioButtons(options=self.options, value=None, layout={"width": "max-content"})
        self.reveal_button = widgets.Button(description="Reveal answer", disabled=True, button_style="info")
        self.feedback = widgets.HTML(value="<i>Pick an answer first: commit before you peek.</i>")
        self.revealed = False
        self.choice.observe(self._on_choice, names="value")
        self.reveal_button.on_click(self._on_reveal)
        self.widget = widgets.VBox(
            [widgets.HTML(f"<b>Commit to your answer:</b> {question}"), self.choice, self.reveal_button, self.feedback]
        )
        self.widget.add_class("course-quiz")  # lets the browser test find quizzes

    @property
    def correct(self) -> bool | None:
        """True/False once revealed, None before."""
        if not self.revealed:
            return None
        return self.choice.index == self.answer

    def _on_choice(self, change: dict[str, Any]) -> None:
        self.reveal_button.disabled = change["new"] is None
        if self.revealed:  # changing the answer after the reveal re-grades it
            self._show()

    def _on_reveal(self, _button: widgets.Button | None = None) -> None:
        if self.choice.value is None:
            self.feedback.value = "<i>Pick an answer first: commit before you peek.</i>"
            return
        self.revealed = True
        self._show()

    def _show(self) -> None:
        verdict = "✅ Right." if self.correct else f"❌ Not quite: the answer is <b>{self.options[self.answer]}</b>."
        proof = f"<br><small>Proof: {self.proof}</small>" if self.proof else ""
        self.feedback.value = f"{verdict} {self.explanation}{proof}"

    def plain_text(self) -> str:
        """What a viewer that cannot run widgets shows: the question and the options, never the answer."""
        options = "\n".join(f"  {chr(ord('a') + i)}) {option}" for i, option in enumerate(self.options))
        return f"Commit to your answer: {self.question}\n{options}\n{RUN_TO_ANSWER}"

    def __repr__(self) -> str:
        return f"Quiz: {self.question} (options: {' / '.join(self.options)})"


def parse_number(text: str, unit: str = "") -> float | None:
    """The number a learner typed (``"0"``, ``" 2.5 "``, ``"1,000"``, ``"30 %"``), or None if it is not one."""
    cleaned = text.strip().replace(",", "")
    for suffix in (unit.strip(), "%", "×", "x"):
        if suffix:
            cleaned = cleaned.removesuffix(suffix).strip()
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


class NumberQuiz(CourseWidget):
    """A prediction question: the learner types a number before the notebook measures it.

    The field is text, parsed to a number, so that every number — 0 included — can be committed
    (a numeric field starts at 0, and a prediction of 0 would never count as typed).

    >>> q = NumberQuiz("How many times faster?", accept=(2.0, 4.0), explanation="About 3×.", unit="×")
    >>> q.guess.value = "3"; q.reveal_button.click(); q.correct
    True
    """

    def __init__(
        self, question: str, accept: Sequence[float], explanation: str, unit: str = "", proof: str = ""
    ) -> None:
        low, high = (float(v) for v in accept)
        if not low <= high:
            raise ValueError(f"accept must be (low, high) with low <= high, got {tuple(accept)}.")
        self.question, self.accept, self.unit = question, (low, high), unit
        self.explanation, self.proof = explanation, proof
        self.guess = widgets.Text(
            value="", placeholder="a number", description="Your guess:", style={"description_width": "initial"}
        )
        self.reveal_button = widgets.Button(description="Reveal answer", disabled=True, button_style="info")
        self.feedback = widgets.HTML(value="<i>Type your prediction first: commit before you measure.</i>")
        self.revealed = False
        self.guess.observe(self._on_guess, names="value")
        self.reveal_button.on_click(self._on_reveal)
        header = widgets.HTML(f"<b>Predict before you measure:</b> {question}" + (f" (in {unit})" if unit else ""))
        self.widget = widgets.VBox([header, self.guess, self.reveal_button, self.feedback])
        self.widget.add_class("course-quiz")

    @property
    def value(self) -> float | None:
        """The typed prediction as a number, None while the field holds no number."""
        return parse_number(self.guess.value, self.unit)

    @property
    def correct(self) -> bool | None:
        """True/False once revealed, None before."""
        value = self.value
        if not self.revealed or value is None:
            return None
        return self.accept[0] <= value <= self.accept[1]

    def _on_guess(self, change: dict[str, Any]) -> None:
        typed = self.value is not None
        self.reveal_button.disabled = not typed
        if not typed and change["new"].strip():
            self.feedback.value = "<i>Type a number, e.g. 0, 2.5 or 40.</i>"
        elif self.revealed and typed:
            self._show()

    def _on_reveal(self, _button: widgets.Button | None = None) -> None:
        if self.value is None:
            return
        self.revealed = True
        self._show()

    def _show(self) -> None:
        low, high = self.accept
        span = f"between {low:g} and {high:g}{self.unit}"
        verdict = "✅ In range." if self.correct else f"❌ Outside the range we measure: {span}."
        proof = f"<br><small>Proof: {self.proof}</small>" if self.proof else ""
        self.feedback.value = f"{verdict} {self.explanation}{proof}"

    def plain_text(self) -> str:
        """What a viewer that cannot run widgets shows: the question, never the accepted range."""
        unit = f" (in {self.unit})" if self.unit else ""
        return f"Predict before you measure: {self.question}{unit}\n{RUN_TO_ANSWER}"

    def __repr__(self) -> str:
        return f"Prediction: {self.question}"


# Bank fields the tests read (how the accepted range was derived), not shown by the widget.
BANK_ONLY_FIELDS = ("measured", "measured_in", "misconceptions")


def quiz(question_id: str) -> Quiz | NumberQuiz:
    """The widget for one question of the course's question bank, e.g. ``quiz("03.frozen-vs-removed")``."""
    from course_utils.quiz_bank import question  # local: keeps the widget importable on its own

    entry = {key: value for key, value in question(question_id).items() if key not in BANK_ONLY_FIELDS}
    if entry.pop("kind", "choice") == "number":
        return NumberQuiz(**entry)
    return Quiz(**entry)
