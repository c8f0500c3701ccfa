"""Checkers of notebook 02: pass on a right answer, fail with a hint on a wrong one, never raise."""
from __future__ import annotations

import torch
from torch import nn

from course_utils.exercises import gradients as ex


def right_sgd_step(model: nn.Module, lr: float) -> None:
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p -= lr * p.grad


def test_sgd_step_right() -> None:
    assert ex.check_sgd_step(right_sgd_step).passed


def test_sgd_step_wrong_sign_and_unfinished() -> None:
    def plus_step(model: nn.Module, lr: float) -> None:
        with torch.no_grad():
            for p in model.parameters():
                p += lr * p.grad

    wrong = ex.check_sgd_step(plus_step)
    assert not wrong.passed and "differs" in str(wrong)
    unfinished = ex.check_sgd_step(lambda model, lr: None)
    assert not unfinished.passed and "No parameter changed" in str(unfinished)
    assert not ex.check_sgd_step(None).passed


def test_sgd_step_that_raises_is_reported() -> None:
    def raising(model: nn.Module, lr: float) -> None:  # in-place update outside no_grad
        for p in model.parameters():
            p -= lr * p.grad

    result = ex.check_sgd_step(raising)
    assert not result.passed and "RuntimeError" in str(result)


def test_accumulation_factor() -> None:
    assert ex.measured_accumulation_factor() == 2.0
    assert ex.check_accumulation_factor(2).passed
    wrong = ex.check_accumulation_factor(1.0)
    assert not wrong.passed and "adds to it" in str(wrong)
    for answer in (None, "2", True):
        assert not ex.check_accumulation_factor(answer).passed


def test_changes_with_lr0() -> None:
    expected = sorted(ex.measured_changes_with_lr0())
    assert len(expected) == 9 and all(".1." in name for name in expected)
    assert ex.check_changes_with_lr0(expected).passed
    nothing = ex.check_changes_with_lr0([])
    assert not nothing.passed and "BatchNorm" in str(nothing)
    with_weights = ex.check_changes_with_lr0(expected + ["head.2.weight"])
    assert not with_weights.passed and "head.2.weight" in str(with_weights)
    assert not ex.check_changes_with_lr0(None).passed
