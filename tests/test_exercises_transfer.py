"""Checkers of 04_transfer_learning: a right and a wrong answer each, and no crash on junk."""
from __future__ import annotations

import copy

import torch
from torch import nn

from course_utils.exercises import transfer as ex


def solved(pretrained: nn.Module) -> nn.Module:
    model = copy.deepcopy(pretrained)
    for p in model.parameters():
        p.requires_grad = False
    model.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(256, 5))
    return model


def test_frozen_backbone_right(pretrained) -> None:
    assert ex.check_frozen_backbone(solved(pretrained), pretrained, verbose=False).passed


def test_frozen_backbone_wrong(pretrained) -> None:
    untouched = copy.deepcopy(pretrained)
    result = ex.check_frozen_backbone(untouched, pretrained, verbose=False)
    assert not result.passed and "still require grad" in str(result) and "pretrained 0-4 weights" in str(result)
    head_frozen = solved(pretrained)
    head_frozen.head.requires_grad_(False)
    assert "head is frozen" in str(ex.check_frozen_backbone(head_frozen, pretrained, verbose=False))
    assert not ex.check_frozen_backbone(None, pretrained, verbose=False).passed


def test_cached_features(pretrained, batch) -> None:
    x, _ = batch
    pretrained.eval()
    with torch.no_grad():
        good = pretrained.features(x)
    assert ex.check_cached_features(good, pretrained, x, verbose=False).passed
    pretrained.train()
    bad_mode = pretrained.features(x)  # train-mode BN and a graph attached
    result = ex.check_cached_features(bad_mode, pretrained, x, verbose=False)
    assert not result.passed and "torch.no_grad" in str(result) and "model.eval()" in str(result)
    assert pretrained.training  # the checker restores the mode
    assert not ex.check_cached_features(None, pretrained, x, verbose=False).passed
    assert "model.features(x)" in str(ex.check_cached_features(torch.zeros(16, 5), pretrained, x, verbose=False))


def test_crossover(capsys) -> None:
    labels, frozen, full = (1, 3, 10), [60.0, 80.0, 90.0], [50.0, 81.0, 92.0]
    assert ex.check_crossover(3, labels, frozen, full).passed
    assert "well done" in capsys.readouterr().out
    assert not ex.check_crossover(10, labels, frozen, full, verbose=False).passed
    assert ex.check_crossover(None, labels, [9.0] * 3, [1.0] * 3, verbose=False).passed
    assert not ex.check_crossover("3", labels, frozen, full, verbose=False).passed
