"""Checkers of 04_transfer_learning: right solutions pass; a catalogue of plausible wrong ones fails with a hint."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from course_utils.exercises import transfer as ex
from course_utils.models import CourseCNN, make_head

# ---------------------------------------------------------------- exercise 1: freeze the backbone, new head


def freeze_then_new_head(pretrained: nn.Module) -> nn.Module:
    model = copy.deepcopy(pretrained)
    for p in model.parameters():
        p.requires_grad = False
    model.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(256, 5))
    return model


def new_last_layer(pretrained: nn.Module) -> nn.Module:
    model = copy.deepcopy(pretrained)
    model.requires_grad_(False)
    model.head[2] = nn.Linear(256, 5)
    return model


def new_head_then_freeze_backbone(pretrained: nn.Module) -> nn.Module:
    model = copy.deepcopy(pretrained)
    model.head = make_head(5)
    for block in (model.block1, model.block2, model.block3):
        block.requires_grad_(False)
    return model


@pytest.mark.parametrize("solution", [freeze_then_new_head, new_last_layer, new_head_then_freeze_backbone])
def test_frozen_backbone_right(pretrained, solution) -> None:
    assert ex.check_frozen_backbone(solution(pretrained), pretrained, verbose=False).passed


def head_before_freezing(p):
    model = copy.deepcopy(p)
    model.head = make_head(5)
    model.requires_grad_(False)
    return model


def old_head_kept(p):
    model = copy.deepcopy(p)
    for block in (model.block1, model.block2, model.block3):
        block.requires_grad_(False)
    return model


def ten_classes(p):
    model = freeze_then_new_head(p)
    model.head = make_head(10)
    return model


def fresh_cnn(p):
    model = CourseCNN()
    model.block1.requires_grad_(False), model.block2.requires_grad_(False), model.block3.requires_grad_(False)
    model.head = make_head(5)
    return model


def backbone_removed(p):
    model = freeze_then_new_head(p)
    model.block3 = nn.Identity()
    return model


def attribute_trick(p):
    model = copy.deepcopy(p)
    model.block1.requires_grad = False
    model.block2.requires_grad = False
    model.block3.requires_grad = False
    model.head = make_head(5)
    return model


def eval_instead(p):
    model = copy.deepcopy(p)
    model.eval()
    model.head = make_head(5)
    return model


def block3_left_trainable(p):
    model = copy.deepcopy(p)
    model.block1.requires_grad_(False)
    model.block2.requires_grad_(False)
    model.head = make_head(5)
    return model


WRONG_BACKBONES = {
    "new head created before freezing": (head_before_freezing, "head is frozen too"),
    "the old 0-4 head kept": (old_head_kept, "pretrained 0-4 weights"),
    "a 10-class head": (ten_classes, "nn.Linear(256, 5)"),
    "a fresh CourseCNN instead of the copy": (fresh_cnn, "differ from the pretrained ones"),
    "block3 replaced by Identity": (backbone_removed, "lost parameters"),
    "module attribute instead of parameters": (attribute_trick, "plain attribute"),
    "eval() instead of freezing": (eval_instead, "still require grad"),
    "block3 left trainable": (block3_left_trainable, "block3.0.weight"),
    "unanswered": (lambda p: copy.deepcopy(p), "still require grad"),
    "not a model": (lambda p: None, "should be a model"),
}


@pytest.mark.parametrize("name", WRONG_BACKBONES)
def test_frozen_backbone_wrong(pretrained, name: str) -> None:
    mistake, hint = WRONG_BACKBONES[name]
    result = ex.check_frozen_backbone(mistake(pretrained), pretrained, verbose=False)
    assert not result.passed and hint in str(result), str(result)


def test_frozen_backbone_on_pretrained_itself(pretrained) -> None:
    pretrained.requires_grad_(False)
    pretrained.head = make_head(5)
    result = ex.check_frozen_backbone(pretrained, pretrained, verbose=False)
    assert not result.passed and "work on the copy" in str(result)


# ---------------------------------------------------------------- exercise 2: cached features


def test_cached_features_right(pretrained, batch) -> None:
    x, _ = batch
    model = freeze_then_new_head(pretrained).eval()
    with torch.no_grad():
        from_copy = model.features(x)
    pretrained.eval()
    with torch.no_grad():
        by_hand = pretrained.block3(pretrained.block2(pretrained.block1(x))).flatten(1)
    for features in (from_copy, by_hand, pretrained.features(x).detach()):
        assert ex.check_cached_features(features, pretrained, x, verbose=False).passed


def train_mode_with_graph(p, x):
    p.train()
    return p.features(x)


def train_mode_detached(p, x):
    p.train()
    return p.features(x).detach()


def eval_with_graph(p, x):
    p.eval()
    return p.features(x)


def logits(p, x):
    p.eval()
    with torch.no_grad():
        return p(x)


def unflattened(p, x):
    p.eval()
    with torch.no_grad():
        return p.block3(p.block2(p.block1(x)))


def first_ten(p, x):
    p.eval()
    with torch.no_grad():
        return p.features(x[:10])


def fresh_weights(p, x):
    with torch.no_grad():
        return CourseCNN().eval().features(x)


def as_numpy(p, x):
    p.eval()
    with torch.no_grad():
        return p.features(x).numpy()


WRONG_FEATURES = {
    "train mode and a graph": (train_mode_with_graph, "torch.no_grad"),
    "train mode, detached": (train_mode_detached, "model.eval()"),
    "eval mode with a graph": (eval_with_graph, "torch.no_grad"),
    "the logits": (logits, "model.features(x), not model(x)"),
    "not flattened": (unflattened, "Flatten"),
    "only some images": (first_ten, "all 16 images"),
    "a fresh, untrained backbone": (fresh_weights, "pretrained weights"),
    "a numpy array": (as_numpy, "should be a tensor"),
    "unanswered": (lambda p, x: None, "should be a tensor"),
}


@pytest.mark.parametrize("name", WRONG_FEATURES)
def test_cached_features_wrong(pretrained, batch, name: str) -> None:
    x, _ = batch
    mistake, hint = WRONG_FEATURES[name]
    features = mistake(pretrained, x)
    pretrained.train()
    result = ex.check_cached_features(features, pretrained, x, verbose=False)
    assert not result.passed and hint in str(result), str(result)
    assert pretrained.training  # the checker restores the mode


# ---------------------------------------------------------------- exercise 3: read the learning curve

LABELS, FROZEN, FULL = (1, 3, 10, 30), [60.0, 80.0, 90.0, 93.0], [50.0, 80.0, 92.0, 91.0]


def test_crossover_right(capsys) -> None:
    assert ex.check_crossover(10, LABELS, FROZEN, FULL).passed  # a tie at 3 is not "beats"
    assert "well done" in capsys.readouterr().out
    assert ex.check_crossover(None, LABELS, [9.0] * 4, [1.0] * 4, verbose=False).passed
    assert ex.check_crossover(10.0, LABELS, FROZEN, FULL, verbose=False).passed


WRONG_CROSSOVERS = {
    "the tie counted as beating": (3, "still ahead (or level)"),
    "the last label count": (30, "still ahead"),
    "frozen ahead (comparison inverted)": (1, "still ahead"),
    "never, although it does": (None, "it does"),
    "a string": ("10", "Answer with one of"),
    "not a measured count": (5, "Answer with one of"),
    "the stub's -1": (-1, "Answer with one of"),
    "True (== 1)": (True, "Answer with one of"),
}


@pytest.mark.parametrize("name", WRONG_CROSSOVERS)
def test_crossover_wrong(name: str) -> None:
    answer, hint = WRONG_CROSSOVERS[name]
    result = ex.check_crossover(answer, LABELS, FROZEN, FULL, verbose=False)
    assert not result.passed and hint in str(result), str(result)


def test_crossover_when_full_leads_later_again() -> None:
    labels, frozen, full = (1, 3, 10), [60.0, 80.0, 90.0], [61.0, 70.0, 95.0]
    assert ex.check_crossover(1, labels, frozen, full, verbose=False).passed
    result = ex.check_crossover(10, labels, frozen, full, verbose=False)
    assert not result.passed and "not for the first time" in str(result)
