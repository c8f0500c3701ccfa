"""Checkers of 05_partial_freezing: a right and a wrong answer each, and no crash on junk."""
from __future__ import annotations

from course_utils.exercises import partial as ex
from course_utils.freezing import freeze_to, param_groups


def test_partial_freeze(model) -> None:
    for block in (model.block1, model.block2):
        for p in block.parameters():
            p.requires_grad = False
    assert ex.check_partial_freeze(model, 2, verbose=False).passed
    assert not ex.check_partial_freeze(model, 3, verbose=False).passed
    model.requires_grad_(False)
    result = ex.check_partial_freeze(model, 2, verbose=False)
    assert not result.passed and "should be trainable" in str(result)
    assert not ex.check_partial_freeze(None, 2, verbose=False).passed


def test_param_groups(model) -> None:
    freeze_to(model, 1)
    right = [{"params": list(getattr(model, n).parameters()), "lr": lr}
             for n, lr in [("block2", 2.5e-4), ("block3", 5e-4), ("head", 1e-3)]]
    assert ex.check_param_groups(right, model, head_lr=1e-3, decay=0.5, verbose=False).passed
    assert ex.check_param_groups(param_groups(model, lr=1e-3, decay=0.5), model, verbose=False).passed
    same_lr = [dict(g, lr=1e-3) for g in right]
    assert "Expected learning rates" in str(ex.check_param_groups(same_lr, model, verbose=False))
    with_frozen = right + [{"params": list(model.block1.parameters()), "lr": 1.25e-4}]
    assert "frozen parameters are in your groups" in str(ex.check_param_groups(with_frozen, model, verbose=False))
    assert not ex.check_param_groups(None, model, verbose=False).passed
    assert not ex.check_param_groups([{"params": list(model.parameters()), "lr": 1e-3}], model, verbose=False).passed


def test_best_block() -> None:
    results = {"block1": 97.0, "block2": 96.5, "block3": 90.0, "head": 50.0}
    assert ex.check_best_block("block1", results, verbose=False).passed
    assert ex.check_best_block("block2", results, verbose=False).passed  # within a point: a tie
    assert not ex.check_best_block("head", results, verbose=False).passed
    assert not ex.check_best_block(["block1"], results, verbose=False).passed
    assert not ex.check_best_block(None, results, verbose=False).passed
