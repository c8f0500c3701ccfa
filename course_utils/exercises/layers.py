"""Checkers for notebook 01 (layers, parameters, buffers). They print feedback, never raise."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..models import CourseCNN
from ._feedback import Feedback, as_names, call, check, describe, is_function, is_names, is_number

INPUT_SIZE = (32, 32)  # exercise 3's images: not the 28×28 digits whose shapes the notebook prints


class _Scaled(nn.Module):
    """A parameter whose name ends in neither ``weight`` nor ``bias``."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


def _probe_modules() -> dict[str, nn.Module]:
    """Modules that tell the plausible ways of counting apart.

    Parameters direct and nested; none at all; buffers next to parameters; a frozen parameter
    (it does not train); a buffer named ``weight`` (not trained either); a parameter whose name
    ends in neither ``weight`` nor ``bias``; and one layer used twice (its numbers train once).
    """
    torch.manual_seed(0)
    frozen_bias = nn.Linear(3, 4)
    frozen_bias.bias.requires_grad_(False)
    frozen_block = CourseCNN()
    frozen_block.block1.requires_grad_(False)
    shared = nn.Linear(4, 4)
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
        "an nn.Linear(3, 4) whose bias is frozen": frozen_bias,
        "a CourseCNN whose block1 is frozen": frozen_block,
        "nn.CrossEntropyLoss(weight=torch.ones(5)) (a buffer named weight)": nn.CrossEntropyLoss(weight=torch.ones(5)),
        "a module whose parameter is called scale": _Scaled(),
        "nn.Sequential(shared, shared): one Linear(4, 4) used twice": nn.Sequential(shared, shared),
    }


def _trainable(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _why(module: nn.Module, got: object) -> str:
    """The likely reason behind a wrong count, from the counts the usual mistakes give."""
    state = module.state_dict(keep_vars=True)
    if got == sum(p.numel() for p in module.parameters()):
        return "that counts frozen parameters too (requires_grad=False): they do not train"
    if got == sum(v.numel() for k, v in state.items() if k.endswith(("weight", "bias"))):
        return "names ending in weight/bias are not the test: buffers can be called weight, parameters scale"
    if got == sum(v.numel() for v in state.values() if v.requires_grad):
        return "state_dict() lists a layer used twice twice, but its numbers train once: use module.parameters()"
    if got == sum(1 for p in module.parameters() if p.requires_grad):
        return "that counts tensors, not the numbers in them (p.numel())"
    return "sum p.numel() over the parameters with requires_grad=True (module.parameters() includes nested layers)"


def check_count_parameters(count_parameters: Callable[[nn.Module], int]) -> Feedback:
    """Exercise 1: ``count_parameters(module)`` = how many numbers training would change (trainable values)."""

    def right_counts(fb: Feedback) -> None:
        wrong, returned = [], []
        for label, module in _probe_modules().items():
            expected = _trainable(module)
            got = call(fb, count_parameters, module, setup=label)
            if isinstance(got, torch.Tensor) and got.numel() == 1:
                got = got.item()
            returned.append(got)
            if not is_number(got) or got != expected:
                wrong.append(f"{label}: you returned {describe(got)}, expected {expected:,} ({_why(module, got)})")
        if all(got is None for got in returned):
            fb.fail("Your function returns None: did you forget the `return`?")
        fb.add(
            not wrong,
            "Right count on every module tried: nested layers, no parameters, buffers, a frozen parameter, "
            "a buffer called weight, a parameter called scale, a layer used twice.",
            f"Wrong on {len(wrong)} of {len(returned)} modules — " + "; ".join(wrong[:2]) + ".",
        )

    return check(
        "count the numbers a module would train",
        is_function(count_parameters, "count_parameters(module)"),
        right_counts,
    )


def check_not_parameters(not_parameters: Any, model: nn.Module | None = None) -> Feedback:
    """Exercise 2: the ``state_dict`` entries of ``model`` (resnet18 in the notebook) that are not parameters."""

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
            kind = (
                "a parameter"
                if extra[0] in params
                else "not in this model's state_dict: the names of another model (the course CNN's, above?)"
            )
            hint.append(f"{len(extra)} that should not be there, e.g. {extra[0]!r} ({kind})")
        fb.add(
            not missing and not extra,
            f"Exactly the {len(expected)} buffers: running_mean, running_var and num_batches_tracked of every "
            "BatchNorm layer.",
            "Not quite: " + ", ".join(hint) + ". Take the state_dict keys minus the named_parameters names.",
        )

    is_collection = is_names(
        not_parameters, "Give a list of names (strings), got {got}. Start from model.state_dict().keys()."
    )
    return check("state_dict entries that are not parameters", is_collection, same_names)


def check_block2_shape(answer: Any) -> Feedback:
    """Exercise 3: the output shape of ``block2`` for a batch of 8 images of 32×32 pixels, predicted as a tuple."""

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
            expected = tuple(model.block2(model.block1(torch.zeros(8, 1, *INPUT_SIZE))).shape)
        got = tuple(int(v) for v in answer)
        hints = []
        if got[0] != expected[0]:
            hints.append("the batch size never changes")
        if got[1] != expected[1]:
            hints.append("the channels are block2's conv out_channels")
        if got[2:] != expected[2:]:
            hints.append(
                f"each block's conv has stride 2: {INPUT_SIZE[0]} -> {INPUT_SIZE[0] // 2} -> ?"
                + (
                    " (28 -> 14 -> 7 is the digits' size printed above; these images are 32×32)"
                    if got[2:] == (7, 7)
                    else ""
                )
            )
        fb.add(got == expected, f"Right: {expected}.", f"You predicted {got}: " + "; ".join(hints) + ".")

    return check("output shape of block2 on 32×32 images", is_shape, right_shape)
