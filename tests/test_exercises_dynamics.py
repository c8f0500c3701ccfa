"""Checkers of notebook 06: the right solutions pass; a catalogue of plausible wrong ones fails, each with a hint."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.exercises import dynamics as ex
from course_utils.freezing import freeze_to
from course_utils.models import CourseCNN

# ---------------------------------------------------------------- exercise 1: backward stops after block2, no freezing


def under_no_grad(model, x):
    with torch.no_grad():
        features = model.block2(model.block1(x))
    return model.head(model.block3(features))


def detached(model, x):
    return model.head(model.block3(model.block2(model.block1(x)).detach()))


@pytest.mark.parametrize("solution", [under_no_grad, detached])
def test_forward_stops_right(solution, capsys) -> None:
    assert ex.check_forward_stops_after_block2(solution).passed
    assert "All checks passed" in capsys.readouterr().out


def frozen_flags(model, x):
    freeze_to(model, 2)
    return model(x)


def everything_without_grad(model, x):
    with torch.no_grad():
        return model(x)


def detached_after_block1(model, x):
    return model.head(model.block3(model.block2(model.block1(x).detach())))


def head_left_out(model, x):
    with torch.no_grad():
        features = model.block2(model.block1(x))
    return model.block3(features)


def switched_to_train(model, x):
    model.train()
    return under_no_grad(model, x)


def unanswered(model, x):
    pass


WRONG_FORWARD = {
    "freezing the flags instead": (frozen_flags, "Leave the model as it is"),
    "the whole forward under no_grad": (everything_without_grad, "no grad_fn"),
    "the plain forward": (lambda model, x: model(x), "still reaches ['block1', 'block2']"),
    "detached one block too early": (detached_after_block1, "still reaches ['block2']"),
    "the head left out": (head_left_out, "Return the model's logits"),
    "the mode changed": (switched_to_train, "differ from model(x)"),
    "unanswered": (unanswered, "you returned None"),
    "not a function": (CourseCNN(), "forward_stopping_after_block2"),
}


@pytest.mark.parametrize("name", WRONG_FORWARD)
def test_forward_stops_wrong(name: str) -> None:
    answer, hint = WRONG_FORWARD[name]
    result = ex.check_forward_stops_after_block2(answer)
    assert not result.passed and hint in str(result), str(result)


def test_checking_keeps_the_notebooks_random_numbers() -> None:
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    ex.check_forward_stops_after_block2(under_no_grad)
    assert torch.equal(torch.rand(3), expected)


# ---------------------------------------------------------------- exercise 2: Adam's state in bytes


def right_adam(model: nn.Module) -> int:
    return 2 * sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)


def measured_adam(model: nn.Module) -> int:  # measure it: one real Adam step on a copy
    import copy

    clone = copy.deepcopy(model)
    params = [p for p in clone.parameters() if p.requires_grad]
    for p in params:
        p.grad = torch.zeros_like(p)
    optimizer = torch.optim.Adam(params)
    optimizer.step()
    return sum(
        t.numel() * t.element_size()
        for s in optimizer.state.values()
        for k, t in s.items()
        if k in ("exp_avg", "exp_avg_sq")
    )


@pytest.mark.parametrize("solution", [right_adam, measured_adam])
def test_adam_state_bytes_right(solution) -> None:
    assert ex.check_adam_state_bytes(solution).passed


def ex2_model() -> CourseCNN:
    model = CourseCNN()
    freeze_to(model, 2)
    return model


LITERAL = right_adam(ex2_model())

WRONG_ADAM = {
    "a number copied from a table": (LITERAL, "Write a function"),
    "the old call with a number": ("old", "Write a function"),
    "one copy of the weights": (lambda m: right_adam(m) // 2, "Adam keeps two"),
    "frozen parameters counted": (
        lambda m: 2 * sum(p.numel() * p.element_size() for p in m.parameters()),
        "frozen parameters too",
    ),
    "numbers, not bytes": (lambda m: 2 * sum(p.numel() for p in m.parameters() if p.requires_grad), "element_size"),
    "always 4 bytes per number": (
        lambda m: 8 * sum(p.numel() for p in m.parameters() if p.requires_grad),
        "4 bytes per number",
    ),
    "a function returning the literal": (lambda m: LITERAL, "Not quite"),
    "grad + two moments": (lambda m: 3 * right_adam(m) // 2, "Not quite"),
    "reads .grad (None before any step)": (
        lambda m: 2 * sum(p.grad.numel() * 4 for p in m.parameters() if p.requires_grad),
        "raised AttributeError",
    ),
    "returns a string": (lambda m: f"{right_adam(m)} bytes", "Return a number of bytes"),
    "unanswered": (None, "Define a function"),
}


@pytest.mark.parametrize("name", WRONG_ADAM)
def test_adam_state_bytes_wrong(name: str) -> None:
    answer, hint = WRONG_ADAM[name]
    result = ex.check_adam_state_bytes(ex2_model(), LITERAL) if answer == "old" else ex.check_adam_state_bytes(answer)
    assert not result.passed and hint in str(result), str(result)


# ---------------------------------------------------------------- exercise 3: gradient norms per layer


def right_norms(model):
    return {n: p.grad.norm().item() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize(
    "solution",
    [
        right_norms,
        lambda m: {n: p.grad.norm() for n, p in m.named_parameters() if p.grad is not None},
        lambda m: {n: float(torch.linalg.vector_norm(p.grad)) for n, p in m.named_parameters() if p.requires_grad},
    ],
)
def test_grad_norms_right(solution) -> None:
    assert ex.check_grad_norms(solution).passed


def fixed_keys(model):  # written for the block1-frozen model only
    names = [n for n, _ in model.named_parameters() if not n.startswith("block1")]
    return {n: dict(model.named_parameters())[n].grad.norm().item() for n in names}


WRONG_NORMS = {
    "frozen ones as 0.0": (
        lambda m: {n: 0.0 if p.grad is None else p.grad.norm().item() for n, p in m.named_parameters()},
        "should not be there",
    ),
    "crashes on frozen": (
        lambda m: {n: p.grad.norm().item() for n, p in m.named_parameters()},
        "raised AttributeError",
    ),
    "squared norms": (
        lambda m: {n: p.grad.norm().item() ** 2 for n, p in m.named_parameters() if p.requires_grad},
        "L2 norm",
    ),
    "L1 norm": (
        lambda m: {n: p.grad.abs().sum().item() for n, p in m.named_parameters() if p.requires_grad},
        "L2 norm",
    ),
    "weight norms": (
        lambda m: {n: p.norm().item() for n, p in m.named_parameters() if p.requires_grad},
        "not of the weight",
    ),
    "module names": (
        lambda m: {
            n: sum(p.grad.norm().item() for p in c.parameters() if p.grad is not None) for n, c in m.named_children()
        },
        "keys should be",
    ),
    "weights only": (
        lambda m: {
            n: p.grad.norm().item() for n, p in m.named_parameters() if p.requires_grad and n.endswith("weight")
        },
        "are missing",
    ),
    "written for one set-up": (fixed_keys, "block1 and block2 frozen"),
    "a list": (lambda m: [p.grad.norm().item() for p in m.parameters() if p.requires_grad], "Return a dict"),
    "the stub": (lambda m: {}, "are missing"),
    "not a function": (None, "Define a function"),
}


@pytest.mark.parametrize("name", WRONG_NORMS)
def test_grad_norms_wrong(name: str) -> None:
    function, hint = WRONG_NORMS[name]
    result = ex.check_grad_norms(function)
    assert not result.passed and hint in str(result), str(result)
