"""Checkers for notebook 06 (training dynamics: speed, memory, gradients). They print feedback, never raise."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..models import CourseCNN
from ._feedback import Feedback, call, check, describe, is_function, is_number
from ._fixtures import model_and_batch


def check_forward_stops_after_block2(forward: Any) -> Feedback:
    """Exercise 1: ``forward(model, x)`` gives ``model(x)``'s logits with no graph through block1-2, flags untouched.

    Tried on a fresh CourseCNN in eval mode (dropout off, so the logits can be compared): every
    ``requires_grad`` flag must stay True, the logits must equal ``model(x)``, and a backward pass
    must reach block3 and the head but leave block1 and block2 without a gradient.
    """
    with torch.random.fork_rng(devices=[]):  # checking must not change the notebook's random numbers
        torch.manual_seed(0)
        model, x = CourseCNN().eval(), torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        expected = model(x)
    found: dict[str, Any] = {}

    def is_a_function(fb: Feedback) -> None:
        is_function(forward, "forward_stopping_after_block2(model, x)")(fb)

    def same_logits(fb: Feedback) -> None:
        found["out"] = out = call(fb, forward, model, x, setup="a CourseCNN and a batch of 4 digits")
        fb.require(
            isinstance(out, torch.Tensor) and out.shape == expected.shape,
            "It returns the logits, one row per image.",
            f"Return the model's logits (shape {tuple(expected.shape)}); you returned {describe(out)}.",
        )
        fb.require(
            torch.allclose(out, expected, atol=1e-5),
            "The logits equal model(x): every block ran, in order.",
            "Your logits differ from model(x): run block1, block2, block3 and the head, in that order, unchanged.",
        )

    def flags_untouched(fb: Feedback) -> None:
        changed = [name for name, p in model.named_parameters() if not p.requires_grad]
        fb.require(
            not changed and not model.training,
            "No requires_grad flag and no mode changed.",
            f"Leave the model as it is (these parameters were frozen: {changed[:3]}, training={model.training}): "
            "stop the graph in the forward pass itself, with torch.no_grad() around block1 and block2 "
            "(or .detach() on block2's output).",
        )

    def graph_stops(fb: Feedback) -> None:
        out = found["out"]
        fb.require(
            out.grad_fn is not None,
            "block3 and the head still build a graph.",
            "The logits have no grad_fn: only block1 and block2 may run without autograd, not the whole forward.",
        )
        out.sum().backward()
        reached = [name for name in ("block1", "block2") if getattr(model, name)[0].weight.grad is not None]
        missed = [
            name for name, layer in (("block3", model.block3[0]), ("head", model.head[-1])) if layer.weight.grad is None
        ]
        fb.add(
            not reached,
            "block1 and block2 get no gradient: the backward pass ends after block2.",
            f"The backward pass still reaches {reached}: run block1 and block2 inside torch.no_grad().",
        )
        fb.add(not missed, "block3 and the head get gradients.", f"No gradient reached {missed}.")

    return check(
        "stop the backward pass after block2, without freezing",
        is_a_function,
        same_logits,
        flags_untouched,
        graph_stops,
    )


def _adam_setups() -> dict[str, nn.Module]:
    """Models to try ``adam_state_bytes`` on: several frozen depths, and numbers of another size."""
    setups: dict[str, nn.Module] = {}
    for depth in (0, 2, 3):
        model = CourseCNN()
        for name in ("block1", "block2", "block3")[:depth]:
            getattr(model, name).requires_grad_(False)
        setups[f"a CourseCNN with its first {depth} blocks frozen"] = model
    double = CourseCNN().double()
    double.block1.requires_grad_(False)
    setups["a float64 CourseCNN (8 bytes per number) with block1 frozen"] = double
    half = nn.Sequential(nn.Linear(10, 20), nn.BatchNorm1d(20), nn.Linear(20, 3)).half()
    half[0].requires_grad_(False)
    setups["a float16 MLP (2 bytes per number) with its first layer frozen"] = half
    return setups


def _adam_bytes(model: nn.Module) -> int:
    return 2 * sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)


def check_adam_state_bytes(adam_state_bytes: Any, answer: Any = None) -> Feedback:
    """Exercise 2: ``adam_state_bytes(model)`` = the bytes Adam keeps for ``model`` (2 moments per trainable number).

    A function, tried on several models (frozen depths, 2/4/8-byte numbers), so a number copied
    from a table cannot pass. The older call ``check_adam_state_bytes(model, number)`` is answered
    with a hint to write the function.
    """

    def is_a_function(fb: Feedback) -> None:
        if isinstance(adam_state_bytes, nn.Module) or is_number(adam_state_bytes):
            fb.fail(
                "Write a function adam_state_bytes(model) that computes the bytes for any model "
                "(a single number only fits one model), and pass the function: "
                "ex.check_adam_state_bytes(adam_state_bytes)."
            )
        is_function(adam_state_bytes, "adam_state_bytes(model)")(fb)

    def right_values(fb: Feedback) -> None:
        wrong = []
        for setup, model in _adam_setups().items():
            expected = _adam_bytes(model)
            got = call(fb, adam_state_bytes, model, setup=setup)
            if isinstance(got, torch.Tensor) and got.numel() == 1:
                got = got.item()
            if not is_number(got):
                fb.fail(f"Return a number of bytes (an int); on {setup} you returned {describe(got)}.")
            if got == expected:
                continue
            trainable = expected // 2
            everything = 2 * sum(p.numel() * p.element_size() for p in model.parameters())
            numbers = 2 * sum(p.numel() for p in model.parameters() if p.requires_grad)
            if got == trainable:
                why = "that is one copy of the trainable weights: Adam keeps two (first and second moment)"
            elif got == everything:
                why = "you counted frozen parameters too: Adam only keeps state for the ones it updates"
            elif got == numbers:
                why = "that counts numbers; multiply by the bytes per number (p.element_size())"
            elif got == 2 * sum(p.numel() * 4 for p in model.parameters() if p.requires_grad):
                why = "you assumed 4 bytes per number: use p.element_size(), it depends on the dtype"
            else:
                why = "sum p.numel() * p.element_size() over the trainable p, times 2"
            wrong.append(f"on {setup} you returned {got:,}, expected {expected:,}: {why}")
        fb.add(
            not wrong,
            "Right on every model tried: 2 moments (exp_avg, exp_avg_sq) per trainable number, "
            "at the parameters' own size.",
            "Not quite — " + "; ".join(wrong[:2]) + ".",
        )

    return check("Adam's memory for a partly frozen model", is_a_function, right_values)


def _grad_norm_setups() -> dict[str, nn.Module]:
    setups: dict[str, nn.Module] = {}
    for seed, frozen in enumerate([("block1",), ("block1", "block2"), ()]):
        model, x, y = model_and_batch(seed)
        for name in frozen:
            getattr(model, name).requires_grad_(False)
        nn.functional.cross_entropy(model(x), y).backward()
        setups["a CourseCNN with " + (" and ".join(frozen) + " frozen" if frozen else "nothing frozen")] = model
    return setups


def check_grad_norms(grad_norms: Any) -> Feedback:
    """Exercise 3: ``grad_norms(model)`` returns {name: L2 norm of .grad} for the trainable parameters."""

    def right_values(fb: Feedback) -> None:
        for setup, model in _grad_norm_setups().items():
            expected = {n: p.grad.norm().item() for n, p in model.named_parameters() if p.grad is not None}
            result = call(fb, grad_norms, model, setup=setup)
            fb.require(
                isinstance(result, dict), "", f"Return a dict {{name: norm}}, got {describe(result)} on {setup}."
            )
            if set(result) != set(expected):
                extra, missing = sorted(set(result) - set(expected)), sorted(set(expected) - set(result))
                fb.fail(
                    f"On {setup}: keys should be the {len(expected)} trainable parameter names "
                    "(model.named_parameters(), frozen ones left out: they have no .grad); "
                    + (f"{extra[:2]} should not be there" if extra else "")
                    + ("; " if extra and missing else "")
                    + (f"{missing[:2]} are missing" if missing else "")
                    + "."
                )
            values = {n: (v.item() if isinstance(v, torch.Tensor) and v.numel() == 1 else v) for n, v in result.items()}
            bad = [
                n
                for n, v in expected.items()
                if not is_number(values[n]) or abs(float(values[n]) - v) > 1e-5 * max(1.0, v)
            ]
            if bad:
                fb.fail(
                    f"On {setup} the value for {bad[0]!r} is {describe(values[bad[0]])}, expected "
                    f"{expected[bad[0]]:.4g}: use p.grad.norm().item() "
                    "(the L2 norm of the gradient, not of the weight)."
                )
        fb.add(
            True,
            "One entry per trainable parameter, frozen ones left out, with the norms of p.grad — "
            "right with block1, block1-2 or nothing frozen.",
            "",
        )

    return check("gradient norms per layer", is_function(grad_norms, "grad_norms(model)"), right_values)
