"""Fair comparisons, defined once: the same budget for every arm, each arm's own learning rate
chosen on a validation split, the test split only for the final number, paired seeds.

    budget = Budget(steps=24, batch_size=50, lr_grid=(1e-3, 3e-3, 1e-2))
    arms = [Arm("frozen", setup=lambda m: freeze(m, "block1", "block2", "block3"), cache_blocks=3),
            Arm("full")]
    result = compare(arms, lambda seed: make_task(k_per_class=10, seed=seed, val_per_class=20), budget, seeds=range(5))
    result.paired("frozen", "full"), result.verdict("frozen", "full")
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .data import Task
from .models import pretrained_with_new_head
from .parallel import random_state_kept, run_jobs
from .training import (
    evaluate,
    extract_features,
    make_optimizer,
    predict,
    seed_everything,
    train,
)

NO_CLEAR_DIFFERENCE = "no clear difference at this budget"
MIN_SEEDS_FOR_VERDICT = 3
ROUND_DIGITS = 6  # paired differences are rounded to this many decimals (float noise)
MIN_EFFECT = 1.0  # points: a mean paired difference at or below this is no clear difference
OPTIMIZERS = ("adam", "adamw", "sgd")
K = TypeVar("K")  # the key of each task in compare_each


@dataclass(frozen=True)
class Budget:
    """What every arm gets: exactly ``steps`` optimizer steps of ``batch_size`` images, and the
    learning rates in ``lr_grid`` to choose from (on validation)."""

    steps: int
    batch_size: int
    lr_grid: tuple[float, ...]
    optimizer: str = "adam"
    max_extensions: int = 2

    def __post_init__(self) -> None:
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"Budget.steps must be a positive int, got {self.steps!r}.")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"Budget.batch_size must be a positive int, got {self.batch_size!r}.")
        grid = tuple(float(lr) for lr in self.lr_grid)
        if not grid or any(lr <= 0 for lr in grid) or len(set(grid)) != len(grid):
            raise ValueError(f"Budget.lr_grid must hold distinct positive learning rates, got {self.lr_grid!r}.")
        object.__setattr__(self, "lr_grid", grid)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"Unknown optimizer {self.optimizer!r}; choose one of {OPTIMIZERS}.")
        if not isinstance(self.max_extensions, int) or self.max_extensions < 0:
            raise ValueError(f"Budget.max_extensions must be an int >= 0, got {self.max_extensions!r}.")

    @property
    def schedule(self) -> str:
        """What every arm trains for, without the learning rates: "16 adam steps of 25 images"."""
        return f"{self.steps} {self.optimizer} steps of {self.batch_size} images"

    def __str__(self) -> str:
        grid = ", ".join(f"{lr:g}" for lr in self.lr_grid)
        return f"{self.schedule}, lr chosen on validation from {{{grid}}}" + (
            f" (extended past an edge that wins, up to {self.max_extensions} more)" if self.max_extensions else ""
        )


@dataclass(frozen=True)
class Arm:
    """One strategy of a comparison.

    ``build(task)`` returns the fresh model (default: the pretrained course CNN with a new head for
    ``task.n_classes``); ``setup(model)`` then applies the strategy, e.g. the freezing lines. Both run
    right after ``seed_everything(seed)``, once per seed; every learning rate starts from a copy.
    ``cache_blocks=k`` trains only the children after the first k (which must be frozen) on their
    cached outputs: the same result as training the whole model, faster. ``optimizer(model, lr)``
    and ``on_epoch_end(epoch, model, optimizer)`` customise training (param groups, unfreezing);
    ``finish(model, x_train)`` runs after training, before evaluation (e.g. ``recalibrate_bn``).
    ``lr_grid`` replaces the budget's grid for this arm (same number of values: same tuning effort),
    for arms whose good learning rates lie elsewhere, such as a head trained alone. Whatever the
    grid, the same edge rule applies to every arm (see ``extended_grid_search``).
    """

    name: str
    setup: Callable[[nn.Module], object] | None = None
    build: Callable[[Task], nn.Module] | None = None
    cache_blocks: int = 0
    optimizer: Callable[[nn.Module, float], torch.optim.Optimizer] | None = None
    on_epoch_end: Callable[[int, nn.Module, torch.optim.Optimizer], None] | None = None
    finish: Callable[[nn.Module, torch.Tensor], object] | None = None
    lr_grid: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"An arm needs a non-empty name, got {self.name!r}.")
        if self.cache_blocks < 0:
            raise ValueError(f"Arm {self.name!r}: cache_blocks must be >= 0, got {self.cache_blocks}.")
        if self.lr_grid is not None:
            grid = tuple(float(lr) for lr in self.lr_grid)
            if not grid or any(lr <= 0 for lr in grid) or len(set(grid)) != len(grid):
                raise ValueError(
                    f"Arm {self.name!r}: lr_grid must hold distinct positive learning rates, got {self.lr_grid!r}."
                )
            object.__setattr__(self, "lr_grid", grid)

    def grid(self, budget: Budget) -> tuple[float, ...]:
        """The learning rates this arm tries: its own grid, or the budget's."""
        if self.lr_grid is None:
            return budget.lr_grid
        if len(self.lr_grid) != len(budget.lr_grid):
            raise ValueError(
                f"Arm {self.name!r} tries {len(self.lr_grid)} learning rates but the budget's grid has "
                f"{len(budget.lr_grid)}: give every arm the same number, so each gets the same tuning."
            )
        return self.lr_grid

    def fresh_model(self, task: Task) -> nn.Module:
        """The arm's model before training (call ``seed_everything`` first for a fixed init)."""
        model = self.build(task) if self.build is not None else pretrained_with_new_head(task.n_classes)
        if self.setup is not None:
            self.setup(model)
        return model


