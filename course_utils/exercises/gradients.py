"""Checkers for notebook 02 (gradients and one training step). They print feedback, never raise."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..freezing import changed_since, snapshot
from ._feedback import Feedback, as_names, call, check, describe, is_function, is_names, is_number
from ._fixtures import model_and_batch

# (learning rate, blocks frozen before the backward pass): several rates, and a set-up where
# some parameters have no .grad at all (a frozen block), as after notebook 03.
SGD_SETUPS: tuple[tuple[float, tuple[str, ...]], ...] = ((0.1, ()), (0.03, ()), (0.5, ("block1",)))


def _model_with_grads(seed: int, frozen: tuple[str, ...]) -> nn.Module:
    model, x, y = model_and_batch(seed)
    model.eval()
    for name in frozen:
        getattr(model, name).requires_grad_(False)
    nn.functional.cross_entropy(model(x), y).backward()
    return model


def check_sgd_step(sgd_step: Callable[[nn.Module, float], None]) -> Feedback:
    """Exercise 1: ``sgd_step(model, lr)`` applies ``p -= lr * p.grad`` to every parameter with a grad."""

    def same_as_sgd(fb: Feedback) -> None:
        for seed, (lr, frozen) in enumerate(SGD_SETUPS):
            setup = f"lr={lr}" + (f" with {', '.join(frozen)} frozen (its .grad is None)" if frozen else "")
            model = _model_with_grads(seed, frozen)
            reference = copy.deepcopy(model)
            for p_ref, p in zip(reference.parameters(), model.parameters()):
                p_ref.grad = None if p.grad is None else p.grad.clone()
            torch.optim.SGD([p for p in reference.parameters() if p.requires_grad], lr=lr).step()
            before = [p.detach().clone() for p in model.parameters()]
            call(fb, sgd_step, model, lr, setup=setup)
            params = list(model.parameters())
            if len(params) != len(before) or not all(p.shape == b.shape for p, b in zip(params, before)):
                fb.fail(f"Your function changed the model's layers ({setup}): only update the values.")
            if all(torch.equal(b, p) for b, p in zip(before, params)):
                fb.fail(
                    f"No parameter changed ({setup}). Update them in place: `p -= lr * p.grad` "
                    "inside `with torch.no_grad():`."
                )
            wrong = [
                n
                for (n, p), r in zip(model.named_parameters(), reference.parameters())
                if not torch.allclose(p, r, atol=1e-6, rtol=1e-5)
            ]
            if wrong:
                fb.fail(
                    f"With {setup} your update differs from torch.optim.SGD on {len(wrong)} tensor(s), "
                    f"e.g. {wrong[0]!r}: subtract lr * p.grad (minus, times the lr you are given) from "
                    "every parameter that has a gradient, and leave the others alone."
                )
            fb.require(
                all(
                    p.is_leaf and p.requires_grad == r.requires_grad
                    for p, r in zip(model.parameters(), reference.parameters())
                ),
                "",
                "Update in place (p -= ...), not by re-assigning p = p - ..., and keep requires_grad.",
            )
        fb.add(
            True, "Identical to torch.optim.SGD(lr).step() for several learning rates, also with a frozen block.", ""
        )

    return check("a manual SGD step", is_function(sgd_step, "sgd_step(model, lr)"), same_as_sgd)


def measured_accumulation_factor() -> float:
    """What the head bias gradient becomes after two backward passes without zero_grad, over one pass."""
    model, x, y = model_and_batch()
    model.eval()
    nn.functional.cross_entropy(model(x), y).backward()
    bias: torch.Tensor = model.get_parameter("head.2.bias")
    first = torch.zeros(0) if bias.grad is None else bias.grad.clone()
    nn.functional.cross_entropy(model(x), y).backward()
    return float(torch.linalg.vector_norm(bias.grad) / torch.linalg.vector_norm(first))


def check_accumulation_factor(factor: Any) -> Feedback:
    """Exercise 2: predict how much bigger ``.grad`` is after two ``backward()`` calls without zeroing."""

    def number(fb: Feedback) -> None:
        fb.require(is_number(factor), "A number.", f"Answer with a number, e.g. 1.0; got {describe(factor)}.")

    def right(fb: Feedback) -> None:
        expected = measured_accumulation_factor()
        value = float(factor.item() if isinstance(factor, torch.Tensor) else factor)
        ok = abs(value - expected) < 1e-3
        if abs(value - 1) < 1e-3:
            hint = "backward() does not overwrite .grad, it adds to it"
        elif abs(value - 4) < 1e-3 or abs(value - 2**0.5) < 1e-3:
            hint = "the same gradient is added once more: not squared, not a square root"
        elif abs(value) < 1e-3:
            hint = "nothing resets .grad between the two calls"
        else:
            hint = "count how many times the same gradient is added"
        fb.add(
            ok,
            f"Right: {expected:.1f}× — gradients accumulate, which is why every step calls zero_grad().",
            f"Not {value:g}: {hint}.",
        )

    return check("gradients accumulate", number, right)


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


def check_changes_with_lr0(changed: Any) -> Feedback:
    """Exercise 3: which ``state_dict`` entries change in one training step with ``lr=0``?"""

    def right(fb: Feedback) -> None:
        expected = measured_changes_with_lr0()
        got = as_names(changed) or set()
        if not got:
            fb.fail(
                "Something does change even with lr=0: what does BatchNorm do in train mode during the forward pass?"
            )
        weights = sorted(n for n in got if n.endswith(("weight", "bias")))
        missing = sorted(expected - got)
        unknown = sorted(got - expected - set(weights))
        hint = []
        if weights:
            hint.append(f"with lr=0 no parameter moves, yet you listed {weights[0]!r}")
        if missing:
            hint.append(f"you missed {len(missing)} entries, e.g. {missing[0]!r}")
        if unknown:
            hint.append(f"{unknown[0]!r} does not change (or is not in the model's state_dict)")
        fb.add(
            got == expected,
            f"Right: only the {len(expected)} BatchNorm buffers change — in the forward pass, "
            "with no optimizer involved.",
            "Not quite: " + "; ".join(hint) + ".",
        )

    is_collection = is_names(
        changed, "Give a list of state_dict names (strings), or [] if you think nothing changes; got {got}."
    )
    return check("what changes with lr=0", is_collection, right)
