from __future__ import annotations

import pytest

from course_utils.widgets import Quiz


def make_quiz() -> Quiz:
    return Quiz("Does freezing remove a layer?", ["yes", "no"], answer=1, explanation="It stays.", proof="cell 5")


def test_reveal_needs_a_choice_first() -> None:
    quiz = make_quiz()
    assert quiz.reveal_button.disabled and quiz.correct is None
    quiz._on_reveal()
    assert not quiz.revealed and "Pick an answer" in quiz.feedback.value


def test_right_answer() -> None:
    quiz = make_quiz()
    quiz.choice.value = "no"
    assert not quiz.reveal_button.disabled
    quiz.reveal_button.click()
    assert quiz.correct is True and "Right" in quiz.feedback.value and "cell 5" in quiz.feedback.value


def test_wrong_answer_then_change_of_mind() -> None:
    quiz = make_quiz()
    quiz.choice.value = "yes"
    quiz.reveal_button.click()
    assert quiz.correct is False and "the answer is <b>no</b>" in quiz.feedback.value
    quiz.choice.value = "no"
    assert quiz.correct is True and "Right" in quiz.feedback.value


@pytest.mark.parametrize("options, answer", [(["only"], 0), (["a", "b"], 2)])
def test_bad_quiz_definitions(options, answer) -> None:
    with pytest.raises(ValueError):
        Quiz("?", options, answer, "")


def test_renders_as_a_widget() -> None:
    bundle = make_quiz()._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "Does freezing remove a layer?" in repr(make_quiz())