@dataclass(frozen=True)
class Run:
    """One arm on one seed: the learning rate chosen on validation and that run's accuracies (%)."""

    arm: str
    seed: int
    lr: float
    val_acc: float
    test_acc: float
    val_by_lr: dict[float, float]
    steps: int
    model: nn.Module = field(repr=False, compare=False)
    at_edge: bool = False  # the chosen lr is still the smallest or largest tried: the grid may cap this arm


@dataclass(frozen=True)
class Paired:
    """Test accuracy of ``a`` minus ``b`` on the same seeds (same data, same test set), in points."""

    a: str
    b: str
    diffs: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.diffs:
            raise ValueError(f"Paired({self.a!r}, {self.b!r}) needs at least one difference.")
        # accuracies are multiples of 100/len(test set): round away float noise, so a tie is a tie
        object.__setattr__(self, "diffs", tuple(round(float(d), ROUND_DIGITS) for d in self.diffs))

    @property
    def mean(self) -> float:
        return round(float(np.mean(self.diffs)), ROUND_DIGITS)

    @property
    def low(self) -> float:
        return min(self.diffs)

    @property
    def high(self) -> float:
        return max(self.diffs)

    @property
    def same_sign(self) -> bool:
        """True when every paired difference is strictly positive, or every one strictly negative."""
        return all(d > 0 for d in self.diffs) or all(d < 0 for d in self.diffs)

    def verdict(self, margin: float = MIN_EFFECT) -> str:
        """ "A beats B" only when every difference has the same sign and the mean exceeds ``margin``
        points; otherwise "no clear difference at this budget"."""
        if not self.same_sign or abs(self.mean) <= margin:
            return NO_CLEAR_DIFFERENCE
        return f"{self.a} beats {self.b}" if self.mean > 0 else f"{self.b} beats {self.a}"

    def __str__(self) -> str:
        return (
            f"{self.a} - {self.b}: {self.mean:+.1f} points (min {self.low:+.1f}, max {self.high:+.1f}, "
            f"{len(self.diffs)} seeds)"
        )


