"""The shipped handwritten digits: loading, seeded task splits and distribution shifts."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from .paths import verified_path

DATA_FILE = "digits.npz"
SOURCE_CLASSES: tuple[int, ...] = (0, 1, 2, 3, 4)
TARGET_CLASSES: tuple[int, ...] = (5, 6, 7, 8, 9)
TEST_PER_CLASS = 100
MAX_VAL_PER_CLASS = 100  # leaves at least 300 images per class for training
SPLIT_SEED = 2024  # fixes which images are test images, for every notebook and seed
_REBUILD_HINT = "Restore it with `git checkout data/` or rebuild it with `python scripts/build_dataset.py`."


@dataclass(frozen=True)
class Task:
    """A classification task: train/test tensors with labels remapped to 0..n_classes-1.

    ``x_val``/``y_val`` hold an optional validation split for choices such as the learning
    rate, so that the test split only reports the final number.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[int, ...]
    x_val: torch.Tensor | None = None
    y_val: torch.Tensor | None = None

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        val = "" if self.x_val is None else f"val={tuple(self.x_val.shape)}, "
        return f"Task(classes={self.classes}, train={tuple(self.x_train.shape)}, {val}test={tuple(self.x_test.shape)})"


@lru_cache(maxsize=1)
def _load_arrays() -> tuple[np.ndarray, np.ndarray]:
    path = verified_path(DATA_FILE, _REBUILD_HINT)
    with np.load(path) as archive:
        return archive["images"], archive["labels"]


@lru_cache(maxsize=1)
def _as_tensors() -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = _load_arrays()
    return torch.from_numpy(images).float().div_(255.0).unsqueeze(1), torch.from_numpy(labels).long()


def clear_cache() -> None:
    """Forget the loaded data set (the next call re-reads and re-verifies the file)."""
    _load_arrays.cache_clear()
    _as_tensors.cache_clear()


def load_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """All shipped digits as float images in [0, 1], shape (N, 1, 28, 28), and int64 labels.

    Returns fresh copies, so changing them in place cannot affect later calls.
    """
    x, y = _as_tensors()
    return x.clone(), y.clone()


def _validate_classes(classes: Sequence[int]) -> tuple[int, ...]:
    classes = tuple(int(c) for c in classes)
    if not classes or len(set(classes)) != len(classes) or not all(0 <= c <= 9 for c in classes):
        raise ValueError(f"classes must be distinct digits 0-9, got {classes}.")
    return classes


def _split_indices(labels: torch.Tensor, digit: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train pool, test) indices of one digit; the same on every call."""
    idx = torch.nonzero(labels == digit).flatten()
    order = torch.randperm(len(idx), generator=torch.Generator().manual_seed(SPLIT_SEED + digit))
    idx = idx[order]
    return idx[TEST_PER_CLASS:], idx[:TEST_PER_CLASS]


def make_task(
    classes: Sequence[int] = TARGET_CLASSES,
    k_per_class: int | None = None,
    seed: int = 0,
    shift: str | None = None,
    val_per_class: int = 0,
) -> Task:
    """A task on ``classes``: ``k_per_class`` labelled training images per class (all if None).

    The test set is fixed (100 per class); ``seed`` only chooses which training images are
    labelled. ``val_per_class`` > 0 adds a fixed validation split (the same for every seed),
    taken from the non-test images before the training images are drawn, so validation,
    training and test images never overlap. ``shift`` applies a named distribution shift
    (see ``SHIFTS``) to every split.
    """
    classes = _validate_classes(classes)
    if not 0 <= val_per_class <= MAX_VAL_PER_CLASS:
        raise ValueError(f"val_per_class must be between 0 and {MAX_VAL_PER_CLASS}, got {val_per_class}.")
    x, y = _as_tensors()  # indexing below copies, so the cache stays untouched
    train_idx, val_idx, test_idx = [], [], []
    for digit in classes:
        pool, test = _split_indices(y, digit)
        val_idx.append(pool[:val_per_class])
        pool = pool[val_per_class:]
        if k_per_class is not None:
            if not 1 <= k_per_class <= len(pool):
                raise ValueError(f"k_per_class must be between 1 and {len(pool)}, got {k_per_class}.")
            pick = torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed * 100 + digit))
            pool = pool[pick[:k_per_class]]
        train_idx.append(pool)
        test_idx.append(test)
    train, val, test = torch.cat(train_idx), torch.cat(val_idx), torch.cat(test_idx)
    remap = torch.full((10,), -1, dtype=torch.long)
    remap[list(classes)] = torch.arange(len(classes))
    x_train, x_val, x_test = x[train], x[val], x[test]
    if shift is not None:
        x_train, x_test = apply_shift(x_train, shift), apply_shift(x_test, shift, seed=1)
        x_val = apply_shift(x_val, shift, seed=2)
    if not val_per_class:
        return Task(x_train, remap[y[train]], x_test, remap[y[test]], classes)
    return Task(x_train, remap[y[train]], x_test, remap[y[test]], classes, x_val, remap[y[val]])


def permute_pixels(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Scramble pixel positions with one fixed permutation: same digits, no spatial structure."""
    n_pixels = x.shape[-1] * x.shape[-2]
    perm = torch.randperm(n_pixels, generator=torch.Generator().manual_seed(seed))
    return x.flatten(-2)[..., perm].reshape(x.shape)


def invert(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """White digits on black become black digits on white."""
    return 1.0 - x


def low_contrast(x: torch.Tensor, seed: int = 0, factor: float = 0.15) -> torch.Tensor:
    """Squeeze the intensity range around mid-grey."""
    return 0.5 + (x - 0.5) * factor


def gaussian_noise(x: torch.Tensor, seed: int = 0, std: float = 0.6) -> torch.Tensor:
    """Add seeded pixel noise."""
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))
    return x + std * noise


SHIFTS: dict[str, Callable[..., torch.Tensor]] = {
    "permute": lambda x, seed=0: permute_pixels(x),  # one permutation for train and test
    "invert": invert,
    "low_contrast": low_contrast,
    "noise": gaussian_noise,
}


def apply_shift(x: torch.Tensor, name: str, seed: int = 0) -> torch.Tensor:
    """Apply the distribution shift called ``name`` (one of ``SHIFTS``)."""
    if name not in SHIFTS:
        raise KeyError(f"Unknown shift {name!r}. Valid shifts: {', '.join(sorted(SHIFTS))}.")
    return SHIFTS[name](x, seed=seed)


def batches(
    x: torch.Tensor, y: torch.Tensor, batch_size: int, generator: torch.Generator | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield shuffled (x, y) mini-batches (no shuffle when ``generator`` is None)."""
    n = len(x)
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        yield x[idx], y[idx]
