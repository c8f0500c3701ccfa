"""Checkers of notebook 02: the right solutions pass; a catalogue of plausible wrong ones fails, each with a hint."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.exercises import gradients as ex

# ---------------------------------------------------------------- exercise 1: sgd_step(model, lr)


def right_sgd_step(model: nn.Module, lr: float) -> None:
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p -= lr * p.grad


def data_sgd_step(model: nn.Module, lr: float) -> None:
    for p in model.parameters():
        if p.grad is not None:
            p.data.sub_(lr * p.grad)


def optimizer_sgd_step(model: nn.Module, lr: float) -> None:
    torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr).step()


@pytest.mark.parametrize("function", [right_sgd_step, data_sgd_step, optimizer_sgd_step])
def test_sgd_step_right(function) -> None:
    assert ex.check_sgd_step(function).passed


def fixed_lr(model, lr):  # the case from the review: passes when only lr=0.1 is tried
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p -= 0.1 * p.grad


def plus(model, lr):
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p += lr * p.grad


def rebinds(model, lr):
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p = p - lr * p.grad  # noqa: F841 - the mistake: a new tensor, the parameter is untouched


def outside_no_grad(model, lr):
    for p in model.parameters():
        if p.grad is not None:
            p -= lr * p.grad


def no_none_check(model, lr):
    with torch.no_grad():
        for p in model.parameters():
            p -= lr * p.grad


def forgot_lr(model, lr):
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p -= p.grad


def head_only(model, lr):
    with torch.no_grad():
        for p in model.head.parameters():
            p -= lr * p.grad


def zeroes_first(model, lr):
    model.zero_grad()
    right_sgd_step(model, lr)


def loses_requires_grad(model, lr):
    for p in model.parameters():
        if p.grad is not None:
            p.requires_grad_(False)
            p -= lr * p.grad


def squared_lr(model, lr):
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p -= lr * lr * p.grad


WRONG_SGD = {
    "a fixed lr of 0.1": (fixed_lr, "lr=0.03"),
    "plus instead of minus": (plus, "minus"),
    "re-binds the loop variable": (rebinds, "No parameter changed"),
    "in place outside no_grad": (outside_no_grad, "torch.no_grad()"),
    "crashes on a frozen parameter": (no_none_check, ".grad is None"),
    "forgot the lr": (forgot_lr, "times the lr"),
    "only the head": (head_only, "every parameter"),
    "zeroes the gradients first": (zeroes_first, "No parameter changed"),
    "turns requires_grad off": (loses_requires_grad, "keep requires_grad"),
    "lr squared": (squared_lr, "differs from torch.optim.SGD"),
    "unfinished stub": (lambda model, lr: None, "No parameter changed"),
    "not a function": (None, "Define a function"),
}


@pytest.mark.parametrize("name", WRONG_SGD)
def test_sgd_step_wrong(name: str) -> None:
    function, hint = WRONG_SGD[name]
    result = ex.check_sgd_step(function)
    assert not result.passed and hint in str(result), str(result)


# ---------------------------------------------------------------- exercise 2: accumulation factor


def test_accumulation_factor_right() -> None:
    assert ex.measured_accumulation_factor() == 2.0
    for answer in (2, 2.0, torch.tensor(2.0)):
        assert ex.check_accumulation_factor(answer).passed


WRONG_FACTORS = {
    "overwritten (1)": (1.0, "adds to it"),
    "squared (4)": (4, "not squared"),
    "square root": (2**0.5, "not squared"),
    "reset to zero": (0, "nothing resets"),
    "half": (0.5, "count how many times"),
    "a string": ("2", "Answer with a number"),
    "a bool": (True, "Answer with a number"),
    "unanswered": (None, "Answer with a number"),
    "not a number": (float("nan"), "Answer with a number"),
}


@pytest.mark.parametrize("name", WRONG_FACTORS)
def test_accumulation_factor_wrong(name: str) -> None:
    answer, hint = WRONG_FACTORS[name]
    result = ex.check_accumulation_factor(answer)
    assert not result.passed and hint in str(result), str(result)


# ---------------------------------------------------------------- exercise 3: what changes with lr=0


def test_changes_with_lr0_right() -> None:
    expected = sorted(ex.measured_changes_with_lr0())
    assert len(expected) == 9 and all(".1." in name for name in expected)
    assert ex.check_changes_with_lr0(expected).passed
    assert ex.check_changes_with_lr0(set(expected)).passed


def buffers() -> list[str]:
    return sorted(ex.measured_changes_with_lr0())


WRONG_LR0 = {
    "nothing": (lambda: [], "BatchNorm"),
    "a weight too": (lambda: buffers() + ["head.2.weight"], "head.2.weight"),
    "every parameter": (lambda: [n for n, _ in ex.model_and_batch()[0].named_parameters()], "no parameter moves"),
    "running stats without the counter": (
        lambda: [n for n in buffers() if not n.endswith("num_batches_tracked")],
        "you missed 3",
    ),
    "one block only": (lambda: [n for n in buffers() if n.startswith("block1")], "you missed 6"),
    "a typo": (lambda: [n.replace("running", "runing") for n in buffers()], "does not change"),
    "unanswered": (lambda: None, "list of state_dict names"),
    "a single name": (lambda: "block1.1.running_mean", "list of state_dict names"),
}


@pytest.mark.parametrize("name", WRONG_LR0)
def test_changes_with_lr0_wrong(name: str) -> None:
    answer, hint = WRONG_LR0[name]
    result = ex.check_changes_with_lr0(answer())
    assert not result.passed and hint in str(result), str(result)


def test_checking_does_not_change_the_notebooks_random_numbers() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    ex.check_sgd_step(right_sgd_step)
    assert torch.equal(torch.rand(3), expected)