@dataclass(frozen=True)
class Comparison:
    """Every run of ``compare``: per arm and seed the chosen lr and its validation and test accuracy."""

    runs: tuple[Run, ...]
    budget: Budget

    @property
    def arms(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.arm for r in self.runs))

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys(r.seed for r in self.runs))

    def _runs(self, arm: str) -> list[Run]:
        if arm not in self.arms:
            raise KeyError(f"No arm named {arm!r}; the arms are {list(self.arms)}.")
        by_seed = {r.seed: r for r in self.runs if r.arm == arm}
        return [by_seed[s] for s in self.seeds]

    def run(self, arm: str, seed: int) -> Run:
        """The run of ``arm`` on ``seed`` (its ``model`` is the trained model at the chosen lr)."""
        if seed not in self.seeds:
            raise KeyError(f"No seed {seed!r}; the seeds are {list(self.seeds)}.")
        return self._runs(arm)[self.seeds.index(seed)]

    def test_acc(self, arm: str) -> np.ndarray:
        """Test accuracy (%) of ``arm`` per seed, in seed order."""
        return np.array([r.test_acc for r in self._runs(arm)])

    def val_acc(self, arm: str) -> np.ndarray:
        """Validation accuracy (%) of ``arm`` at its chosen lr, per seed."""
        return np.array([r.val_acc for r in self._runs(arm)])

    def chosen_lr(self, arm: str) -> tuple[float, ...]:
        """The learning rate chosen on validation for ``arm``, per seed."""
        return tuple(r.lr for r in self._runs(arm))

    def lr_grid(self, arm: str) -> tuple[float, ...]:
        """The learning rates ``arm`` tried on any seed (its grid and any extension past an edge), ascending."""
        return tuple(sorted({lr for r in self._runs(arm) for lr in r.val_by_lr}))

    @property
    def capped(self) -> tuple[tuple[str, int], ...]:
        """(arm, seed) of every run whose chosen lr is still on the edge of what it tried: empty when
        no grid held an arm back."""
        return tuple((r.arm, r.seed) for r in self.runs if r.at_edge)

    def paired(self, a: str, b: str) -> Paired:
        """Test accuracy of ``a`` minus ``b``, seed by seed."""
        return Paired(a, b, tuple(float(d) for d in self.test_acc(a) - self.test_acc(b)))

    def verdict(self, a: str, b: str, margin: float = MIN_EFFECT) -> str:
        """ "A beats B" only when every paired difference has the same sign and the mean difference
        exceeds ``margin`` points; otherwise "no clear difference at this budget".

        The margin (default 1 point: 5 of the 500 test images) keeps a difference of a few images,
        however consistent, from being called a win. With 3 seeds and no real difference, all signs
        agree by chance 1 time in 4; with 5 seeds, 1 time in 16: use 5 seeds where it is cheap.
        """
        if len(self.seeds) < MIN_SEEDS_FOR_VERDICT:
            raise ValueError(
                f"A verdict needs at least {MIN_SEEDS_FOR_VERDICT} seeds, this comparison has "
                f"{len(self.seeds)}: run compare(..., seeds=range({MIN_SEEDS_FOR_VERDICT})) or more."
            )
        return self.paired(a, b).verdict(margin)

    def table(self) -> str:
        """A markdown table: per arm the test accuracy (mean, min-max over seeds) and the chosen lrs."""
        rows = [
            "| arm | test accuracy (%) mean | min–max | validation (%) mean | lr chosen per seed | lrs tried |",
            "| --- | ---: | ---: | ---: | --- | --- |",
        ]
        for arm in self.arms:
            test = self.test_acc(arm)
            lrs = ", ".join(f"{r.lr:g}" + (" (edge!)" if r.at_edge else "") for r in self._runs(arm))
            grid = ", ".join(f"{lr:g}" for lr in self.lr_grid(arm))
            rows.append(
                f"| {arm} | {test.mean():.1f} | {test.min():.1f}–{test.max():.1f} | "
                f"{self.val_acc(arm).mean():.1f} | {lrs} | {grid} |"
            )
        if self.capped:
            rows.append(f"\nWarning: the chosen lr is still on the edge of the lrs tried for {list(self.capped)}.")
        return "\n".join(rows)

    def _repr_markdown_(self) -> str:
        return (
            f"{len(self.seeds)} seeds; every arm: {self.budget.schedule}, its lr chosen on validation "
            f"(the lrs each arm tried are in the table).\n\n{self.table()}"
        )

    def __repr__(self) -> str:
        """One line instead of every run's fields (a notebook shows ``table()`` through ``_repr_markdown_``)."""
        arms = ", ".join(f"{arm} {self.test_acc(arm).mean():.1f}%" for arm in self.arms)
        return f"Comparison({len(self.seeds)} seeds, {self.budget.steps} steps; mean test accuracy: {arms})"


def _check_task(task: object, seed: int) -> Task:
    if not isinstance(task, Task):
        raise TypeError(f"task_for_seed({seed}) must return a Task, got {type(task).__name__}.")
    if task.x_val is None or task.y_val is None or len(task.x_val) == 0:
        raise ValueError(
            f"task_for_seed({seed}) returned a task without a validation split: "
            "build it with make_task(..., val_per_class=20)."
        )
    return task


def _trainable_part(arm: Arm, model: nn.Module) -> nn.Module:
    """What the optimizer trains: the whole model, or its children after the cached prefix."""
    return nn.Sequential(*list(model.children())[arm.cache_blocks :]) if arm.cache_blocks else model


