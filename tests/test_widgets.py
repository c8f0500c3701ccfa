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


# ---------------------------------------------------------------- the question bank behind quiz("NN.id")

import json  # noqa: E402
import re  # noqa: E402
from pathlib import Path  # noqa: E402

from course_utils.quiz_bank import QuestionNotFoundError, bank_files, load_bank, read_bank, sealed_bank  # noqa: E402
from course_utils.sealed import unseal  # noqa: E402
from course_utils.widgets import NumberQuiz, quiz  # noqa: E402

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
BANK = load_bank()
CHOICE_IDS = sorted(q for q, e in BANK.items() if e.get("kind", "choice") == "choice")
NUMBER_IDS = sorted(q for q, e in BANK.items() if e.get("kind") == "number")


def quiz_ids_in(notebook: Path) -> list[str]:
    cells = json.loads(notebook.read_text())["cells"]
    return re.findall(r"""\bquiz\(\s*["']([^"']+)["']""", "\n".join("".join(c["source"]) for c in cells))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_every_quiz_in_a_notebook_is_in_the_bank(notebook: Path) -> None:
    ids = quiz_ids_in(notebook)
    assert ids, f"{notebook.name} asks no quiz question"
    assert not [q for q in ids if q not in BANK], f"{notebook.name} asks questions the bank lacks"
    assert all(q.startswith(notebook.name[:2] + ".") for q in ids), "a notebook asks another notebook's question"
    assert len(ids) == len(set(ids)), f"{notebook.name} asks a question twice"
    assert "Quiz(" not in notebook.read_text(), "a question written out in the notebook: put it in the bank"


def test_every_bank_question_is_asked_somewhere() -> None:
    asked = {q for notebook in NOTEBOOKS for q in quiz_ids_in(notebook)}
    assert not set(BANK) - asked, f"questions no notebook asks: {sorted(set(BANK) - asked)}"
    assert {p.name[:2] for p in bank_files()} <= {p.name[:2] for p in NOTEBOOKS}


@pytest.mark.parametrize("question_id", CHOICE_IDS)
def test_choice_question_is_well_formed(question_id: str) -> None:
    entry = BANK[question_id]
    assert set(entry) <= {"kind", "question", "options", "answer", "explanation", "proof"}, set(entry)
    assert entry["question"].strip() and entry["explanation"].strip()
    options = entry["options"]
    assert len(options) >= 3, f"{question_id}: {len(options)} options; a choice needs at least 3 plausible ones"
    assert len({o.strip().lower() for o in options}) == len(options), f"{question_id}: two options are the same"
    answer = entry["answer"]
    assert isinstance(answer, int) and not isinstance(answer, bool) and 0 <= answer < len(options)


@pytest.mark.parametrize("question_id", NUMBER_IDS)
def test_prediction_question_is_well_formed(question_id: str) -> None:
    entry = BANK[question_id]
    fields = {"kind", "question", "accept", "unit", "explanation", "proof", "measured", "measured_in", "misconceptions"}
    assert set(entry) <= fields, set(entry)
    assert entry["question"].strip() and entry["explanation"].strip()
    low, high = entry["accept"]
    assert all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)) and low <= high


def test_no_question_is_asked_twice() -> None:
    normalised = [re.sub(r"\W+", " ", e["question"].lower()).strip() for e in BANK.values()]
    assert len(normalised) == len(set(normalised)), "two bank entries ask the same question"


def test_unknown_question_id_names_the_known_ones() -> None:
    with pytest.raises(QuestionNotFoundError, match="Questions of notebook 03"):
        quiz("03.no-such-question")


def test_plain_text_shows_question_and_options_never_the_answer() -> None:
    for question_id in CHOICE_IDS:
        entry, widget = BANK[question_id], quiz(question_id)
        text = widget._repr_mimebundle_()["text/plain"]
        assert entry["question"] in text and all(o in text for o in entry["options"])
        assert entry["explanation"] not in text and "VBox" not in text
    for question_id in NUMBER_IDS:
        entry, widget = BANK[question_id], quiz(question_id)
        assert isinstance(widget, NumberQuiz)
        text = widget._repr_mimebundle_()["text/plain"]
        assert entry["question"] in text and entry["explanation"] not in text and "VBox" not in text


def test_sealed_bank_holds_the_same_questions_and_hides_them(tmp_path: Path) -> None:
    sealed = sealed_bank()
    assert unseal(sealed) == BANK
    for entry in BANK.values():
        for secret in (entry["explanation"], entry.get("proof", ""), *entry.get("options", [])):
            assert not secret or secret not in sealed
    (tmp_path / "bank.sealed").write_text(sealed)
    assert read_bank(tmp_path) == BANK  # what the learner copy reads


def test_number_quiz() -> None:
    prediction = NumberQuiz("How many times faster?", accept=(2.0, 4.0), explanation="About 3×.", unit="×")
    assert prediction.reveal_button.disabled and prediction.correct is None
    prediction.guess.value = "5"
    prediction.reveal_button.click()
    assert prediction.correct is False and "between 2 and 4×" in prediction.feedback.value
    prediction.guess.value = "3"
    assert prediction.correct is True and "In range" in prediction.feedback.value
    with pytest.raises(ValueError):
        NumberQuiz("?", accept=(4, 2), explanation="")


def test_number_quiz_accepts_a_prediction_of_zero() -> None:
    """A numeric field starts at 0, so "0" could never count as typed; the text field can."""
    prediction = NumberQuiz("How many points does it gain?", accept=(-2, 2), explanation="About 1.", unit="points")
    assert prediction.reveal_button.disabled
    prediction.guess.value = "0"
    assert not prediction.reveal_button.disabled
    prediction.reveal_button.click()
    assert prediction.revealed and prediction.correct is True and "In range" in prediction.feedback.value


@pytest.mark.parametrize("typed", ["", "   ", "abc", "nan", "inf", "3..5"])
def test_number_quiz_waits_for_a_number(typed: str) -> None:
    prediction = NumberQuiz("How many?", accept=(1, 2), explanation="x")
    prediction.guess.value = typed
    assert prediction.reveal_button.disabled
    prediction.reveal_button.click()
    assert not prediction.revealed and prediction.correct is None
    if typed.strip():
        assert "Type a number" in prediction.feedback.value


@pytest.mark.parametrize(
    "typed, value", [("0", 0.0), (" 2.5 ", 2.5), ("-1", -1.0), ("1,000", 1000.0), ("30 %", 30.0), ("7×", 7.0)]
)
def test_number_quiz_reads_what_a_learner_types(typed: str, value: float) -> None:
    from course_utils.widgets.quiz import parse_number

    assert parse_number(typed, "%") == value


def test_number_quiz_regrades_after_a_change_and_ignores_a_half_typed_one() -> None:
    prediction = NumberQuiz("How many?", accept=(1, 2), explanation="x")
    prediction.guess.value = "1.5"
    prediction.reveal_button.click()
    assert prediction.correct is True
    prediction.guess.value = "9"
    assert prediction.correct is False and "Outside" in prediction.feedback.value
    prediction.guess.value = "-"
    assert prediction.correct is None and prediction.reveal_button.disabled
