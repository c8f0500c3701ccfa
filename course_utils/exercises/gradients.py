"""Checkers for notebook 02 (gradients and one training step). They print feedback, never raise."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

from ..changes import changed_since, snapshot
from ._feedback import Feedback, as_names, call, check, describe, is_function, is_names, is_number
from ._fixtures import model_and_batch

# (learning rate, weight decay, blocks frozen before the backward pass): several rates and decays, and
# set-ups where some parameters have no .grad at all (a frozen block), as after notebook 03.
SGD_SETUPS: tuple[tuple[float, float, tuple[str, ...]], ...] = (
    (0.1, 0.01, ()),
    (0.03, 0.1, ()),
    (0.5, 0.05, ("block1",)),
    (0.2, 0.0, ("block2", "head")),
)


def _model_with_grads(seed: int, frozen: tuple[str, ...]) -> nn.Module:
    model, x, y = model_and_batch(seed)
    model.eval()
    for name in frozen:
        getattr(model, name).requires_grad_(False)
    nn.functional.cross_entropy(model(x), y).backward()
    return model


@contextmanager
def _optimizer_steps() -> Iterator[list[str]]:
    """Record the class of every torch.optim optimizer that takes a step inside the block."""
    steps: list[str] = []
    handle = register_optimizer_step_pre_hook(lambda optimizer, args, kwargs: steps.append(type(optimizer).__name__))
    try:
        yield steps
    finally:
        handle.remove()


def check_sgd_step(sgd_step: Callable[[nn.Module, float, float], None]) -> Feedback:
    """Exercise 1: ``sgd_step(model, lr, weight_decay)`` applies ``p -= lr * (p.grad + weight_decay * p)``, by hand.

    Compared with ``torch.optim.SGD(lr=lr, weight_decay=weight_decay).step()`` (values equal up to
    float rounding, ``torch.allclose``), on set-ups with and without frozen blocks; a torch.optim
    optimizer stepping inside the function is refused (the exercise is the update itself).
    """

    def same_as_sgd(fb: Feedback) -> None:
        for seed, (lr, decay, frozen) in enumerate(SGD_SETUPS):
            setup = f"lr={lr}, weight_decay={decay}" + (
                f" with {' and '.join(frozen)} frozen (.grad is None)" if frozen else ""
            )
            model = _model_with_grads(seed, frozen)
            reference = copy.deepcopy(model)
            for p_ref, p in zip(reference.parameters(), model.parameters()):
                p_ref.grad = None if p.grad is None else p.grad.clone()
            torch.optim.SGD([p for p in reference.parameters() if p.requires_grad], lr=lr, weight_decay=decay).step()
            before = [p.detach().clone() for p in model.parameters()]
            with _optimizer_steps() as steps:
                call(fb, sgd_step, model, lr, decay, setup=setup)
            if steps:
                fb.fail(
                    f"Your function called torch.optim.{steps[0]}(...).step(): write the update yourself, "
                    "p -= lr * (p.grad + weight_decay * p) inside `with torch.no_grad():`."
                )
            params = list(model.parameters())
            if len(params) != len(before) or not all(p.shape == b.shape for p, b in zip(params, before)):
                fb.fail(f"Your function changed the model's layers ({setup}): only update the values.")
            if all(torch.equal(b, p) for b, p in zip(before, params)):
                fb.fail(
                    f"No parameter changed ({setup}). Update them in place: `p -= ...` inside `with torch.no_grad():`."
                )
            named = list(zip(model.named_parameters(), reference.parameters(), before))
            moved_frozen = [n for (n, p), _, b in named if p.grad is None and not torch.equal(p, b)]
            if moved_frozen:
                fb.fail(
                    f"With {setup} you changed {moved_frozen[0]!r}, which has no gradient: torch.optim.SGD "
                    "skips such parameters entirely, weight decay included."
                )
            wrong = [n for (n, p), r, _ in named if not torch.allclose(p, r, atol=1e-6, rtol=1e-5)]
            if wrong:
                no_decay = [n for (n, p), _, b in named if p.grad is not None and torch.allclose(p, b - lr * p.grad)]
                why = (
                    "the weight decay is missing: add weight_decay * p to the gradient"
                    if decay and no_decay
                    else "subtract lr * (p.grad + weight_decay * p) from every parameter that has a gradient: "
                    "minus, times the lr"
                )
                fb.fail(
                    f"With {setup} your update differs from torch.optim.SGD on {len(wrong)} tensor(s), "
                    f"e.g. {wrong[0]!r}: {why}."
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
            True,
            "Equal (torch.allclose, to float rounding) to torch.optim.SGD(lr, weight_decay).step() for several "
            "learning rates and decays, also with frozen blocks, and written by hand.",
            "",
        )

    return check(
        "a manual SGD step with weight decay", is_function(sgd_step, "sgd_step(model, lr, weight_decay)"), same_as_sgd
    )


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


def measured_changes_in_eval_step() -> set[str]:
    """state_dict entries that change in one eval-mode SGD step with lr=0.1."""
    model, x, y = model_and_batch()
    model.eval()
    before = snapshot(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = nn.functional.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return set(changed_since(model, before))


def check_changes_in_eval_step(changed: Any) -> Feedback:
    """Exercise 3: which ``state_dict`` entries change in one training step taken in *eval* mode?"""

    def right(fb: Feedback) -> None:
        expected = measured_changes_in_eval_step()
        got = as_names(changed) or set()
        if not got:
            fb.fail("Something does change: the optimizer still steps, and eval mode does not stop gradients.")
        buffers = sorted(n for n in got if "running_" in n or n.endswith("num_batches_tracked"))
        missing = sorted(expected - got)
        unknown = sorted(got - expected - set(buffers))
        hint = []
        if buffers:
            hint.append(
                "in eval mode BatchNorm uses its stored statistics and does not update them, "
                f"yet you listed {buffers[0]!r}"
            )
        if missing:
            hint.append(f"you missed {len(missing)} entries, e.g. {missing[0]!r} (eval mode does not freeze anything)")
        if unknown:
            hint.append(f"{unknown[0]!r} is not in the model's state_dict")
        fb.add(
            got == expected,
            f"Right: all {len(expected)} parameters move and no buffer does — eval mode changes what BatchNorm "
            "and dropout compute, not what the optimizer trains.",
            "Not quite: " + "; ".join(hint) + ".",
        )

    is_collection = is_names(
        changed, "Give a list of state_dict names (strings), or [] if you think nothing changes; got {got}."
    )
    return check("what one step in eval mode changes", is_collection, right)
