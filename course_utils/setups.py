"""The course's own comparisons: the tasks, arms, budgets and seeds that notebooks 04-07 and `make bench`
share, so that each number is measured the same way wherever it is printed. The recipe itself (``compare``)
is in ``course_utils.experiment``."""

from __future__ import annotations

from .data import TARGET_CLASSES, Task, make_task
from .experiment import Arm, Budget
from .freezing import freeze
from .models import CourseCNN

__all__ = [
    "CLOSE_CALL_SEEDS",
    "HEAD_LR_GRID",
    "LONG_TRANSFER_ARMS",
    "LONG_TRANSFER_BUDGET",
    "LONG_TRANSFER_LABELS",
    "SHIFT_BUDGET",
    "SHIFT_SEEDS",
    "TRANSFER_BUDGET",
    "TRANSFER_LABELS",
    "TRANSFER_SEEDS",
    "VAL_PER_CLASS",
    "inverted_digits",
    "transfer_arms",
    "transfer_task",
]

# --- The course's transfer comparison: notebook 04 and `make bench` print the same numbers ----------

VAL_PER_CLASS = 20  # validation images per class, the same for every seed
TRANSFER_LABELS: tuple[int, ...] = (1, 3, 10, 30, 100)  # labelled training images per class
TRANSFER_SEEDS: tuple[int, ...] = (0, 1, 2)
TRANSFER_BUDGET = Budget(steps=16, batch_size=25, lr_grid=(1e-3, 3e-3, 1e-2))
HEAD_LR_GRID: tuple[float, ...] = (3e-3, 1e-2, 3e-2)  # a head trained alone takes larger steps
# Five paired seeds where a "beats" verdict lands within 2 points of the margin: with no real difference, all
# signs agree by chance 1 time in 16 (3 seeds: 1 time in 4). TRANSFER_SEEDS are the first three.
CLOSE_CALL_SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4)
# Does the frozen backbone's lead over scratch survive a longer budget? The same two arms with 8x the steps.
# One grid for both arms (the head's, centred on 0.01), extended past an edge that wins, as for every arm.
LONG_TRANSFER_BUDGET = Budget(
    steps=8 * TRANSFER_BUDGET.steps, batch_size=TRANSFER_BUDGET.batch_size, lr_grid=HEAD_LR_GRID
)
LONG_TRANSFER_LABELS: tuple[int, ...] = (30, 100)
LONG_TRANSFER_ARMS: tuple[str, ...] = ("scratch", "frozen")


def transfer_task(k: int, seed: int) -> Task:
    """Digits 5-9 with ``k`` labelled images per class (``seed`` picks them) and the fixed validation split."""
    return make_task(TARGET_CLASSES, k_per_class=k, seed=seed, val_per_class=VAL_PER_CLASS)


def transfer_arms() -> list[Arm]:
    """Scratch, frozen backbone and full fine-tuning, as notebook 04 compares them."""
    return [
        Arm("scratch", build=lambda task: CourseCNN(task.n_classes)),  # random weights, all trained
        Arm(
            "frozen",
            setup=lambda model: freeze(model, "block1", "block2", "block3"),  # new head only
            cache_blocks=3,
            lr_grid=HEAD_LR_GRID,
        ),
        Arm("full"),  # pretrained backbone + new head, all trained
    ]


# --- The course's shifted-target comparison: notebooks 06 and 07 print the same numbers -----------

SHIFT_BUDGET = Budget(steps=24, batch_size=50, lr_grid=(1e-3, 3e-3, 1e-2))
SHIFT_SEEDS: tuple[int, ...] = (0, 1, 2)


def inverted_digits(seed: int) -> Task:
    """Digits 5-9 inverted (black on white): 100 labelled images per class (``seed`` picks them)."""
    return make_task(TARGET_CLASSES, k_per_class=100, seed=seed, shift="invert", val_per_class=VAL_PER_CLASS)
