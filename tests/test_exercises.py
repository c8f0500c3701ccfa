from __future__ import annotations

from course_utils.exercises import Feedback, check


def test_check_passes_and_prints(capsys) -> None:
    result = check("demo", lambda fb: fb.add(True, "good", "bad"))
    assert result.passed and bool(result)
    assert "✅ good" in capsys.readouterr().out


def test_check_fails_with_hint() -> None:
    result = check("demo", lambda fb: fb.add(1 + 1 == 3, "good", "add again"), verbose=False)
    assert not result.passed and "❌ add again" in str(result)


def test_check_never_raises_on_unfinished_answer() -> None:
    answer = None
    result = check("demo", lambda fb: fb.add(answer.shape == (3,), "ok", "x"), verbose=False)
    assert not result.passed and "AttributeError" in str(result)


def test_feedback_accumulates() -> None:
    fb = Feedback()
    fb.add(True, "a", "b")
    fb.add(False, "c", "d")
    assert not fb.passed and len(fb.messages) == 2


def test_is_function_passes_callables_and_hints_otherwise() -> None:
    from course_utils.exercises import is_function

    assert check("demo", is_function(len, "sgd_step(model, lr)"), verbose=False).passed
    result = check("demo", is_function(None, "sgd_step(model, lr)"), verbose=False)
    assert not result.passed and "Define a function: def sgd_step(model, lr): ..." in str(result)
