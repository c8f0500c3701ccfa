from __future__ import annotations

import time

import pytest
import torch

from course_utils import data
from course_utils.data import SHIFTS, apply_shift, batches, load_digits, make_task, permute_pixels


def test_load_digits_shape_range_and_balance() -> None:
    data.clear_cache()
    start = time.perf_counter()
    x, y = load_digits()
    assert time.perf_counter() - start < 1.0
    assert x.shape == (5000, 1, 28, 28) and x.dtype == torch.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert torch.bincount(y).tolist() == [500] * 10
    x[0] = 7.0
    assert load_digits()[0][0].max() <= 1.0, "load_digits must hand out copies"


def test_task_remaps_labels_and_fixes_test_set() -> None:
    a = make_task((5, 6, 7, 8, 9), k_per_class=3, seed=0)
    b = make_task((5, 6, 7, 8, 9), k_per_class=3, seed=1)
    assert a.x_train.shape == (15, 1, 28, 28)
    assert sorted(a.y_train.tolist()) == sorted([0, 1, 2, 3, 4] * 3)
    assert torch.equal(a.x_test, b.x_test), "the test set must not depend on the seed"
    assert not torch.equal(a.x_train, b.x_train), "the seed chooses the labelled images"
    assert torch.equal(
        make_task((5, 6), k_per_class=3, seed=0).x_train, make_task((5, 6), k_per_class=3, seed=0).x_train
    )


def test_train_and_test_are_disjoint() -> None:
    task = make_task((0, 1, 2, 3, 4))
    train = {bytes(img.numpy()) for img in (task.x_train * 255).byte()}
    test = {bytes(img.numpy()) for img in (task.x_test * 255).byte()}
    assert len(task.x_train) == 2000 and len(task.x_test) == 500
    assert not train & test


@pytest.mark.parametrize("bad", [(), (3, 3), (10,), (-1,)])
def test_bad_classes_are_refused(bad) -> None:
    with pytest.raises(ValueError, match="distinct digits"):
        make_task(bad)


def test_bad_k_is_refused() -> None:
    with pytest.raises(ValueError, match="k_per_class must be between 1 and 400"):
        make_task((5,), k_per_class=0)


def test_permutation_is_fixed_and_keeps_pixels() -> None:
    x = torch.rand(2, 1, 28, 28)
    assert torch.equal(permute_pixels(x), permute_pixels(x))
    assert not torch.equal(permute_pixels(x), x)
    assert torch.equal(permute_pixels(x).flatten(1).sort(1).values, x.flatten(1).sort(1).values)


@pytest.mark.parametrize("name", sorted(SHIFTS))
def test_every_shift_changes_the_images(name: str) -> None:
    x = make_task((0,), k_per_class=4).x_train
    shifted = apply_shift(x, name)
    assert shifted.shape == x.shape and not torch.equal(shifted, x)


def test_task_with_shift_and_unknown_shift() -> None:
    plain, inverted = make_task((0, 1), k_per_class=2), make_task((0, 1), k_per_class=2, shift="invert")
    assert torch.allclose(inverted.x_train, 1 - plain.x_train)
    with pytest.raises(KeyError, match="Valid shifts: invert, low_contrast, noise, permute"):
        apply_shift(plain.x_train, "blur")


def test_batches_cover_everything_once() -> None:
    x, y = torch.arange(10).float(), torch.arange(10)
    seen = torch.cat([yb for _, yb in batches(x, y, 3, torch.Generator().manual_seed(0))])
    assert sorted(seen.tolist()) == list(range(10))
    assert [len(yb) for _, yb in batches(x, y, 4)] == [4, 4, 2]