def _inputs(arm: Arm, model: nn.Module, task: Task) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train, val, test) inputs of the trainable part: the images, or the frozen prefix's cached outputs."""
    if task.x_val is None:
        raise ValueError("The task has no validation split: build it with make_task(..., val_per_class=20).")
    if not arm.cache_blocks:
        return task.x_train, task.x_val, task.x_test
    children = list(model.children())
    if arm.cache_blocks >= len(children):
        raise ValueError(
            f"Arm {arm.name!r}: cache_blocks={arm.cache_blocks}, but the model has only "
            f"{len(children)} top-level blocks; something must stay trainable."
        )
    moving = [n for block in children[: arm.cache_blocks] for n, p in block.named_parameters() if p.requires_grad]
    if moving:
        raise ValueError(
            f"Arm {arm.name!r}: cache_blocks={arm.cache_blocks} needs the first {arm.cache_blocks} "
            f"blocks frozen, but parameters such as {moving[:3]} are trainable."
        )
    probe = task.x_val[:8]
    if not torch.allclose(predict(model, probe), predict(nn.Sequential(*children), probe), atol=1e-5):
        raise ValueError(
            f"Arm {arm.name!r}: the model's forward is not its children run in order, "
            "so its prefix cannot be cached; use cache_blocks=0."
        )
    x_train, x_val, x_test = (
        extract_features(model, x, n_blocks=arm.cache_blocks) for x in (task.x_train, task.x_val, task.x_test)
    )
    return x_train, x_val, x_test


def _fit(
    arm: Arm, start: nn.Module, x_train: torch.Tensor, y_train: torch.Tensor, budget: Budget, lr: float, seed: int
) -> tuple[nn.Module, nn.Module]:
    """Train a copy of ``start`` at ``lr`` for exactly ``budget.steps`` steps; returns (model, trained part)."""
    model = copy.deepcopy(start)
    part = _trainable_part(arm, model)
    optimizer = arm.optimizer(part, lr) if arm.optimizer is not None else make_optimizer(part, budget.optimizer, lr=lr)
    history = train(
        part,
        x_train,
        y_train,
        steps=budget.steps,
        batch_size=budget.batch_size,
        optimizer=optimizer,
        seed=seed,
        on_epoch_end=arm.on_epoch_end,
    )
    if len(history.loss) != budget.steps:
        raise RuntimeError(f"Arm {arm.name!r} ran {len(history.loss)} steps, not the budget's {budget.steps}.")
    if arm.finish is not None:
        arm.finish(part, x_train)
    return model, part


def compare(
    arms: Sequence[Arm],
    task_for_seed: Callable[[int], Task],
    budget: Budget,
    seeds: Iterable[int],
    progress: bool = False,
    workers: int | None = None,
) -> Comparison:
    """Train every arm on every seed's task, once per lr in its grid (extended past an edge that wins,
    see ``extended_grid_search``), for exactly ``budget.steps`` steps; keep the lr with the best
    validation accuracy (ties: the first tried) and report that run's test accuracy. The test split is
    evaluated for the chosen run only.

    Each (arm, seed) pair is an independent job that seeds itself, so the jobs can run in
    ``workers`` processes at once (default: ``default_workers()``, one per free CPU core, each
    on one thread) with exactly the results of running them one by one. Worker processes start
    as copies of this one (``fork``), so the arms' functions need not be importable; what an arm
    changes outside its model does not come back: use ``workers=1`` for such an arm. The caller's
    random state is the same after ``compare`` as before.
    """
    return compare_each(arms, {"task": task_for_seed}, budget, seeds, progress, workers)["task"]


def compare_each(
    arms: Sequence[Arm],
    tasks: Mapping[K, Callable[[int], Task]],
    budget: Budget,
    seeds: Iterable[int],
    progress: bool = False,
    workers: int | None = None,
) -> dict[K, Comparison]:
    """``compare`` on each of several tasks (e.g. one per number of labels): {key: its Comparison}.

    The same runs, with the same results, as one ``compare`` call per task; their jobs share one
    pool of workers, the slow ones (no cached prefix) first, so no worker waits idle between calls.
    """
    arms, seeds = list(arms), list(seeds)
    if not arms or not all(isinstance(a, Arm) for a in arms):
        raise TypeError(f"arms must be a non-empty sequence of Arm, got {arms!r}.")
    names = [a.name for a in arms]
    if len(set(names)) != len(names):
        raise ValueError(f"Arm names must be distinct, got {names}.")
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be a non-empty collection of distinct ints, got {seeds}.")
    if not isinstance(budget, Budget):
        raise TypeError(f"budget must be a Budget, got {type(budget).__name__}.")
    if not tasks:
        raise ValueError("tasks must name at least one task: {key: task_for_seed}.")
    grids = {arm.name: arm.grid(budget) for arm in arms}
    with random_state_kept():
        built = {
            (key, seed): _check_task(task_for_seed(seed), seed)
            for key, task_for_seed in tasks.items()
            for seed in seeds
        }
        keys = [(key, seed, arm) for key in tasks for seed in seeds for arm in arms]
        keys.sort(key=lambda item: item[2].cache_blocks > 0)  # slow jobs first: the pool stays busy to the end
        jobs = [
            functools.partial(_run_arm, arm, built[key, seed], seed, budget, grids[arm.name]) for key, seed, arm in keys
        ]
        total = len(tasks) * len(seeds) * sum(map(len, grids.values()))
        bar = tqdm(total=total, desc="runs", disable=not progress, leave=False)
        runs = run_jobs(jobs, workers, on_done=lambda run: bar.update(len(grids[run.arm])))
        bar.close()
    by_key: dict[K, list[Run]] = {key: [] for key in tasks}
    for (key, _, _), run in zip(keys, runs):
        by_key[key].append(run)
    order = {(seed, name): i for i, (seed, name) in enumerate((seed, a.name) for seed in seeds for a in arms)}
    return {
        key: Comparison(tuple(sorted(found, key=lambda r: order[r.seed, r.arm])), budget)
        for key, found in by_key.items()
    }


