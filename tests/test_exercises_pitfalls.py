"""Checkers of notebook 07: the right solutions pass; a catalogue of plausible wrong ones fails, each with a hint."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from course_utils.batchnorm import set_bn_eval
from course_utils.exercises import pitfalls as ex
from course_utils.freezing import freeze
from course_utils.models import CourseCNN

# ---------------------------------------------------------------- exercise 1: optimizer for a frozen backbone


def frozen_backbone() -> CourseCNN:
    model = CourseCNN()
    freeze(model, "block1", "block2", "block3")
    return model


@pytest.mark.parametrize(
    "build",
    [
        lambda m: torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.01, momentum=0.9),
        lambda m: torch.optim.SGD(m.head.parameters(), lr=0.01, momentum=0.9),
    ],
)
def test_optimizer_right(build, capsys) -> None:
    model = frozen_backbone()
    assert ex.check_optimizer_for_frozen_backbone(model, build(model)).passed
    assert "All checks passed" in capsys.readouterr().out


def trainable(m):
    return [p for p in m.parameters() if p.requires_grad]


WRONG_OPTIMIZERS = {
    "every parameter": (lambda m: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9), "frozen parameter"),
    "no momentum": (lambda m: torch.optim.SGD(trainable(m), lr=0.01), "momentum=0.9"),
    "Adam": (lambda m: torch.optim.Adam(trainable(m), lr=0.01), "Use torch.optim.SGD"),
    "the wrong lr": (lambda m: torch.optim.SGD(trainable(m), lr=0.1, momentum=0.9), "lr=0.01"),
    "another model's head": (
        lambda m: torch.optim.SGD(trainable(frozen_backbone()), lr=0.01, momentum=0.9),
        "not parameters of this model",
    ),
    "momentum 0.5": (lambda m: torch.optim.SGD(trainable(m), lr=0.01, momentum=0.5), "momentum=0.9"),
    "the head's weight only": (lambda m: torch.optim.SGD([m.head[2].weight], lr=0.01, momentum=0.9), "missing"),
    "unanswered": (lambda m: None, "Build a torch.optim.SGD"),
}


@pytest.mark.parametrize("name", WRONG_OPTIMIZERS)
def test_optimizer_wrong(name: str) -> None:
    build, hint = WRONG_OPTIMIZERS[name]
    model = frozen_backbone()
    result = ex.check_optimizer_for_frozen_backbone(model, build(model))
    assert not result.passed and hint in str(result), str(result)


def test_optimizer_on_an_unfrozen_model() -> None:
    model = CourseCNN()
    result = ex.check_optimizer_for_frozen_backbone(model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9))
    assert not result.passed and "Nothing in the model is frozen" in str(result)


# ---------------------------------------------------------------- exercise 2: train mode without BN drift


def loop_solution(model):
    model.train()
    for module in model.modules():
        params = list(module.parameters(recurse=False))
        if isinstance(module, nn.BatchNorm2d) and params and not any(p.requires_grad for p in params):
            module.eval()


def helper_solution(model):
    model.train()
    set_bn_eval(model)


def test_train_mode_right() -> None:
    result = ex.check_train_mode(loop_solution)
    assert result.passed, str(result)


def test_train_mode_refuses_the_helper_it_asks_to_write() -> None:
    result = ex.check_train_mode(helper_solution)
    assert not result.passed and "calls set_bn_eval" in str(result)


def fixed_blocks(model):  # the case from the review: right for one set-up, blind to requires_grad
    model.train()
    model.block1.eval()
    model.block2.eval()


def every_bn(model):
    model.train()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eval()


def frozen_children(model):
    model.train()
    for child in model.children():
        if not any(p.requires_grad for p in child.parameters()):
            child.eval()


def without_train(model):
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d) and not module.weight.requires_grad:
            module.eval()


def train_last(model):
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d) and not module.weight.requires_grad:
            module.eval()
    model.train()


def by_name(model):
    model.train()
    for name, module in model.named_modules():
        if name in ("block1.1", "block2.1"):
            module.eval()


WRONG_TRAIN_MODES = {
    "hard-coded block1 and block2": (fixed_blocks, "block1-3 frozen"),
    "the text's model.eval()": (lambda m: m.eval(), "call model.train() first"),
    "only model.train()": (lambda m: m.train(), "would drift"),
    "every BatchNorm to eval": (every_bn, "look at requires_grad"),
    "whole frozen blocks to eval (dropout too)": (frozen_children, "dropout 'head.1' is in eval mode"),
    "forgot model.train()": (without_train, "call model.train() first"),
    "model.train() last": (train_last, "would drift"),
    "by layer name": (by_name, "block1-3 frozen"),
    "the stub": (lambda m: None, "On a CourseCNN"),
    "not a function": (None, "Define a function"),
}


@pytest.mark.parametrize("name", WRONG_TRAIN_MODES)
def test_train_mode_wrong(name: str) -> None:
    function, hint = WRONG_TRAIN_MODES[name]
    result = ex.check_train_mode(function)
    assert not result.passed and hint in str(result), str(result)


# ---------------------------------------------------------------- exercise 3: a loader that cannot fail silently


def right_loader(model, state):
    unexpected = sorted(set(state) - set(model.state_dict()))
    if unexpected:
        raise KeyError(f"unexpected keys: {unexpected}")
    model.load_state_dict(state, strict=False)


def copy_then_swap(model, state):  # load into a copy, keep it only when nothing was unexpected
    trial = copy.deepcopy(model)
    result = trial.load_state_dict(state, strict=False)
    if result.unexpected_keys:
        raise ValueError(result.unexpected_keys)
    model.load_state_dict(trial.state_dict())


def load_then_raise(model, state):  # the old reference: refuses, but after loading the known keys
    result = model.load_state_dict(state, strict=False)
    if result.unexpected_keys:
        raise KeyError(f"unexpected keys: {result.unexpected_keys}")


@pytest.mark.parametrize("solution", [right_loader, copy_then_swap])
def test_safe_load_right(solution) -> None:
    assert ex.check_safe_load(solution).passed


def silent(model, state):
    model.load_state_dict(state, strict=False)


def strict(model, state):
    model.load_state_dict(state)


def refuses_missing(model, state):
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise KeyError("incomplete checkpoint")


def only_warns(model, state):
    result = model.load_state_dict(state, strict=False)
    if result.unexpected_keys:
        print("warning: unexpected keys", result.unexpected_keys)


def returns_error(model, state):
    result = model.load_state_dict(state, strict=False)
    if result.unexpected_keys:
        return KeyError(result.unexpected_keys)


def head_prefix_only(model, state):
    if any(not k.startswith("head.") for k in state):
        raise KeyError("only head keys")
    model.load_state_dict(state, strict=False)


def swallows(model, state):
    try:
        model.load_state_dict(state)
    except RuntimeError:
        pass


def loads_nothing(model, state):
    unexpected = set(state) - set(model.state_dict())
    if unexpected:
        raise KeyError(unexpected)


WRONG_LOADERS = {
    "load, then raise": (load_then_raise, "only after loading"),
    "strict=False, unchecked": (silent, "loaded silently"),
    "strict loading": (strict, "was refused"),
    "refuses missing frozen keys": (refuses_missing, "was refused"),
    "only prints a warning": (only_warns, "loaded silently"),
    "returns the error": (returns_error, "loaded silently"),
    "accepts head keys only": (head_prefix_only, "block3 + head checkpoint was refused"),
    "swallows the error": (swallows, "loaded silently"),
    "checks but never loads": (loads_nothing, "were not loaded"),
    "the stub": (lambda model, state: None, "were not loaded"),
    "not a function": ("load_checked", "Define a function"),
}


@pytest.mark.parametrize("name", WRONG_LOADERS)
def test_safe_load_wrong(name: str) -> None:
    function, hint = WRONG_LOADERS[name]
    result = ex.check_safe_load(function)
    assert not result.passed and hint in str(result), str(result)
