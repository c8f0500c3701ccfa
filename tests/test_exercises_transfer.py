"""Checkers of 04_transfer_learning: right solutions pass; a catalogue of plausible wrong ones fails with a hint."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from course_utils.exercises import transfer as ex
from course_utils.experiment import Paired
from course_utils.models import CourseCNN, build_head

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
    model.head = build_head(5)
    for block in (model.block1, model.block2, model.block3):
        block.requires_grad_(False)
    return model


@pytest.mark.parametrize("solution", [freeze_then_new_head, new_last_layer, new_head_then_freeze_backbone])
def test_frozen_backbone_right(pretrained, solution) -> None:
    assert ex.check_frozen_backbone(solution(pretrained), pretrained, verbose=False).passed


def head_before_freezing(p):
    model = copy.deepcopy(p)
    model.head = build_head(5)
    model.requires_grad_(False)
    return model


def old_head_kept(p):
    model = copy.deepcopy(p)
    for block in (model.block1, model.block2, model.block3):
        block.requires_grad_(False)
    return model


def ten_classes(p):
    model = freeze_then_new_head(p)
    model.head = build_head(10)
    return model


def fresh_cnn(p):
    model = CourseCNN()
    model.block1.requires_grad_(False), model.block2.requires_grad_(False), model.block3.requires_grad_(False)
    model.head = build_head(5)
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
    model.head = build_head(5)
    return model


def eval_instead(p):
    model = copy.deepcopy(p)
    model.eval()
    model.head = build_head(5)
    return model


def block3_left_trainable(p):
    model = copy.deepcopy(p)
    model.block1.requires_grad_(False)
    model.block2.requires_grad_(False)
    model.head = build_head(5)
    return model


def head_for_64_features(p):  # the case from the review: passed, then crashed on the first forward pass
    model = copy.deepcopy(p)
    model.requires_grad_(False)
    model.head = nn.Sequential(nn.Flatten(), nn.Linear(64, 5))
    return model


WRONG_BACKBONES = {
    "a head for 64 features (the backbone gives 256)": (head_for_64_features, "A forward pass fails"),
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
    pretrained.head = build_head(5)
    result = ex.check_frozen_backbone(pretrained, pretrained, verbose=False)
    assert not result.passed and "work on the copy" in str(result)


# ---------------------------------------------------------------- exercise 2: cache_features(model, x)


def right_features(model, x):
    model.eval()
    with torch.no_grad():
        return model.features(x)


def by_blocks(model, x):
    model.eval()
    with torch.inference_mode():
        return model.block3(model.block2(model.block1(x))).flatten(1).clone()


@pytest.mark.parametrize("solution", [right_features, by_blocks])
def test_cached_features_right(pretrained, batch, solution) -> None:
    x, _ = batch
    pretrained.train()
    assert ex.check_cached_features(solution, pretrained, x, verbose=False).passed
    assert pretrained.training  # the checker works on a copy


def no_eval(model, x):  # the case from the review: the checker's model used to be in eval mode already
    with torch.no_grad():
        return model.features(x)


def detached(model, x):  # the case from the review: no grad_fn, but the graph was built
    model.eval()
    return model.features(x).detach()


def with_graph(model, x):
    model.eval()
    return model.features(x)


def logits(model, x):
    model.eval()
    with torch.no_grad():
        return model(x)


def unflattened(model, x):
    model.eval()
    with torch.no_grad():
        return model.block3(model.block2(model.block1(x)))


def fresh_weights(model, x):
    with torch.no_grad():
        return CourseCNN().eval().features(x)


def as_numpy(model, x):
    return right_features(model, x).numpy()


WRONG_FEATURES = {
    "no .eval() (the model handed over is in train mode)": (no_eval, "Call model.eval() first"),
    ".detach() instead of torch.no_grad()": (detached, ".detach() only drops it afterwards"),
    "a graph attached": (with_graph, "torch.no_grad"),
    "the logits": (logits, "model.features(x), not model(x)"),
    "not flattened": (unflattened, "Flatten"),
    "a fresh, untrained backbone": (fresh_weights, "eval-mode features"),
    "a numpy array": (as_numpy, "Return the features as a tensor"),
    "unanswered": (lambda model, x: None, "Return the features as a tensor"),
    "crashes": (lambda model, x: model.nothing(x), "raised AttributeError"),
    "not a function": (None, "Define a function"),
}


@pytest.mark.parametrize("name", WRONG_FEATURES)
def test_cached_features_wrong(pretrained, batch, name: str) -> None:
    x, _ = batch
    mistake, hint = WRONG_FEATURES[name]
    result = ex.check_cached_features(mistake, pretrained, x, verbose=False)
    assert not result.passed and hint in str(result), str(result)


# ---------------------------------------------------------------- exercise 3: read the learning curve

LABELS = (1, 3, 10, 100)
COMMITTED = [  # notebook 04's table: full - frozen per seed, at 1, 3, 10, 100 labels per class
    Paired("full", "frozen", (-14.4, -5.8, -3.2)),
    Paired("full", "frozen", (-8.4, -3.9, -3.0)),
    Paired("full", "frozen", (-2.4, -2.1, -1.2)),
    Paired("full", "frozen", (-1.6, -0.1, 2.6)),
]
LATER = [*COMMITTED[:2], Paired("full", "frozen", (0.4, 1.0, 2.0)), Paired("full", "frozen", (1.0, 2.0, 3.0))]


def test_crossover_right(capsys) -> None:
    assert ex.check_crossover(None, LABELS, COMMITTED).passed
    out = capsys.readouterr().out
    assert "at no label count is full fine-tuning ahead on every seed" in out
    assert "At 100 labels it is ahead on average (+0.3 points) and on its best seed (+2.6)" in out
    assert "behind on another (-1.6)" in out and "never beats" not in out
    assert ex.check_crossover(10, LABELS, LATER, verbose=False).passed
    assert ex.check_crossover(10.0, LABELS, LATER, verbose=False).passed


WRONG_CROSSOVERS = {
    "100: ahead on average and on one seed": (100, "ahead on average (+0.3) and on one seed (+2.6)"),
    "1: frozen ahead on every seed": (1, "frozen backbone is ahead on every seed"),
    "10": (10, "frozen backbone is ahead on every seed"),
    "a string": ("10", "Answer with one of"),
    "not a measured count": (5, "Answer with one of"),
    "the stub's -1": (-1, "Answer with one of"),
    "True (== 1)": (True, "Answer with one of"),
}


@pytest.mark.parametrize("name", WRONG_CROSSOVERS)
def test_crossover_wrong(name: str) -> None:
    answer, hint = WRONG_CROSSOVERS[name]
    result = ex.check_crossover(answer, LABELS, COMMITTED, verbose=False)
    assert not result.passed and hint in str(result), str(result)


def test_crossover_when_full_leads_later() -> None:
    result = ex.check_crossover(100, LABELS, LATER, verbose=False)
    assert not result.passed and "not for the first time" in str(result)
    result = ex.check_crossover(None, LABELS, LATER, verbose=False)
    assert not result.passed and "at 10 labels full fine-tuning is ahead on every seed" in str(result)


def test_crossover_needs_the_pairs() -> None:
    result = ex.check_crossover(None, LABELS, [0.0] * 4, verbose=False)
    assert not result.passed and "paired" in str(result)
