"""Checkers of notebook 01: the right solutions pass; a catalogue of plausible wrong ones fails, each with a hint."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.exercises import layers as ex
from course_utils.models import CourseCNN

# ---------------------------------------------------------------- exercise 1: count_parameters(module)

RIGHT_COUNTS = {
    "sum of numel": lambda m: sum(p.numel() for p in m.parameters()),
    "via named_parameters": lambda m: sum(p.numel() for _, p in m.named_parameters()),
    "as a tensor": lambda m: torch.tensor(sum(p.numel() for p in m.parameters())),
}

WRONG_COUNTS = {  # name: (function, words the hint must contain)
    "counts tensors, not values": (lambda m: len(list(m.parameters())), "counts tensors"),
    "counts the state_dict (buffers too)": (lambda m: sum(v.numel() for v in m.state_dict().values()), "buffers"),
    "only direct parameters": (lambda m: sum(p.numel() for p in m.parameters(recurse=False)), "nested layers"),
    "weights only, no biases": (
        lambda m: sum(p.numel() for n, p in m.named_parameters() if n.endswith("weight")),
        "Wrong counts",
    ),
    "forgot the return": (lambda m: None, "forget the `return`"),
    "a hard-coded number": (lambda m: 17, "Wrong counts"),
    "crashes on a layer without parameters": (
        lambda m: next(m.parameters()).numel() * 0 + sum(p.numel() for p in m.parameters()),
        "raised StopIteration",
    ),
    "only the largest tensor": (lambda m: max((p.numel() for p in m.parameters()), default=0), "Wrong counts"),
}


@pytest.mark.parametrize("name", RIGHT_COUNTS)
def test_count_parameters_right(name: str) -> None:
    assert ex.check_count_parameters(RIGHT_COUNTS[name]).passed


@pytest.mark.parametrize("name", WRONG_COUNTS)
def test_count_parameters_wrong(name: str) -> None:
    function, hint = WRONG_COUNTS[name]
    result = ex.check_count_parameters(function)
    assert not result.passed and hint in str(result), str(result)


# ---------------------------------------------------------------- exercise 2: not_parameters


def buffers_of(model: nn.Module) -> list[str]:
    return [name for name in model.state_dict() if name not in dict(model.named_parameters())]


def test_not_parameters_right() -> None:
    model = CourseCNN()
    assert ex.check_not_parameters(buffers_of(model), model).passed
    assert ex.check_not_parameters({n for n, _ in model.named_buffers()}, model).passed
    assert ex.check_not_parameters(model.state_dict().keys() - dict(model.named_parameters()).keys(), model).passed
    assert ex.check_not_parameters(tuple(buffers_of(model)), None).passed  # the checker makes its own model


WRONG_NOT_PARAMETERS = {
    "unanswered": (lambda m: None, "list of names"),
    "every state_dict key": (lambda m: list(m.state_dict()), "a parameter"),
    "the parameter names": (lambda m: [n for n, _ in m.named_parameters()], "a parameter"),
    "running stats without num_batches_tracked": (
        lambda m: [n for n in buffers_of(m) if not n.endswith("num_batches_tracked")],
        "missing 3",
    ),
    "the buffer tensors, not their names": (lambda m: list(m.buffers()), "list of names"),
    "a single string": (lambda m: "block1.1.running_mean", "list of names"),
    "names from another model": (lambda m: [n for n, _ in nn.BatchNorm2d(3).named_buffers()], "another model"),
    "one block only": (lambda m: [n for n in buffers_of(m) if n.startswith("block1")], "missing 6"),
    "the state_dict itself": (lambda m: m.state_dict(), "list of names"),
}


@pytest.mark.parametrize("name", WRONG_NOT_PARAMETERS)
def test_not_parameters_wrong(name: str) -> None:
    model = CourseCNN()
    answer, hint = WRONG_NOT_PARAMETERS[name]
    result = ex.check_not_parameters(answer(model), model)
    assert not result.passed and hint in str(result), str(result)


# ---------------------------------------------------------------- exercise 3: block2's output shape


@pytest.mark.parametrize("answer", [(8, 32, 7, 7), [8, 32, 7, 7], torch.Size([8, 32, 7, 7]), (8, 32, 7.0, 7)])
def test_block2_shape_right(answer) -> None:
    assert ex.check_block2_shape(answer).passed


WRONG_SHAPES = {
    "forgot block2's stride": ((8, 32, 14, 14), "stride 2"),
    "block1's channels": ((8, 16, 7, 7), "out_channels"),
    "no batch dimension": ((32, 7, 7), "tuple of 4 integers"),
    "batch of one": ((1, 32, 7, 7), "batch size never changes"),
    "the example input": ((8, 1, 28, 28), "out_channels"),
    "a string": ("8, 32, 7, 7", "tuple of 4 integers"),
    "a fractional size": ((8, 32, 7.5, 7), "tuple of 4 integers"),
    "unanswered": (None, "tuple of 4 integers"),
    "flattened features": ((8, 1568), "tuple of 4 integers"),
}


@pytest.mark.parametrize("name", WRONG_SHAPES)
def test_block2_shape_wrong(name: str) -> None:
    answer, hint = WRONG_SHAPES[name]
    result = ex.check_block2_shape(answer)
    assert not result.passed and hint in str(result), str(result)
