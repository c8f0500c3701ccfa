"""Checkers for notebook 01 (layers, parameters, buffers). They print feedback, never raise."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..models import CourseCNN
from ._feedback import Feedback, check, is_function


def _probe_modules() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    return {
        "nn.Linear(3, 4)": nn.Linear(3, 4),
        "nn.ReLU()": nn.ReLU(),
        "nn.BatchNorm2d(8)": nn.BatchNorm2d(8),
        "CourseCNN().block2": CourseCNN().block2,
        "CourseCNN()": CourseCNN(),
    }


def check_count_parameters(count_parameters: Callable[[nn.Module], int]) -> Feedback:
    """Exercise 1: ``count_parameters(module)`` returns the number of parameter values."""

    def right_counts(fb: Feedback) -> None:
        if not callable(count_parameters):
            return
        wrong, returned = [], []
        for label, module in _probe_modules().items():
            expected = sum(p.numel() for p in module.parameters())
            got = count_parameters(module)
            if isinstance(got, torch.Tensor):
                got = got.item()
            returned.append(got)
            if got != expected:
                wrong.append(f"{label}: you returned {got!r}, expected {expected:,}")
        if all(got is None for got in returned):
            fb.add(False, "", "Your function returns None: did you forget the `return`?")
            return
        fb.add(not wrong, "Right count on a Linear, a ReLU, a BatchNorm, a block and the whole CNN.",
               "Wrong counts — " + "; ".join(wrong) + ". Sum p.numel() over module.parameters(); "
               "len(list(module.parameters())) counts tensors, not values.")

    return check(
        "count the parameters of any module",
        is_function(count_parameters, "count_parameters(module)"),
        right_counts,
    )


def check_not_parameters(not_parameters, model: nn.Module | None = None) -> Feedback:
    """Exercise 2: the ``state_dict`` entries of the course CNN that are not parameters (buffers)."""
    model = model if model is not None else CourseCNN()
    expected = set(model.state_dict()) - {n for n, _ in model.named_parameters()}

    def is_collection(fb: Feedback) -> None:
        fb.add(isinstance(not_parameters, (list, set, tuple)) and all(isinstance(n, str) for n in not_parameters),
               "A collection of names.",
               f"Give a list of names (strings), got {type(not_parameters).__name__}. "
               "Start from model.state_dict().keys().")

    def same_names(fb: Feedback) -> None:
        if not isinstance(not_parameters, (list, set, tuple)):
            return
        got = set(not_parameters)
        missing, extra = sorted(expected - got), sorted(got - expected)
        hint = []
        if missing:
            hint.append(f"missing {len(missing)}, e.g. {missing[0]!r}")
        if extra:
            hint.append(f"{len(extra)} that should not be there, e.g. {extra[0]!r} (a parameter or a typo?)")
        fb.add(not missing and not extra,
               f"Exactly the {len(expected)} buffers: BatchNorm running_mean, running_var and num_batches_tracked.",
               "Not quite: " + ", ".join(hint) + ". Take the state_dict keys minus the named_parameters names.")

    return check("state_dict entries that are not parameters", is_collection, same_names)


def check_block2_shape(answer) -> Feedback:
    """Exercise 3: the output shape of ``block2`` for a batch of 8 digits, predicted as a tuple."""
    with torch.no_grad():
        model = CourseCNN().eval()
        expected = tuple(model.block2(model.block1(torch.zeros(8, 1, 28, 28))).shape)

    def is_tuple(fb: Feedback) -> None:
        fb.add(isinstance(answer, (tuple, list, torch.Size)) and len(answer) == 4,
               "A 4-number shape (batch, channels, height, width).",
               f"Write the shape as a tuple of 4 integers, e.g. (8, 1, 28, 28); got {answer!r}.")

    def right_shape(fb: Feedback) -> None:
        if not (isinstance(answer, (tuple, list, torch.Size)) and len(answer) == 4):
            return
        got = tuple(int(v) for v in answer)
        hints = []
        if got[0] != expected[0]:
            hints.append("the batch size never changes")
        if got[1] != expected[1]:
            hints.append("the channels are block2's conv out_channels")
        if got[2:] != expected[2:]:
            hints.append("each block's conv has stride 2: 28 -> 14 -> ?")
        fb.add(got == expected, f"Right: {expected}.", f"You predicted {got}: " + "; ".join(hints) + ".")

    return check("output shape of block2", is_tuple, right_shape)
