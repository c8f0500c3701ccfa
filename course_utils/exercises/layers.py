"""Checkers for notebook 01 (layers, parameters, buffers). They print feedback, never raise."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..models import CourseCNN
from ._feedback import Feedback, as_names, call, check, describe, is_function, is_names, is_number


def _probe_modules() -> dict[str, nn.Module]:
    """Modules with no parameters, direct ones, nested ones, and buffers next to parameters."""
    torch.manual_seed(0)
    return {
        "nn.Linear(3, 4)": nn.Linear(3, 4),
        "nn.ReLU()": nn.ReLU(),
        "nn.BatchNorm2d(8)": nn.BatchNorm2d(8),
        "nn.Conv2d(1, 6, 5)": nn.Conv2d(1, 6, 5),
        "CourseCNN().block2": CourseCNN().block2,
        "CourseCNN()": CourseCNN(),
        "nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 3)))": nn.Sequential(
            nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 3))
        ),
    }


def check_count_parameters(count_parameters: Callable[[nn.Module], int]) -> Feedback:
    """Exercise 1: ``count_parameters(module)`` returns the number of parameter values."""

    def right_counts(fb: Feedback) -> None:
        wrong, returned = [], []
        for label, module in _probe_modules().items():
            expected = sum(p.numel() for p in module.parameters())
            got = call(fb, count_parameters, module, setup=label)
            if isinstance(got, torch.Tensor) and got.numel() == 1:
                got = got.item()
            returned.append(got)
            if not is_number(got) or got != expected:
                wrong.append(f"{label}: you returned {describe(got)}, expected {expected:,}")
        if all(got is None for got in returned):
            fb.fail("Your function returns None: did you forget the `return`?")
        fb.add(
            not wrong,
            "Right count on a Linear, a ReLU, a BatchNorm, a Conv2d, nested blocks and the whole CNN.",
            "Wrong counts — " + "; ".join(wrong[:3]) + ". Sum p.numel() over module.parameters() "
            "(it includes nested layers); len(list(module.parameters())) counts tensors, not values, "
            "and state_dict() also holds buffers, which are not parameters.",
        )

    return check(
        "count the parameters of any module",
        is_function(count_parameters, "count_parameters(module)"),
        right_counts,
    )


def check_not_parameters(not_parameters: Any, model: nn.Module | None = None) -> Feedback:
    """Exercise 2: the ``state_dict`` entries of the course CNN that are not parameters (buffers)."""

    def same_names(fb: Feedback) -> None:
        reference = model if isinstance(model, nn.Module) else CourseCNN()
        expected = set(reference.state_dict()) - {n for n, _ in reference.named_parameters()}
        got = as_names(not_parameters) or set()
        missing, extra = sorted(expected - got), sorted(got - expected)
        params = {n for n, _ in reference.named_parameters()}
        hint = []
        if missing:
            hint.append(f"missing {len(missing)}, e.g. {missing[0]!r}")
        if extra:
            kind = "a parameter" if extra[0] in params else "not in this model's state_dict (a typo, or another model?)"
            hint.append(f"{len(extra)} that should not be there, e.g. {extra[0]!r} ({kind})")
        fb.add(
            not missing and not extra,
            f"Exactly the {len(expected)} buffers: BatchNorm running_mean, running_var and num_batches_tracked.",
            "Not quite: " + ", ".join(hint) + ". Take the state_dict keys minus the named_parameters names.",
        )

    is_collection = is_names(
        not_parameters, "Give a list of names (strings), got {got}. Start from model.state_dict().keys()."
    )
    return check("state_dict entries that are not parameters", is_collection, same_names)


def check_block2_shape(answer: Any) -> Feedback:
    """Exercise 3: the output shape of ``block2`` for a batch of 8 digits, predicted as a tuple."""

    def is_shape(fb: Feedback) -> None:
        ok = (
            isinstance(answer, (tuple, list, torch.Size))
            and len(answer) == 4
            and all(is_number(v) and float(v) == int(v) for v in answer)
        )
        fb.require(
            ok,
            "A 4-number shape (batch, channels, height, width).",
            f"Write the shape as a tuple of 4 integers, e.g. (8, 1, 28, 28); got {describe(answer)}.",
        )

    def right_shape(fb: Feedback) -> None:
        with torch.no_grad():
            model = CourseCNN().eval()
            expected = tuple(model.block2(model.block1(torch.zeros(8, 1, 28, 28))).shape)
        got = tuple(int(v) for v in answer)
        hints = []
        if got[0] != expected[0]:
            hints.append("the batch size never changes")
        if got[1] != expected[1]:
            hints.append("the channels are block2's conv out_channels")
        if got[2:] != expected[2:]:
            hints.append("each block's conv has stride 2: 28 -> 14 -> ?")
        fb.add(got == expected, f"Right: {expected}.", f"You predicted {got}: " + "; ".join(hints) + ".")

    return check("output shape of block2", is_shape, right_shape)
