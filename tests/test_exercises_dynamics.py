"""Checkers of notebook 06: the right solutions pass; a catalogue of plausible wrong ones fails, each with a hint."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.exercises import dynamics as ex
from course_utils.freezing import freeze, freeze_to
from course_utils.models import CourseCNN

# ---------------------------------------------------------------- exercise 1: backward stops after block2


@pytest.mark.parametrize("solution", [lambda m: freeze_to(m, 2), lambda m: freeze(m, "block1", "block2")])
def test_backward_stops_right(solution, capsys) -> None:
    model = CourseCNN()
    solution(model)
    assert ex.check_backward_stops_after_block2(model).passed
    assert "All checks passed" in capsys.readouterr().out


def identity(m):
    m.block1 = nn.Identity()
    m.block2 = nn.Identity()


def attribute(m):
    m.block1.requires_grad = False
    m.block2.requires_grad = False


def conv_only(m):
    m.block1[0].weight.requires_grad_(False)
    m.block2[0].weight.requires_grad_(False)


WRONG_BACKWARD = {
    "the head frozen": (lambda m: freeze(m, "head"), "freeze exactly block1 and block2"),
    "three blocks": (lambda m: freeze_to(m, 3), "block3 and head must keep"),
    "only block2 (block1 still needs a backward)": (lambda m: freeze(m, "block2"), "freeze exactly block1 and block2"),
    "blocks replaced by Identity": (identity, "lost parameters"),
    "module attribute": (attribute, "plain attribute"),
    "conv weights only (BatchNorm still trains)": (conv_only, "partly frozen"),
    "eval() instead": (lambda m: m.eval(), "Frozen blocks are []"),
    "unanswered": (lambda m: None, "Frozen blocks are []"),
}


@pytest.mark.parametrize("name", WRONG_BACKWARD)
def test_backward_stops_wrong(name: str) -> None:
    mistake, hint = WRONG_BACKWARD[name]
    model = CourseCNN()
    mistake(model)
    result = ex.check_backward_stops_after_block2(model)
    assert not result.passed and hint in str(result), str(result)


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
