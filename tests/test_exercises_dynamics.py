from __future__ import annotations

from course_utils.exercises import dynamics as ex
from course_utils.freezing import freeze, freeze_to
from course_utils.models import CourseCNN


def test_backward_stops_after_block2_right_and_wrong(capsys) -> None:
    model = CourseCNN()
    freeze_to(model, 2)
    assert ex.check_backward_stops_after_block2(model).passed
    assert "All checks passed" in capsys.readouterr().out
    wrong = CourseCNN()
    freeze(wrong, "head")
    result = ex.check_backward_stops_after_block2(wrong)
    assert not result.passed and "freeze exactly block1 and block2" in str(result)


def test_backward_stops_never_raises_on_none() -> None:
    assert not ex.check_backward_stops_after_block2(None).passed


def test_adam_state_bytes_right_and_wrong() -> None:
    model = CourseCNN()
    freeze_to(model, 2)
    trainable = sum(p.numel() * 4 for p in model.parameters() if p.requires_grad)
    assert ex.check_adam_state_bytes(model, 2 * trainable).passed
    result = ex.check_adam_state_bytes(model, trainable)
    assert not result.passed and "Adam keeps two" in str(result)
    everything = sum(p.numel() * 4 for p in model.parameters())
    assert "frozen parameters too" in str(ex.check_adam_state_bytes(model, 2 * everything))


def test_adam_state_bytes_never_raises() -> None:
    assert not ex.check_adam_state_bytes(CourseCNN(), None).passed
    assert not ex.check_adam_state_bytes(None, "12").passed


def test_grad_norms_right_and_wrong() -> None:
    def right(model):
        return {n: p.grad.norm().item() for n, p in model.named_parameters() if p.requires_grad}

    def all_params(model):
        return {n: 0.0 if p.grad is None else p.grad.norm().item() for n, p in model.named_parameters()}

    assert ex.check_grad_norms(right).passed
    result = ex.check_grad_norms(all_params)
    assert not result.passed and "frozen block1" in str(result)


def test_grad_norms_never_raises() -> None:
    assert not ex.check_grad_norms(None).passed
    assert not ex.check_grad_norms(lambda model: None).passed
    assert not ex.check_grad_norms(lambda model: 1 / 0).passed
