"""Checkers of notebook 03: the right solutions pass; a catalogue of plausible wrong ones fails, each with a hint."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.exercises import freezing_basics as ex
from course_utils.freezing import freeze, freeze_to
from course_utils.models import CourseCNN

# ---------------------------------------------------------------- exercise 1: freeze block2 and block3 by hand


def loop_freeze(model: CourseCNN) -> None:
    for block in (model.block2, model.block3):
        for p in block.parameters():
            p.requires_grad = False


def method_freeze(model: CourseCNN) -> None:
    model.block2.requires_grad_(False)
    model.block3.requires_grad_(False)


def by_name(model: CourseCNN) -> None:
    for name, p in model.named_parameters():
        if name.startswith(("block2.", "block3.")):
            p.requires_grad = False


@pytest.mark.parametrize("solution", [loop_freeze, method_freeze, by_name])
def test_frozen_middle_right(solution) -> None:
    model = CourseCNN()
    solution(model)
    assert ex.check_frozen_middle(model).passed


def replaced_by_identity(m):  # the case from the review: no parameters left, so "nothing trains"
    m.block2 = nn.Identity()
    m.block3 = nn.Identity()


def deleted(m):
    del m.block2
    del m.block3


def attribute_trick(m):
    m.block2.requires_grad = False
    m.block3.requires_grad = False


def everything(m):
    m.requires_grad_(False)


def conv_weights_only(m):
    m.block2[0].weight.requires_grad = False
    m.block3[0].weight.requires_grad = False


def off_by_one(m):
    m.block1.requires_grad_(False)
    m.block2.requires_grad_(False)


def eval_mode(m):
    m.block2.eval()
    m.block3.eval()


def no_grad_context(m):
    with torch.no_grad():
        m.block2(m.block1(torch.zeros(1, 1, 28, 28)))


def emptied(m):
    m.block2 = nn.Sequential()
    m.block3 = nn.Sequential(nn.ReLU())


def replaced_by_frozen_smaller(m):
    m.block2 = nn.Conv2d(16, 32, 3, stride=2, padding=1).requires_grad_(False)
    m.block3.requires_grad_(False)


WRONG_FREEZES = {
    "blocks replaced by nn.Identity()": (replaced_by_identity, "lost parameters"),
    "blocks deleted": (deleted, "frozen is not removed"),
    "module attribute instead of parameters": (attribute_trick, "plain Python attribute"),
    "freeze(model, 'block2', 'block3') (a helper)": (lambda m: freeze(m, "block2", "block3"), "You used freeze"),
    "freeze_to(model, 2) (a helper)": (lambda m: freeze_to(m, 2), "You used freeze_to"),
    "the whole model frozen": (everything, "block1 should stay trainable"),
    "only the conv weights (BatchNorm still trains)": (conv_weights_only, "still has 2 of 3"),
    "block1 and block2, as in section 1": (off_by_one, "block3 still has 3 of 3"),
    "eval() instead of freezing": (eval_mode, "block2 still has 3 of 3"),
    "a no_grad() forward": (no_grad_context, "block2 still has 3 of 3"),
    "blocks emptied": (emptied, "lost parameters"),
    "block2 swapped for a smaller frozen layer": (replaced_by_frozen_smaller, "lost parameters"),
    "unanswered": (lambda m: None, "block2 still has 3 of 3"),
}


@pytest.mark.parametrize("name", WRONG_FREEZES)
def test_frozen_middle_wrong(name: str) -> None:
    mistake, hint = WRONG_FREEZES[name]
    model = CourseCNN()
    mistake(model)
    result = ex.check_frozen_middle(model)
    assert not result.passed and hint in str(result), str(result)


# ---------------------------------------------------------------- exercise 2: optimizer over trainable params


def opt_model() -> CourseCNN:
    model = CourseCNN()
    model.block1.requires_grad_(False)
    return model


@pytest.mark.parametrize(
    "build",
    [
        lambda m: torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.01),
        lambda m: torch.optim.SGD(filter(lambda p: p.requires_grad, m.parameters()), lr=0.01),
        lambda m: torch.optim.SGD([{"params": [p for p in m.parameters() if p.requires_grad]}], lr=0.01),
    ],
)
def test_optimizer_params_right(build) -> None:
    model = opt_model()
    assert ex.check_optimizer_params(build(model), model).passed


WRONG_OPTIMIZERS = {
    "every parameter": (lambda m: torch.optim.SGD(m.parameters(), lr=0.01), "frozen parameter"),
    "the head only": (lambda m: torch.optim.SGD(m.head.parameters(), lr=0.01), "missing"),
    "Adam instead of SGD": (
        lambda m: torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=0.01),
        "Use torch.optim.SGD",
    ),
    "the wrong lr": (lambda m: torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.1), "lr=0.01"),
    "another model's parameters": (
        lambda m: torch.optim.SGD([p for p in opt_model().parameters() if p.requires_grad], lr=0.01),
        "not parameters of this model",
    ),
    "the frozen ones (condition inverted)": (
        lambda m: torch.optim.SGD([p for p in m.parameters() if not p.requires_grad], lr=0.01),
        "frozen parameter",
    ),
    "the optimizer class, not an optimizer": (lambda m: torch.optim.SGD, "Build a torch.optim optimizer"),
    "a list of parameters": (lambda m: [p for p in m.parameters() if p.requires_grad], "Build a torch.optim optimizer"),
    "unanswered": (lambda m: None, "Build a torch.optim optimizer"),
    "requires_grad_(True), then every parameter": (
        lambda m: torch.optim.SGD(m.requires_grad_(True).parameters(), lr=0.01),
        "leave the flags as they are",
    ),
    "block3 forgotten": (lambda m: torch.optim.SGD([*m.block2.parameters(), *m.head.parameters()], lr=0.01), "missing"),
}


@pytest.mark.parametrize("name", WRONG_OPTIMIZERS)
def test_optimizer_params_wrong(name: str) -> None:
    build, hint = WRONG_OPTIMIZERS[name]
    model = opt_model()
    result = ex.check_optimizer_params(build(model), model)
    assert not result.passed and hint in str(result), str(result)


# ---------------------------------------------------------------- exercise 3: fc_and_bn_only(model)


def right_rule(model: nn.Module) -> None:
    model.requires_grad_(False)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.requires_grad_(True)
    model.fc.requires_grad_(True)


def by_module_name(model: nn.Module) -> None:
    for name, module in model.named_modules():
        for p in module.parameters(recurse=False):
            p.requires_grad = isinstance(module, nn.BatchNorm2d) or name == "fc"


def test_fc_and_bn_only_right() -> None:
    assert ex.check_fc_and_bn_only(right_rule).passed
    assert ex.check_fc_and_bn_only(by_module_name).passed


def by_shape(m):  # resnet18's convolutions have no bias, so "1-D means BatchNorm" works there only
    for n, p in m.named_parameters():
        p.requires_grad = p.ndim == 1 or n.startswith("fc")


def only_fc(m):
    m.requires_grad_(False)
    m.fc.requires_grad_(True)


def wrong_bn_class(m):
    m.requires_grad_(False)
    for module in m.modules():
        if isinstance(module, nn.BatchNorm1d):
            module.requires_grad_(True)
    m.fc.requires_grad_(True)


def unfreeze_then_freeze(m):
    for module in m.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.requires_grad_(True)
    m.fc.requires_grad_(True)
    m.requires_grad_(False)


def attribute_unfreeze(m):
    m.requires_grad_(False)
    for module in m.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.requires_grad = True
    m.fc.requires_grad = True


def bn_removed(m):
    right_rule(m)
    m.bn1 = nn.Identity()


def resnet_names_only(m):  # written for resnet18's names: bn1, bn2, downsample.1
    for n, p in m.named_parameters():
        p.requires_grad = ".bn" in f".{n}" or "downsample.1" in n or n.startswith("fc.")


WRONG_RESNETS = {
    "p.ndim == 1 (conv biases train)": (by_shape, "choose by module type"),
    "only fc trains": (only_fc, "should train but are frozen"),
    "BatchNorm1d instead of 2d": (wrong_bn_class, "should train but are frozen"),
    "unfroze, then froze everything": (unfreeze_then_freeze, "should train but are frozen"),
    "attribute instead of requires_grad_": (attribute_unfreeze, "plain Python attribute"),
    "a BatchNorm layer removed": (bn_removed, "lost parameters"),
    "by resnet18's names": (resnet_names_only, "a small CNN whose convolutions have biases"),
    "unanswered": (lambda m: None, "should be frozen but train"),
    "not a function": (None, "Define a function"),
}


@pytest.mark.parametrize("name", WRONG_RESNETS)
def test_fc_and_bn_only_wrong(name: str) -> None:
    mistake, hint = WRONG_RESNETS[name]
    result = ex.check_fc_and_bn_only(mistake)
    assert not result.passed and hint in str(result), str(result)
