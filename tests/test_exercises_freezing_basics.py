"""Checkers of notebook 03: pass on a right answer, fail with a hint on a wrong one, never raise."""
from __future__ import annotations

import torch
from torch import nn
from torchvision.models import resnet18

from course_utils.exercises import freezing_basics as ex
from course_utils.models import CourseCNN


def test_frozen_first_two_right() -> None:
    model = CourseCNN()
    for block in (model.block1, model.block2):
        for p in block.parameters():
            p.requires_grad = False
    assert ex.check_frozen_first_two(model).passed


def test_frozen_first_two_wrong() -> None:
    untouched = ex.check_frozen_first_two(CourseCNN())
    assert not untouched.passed and "block1 still has 3 of 3" in str(untouched)
    too_much = CourseCNN()
    too_much.requires_grad_(False)
    assert not ex.check_frozen_first_two(too_much).passed
    attribute_trick = CourseCNN()
    attribute_trick.block1.requires_grad = False
    attribute_trick.block2.requires_grad = False
    result = ex.check_frozen_first_two(attribute_trick)
    assert not result.passed and "plain Python attribute" in str(result)
    assert not ex.check_frozen_first_two(None).passed
    assert not ex.check_frozen_first_two(nn.Linear(2, 2)).passed


def test_optimizer_params() -> None:
    model = CourseCNN()
    model.block1.requires_grad_(False)
    right = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01)
    assert ex.check_optimizer_params(right, model).passed
    everything = ex.check_optimizer_params(torch.optim.SGD(model.parameters(), lr=0.01), model)
    assert not everything.passed and "frozen parameter" in str(everything)
    head_only = ex.check_optimizer_params(torch.optim.SGD(model.head.parameters(), lr=0.01), model)
    assert not head_only.passed and "missing" in str(head_only)
    assert not ex.check_optimizer_params(None, model).passed
    assert not ex.check_optimizer_params(right, None).passed


def test_resnet_fc_and_bn() -> None:
    model = resnet18(weights=None)
    model.requires_grad_(False)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.requires_grad_(True)
    model.fc.requires_grad_(True)
    assert ex.check_resnet_fc_and_bn(model).passed

    only_fc = resnet18(weights=None)
    only_fc.requires_grad_(False)
    only_fc.fc.requires_grad_(True)
    result = ex.check_resnet_fc_and_bn(only_fc)
    assert not result.passed and "should train but are frozen" in str(result)
    assert not ex.check_resnet_fc_and_bn(resnet18(weights=None)).passed
    assert not ex.check_resnet_fc_and_bn(CourseCNN()).passed
    assert not ex.check_resnet_fc_and_bn("resnet").passed
