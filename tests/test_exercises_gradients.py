"""Checkers of notebook 02: the right solutions pass; a catalogue of plausible wrong ones fails, each with a hint."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.exercises import gradients as ex

# ---------------------------------------------------------------- exercise 1: sgd_step(model, lr, weight_decay)


def right_sgd_step(model: nn.Module, lr: float, weight_decay: float) -> None:
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p -= lr * (p.grad + weight_decay * p)


def data_sgd_step(model: nn.Module, lr: float, weight_decay: float) -> None:
    for p in model.parameters():
        if p.grad is not None:
            p.data.sub_(lr * (p.grad + weight_decay * p.data))


def optimizer_sgd_step(model: nn.Module, lr: float, weight_decay: float) -> None:
    torch.optim.SGD(model.parameters(), lr=lr, weight_decay=weight_decay).step()


@pytest.mark.parametrize("function", [right_sgd_step, data_sgd_step])
def test_sgd_step_right(function) -> None:
    assert ex.check_sgd_step(function).passed


def fixed_lr(model, lr, weight_decay=0.0):  # the case from the review: passes when only lr=0.1 is tried
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p -= 0.1 * (p.grad + weight_decay * p)


def plus(model, lr, weight_decay=0.0):
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p += lr * (p.grad + weight_decay * p)


def rebinds(model, lr, weight_decay=0.0):
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p = p - lr * (p.grad + weight_decay * p)  # noqa: F841 - the mistake: a new tensor, the parameter is untouched


def outside_no_grad(model, lr, weight_decay=0.0):
    for p in model.parameters():
        if p.grad is not None:
            p -= lr * (p.grad + weight_decay * p)


def no_none_check(model, lr, weight_decay=0.0):
    with torch.no_grad():
        for p in model.parameters():
            p -= lr * (p.grad + weight_decay * p)


def forgot_lr(model, lr, weight_decay=0.0):
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p -= p.grad + weight_decay * p


def head_only(model, lr, weight_decay=0.0):
    with torch.no_grad():
        for p in model.head.parameters():
            p -= lr * (p.grad + weight_decay * p)


def zeroes_first(model, lr, weight_decay=0.0):
    model.zero_grad()
    right_sgd_step(model, lr, weight_decay)


def loses_requires_grad(model, lr, weight_decay=0.0):
    for p in model.parameters():
        if p.grad is not None:
            p.requires_grad_(False)
            p -= lr * (p.grad + weight_decay * p)


def squared_lr(model, lr, weight_decay=0.0):
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p -= lr * lr * (p.grad + weight_decay * p)


WRONG_SGD = {
    "torch.optim.SGD(...).step() inside": (optimizer_sgd_step, "write the update yourself"),
    "weight decay left out": (
        lambda model, lr, weight_decay: right_sgd_step(model, lr, 0.0),
        "weight decay is missing",
    ),
    "a fixed lr of 0.1": (fixed_lr, "lr=0.03"),
    "plus instead of minus": (plus, "minus"),
    "re-binds the loop variable": (rebinds, "No parameter changed"),
    "in place outside no_grad": (outside_no_grad, "torch.no_grad()"),
    "crashes on a frozen parameter": (no_none_check, ".grad is None"),
    "decays the frozen parameters too": (
        lambda model, lr, weight_decay: [
            p.data.sub_(lr * ((p.grad if p.grad is not None else 0) + weight_decay * p.data))
            for p in model.parameters()
        ],
        "skips such parameters entirely",
    ),
    "forgot the lr": (forgot_lr, "times the lr"),
    "only the head": (head_only, "every parameter"),
    "zeroes the gradients first": (zeroes_first, "No parameter changed"),
    "turns requires_grad off": (loses_requires_grad, "keep requires_grad"),
    "lr squared": (squared_lr, "differs from torch.optim.SGD"),
    "unfinished stub": (lambda model, lr, weight_decay: None, "No parameter changed"),
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


# ---------------------------------------------------------------- exercise 3: what one eval-mode step changes


def params() -> list[str]:
    return sorted(ex.measured_changes_in_eval_step())


def test_changes_in_eval_step_right() -> None:
    expected = params()
    assert expected == sorted(n for n, _ in ex.model_and_batch()[0].named_parameters())
    assert ex.check_changes_in_eval_step(expected).passed
    assert ex.check_changes_in_eval_step(set(expected)).passed


def bn_buffers() -> list[str]:
    return [n for n, _ in ex.model_and_batch()[0].named_buffers()]


WRONG_EVAL_STEP = {
    "nothing: eval mode freezes": (lambda: [], "eval mode does not stop gradients"),
    "the BatchNorm buffers (the train-mode forward's answer)": (bn_buffers, "stored statistics"),
    "parameters and buffers": (lambda: params() + bn_buffers(), "stored statistics"),
    "only the head": (lambda: [n for n in params() if n.startswith("head")], "you missed 9"),
    "a typo": (lambda: [n.replace("weight", "wieght") for n in params()], "not in the model's state_dict"),
    "unanswered": (lambda: None, "list of state_dict names"),
    "a single name": (lambda: "head.2.weight", "list of state_dict names"),
}


@pytest.mark.parametrize("name", WRONG_EVAL_STEP)
def test_changes_in_eval_step_wrong(name: str) -> None:
    answer, hint = WRONG_EVAL_STEP[name]
    result = ex.check_changes_in_eval_step(answer())
    assert not result.passed and hint in str(result), str(result)


def test_checking_does_not_change_the_notebooks_random_numbers() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    ex.check_sgd_step(right_sgd_step)
    assert torch.equal(torch.rand(3), expected)
