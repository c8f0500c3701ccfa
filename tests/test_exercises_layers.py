"""Checkers of notebook 01: the right solutions pass; a catalogue of plausible wrong ones fails, each with a hint."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.exercises import layers as ex
from course_utils.models import CourseCNN

# ---------------------------------------------------------------- exercise 1: count_parameters(module)

RIGHT_COUNTS = {
    "sum of numel": lambda m: sum(p.numel() for p in m.parameters() if p.requires_grad),
    "via named_parameters": lambda m: sum(p.numel() for _, p in m.named_parameters() if p.requires_grad),
    "as a tensor": lambda m: torch.tensor(sum(p.numel() for p in m.parameters() if p.requires_grad)),
}

WRONG_COUNTS = {  # name: (function, words the hint must contain)
    "every parameter, frozen ones too": (lambda m: sum(p.numel() for p in m.parameters()), "counts frozen parameters"),
    "state_dict entries ending in weight/bias": (
        lambda m: sum(v.numel() for k, v in m.state_dict().items() if k.endswith(("weight", "bias"))),
        "Wrong on",
    ),
    "trainable tensors in the state_dict (a shared layer twice)": (
        lambda m: sum(v.numel() for v in m.state_dict(keep_vars=True).values() if v.requires_grad),
        "used twice",
    ),
    "counts tensors, not values": (lambda m: sum(1 for p in m.parameters() if p.requires_grad), "counts tensors"),
    "counts the state_dict (buffers too)": (lambda m: sum(v.numel() for v in m.state_dict().values()), "Wrong on"),
    "only direct parameters": (lambda m: sum(p.numel() for p in m.parameters(recurse=False)), "nested layers"),
    "weights only, no biases": (
        lambda m: sum(p.numel() for n, p in m.named_parameters() if n.endswith("weight")),
        "Wrong on",
    ),
    "forgot the return": (lambda m: None, "forget the `return`"),
    "a hard-coded number": (lambda m: 17, "Wrong on"),
    "crashes on a layer without parameters": (
        lambda m: next(m.parameters()).numel() * 0 + sum(p.numel() for p in m.parameters() if p.requires_grad),
        "raised StopIteration",
    ),
    "only the largest tensor": (lambda m: max((p.numel() for p in m.parameters()), default=0), "Wrong on"),
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


@pytest.mark.parametrize("answer", [(8, 32, 8, 8), [8, 32, 8, 8], torch.Size([8, 32, 8, 8]), (8, 32, 8.0, 8)])
def test_block2_shape_right(answer) -> None:
    assert ex.check_block2_shape(answer).passed


WRONG_SHAPES = {
    "the 28x28 digits' shape printed above": ((8, 32, 7, 7), "these images are 32×32"),
    "forgot block2's stride": ((8, 32, 16, 16), "stride 2"),
    "block1's channels": ((8, 16, 8, 8), "out_channels"),
    "no batch dimension": ((32, 8, 8), "tuple of 4 integers"),
    "batch of one": ((1, 32, 8, 8), "batch size never changes"),
    "the example input": ((8, 1, 32, 32), "out_channels"),
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


def test_not_parameters_of_resnet18_are_not_the_course_cnns() -> None:
    """The exercise asks about resnet18: `buffer_names`, computed for the course CNN above it, must not pass."""
    from torchvision.models import resnet18

    resnet = resnet18(weights=None)
    assert ex.check_not_parameters(buffers_of(resnet), resnet).passed
    result = ex.check_not_parameters(sorted(n for n, _ in CourseCNN().named_buffers()), resnet)
    assert not result.passed and "another model" in str(result) and "missing 60" in str(result)
