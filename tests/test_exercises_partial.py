"""Checkers of 05_partial_freezing: right solutions pass; a catalogue of plausible wrong ones fails with a hint."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from course_utils.exercises import partial as ex
from course_utils.freezing import freeze, freeze_to
from course_utils.models import CourseCNN
from course_utils.optim_groups import param_groups

# ---------------------------------------------------------------- exercise 1: freeze block1 and block3 by hand


def loop(m):
    for block in (m.block1, m.block3):
        for p in block.parameters():
            p.requires_grad = False


@pytest.mark.parametrize(
    "solution",
    [loop, lambda m: [m.block1.requires_grad_(False), m.block3.requires_grad_(False)]],
)
def test_partial_freeze_right(pretrained, solution) -> None:
    solution(pretrained)
    assert ex.check_partial_freeze(pretrained, verbose=False).passed


def identity(m):  # the case from the review
    m.block1 = nn.Identity()
    m.block3 = nn.Identity()


def deleted(m):
    del m.block1


def attribute(m):
    m.block1.requires_grad = False
    m.block3.requires_grad = False


def conv_only(m):
    m.block1[0].weight.requires_grad = False
    m.block3[0].weight.requires_grad = False


WRONG_PARTIAL = {
    "freeze_to(model, 2) (a helper, and a prefix)": (lambda m: freeze_to(m, 2), "You used freeze_to"),
    "freeze(model, 'block1', 'block3') (a helper)": (lambda m: freeze(m, "block1", "block3"), "You used freeze"),
    "a prefix by hand: block1 and block2": (
        lambda m: [m.block1.requires_grad_(False), m.block2.requires_grad_(False)],
        "['block2']",
    ),
    "block1 to block3": (
        lambda m: [getattr(m, b).requires_grad_(False) for b in ("block1", "block2", "block3")],
        "['block2']",
    ),
    "blocks replaced by nn.Identity()": (identity, "lost parameters"),
    "block1 deleted": (deleted, "frozen is not removed"),
    "module attribute": (attribute, "plain attribute"),
    "everything": (lambda m: m.requires_grad_(False), "Frozen but should be trainable"),
    "only block3": (lambda m: m.block3.requires_grad_(False), "['block1']"),
    "conv weights only": (conv_only, "['block1', 'block3']"),
    "unanswered": (lambda m: None, "['block1', 'block3']"),
}


@pytest.mark.parametrize("name", WRONG_PARTIAL)
def test_partial_freeze_wrong(pretrained, name: str) -> None:
    mistake, hint = WRONG_PARTIAL[name]
    mistake(pretrained)
    result = ex.check_partial_freeze(pretrained, verbose=False)
    assert not result.passed and hint in str(result), str(result)


def test_partial_freeze_other_sets(model) -> None:
    model.block2.requires_grad_(False)
    assert ex.check_partial_freeze(model, frozen=("block2",), verbose=False).passed
    assert not ex.check_partial_freeze(model, verbose=False).passed


# ---------------------------------------------------------------- exercise 2: discriminative learning rates

RATES = [("block2", 2.5e-4), ("block3", 5e-4), ("head", 1e-3)]


def lr_model() -> CourseCNN:
    torch.manual_seed(0)
    model = CourseCNN()
    freeze_to(model, 1)
    return model


def right_groups(m):
    return [{"params": list(getattr(m, n).parameters()), "lr": lr} for n, lr in RATES]


def split_weights_and_biases(m):  # two groups for a block, both at its rate: same optimizer behaviour
    return [
        {"params": [p for name, p in getattr(m, n).named_parameters() if name.endswith(part)], "lr": lr}
        for n, lr in RATES
        for part in ("weight", "bias")
        if any(name.endswith(part) for name, _ in getattr(m, n).named_parameters())
    ]


@pytest.mark.parametrize(
    "solution", [right_groups, lambda m: param_groups(m, lr=1e-3, decay=0.5), split_weights_and_biases]
)
def test_param_groups_right(solution) -> None:
    model = lr_model()
    groups = solution(model)
    torch.optim.Adam(groups)
    assert ex.check_param_groups(groups, model, head_lr=1e-3, decay=0.5, verbose=False).passed


def first_tensor_only(m):  # the case from the review: 5 of 8 trainable tensors left out
    return [
        {"params": [m.block2[0].weight], "lr": 2.5e-4},
        {"params": [m.block3[0].weight], "lr": 5e-4},
        {"params": [m.head[2].weight], "lr": 1e-3},
    ]


WRONG_GROUPS = {
    "one tensor per block": (first_tensor_only, "5 of 8 trainable parameter tensors are in no group"),
    "the frozen block included": (
        lambda m: right_groups(m) + [{"params": list(m.block1.parameters()), "lr": 1.25e-4}],
        "frozen parameters",
    ),
    "one lr for all": (lambda m: [dict(g, lr=1e-3) for g in right_groups(m)], "Expected learning rates"),
    "decay reversed": (
        lambda m: [dict(g, lr=lr) for g, lr in zip(right_groups(m), (1e-3, 5e-4, 2.5e-4))],
        "Expected learning rates",
    ),
    "off by one block": (
        lambda m: [dict(g, lr=lr) for g, lr in zip(right_groups(m), (5e-4, 1e-3, 1e-3))],
        "Expected learning rates",
    ),
    "one group with everything": (lambda m: [{"params": list(m.parameters()), "lr": 1e-3}], "frozen parameters"),
    "generators instead of lists": (
        lambda m: [{"params": getattr(m, n).parameters(), "lr": lr} for n, lr in RATES],
        "list(...)",
    ),
    "another model's parameters": (lambda m: right_groups(lr_model()), "not parameters of lr_model"),
    "head forgotten": (lambda m: right_groups(m)[:2], "in no group"),
    "lr as a string": (lambda m: [dict(g, lr=str(g["lr"])) for g in right_groups(m)], "positive number"),
    "a block twice": (
        lambda m: right_groups(m) + [{"params": list(m.head.parameters()), "lr": 1e-3}],
        "more than once",
    ),
    "no lr key": (lambda m: [{"params": g["params"]} for g in right_groups(m)], "list of dicts"),
    "unanswered": (lambda m: None, "list of dicts"),
}


@pytest.mark.parametrize("name", WRONG_GROUPS)
def test_param_groups_wrong(name: str) -> None:
    build, hint = WRONG_GROUPS[name]
    model = lr_model()
    result = ex.check_param_groups(build(model), model, head_lr=1e-3, decay=0.5, verbose=False)
    assert not result.passed and hint in str(result), str(result)


def test_param_groups_never_raises_on_a_bad_model() -> None:
    for model in (None, {}, "lr_model", nn.Linear(2, 2)):
        assert not ex.check_param_groups(right_groups(lr_model()), model, verbose=False).passed


# ---------------------------------------------------------------- exercise 3: pick the block, on validation


def by_validation(result, candidates):
    return max(candidates, key=lambda name: result.val_acc(name).mean())


def by_validation_loop(result, candidates):  # the same choice, written out
    best, best_val = None, -1.0
    for name in candidates:
        val = float(np.mean([result.run(name, seed).val_acc for seed in result.seeds]))
        if val > best_val:
            best, best_val = name, val
    return best


@pytest.mark.parametrize("solution", [by_validation, by_validation_loop])
def test_pick_block_right(solution) -> None:
    assert ex.check_pick_block(solution, verbose=False).passed


def test_pick_block_setups_tell_the_mistakes_apart() -> None:
    """Every set-up has one right answer; on the first, the best test accuracy points elsewhere."""
    for _, candidates, table in ex._PICK_SETUPS:
        result = ex.pick_setup(table)
        vals = {name: result.val_acc(name).mean() for name in candidates}
        assert sorted(vals.values())[-1] > sorted(vals.values())[-2], "a tie would accept two answers"
    _, candidates, table = ex._PICK_SETUPS[0]
    result = ex.pick_setup(table)
    assert by_validation(result, candidates) != max(candidates, key=lambda n: result.test_acc(n).mean())


WRONG_PICKS = {
    "picked by mean test accuracy": (
        lambda r, c: max(c, key=lambda n: r.test_acc(n).mean()),
        "the block with the best *test* accuracy",
    ),
    "picked by test among every arm": (
        lambda r, c: max(r.arms, key=lambda n: r.test_acc(n).mean()),
        "not one of the candidates",
    ),
    "every arm, 'all' included": (
        lambda r, c: max(r.arms, key=lambda n: r.val_acc(n).mean()),
        "not one of the candidates",
    ),
    "the first seed's validation only": (
        lambda r, c: max(c, key=lambda n: r.val_acc(n)[0]),
        "the best on a single seed",
    ),
    "the best single validation run": (
        lambda r, c: max(c, key=lambda n: r.val_acc(n).max()),
        "the best on a single seed",
    ),
    "the worst": (lambda r, c: min(c, key=lambda n: r.val_acc(n).mean()), "expected 'block2'"),
    "a fixed name": (lambda r, c: "block1", "expected"),
    "the accuracy, not the name": (lambda r, c: max(r.val_acc(n).mean() for n in c), "return the block's name"),
    "an index": (lambda r, c: int(np.argmax([r.val_acc(n).mean() for n in c])), "return the block's name"),
    "raises": (lambda r, c: r.val_accuracy(c[0]), "raised AttributeError"),
    "the stub": (lambda r, c: None, "return the block's name"),
    "not a function": ("block1", "Define a function"),
}


@pytest.mark.parametrize("name", WRONG_PICKS)
def test_pick_block_wrong(name: str) -> None:
    answer, hint = WRONG_PICKS[name]
    result = ex.check_pick_block(answer, verbose=False)
    assert not result.passed and hint in str(result), str(result)


def test_partial_freeze_copy_is_independent(pretrained) -> None:
    model = copy.deepcopy(pretrained)
    loop(model)
    assert ex.check_partial_freeze(model, verbose=False).passed
    assert not ex.check_partial_freeze(pretrained, verbose=False).passed
