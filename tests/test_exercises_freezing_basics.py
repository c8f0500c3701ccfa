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


# ---------------------------------------------------------------- exercise 2: unfreeze into the running optimizer


def trained_with_block1_frozen() -> tuple[CourseCNN, torch.optim.SGD]:
    """The exercise's set-up: block1 frozen, an SGD optimizer with momentum over the rest, one step taken."""
    torch.manual_seed(0)
    model = CourseCNN()
    model.block1.requires_grad_(False)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    nn.functional.cross_entropy(model(torch.rand(8, 1, 28, 28)), torch.arange(8) % 5).backward()
    optimizer.step()
    return model, optimizer


def add_group(model: nn.Module, optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    model.block1.requires_grad_(True)
    optimizer.add_param_group({"params": list(model.block1.parameters()), "lr": 0.001})
    return optimizer


def add_group_per_tensor(model: nn.Module, optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    for p in model.block1.parameters():
        p.requires_grad = True
        optimizer.add_param_group({"params": [p], "lr": 0.001})
    return optimizer


@pytest.mark.parametrize("answer", [add_group, add_group_per_tensor])
def test_unfreeze_into_optimizer_right(answer) -> None:
    model, optimizer = trained_with_block1_frozen()
    assert ex.check_unfreeze_into_optimizer(answer(model, optimizer), model).passed


def rebuilt_two_groups(model, optimizer):
    model.block1.requires_grad_(True)
    rest = [p for n, p in model.named_parameters() if not n.startswith("block1.")]
    return torch.optim.SGD(
        [{"params": rest}, {"params": list(model.block1.parameters()), "lr": 0.001}], lr=0.01, momentum=0.9
    )


def added_but_frozen(model, optimizer):
    optimizer.add_param_group({"params": list(model.block1.parameters()), "lr": 0.001})
    return optimizer


def unfrozen_not_added(model, optimizer):
    model.block1.requires_grad_(True)
    return optimizer


def same_lr(model, optimizer):
    model.block1.requires_grad_(True)
    optimizer.add_param_group({"params": list(model.block1.parameters())})
    return optimizer


def extended_first_group(model, optimizer):
    model.block1.requires_grad_(True)
    optimizer.param_groups[0]["params"].extend(model.block1.parameters())
    return optimizer


def lowered_every_group(model, optimizer):
    add_group(model, optimizer)
    for group in optimizer.param_groups:
        group["lr"] = 0.001
    return optimizer


def only_conv_weight(model, optimizer):
    model.block1.requires_grad_(True)
    optimizer.add_param_group({"params": [model.block1[0].weight], "lr": 0.001})
    return optimizer


def rebuilt_as_adam(model, optimizer):
    model.block1.requires_grad_(True)
    return torch.optim.Adam(model.parameters(), lr=0.01)


def another_models_block1(model, optimizer):
    model.block1.requires_grad_(True)
    optimizer.add_param_group({"params": list(CourseCNN().block1.parameters()), "lr": 0.001})
    return optimizer


WRONG_UNFREEZES = {
    "a new optimizer with the right groups": (rebuilt_two_groups, "it is a new optimizer"),
    "a new Adam over everything": (rebuilt_as_adam, "keep the SGD optimizer"),
    "added, but still frozen": (added_but_frozen, "still have requires_grad=False"),
    "unfrozen, but not added": (unfrozen_not_added, "not in the optimizer"),
    "added at the first group's lr": (same_lr, "put them in a group of their own"),
    "appended to the first group": (extended_first_group, "extending the first group"),
    "every group lowered": (lowered_every_group, "leave the first group at lr=0.01"),
    "only the conv weight added": (only_conv_weight, "not in the optimizer"),
    "another model's block1": (another_models_block1, "not parameters of opt_model"),
    "the optimizer class": (lambda m, o: torch.optim.SGD, "Keep the `optimizer`"),
    "unanswered": (lambda m, o: o, "still have requires_grad=False"),
    "nothing": (lambda m, o: None, "Keep the `optimizer`"),
}


@pytest.mark.parametrize("name", WRONG_UNFREEZES)
def test_unfreeze_into_optimizer_wrong(name: str) -> None:
    answer, hint = WRONG_UNFREEZES[name]
    model, optimizer = trained_with_block1_frozen()
    result = ex.check_unfreeze_into_optimizer(answer(model, optimizer), model)
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
