"""Checkers for notebook 07 (pitfalls). They print feedback, never raise."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..freezing import freeze
from ..models import CourseCNN
from ._feedback import Feedback, check, is_function


def check_optimizer_for_frozen_backbone(model: nn.Module, optimizer: object) -> Feedback:
    """Exercise 1: an SGD-with-momentum optimizer that holds exactly the trainable parameters."""

    def is_optimizer(fb: Feedback) -> None:
        fb.add(isinstance(optimizer, torch.optim.Optimizer), "optimizer is a torch.optim optimizer.",
               f"Build a torch.optim.SGD(...), got {type(optimizer).__name__}.")

    def momentum(fb: Feedback) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            return
        fb.add(isinstance(optimizer, torch.optim.SGD) and all(g.get("momentum", 0) > 0 for g in optimizer.param_groups),
               "It is SGD with momentum.", "Use torch.optim.SGD(..., momentum=0.9) as asked.")

    def right_params(fb: Feedback) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer) or not isinstance(model, nn.Module):
            return
        held = {id(p) for g in optimizer.param_groups for p in g["params"]}
        trainable = {id(p) for p in model.parameters() if p.requires_grad}
        frozen = {id(p) for p in model.parameters() if not p.requires_grad}
        if not frozen:
            fb.add(False, "", "Nothing in the model is frozen: freeze the backbone first.")
            return
        fb.add(not held & frozen, "No frozen parameter is in the optimizer.",
               "The optimizer holds frozen parameters: pass only [p for p in model.parameters() if p.requires_grad].")
        fb.add(trainable <= held, "Every trainable parameter is in the optimizer.",
               "Some trainable parameters are missing from the optimizer: the head would not train.")

    return check("an optimizer that cannot move frozen weights", is_optimizer, momentum, right_params)


def check_train_mode(train_mode: Callable[[nn.Module], object]) -> Feedback:
    """Exercise 2: ``train_mode(model)`` = train mode for everything except frozen BatchNorm layers."""

    def right_modes(fb: Feedback) -> None:
        if not callable(train_mode):
            return
        model = CourseCNN()
        freeze(model, "block1", "block2")
        model.eval()  # as after an evaluation
        train_mode(model)
        fb.add(model.head[1].training, "The head's dropout is in train mode.",
               "Dropout must stay in train mode: call model.train() first (model.eval() turns it off).")
        fb.add(not model.block1[1].training and not model.block2[1].training,
               "Frozen BatchNorm layers (block1, block2) are in eval mode: their statistics cannot drift.",
               "The BatchNorm layers of frozen blocks must be in eval mode after train_mode(model).")
        fb.add(model.block3[1].training, "Trainable BatchNorm (block3) is in train mode.",
               "Only *frozen* BatchNorm goes to eval; block3's BatchNorm trains and must stay in train mode.")

    return check(
        "train mode that keeps frozen BatchNorm frozen",
        is_function(train_mode, "train_mode(model)"),
        right_modes,
    )


def _reference_states() -> tuple[CourseCNN, dict, dict]:
    torch.manual_seed(0)
    model = CourseCNN()
    freeze(model, "block1", "block2", "block3")
    good = {k: v.clone() + 1.0 for k, v in model.state_dict().items() if k.startswith("head.")}
    typo = {k.replace("head.", "haed."): v for k, v in good.items()}
    return model, good, typo


def check_safe_load(load_checked: Callable[[nn.Module, dict], object]) -> Feedback:
    """Exercise 3: ``load_checked(model, state)`` loads a partial checkpoint but refuses unexpected keys."""

    def loads_good(fb: Feedback) -> None:
        if not callable(load_checked):
            return
        model, good, _ = _reference_states()
        try:
            load_checked(model, good)
        except Exception as error:  # the learner's function may raise: that is the answer being checked
            fb.add(False, "", f"A correct head-only checkpoint was refused ({type(error).__name__}: {error}). "
                   "Missing *frozen* keys are expected: they come from the pretrained model.")
            return
        loaded = all(torch.equal(model.state_dict()[k], v) for k, v in good.items())
        fb.add(loaded, "A correct head-only checkpoint loads.", "The head's values were not loaded: use "
               "model.load_state_dict(state, strict=False).")

    def refuses_typo(fb: Feedback) -> None:
        if not callable(load_checked):
            return
        model, _, typo = _reference_states()
        try:
            load_checked(model, typo)
        except Exception:  # raising is the right answer here
            fb.add(True, "A checkpoint with a mistyped key ('haed.') is refused.", "")
            return
        fb.add(False, "", "A checkpoint whose keys match nothing ('haed.2.weight') loaded silently. Look at "
               "result.unexpected_keys (and missing trainable keys) and raise if there are any.")

    return check(
        "a partial checkpoint loader that cannot fail silently",
        is_function(load_checked, "load_checked(model, state)"),
        loads_good, refuses_typo,
    )
