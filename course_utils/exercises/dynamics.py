"""Checkers for notebook 06 (training dynamics: speed, memory, gradients). They print feedback, never raise."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..models import CourseCNN
from ._feedback import Feedback, check, is_function
from ._fixtures import model_and_batch


def check_backward_stops_after_block2(model: nn.Module) -> Feedback:
    """Exercise 1: block1 and block2 frozen, block3 and head trainable, so autograd stops at block2's output."""

    def is_course_cnn(fb: Feedback) -> None:
        fb.add(isinstance(model, CourseCNN), "model is a CourseCNN.", "Pass the course CNN you froze (model = CourseCNN()).")

    def right_blocks(fb: Feedback) -> None:
        if not isinstance(model, CourseCNN):
            return
        state = {name: [p.requires_grad for p in child.parameters()] for name, child in model.named_children()}
        frozen = [name for name, flags in state.items() if not any(flags)]
        trainable = [name for name, flags in state.items() if all(flags)]
        fb.add(frozen == ["block1", "block2"], "block1 and block2 are frozen, nothing else.",
               f"Frozen blocks are {frozen}; freeze exactly block1 and block2 (e.g. freeze_to(model, 2)).")
        fb.add(trainable == ["block3", "head"], "block3 and head are trainable.",
               f"Trainable blocks are {trainable}; block3 and head must keep requires_grad=True.")

    def graph_stops(fb: Feedback) -> None:
        if not isinstance(model, CourseCNN):
            return
        x = torch.rand(2, 1, 28, 28)
        after_block2 = model.block2(model.block1(x))
        after_block3 = model.block3(after_block2)
        fb.add(after_block2.grad_fn is None and after_block3.grad_fn is not None,
               "block2's output has no grad_fn: the backward pass ends there.",
               "block2's output should have grad_fn None and block3's output a grad_fn.")

    return check("make the backward pass stop after block2", is_course_cnn, right_blocks, graph_stops)


def check_adam_state_bytes(model: nn.Module, answer: object) -> Feedback:
    """Exercise 2: the bytes Adam will keep for ``model`` (2 moments per trainable number), before any step."""

    def is_model(fb: Feedback) -> None:
        fb.add(isinstance(model, nn.Module), "model is an nn.Module.", "Pass the model as the first argument.")

    def is_int(fb: Feedback) -> None:
        fb.add(isinstance(answer, int) and not isinstance(answer, bool), "Your answer is an integer number of bytes.",
               f"Give an int (bytes), got {type(answer).__name__}.")

    def right_value(fb: Feedback) -> None:
        if not isinstance(model, nn.Module) or not isinstance(answer, int):
            return
        trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
        everything = sum(p.numel() * p.element_size() for p in model.parameters())
        if answer == 2 * trainable:
            fb.add(True, f"{answer:,} bytes: two moments (exp_avg, exp_avg_sq) per trainable number.", "")
        elif answer == trainable:
            fb.add(False, "", "That is one copy of the trainable weights: Adam keeps two (first and second moment).")
        elif answer == 2 * everything:
            fb.add(False, "", "You counted frozen parameters too: Adam only keeps state for the ones it updates.")
        elif answer in (2 * sum(p.numel() for p in model.parameters() if p.requires_grad),):
            fb.add(False, "", "That is a count of numbers; multiply by the bytes per number (p.element_size()).")
        else:
            fb.add(False, "", "Not the right number of bytes: sum p.numel() * p.element_size() over trainable p, times 2.")

    return check("Adam's memory for a partly frozen model", is_model, is_int, right_value)


def check_grad_norms(grad_norms: Callable[[nn.Module], dict]) -> Feedback:
    """Exercise 3: ``grad_norms(model)`` returns {name: L2 norm of .grad} for the trainable parameters."""
    model, x, y = model_and_batch()
    model.block1.requires_grad_(False)
    nn.functional.cross_entropy(model(x), y).backward()
    expected = {n: p.grad.norm().item() for n, p in model.named_parameters() if p.requires_grad}


    def right_values(fb: Feedback) -> None:
        if not callable(grad_norms):
            return
        result = grad_norms(model)
        fb.add(isinstance(result, dict), "It returns a dict.", f"Return a dict {{name: norm}}, got {type(result).__name__}.")
        if not isinstance(result, dict):
            return
        fb.add(set(result) == set(expected), "One entry per trainable parameter, frozen ones left out.",
               f"Keys should be the {len(expected)} trainable parameter names (frozen block1 has no .grad); "
               f"got {len(result)} keys.")
        same = set(result) == set(expected) and all(
            abs(float(result[n]) - v) <= 1e-5 * max(1.0, v) for n, v in expected.items()
        )
        fb.add(same, "The norms match p.grad.norm().", "Use p.grad.norm().item() (the L2 norm) for each trainable p.")

    return check("gradient norms per layer", is_function(grad_norms, "grad_norms(model)"), right_values)
