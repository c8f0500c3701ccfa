"""Checkers for notebook 03 (freezing with requires_grad). They print feedback, never raise."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from ._feedback import Feedback, call, check, is_function
from ._fixtures import (
    attribute_tricks,
    frozen_state,
    holds_exactly_trainable,
    no_helpers,
    require_course_cnn,
    require_module,
    require_optimizer,
    require_same_layers,
)

_BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def check_frozen_middle(model: Any, frozen: tuple[str, ...] = ("block2", "block3")) -> Feedback:
    """Exercise 1: ``frozen`` (block2 and block3) frozen by hand, the other blocks trainable, every block in place."""

    def still_there(fb: Feedback) -> None:
        require_course_cnn(fb, model, "exercise_model")

    def by_hand(fb: Feedback) -> None:
        no_helpers(fb, model, "Loop over model.<block>.parameters() and set requires_grad = False on each one.")
        tricked = attribute_tricks(model)
        fb.add(
            not tricked,
            "No `module.requires_grad = ...` attribute left behind.",
            f"{tricked} got a plain Python attribute `requires_grad`: that freezes nothing. "
            "Set it on the parameters (or call module.requires_grad_(False)).",
        )

    def flags(fb: Feedback) -> None:
        for name in ("block1", "block2", "block3", "head"):
            frozen_count, total = frozen_state(getattr(model, name))
            if name in frozen:
                fb.add(
                    frozen_count == total,
                    f"{name} is frozen ({total} of {total} parameter tensors).",
                    f"{name} still has {total - frozen_count} of {total} parameter tensors with requires_grad=True: "
                    f"loop over model.{name}.parameters() and set requires_grad = False on each one.",
                )
            else:
                fb.add(
                    frozen_count == 0,
                    f"{name} is still trainable.",
                    f"{name} should stay trainable, but {frozen_count} of its {total} parameter tensors are frozen.",
                )

    return check(f"freeze {' and '.join(frozen)} by hand", still_there, by_hand, flags)


def check_optimizer_params(
    optimizer: Any, model: Any, lr: float = 0.01, kind: type = torch.optim.SGD, frozen: tuple[str, ...] = ("block1",)
) -> Feedback:
    """Exercise 2: a ``kind`` optimizer (SGD) at ``lr`` that holds exactly the trainable parameters of ``model``.

    ``frozen``: the blocks the exercise froze. The model's flags must still be as the exercise set
    them (unfreezing everything and handing every parameter over is not the answer), and the
    optimizer must match those flags.
    """

    def is_optimizer(fb: Feedback) -> None:
        require_optimizer(
            fb, optimizer, "An optimizer.", "Build a torch.optim optimizer (e.g. torch.optim.SGD(..., lr=0.01))"
        )
        require_module(fb, model, "opt_model")
        changed = [
            name
            for name, child in model.named_children()
            if any(p.requires_grad == (name in frozen) for p in child.parameters())
        ]
        fb.require(
            not changed,
            f"opt_model's flags are as the exercise set them ({', '.join(frozen)} frozen).",
            f"The exercise froze {', '.join(frozen)} and nothing else, but now {changed} differ: leave the flags "
            "as they are and build the optimizer for them (unfreezing the model to hand it every parameter "
            "trains the blocks that were meant to stay frozen).",
        )

    def right_type_and_lr(fb: Feedback) -> None:
        fb.add(
            type(optimizer) is kind,
            f"It is {kind.__name__}.",
            f"Use torch.optim.{kind.__name__} as asked, not {type(optimizer).__name__}.",
        )
        rates = sorted({float(g.get("lr", -1)) for g in optimizer.param_groups})
        fb.add(rates == [lr], f"lr={lr:g}.", f"Use lr={lr:g} as asked; your groups have lr {rates}.")

    def right_params(fb: Feedback) -> None:
        holds_exactly_trainable(fb, optimizer, model)

    return check("an optimizer over the trainable parameters only", is_optimizer, right_type_and_lr, right_params)


class _BiasedConvNet(nn.Module):
    """A small ResNet-like model whose convolutions have biases (resnet18's have none) and an ``fc``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, bias=True)
        self.bn1 = nn.BatchNorm2d(8)
        self.layer1 = nn.Sequential(nn.Conv2d(8, 8, 3, bias=True), nn.BatchNorm2d(8), nn.ReLU())
        self.fc = nn.Linear(8, 5)


def _fc_and_bn_models() -> dict[str, nn.Module]:
    from torchvision.models import resnet18

    torch.manual_seed(0)
    return {
        "resnet18(weights=None)": resnet18(weights=None),
        "a small CNN whose convolutions have biases": _BiasedConvNet(),
    }


def check_fc_and_bn_only(fc_and_bn_only: Any) -> Feedback:
    """Exercise 3: ``fc_and_bn_only(model)`` freezes everything except ``fc`` and every BatchNorm layer.

    Tried on resnet18 and on a model whose convolutions have biases, so a rule that only works
    because resnet18's convolutions have none (``p.ndim == 1``) fails.
    """

    def right_flags(fb: Feedback) -> None:
        for setup, model in _fc_and_bn_models().items():
            reference = copy.deepcopy(model)
            call(fb, fc_and_bn_only, model, setup=setup)
            fb.require(isinstance(model, nn.Module), "", "Change the model in place.")
            require_same_layers(fb, model, reference)
            wrong_frozen, wrong_trainable = [], []
            for name, module in model.named_modules():
                should_train = isinstance(module, _BN_TYPES) or name == "fc" or name.startswith("fc.")
                for pname, p in module.named_parameters(recurse=False):
                    full = f"{name}.{pname}"
                    if should_train and not p.requires_grad:
                        wrong_frozen.append(full)
                    if not should_train and p.requires_grad:
                        wrong_trainable.append(full)
            tricked = attribute_tricks(model)
            if tricked:
                fb.fail(
                    f"On {setup}, {tricked[:3]} got a plain Python attribute `requires_grad`, which changes nothing: "
                    "use module.requires_grad_(True) (with the underscore, called)."
                )
            if wrong_trainable:
                bias = " (a conv bias is 1-D like a BatchNorm weight: choose by module type, not by shape)"
                fb.fail(
                    f"On {setup}, {len(wrong_trainable)} parameter(s) should be frozen but train, e.g. "
                    f"{wrong_trainable[:2]}" + (bias if any(n.endswith("bias") for n in wrong_trainable) else "") + "."
                )
            if wrong_frozen:
                fb.fail(
                    f"On {setup}, {len(wrong_frozen)} parameter(s) should train but are frozen, "
                    f"e.g. {wrong_frozen[:2]}: "
                    "after freezing all, unfreeze the modules that are isinstance(m, nn.BatchNorm2d), and fc."
                )
        fb.add(
            True,
            "Every convolution frozen (weights and biases), fc and every BatchNorm trainable — on resnet18 and on "
            "a model whose convolutions have biases.",
            "",
        )

    return check("train only fc and BatchNorm", is_function(fc_and_bn_only, "fc_and_bn_only(model)"), right_flags)
