"""Checkers for notebook 07 (pitfalls). They print feedback, never raise."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..freezing import helpers_applied
from ..models import CourseCNN
from ._feedback import Feedback, call, check, is_function
from ._fixtures import holds_exactly_trainable, require_module, require_optimizer


def check_optimizer_for_frozen_backbone(
    model: Any, optimizer: Any, lr: float = 0.01, momentum: float = 0.9
) -> Feedback:
    """Exercise 1: SGD at ``lr`` with ``momentum`` that holds exactly the trainable parameters of ``model``."""

    def is_optimizer(fb: Feedback) -> None:
        require_optimizer(fb, optimizer, "optimizer is a torch.optim optimizer.", "Build a torch.optim.SGD(...)")
        require_module(fb, model, "ex_model")

    def settings(fb: Feedback) -> None:
        fb.add(
            type(optimizer) is torch.optim.SGD,
            "It is SGD.",
            f"Use torch.optim.SGD as asked, not {type(optimizer).__name__}.",
        )
        found = sorted({(float(g.get("lr", -1)), float(g.get("momentum", 0))) for g in optimizer.param_groups})
        fb.add(
            found == [(lr, momentum)],
            f"lr={lr:g}, momentum={momentum:g}.",
            f"Use lr={lr:g} and momentum={momentum:g} as asked; your groups have (lr, momentum) {found}.",
        )

    def right_params(fb: Feedback) -> None:
        if all(p.requires_grad for p in model.parameters()):
            fb.fail("Nothing in the model is frozen: freeze the backbone first.")
        holds_exactly_trainable(fb, optimizer, model)

    return check("an optimizer that cannot move frozen weights", is_optimizer, settings, right_params)


def _train_mode_setups() -> dict[str, tuple[nn.Module, bool]]:
    """(model, start in train mode?) for several freezing patterns, each after train or eval."""

    def cnn(*frozen: str) -> CourseCNN:
        model = CourseCNN()
        for name in frozen:
            getattr(model, name).requires_grad_(False)
        return model

    only_bn = cnn()
    only_bn.block3[1].requires_grad_(False)  # a frozen BatchNorm inside a trainable block
    nested = nn.Sequential(
        nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4)),
        nn.Dropout(0.5),
        nn.Sequential(nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4)),
    )
    nested[0].requires_grad_(False)
    return {
        "a CourseCNN with block1-2 frozen, after model.eval()": (cnn("block1", "block2"), False),
        "a CourseCNN with block1-3 frozen, after model.train()": (cnn("block1", "block2", "block3"), True),
        "a CourseCNN with only block2 frozen, after model.eval()": (cnn("block2"), False),
        "a CourseCNN with nothing frozen, after model.eval()": (cnn(), False),
        "a CourseCNN with everything frozen, head included, after model.eval()": (
            cnn("block1", "block2", "block3", "head"),
            False,
        ),
        "a CourseCNN whose only frozen layer is block3's BatchNorm": (only_bn, False),
        "a nested nn.Sequential with its first BatchNorm frozen": (nested, True),
    }


def check_train_mode(train_mode: Callable[[nn.Module], object]) -> Feedback:
    """Exercise 2: ``train_mode(model)`` = train mode for everything except frozen BatchNorm layers.

    Tried on several freezing patterns, starting from train or eval mode, so a function written
    for one model (``model.block1.eval()``) cannot pass.
    """

    def right_modes(fb: Feedback) -> None:
        for setup, (model, start_training) in _train_mode_setups().items():
            model.train(start_training)
            call(fb, train_mode, model, setup=setup)
            used = [h for h in helpers_applied(model) if h in ("set_bn_eval", "keep_frozen_bn_eval")]
            if used:
                fb.fail(
                    f"Your function calls {used[0]} from course_utils: this exercise asks for its lines. Loop over "
                    "model.modules() and put each BatchNorm whose parameters are all frozen into eval mode."
                )
            wrong = []
            for name, module in model.named_modules():
                params = list(module.parameters(recurse=False))
                frozen_bn = isinstance(module, nn.BatchNorm2d) and params and not any(p.requires_grad for p in params)
                if isinstance(module, nn.Dropout) and not module.training:
                    wrong.append(
                        f"dropout {name!r} is in eval mode: call model.train() first (model.eval() turns dropout off)"
                    )
                elif frozen_bn and module.training:
                    wrong.append(
                        f"the frozen BatchNorm {name!r} is in train mode: its running statistics would drift "
                        "(set it to eval after model.train())"
                    )
                elif isinstance(module, nn.BatchNorm2d) and not frozen_bn and not module.training:
                    wrong.append(
                        f"the trainable BatchNorm {name!r} is in eval mode: only BatchNorm layers whose "
                        "parameters are frozen go to eval (look at requires_grad, not at the name)"
                    )
            if wrong:
                fb.fail(f"On {setup}: " + "; ".join(wrong[:2]) + ".")
        fb.add(
            True,
            "Dropout trains, frozen BatchNorm layers are in eval mode, trainable ones train — "
            "on every freezing pattern tried, from train or eval mode.",
            "",
        )

    return check(
        "train mode that keeps frozen BatchNorm frozen",
        is_function(train_mode, "train_mode(model)"),
        right_modes,
    )


def _reference_model() -> CourseCNN:
    model = CourseCNN()
    for name in ("block1", "block2", "block3"):
        getattr(model, name).requires_grad_(False)
    return model


def _checkpoints() -> dict[str, tuple[dict[str, torch.Tensor], bool]]:
    """Name -> (checkpoint, should load?)."""
    state = {k: v.clone() + 1 for k, v in _reference_model().state_dict().items()}
    head = {k: v for k, v in state.items() if k.startswith("head.")}
    block3_and_head = {k: v for k, v in state.items() if k.startswith(("block3.", "head."))}
    return {
        "a correct head-only checkpoint": (head, True),
        "a correct block3 + head checkpoint": (block3_and_head, True),
        "a checkpoint with a mistyped key ('haed.')": (
            {k.replace("head.", "haed."): v for k, v in head.items()},
            False,
        ),
        "a head checkpoint with one extra key ('head.3.weight')": (
            {**head, "head.3.weight": torch.zeros(5, 256)},
            False,
        ),
    }


def check_safe_load(load_checked: Any) -> Feedback:
    """Exercise 3: ``load_checked(model, state)`` loads a partial checkpoint but refuses unexpected keys,
    before changing anything: a refused checkpoint must leave the model exactly as it was."""

    def loads_and_refuses(fb: Feedback) -> None:
        for setup, (state, should_load) in _checkpoints().items():
            model = _reference_model()
            before = {k: v.clone() for k, v in model.state_dict().items()}
            try:
                load_checked(model, dict(state))
            except Exception as error:  # the learner's function may raise: that is the answer being checked
                changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
                if not should_load and changed:
                    fb.fail(
                        f"{setup[0].upper()}{setup[1:]} was refused, but only after loading: {len(changed)} "
                        f"entries (e.g. {changed[0]!r}) had already changed. Compare the checkpoint's keys with "
                        "model.state_dict() first, and load only when none is unexpected."
                    )
                if should_load:
                    fb.fail(
                        f"{setup[0].upper()}{setup[1:]} was refused ({type(error).__name__}: {error}). "
                        "Missing *frozen* keys are expected: they come from the pretrained model. "
                        "Refuse only unexpected keys."
                    )
                continue
            if not should_load:
                fb.fail(
                    f"{setup[0].upper()}{setup[1:]} loaded silently. Look at result.unexpected_keys "
                    "(keys the model does not have) and raise if there are any."
                )
            loaded = all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
            fb.require(
                loaded, "", f"The values of {setup} were not loaded: use model.load_state_dict(state, strict=False)."
            )
        fb.add(
            True, "Correct partial checkpoints load; a mistyped or extra key is refused before anything changes.", ""
        )

    return check(
        "a partial checkpoint loader that cannot fail silently",
        is_function(load_checked, "load_checked(model, state)"),
        loads_and_refuses,
    )
