"""Checkers for notebook 02 (gradients and one training step). They print feedback, never raise."""
from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import nn

from ..freezing import changed_since, snapshot
from ._feedback import Feedback, check, is_function
from ._fixtures import model_and_batch


def check_sgd_step(sgd_step: Callable[[nn.Module, float], None]) -> Feedback:
    """Exercise 1: ``sgd_step(model, lr)`` applies ``p -= lr * p.grad`` to every parameter with a grad."""
    model, x, y = model_and_batch()
    model.eval()
    nn.functional.cross_entropy(model(x), y).backward()
    reference = copy.deepcopy(model)
    for p_ref, p in zip(reference.parameters(), model.parameters()):
        p_ref.grad = p.grad.clone()
    torch.optim.SGD(reference.parameters(), lr=0.1).step()


    def same_as_sgd(fb: Feedback) -> None:
        if not callable(sgd_step):
            return
        before = [p.detach().clone() for p in model.parameters()]
        sgd_step(model, 0.1)
        moved = any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
        if not moved:
            fb.add(False, "", "No parameter changed. Update them in place: `p -= lr * p.grad` inside `with torch.no_grad():`.")
            return
        same = all(torch.allclose(p, r, atol=1e-6) for p, r in zip(model.parameters(), reference.parameters()))
        fb.add(same, "Identical to torch.optim.SGD(lr=0.1).step().",
               "Your update differs from torch.optim.SGD: subtract lr * p.grad (minus, times lr) from every parameter.")
        leaves = all(p.is_leaf and p.requires_grad for p in model.parameters())
        fb.add(leaves, "The parameters are still trainable leaf tensors.",
               "Update in place (p -= ...), not by re-assigning p = p - ..., and keep requires_grad.")

    return check("a manual SGD step", is_function(sgd_step, "sgd_step(model, lr)"), same_as_sgd)


def measured_accumulation_factor() -> float:
    """What the head bias gradient becomes after two backward passes without zero_grad, over one pass."""
    model, x, y = model_and_batch()
    model.eval()
    nn.functional.cross_entropy(model(x), y).backward()
    first = model.head[2].bias.grad.clone()
    nn.functional.cross_entropy(model(x), y).backward()
    return float(model.head[2].bias.grad.norm() / first.norm())


def check_accumulation_factor(factor) -> Feedback:
    """Exercise 2: predict how much bigger ``.grad`` is after two ``backward()`` calls without zeroing."""
    expected = measured_accumulation_factor()

    def is_number(fb: Feedback) -> None:
        fb.add(isinstance(factor, (int, float)) and not isinstance(factor, bool), "A number.",
               f"Answer with a number, e.g. 1.0; got {factor!r}.")

    def right(fb: Feedback) -> None:
        if not isinstance(factor, (int, float)) or isinstance(factor, bool):
            return
        ok = abs(float(factor) - expected) < 1e-3
        hint = ("backward() does not overwrite .grad, it adds to it" if abs(factor - 1) < 1e-3
                else "count how many times the same gradient is added")
        fb.add(ok, f"Right: {expected:.1f}× — gradients accumulate, which is why every step calls zero_grad().",
               f"Not {factor}: {hint}.")

    return check("gradients accumulate", is_number, right)


def measured_changes_with_lr0() -> set[str]:
    """state_dict entries that change in one train-mode SGD step with lr=0."""
    model, x, y = model_and_batch()
    model.train()
    before = snapshot(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    loss = nn.functional.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return set(changed_since(model, before))


def check_changes_with_lr0(changed) -> Feedback:
    """Exercise 3: which ``state_dict`` entries change in one training step with ``lr=0``?"""
    expected = measured_changes_with_lr0()

    def is_collection(fb: Feedback) -> None:
        fb.add(isinstance(changed, (list, set, tuple)) and all(isinstance(n, str) for n in changed),
               "A collection of names.",
               f"Give a list of state_dict names (strings), or [] if you think nothing changes; got {changed!r}.")

    def right(fb: Feedback) -> None:
        if not isinstance(changed, (list, set, tuple)):
            return
        got = set(changed)
        if not got:
            fb.add(False, "", "Something does change even with lr=0: what does BatchNorm do in train mode during the forward pass?")
            return
        weights = sorted(n for n in got if n.endswith(("weight", "bias")))
        missing = sorted(expected - got)
        hint = []
        if weights:
            hint.append(f"with lr=0 no parameter moves, yet you listed {weights[0]!r}")
        if missing:
            hint.append(f"you missed {len(missing)} entries, e.g. {missing[0]!r}")
        fb.add(got == expected,
               f"Right: only the {len(expected)} BatchNorm buffers change — in the forward pass, with no optimizer involved.",
               "Not quite: " + "; ".join(hint or ["some names are not in the model's state_dict"]) + ".")

    return check("what changes with lr=0", is_collection, right)
