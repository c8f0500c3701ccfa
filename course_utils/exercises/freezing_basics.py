"""Checkers for notebook 03 (freezing with requires_grad). They print feedback, never raise."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ._feedback import Feedback, check
from ._fixtures import (
    attribute_tricks,
    frozen_state,
    holds_exactly_trainable,
    require_course_cnn,
    require_module,
    require_optimizer,
    require_same_layers,
)

_BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def check_frozen_first_two(model: Any) -> Feedback:
    """Exercise 1: block1 and block2 frozen, block3 and head trainable, every block still in place."""

    def still_there(fb: Feedback) -> None:
        require_course_cnn(fb, model, "exercise_model")

    def no_attribute_trick(fb: Feedback) -> None:
        tricked = attribute_tricks(model)
        fb.add(
            not tricked,
            "No `module.requires_grad = ...` attribute left behind.",
            f"{tricked} got a plain Python attribute `requires_grad`: that freezes nothing. "
            "Set it on the parameters (or call module.requires_grad_(False)).",
        )

    def flags(fb: Feedback) -> None:
        for name, want_frozen in [("block1", True), ("block2", True), ("block3", False), ("head", False)]:
            frozen, total = frozen_state(getattr(model, name))
            if want_frozen:
                fb.add(
                    frozen == total,
                    f"{name} is frozen ({total} of {total} parameter tensors).",
                    f"{name} still has {total - frozen} of {total} parameter tensors with requires_grad=True: "
                    f"loop over model.{name}.parameters() and set requires_grad = False on each one.",
                )
            else:
                fb.add(
                    frozen == 0,
                    f"{name} is still trainable.",
                    f"{name} should stay trainable, but {frozen} of its {total} parameter tensors are frozen.",
                )

    return check("freeze block1 and block2", still_there, no_attribute_trick, flags)


def check_optimizer_params(optimizer: Any, model: Any, lr: float = 0.01, kind: type = torch.optim.SGD) -> Feedback:
    """Exercise 2: a ``kind`` optimizer (SGD) at ``lr`` that holds exactly the trainable parameters of ``model``."""

    def is_optimizer(fb: Feedback) -> None:
        require_optimizer(
            fb, optimizer, "An optimizer.", "Build a torch.optim optimizer (e.g. torch.optim.SGD(..., lr=0.01))"
        )
        require_module(fb, model, "opt_model")

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


def check_resnet_fc_and_bn(model: Any) -> Feedback:
    """Exercise 3: a resnet18 with everything frozen except ``fc`` and every BatchNorm layer."""

    def is_resnet(fb: Feedback) -> None:
        require_module(fb, model, "exercise_resnet")
        fb.require(
            hasattr(model, "fc") and hasattr(model, "layer4"),
            "",
            "Use the torchvision resnet18 from the exercise cell.",
        )
        from torchvision.models import resnet18

        with torch.device("meta"):
            reference = resnet18(weights=None)
        require_same_layers(fb, model, reference, ignore=("fc.",))
        fb.require(any(True for _ in model.fc.parameters()), "", "fc has no parameters left: keep a Linear layer.")

    def flags(fb: Feedback) -> None:
        wrong_frozen, wrong_trainable = [], []
        for name, module in model.named_modules():
            should_train = isinstance(module, _BN_TYPES) or name == "fc" or name.startswith("fc.")
            for pname, p in module.named_parameters(recurse=False):
                full = f"{name}.{pname}"
                if should_train and not p.requires_grad:
                    wrong_frozen.append(full)
                if not should_train and p.requires_grad:
                    wrong_trainable.append(full)
        fb.add(
            not wrong_trainable,
            "Every conv weight is frozen.",
            f"{len(wrong_trainable)} parameter(s) should be frozen but train, e.g. {wrong_trainable[:2]}.",
        )
        fb.add(
            not wrong_frozen,
            "fc and every BatchNorm weight/bias still train.",
            f"{len(wrong_frozen)} parameter(s) should train but are frozen, e.g. {wrong_frozen[:2]}: "
            "after freezing all, unfreeze modules that are isinstance(m, nn.BatchNorm2d), and fc.",
        )
        tricked = attribute_tricks(model)
        fb.add(
            not tricked,
            "No `module.requires_grad = ...` attribute left behind.",
            f"{tricked[:3]} got a plain Python attribute `requires_grad`, which changes nothing: "
            "use module.requires_grad_(True) (with the underscore, called).",
        )

    return check("resnet18: train only fc and BatchNorm", is_resnet, flags)