def _run_arm(arm: Arm, task: Task, seed: int, budget: Budget, grid: tuple[float, ...]) -> Run:
    """One job of ``compare``: ``arm`` on ``task`` at every lr of ``grid``; the run chosen on validation."""
    y_val = task.y_val
    assert y_val is not None  # _check_task made sure
    seed_everything(seed)
    start = arm.fresh_model(task)
    x_train, x_val, x_test = _inputs(arm, start, task)
    trials: dict[float, tuple[float, nn.Module, nn.Module]] = {}

    def score(lr: float) -> float:
        model, part = _fit(arm, start, x_train, task.y_train, budget, lr, seed)
        trials[lr] = (evaluate(part, x_val, y_val), model, part)
        return trials[lr][0]

    lr, at_edge = extended_grid_search(score, grid, budget.max_extensions)
    val_acc, model, part = trials[lr]
    test_acc = evaluate(part, x_test, task.y_test)  # the test split: chosen run only
    val_by_lr = {t: trials[t][0] for t in sorted(trials)}
    return Run(arm.name, seed, lr, val_acc, test_acc, val_by_lr, budget.steps, model, at_edge)


def extended_grid_search(
    score: Callable[[float], float], grid: Sequence[float], max_extensions: int
) -> tuple[float, bool]:
    """The lr of ``grid`` with the best ``score`` (validation accuracy), first tried winning ties.

    When the best is the largest (smallest) lr of a grid of two or more, the grid was holding the arm
    back: try one more lr a grid step further that way (the ratio of the two outermost lrs on that
    side), and go on while each new lr wins outright, at most ``max_extensions`` more. Returns the
    chosen lr and whether it is still on the edge of what was tried (the grid may still cap it).
    """
    scores = {lr: score(lr) for lr in grid}
    best = max(scores, key=scores.__getitem__)  # dicts keep order: the first tried wins a tie
    ordered = sorted(grid)
    if len(ordered) < 2 or best not in (ordered[0], ordered[-1]):
        return best, False
    if best == ordered[-1]:
        ratio, edge = ordered[-1] / ordered[-2], ordered[-1]
    else:
        ratio, edge = ordered[0] / ordered[1], ordered[0]
    for _ in range(max_extensions):
        candidate = float(f"{edge * ratio:.6g}")  # 0.01 * 3 = 0.03, not 0.030000000000000002
        scores[candidate] = score(candidate)
        if scores[candidate] <= scores[best]:
            return best, False  # the next lr out is no better: the edge is a real optimum
        best = edge = candidate
    return best, True


def merge(*comparisons: Comparison) -> Comparison:
    """One comparison from several run on the same seeds with the same budget (and the same tasks),
    e.g. to pair a new arm with arms measured earlier without training them again."""
    if not comparisons:
        raise ValueError("merge needs at least one Comparison.")
    first = comparisons[0]
    for other in comparisons[1:]:
        if other.budget != first.budget or other.seeds != first.seeds:
            raise ValueError(
                f"Only comparisons with the same budget and seeds can be merged: {first.budget} on seeds "
                f"{list(first.seeds)} vs {other.budget} on seeds {list(other.seeds)}."
            )
    names = [arm for c in comparisons for arm in c.arms]
    if len(set(names)) != len(names):
        raise ValueError(f"Arm names must be distinct across the merged comparisons, got {names}.")
    return Comparison(tuple(r for c in comparisons for r in c.runs), first.budget)
