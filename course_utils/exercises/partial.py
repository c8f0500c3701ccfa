"""Checkers for notebook 05 (partial freezing). They print feedback, never raise."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch

from ..experiment import Budget, Comparison, Run
from ..models import COURSE_CNN_BLOCKS
from ._feedback import Feedback, call, check, describe, is_function, is_number
from ._fixtures import attribute_tricks, frozen_state, no_helpers, require_course_cnn

_BLOCKS = COURSE_CNN_BLOCKS


def check_partial_freeze(model: Any, frozen: Any = ("block1", "block3"), verbose: bool = True) -> Feedback:
    """Exercise 1: exactly the blocks in ``frozen`` frozen, by hand (no course helper), none removed.

    The default is not a prefix: block2, between two frozen blocks, must still get a gradient.
    """

    def is_model(fb: Feedback) -> None:
        fb.require(
            isinstance(frozen, (tuple, list)) and bool(frozen) and set(frozen) <= set(_BLOCKS),
            "",
            f"frozen must name blocks among {list(_BLOCKS)}, got {describe(frozen)}.",
        )
        require_course_cnn(fb, model, "exercise_model")
        no_helpers(fb, model, "Set requires_grad = False on the parameters of each block yourself.")

    def frozen_part(fb: Feedback) -> None:
        wrong = [n for n in frozen if frozen_state(getattr(model, n))[0] != frozen_state(getattr(model, n))[1]]
        tricked = attribute_tricks(model)
        trick = f" A plain attribute `requires_grad` on {tricked[:2]} freezes nothing." if tricked else ""
        fb.add(
            not wrong,
            f"{', '.join(frozen)} are frozen.",
            f"Still (partly) trainable but should be frozen: {wrong}. Loop over model.<block>.parameters() "
            f"and set requires_grad = False.{trick}",
        )

    def trainable_part(fb: Feedback) -> None:
        keep = [n for n in _BLOCKS if n not in frozen]
        wrong = [n for n in keep if frozen_state(getattr(model, n))[0] > 0]
        fb.add(
            not wrong,
            f"{', '.join(keep)} stay trainable.",
            f"Frozen but should be trainable: {wrong}. Freeze only {', '.join(frozen)}.",
        )

    def gradient_reaches(fb: Feedback) -> None:
        trial = copy.deepcopy(model).eval()
        x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
        trial(x.to(next(trial.parameters()).device)).sum().backward()
        with_grad = sorted({n.split(".")[0] for n, p in trial.named_parameters() if p.grad is not None})
        fb.add(
            with_grad == [n for n in _BLOCKS if n not in frozen],
            f"A backward pass reaches {', '.join(with_grad)} (through frozen blocks after them), no frozen block.",
            f"After a backward pass these blocks have gradients: {with_grad}.",
        )

    return check(
        f"freeze {' and '.join(frozen) if isinstance(frozen, (tuple, list)) else frozen} by hand",
        is_model,
        frozen_part,
        trainable_part,
        gradient_reaches,
        verbose=verbose,
    )


def _group_params(group: dict[str, Any]) -> list[Any]:
    params = group["params"]
    return [params] if isinstance(params, torch.Tensor) else list(params)


def check_param_groups(
    groups: Any, model: Any, head_lr: float = 1e-3, decay: float = 0.5, verbose: bool = True
) -> Feedback:
    """Exercise 2: one group per *trainable* block, the head at ``head_lr``, each earlier block ``decay``× the next.

    Checks every parameter, not a sample: each trainable parameter of ``model`` is in exactly one
    group, at its block's learning rate; no frozen parameter and nothing from another model.
    """

    def is_list(fb: Feedback) -> None:
        require_course_cnn(fb, model, "lr_model")
        ok = (
            isinstance(groups, (list, tuple))
            and len(groups) > 0
            and all(isinstance(g, dict) and "params" in g and "lr" in g for g in groups)
        )
        fb.require(
            ok,
            "A list of dicts with 'params' and 'lr'.",
            f"`my_groups` should be a list of dicts like {{'params': [...], 'lr': 1e-3}}, one per block; "
            f"got {describe(groups)}.",
        )
        generators = [i for i, g in enumerate(groups) if isinstance(g["params"], Iterator)]
        fb.require(
            not generators,
            "",
            f"Group {generators[:1]} holds a generator (model.block.parameters()): it is used up after one "
            "pass, so the optimizer could get nothing. Wrap it in list(...).",
        )
        bad_lr = [g["lr"] for g in groups if not is_number(g["lr"]) or g["lr"] <= 0]
        fb.require(
            not bad_lr, "", f"Every 'lr' must be a positive number, got {describe(bad_lr[0]) if bad_lr else ''}."
        )

    def every_parameter_once(fb: Feedback) -> None:
        owner = {
            id(p): (name, block)
            for block in _BLOCKS
            for name, p in getattr(model, block).named_parameters(prefix=block)
        }
        trainable = {id(p) for p in model.parameters() if p.requires_grad}
        count: dict[int, int] = {}
        foreign = 0
        for g in groups:
            for p in _group_params(g):
                if id(p) not in owner:
                    foreign += 1
                count[id(p)] = count.get(id(p), 0) + 1
        fb.add(
            foreign == 0,
            "Every tensor in the groups is a parameter of lr_model.",
            f"{foreign} tensor(s) in your groups are not parameters of lr_model (another model or a copy?): "
            "take them from lr_model.<block>.parameters().",
        )
        frozen_in = sorted(owner[i][0] for i in count if i in owner and i not in trainable)
        fb.add(
            not frozen_in,
            "No frozen parameter is handed to the optimizer.",
            f"These frozen parameters are in your groups: {frozen_in[:3]}. Leave frozen blocks out.",
        )
        missing = sorted(owner[i][0] for i in trainable if i in owner and i not in count)
        fb.add(
            not missing,
            "Every trainable parameter is in a group.",
            f"{len(missing)} of {len(trainable)} trainable parameter tensors are in no group, e.g. {missing[:3]}: "
            "they would never train. Put *all* of a block's parameters in its group: list(model.block.parameters()).",
        )
        twice = sorted(owner[i][0] for i, n in count.items() if n > 1 and i in owner)
        fb.add(
            not twice, "No parameter is in two groups.", f"{twice[:3]} appear more than once; torch.optim refuses that."
        )

    def rates(fb: Feedback) -> None:
        owner = {id(p): block for block in _BLOCKS for p in getattr(model, block).parameters()}
        trainable_blocks = [b for b in _BLOCKS if any(p.requires_grad for p in getattr(model, b).parameters())]
        expected = {b: head_lr * decay ** (len(_BLOCKS) - 1 - _BLOCKS.index(b)) for b in trainable_blocks}
        got: dict[str, set[float]] = {}
        for g in groups:
            for p in _group_params(g):
                if id(p) in owner:
                    got.setdefault(owner[id(p)], set()).add(float(g["lr"]))
        wrong = [b for b, v in expected.items() if b in got and any(abs(lr - v) > 1e-12 + 1e-6 * v for lr in got[b])]
        fb.add(
            not wrong,
            "Learning rates shrink by the factor going down the network: "
            + ", ".join(f"{b} {v:g}" for b, v in expected.items())
            + ".",
            "Expected learning rates "
            + ", ".join(f"{b}: {v:g}" for b, v in expected.items())
            + "; got "
            + ", ".join(f"{b}: {'/'.join(f'{lr:g}' for lr in sorted(v))}" for b, v in got.items())
            + ".",
        )

    return check("discriminative learning rates", is_list, every_parameter_once, rates, verbose=verbose)


# Exercise 3: set-ups on which a fair pick and the plausible unfair ones give different blocks. Per arm, the
# validation and test accuracy (%) of its chosen run on each of three seeds.
_CANDIDATES = ("block1", "block2", "block3", "head")
_PICK_SETUPS: tuple[tuple[str, tuple[str, ...], dict[str, tuple[tuple[float, ...], tuple[float, ...]]]], ...] = (
    (
        "a comparison where validation and test disagree",
        _CANDIDATES,
        {
            "block1": ((90.0, 89.0, 91.0), (89.0, 88.0, 90.0)),
            "block2": ((93.0, 92.0, 94.0), (84.0, 85.0, 83.0)),
            "block3": ((80.0, 81.0, 79.0), (80.0, 79.0, 81.0)),
            "head": ((50.0, 52.0, 48.0), (51.0, 50.0, 49.0)),
            "all": ((91.0, 90.0, 92.0), (92.0, 93.0, 91.0)),
        },
    ),
    (
        "a comparison where tuning all is best on validation",
        _CANDIDATES,
        {
            "block1": ((70.0, 71.0, 69.0), (71.0, 70.0, 72.0)),
            "block2": ((78.0, 77.0, 79.0), (83.0, 82.0, 84.0)),
            "block3": ((86.0, 85.0, 87.0), (80.0, 81.0, 79.0)),
            "head": ((40.0, 41.0, 39.0), (40.0, 42.0, 41.0)),
            "all": ((95.0, 96.0, 94.0), (94.0, 95.0, 93.0)),
        },
    ),
    (
        "a comparison where one seed misleads",
        _CANDIDATES,
        {
            "block1": ((88.0, 89.0, 90.0), (87.0, 88.0, 89.0)),
            "block2": ((84.0, 87.0, 86.0), (85.0, 86.0, 84.0)),
            "block3": ((75.0, 74.0, 76.0), (74.0, 75.0, 73.0)),
            "head": ((99.0, 60.0, 62.0), (70.0, 61.0, 60.0)),
            "all": ((87.0, 88.0, 86.0), (88.0, 87.0, 89.0)),
        },
    ),
    (
        "two candidates only, in another order",
        ("head", "block3"),
        {
            "block1": ((96.0, 95.0, 97.0), (96.0, 95.0, 94.0)),
            "block2": ((92.0, 93.0, 91.0), (92.0, 91.0, 93.0)),
            "block3": ((80.0, 82.0, 81.0), (70.0, 71.0, 72.0)),
            "head": ((60.0, 61.0, 62.0), (75.0, 76.0, 74.0)),
            "all": ((97.0, 98.0, 96.0), (97.0, 96.0, 98.0)),
        },
    ),
)


def pick_setup(table: Mapping[str, tuple[tuple[float, ...], tuple[float, ...]]]) -> Comparison:
    """A Comparison whose arms have the given validation and test accuracies per seed (one lr each, no model)."""
    runs = tuple(
        Run(arm, seed, 1e-3, val, test, {1e-3: val}, 1, None)  # type: ignore[arg-type]
        for arm, (vals, tests) in table.items()
        for seed, (val, test) in enumerate(zip(vals, tests))
    )
    return Comparison(runs, Budget(steps=1, batch_size=1, lr_grid=(1e-3,)))


def _best(candidates: tuple[str, ...], score: Callable[[str], float]) -> str:
    return max(candidates, key=score)


def check_pick_block(pick_block: Any, verbose: bool = True) -> Feedback:
    """Exercise 3: ``pick_block(result, candidates)`` returns the candidate with the best *mean validation*
    accuracy in the Comparison ``result``; never a choice made with test accuracy, one seed, or an arm
    that is not a candidate. Run on set-ups where each of those mistakes gives another block."""

    def works(fb: Feedback) -> None:
        for setup, candidates, table in _PICK_SETUPS:
            result = pick_setup(table)
            got = call(fb, pick_block, result, candidates, setup=setup)
            fb.require(
                isinstance(got, str),
                "",
                f"On {setup} your function returned {describe(got)}: return the block's name (a string).",
            )
            val = {a: sum(table[a][0]) / len(table[a][0]) for a in table}
            test = {a: sum(table[a][1]) / len(table[a][1]) for a in table}
            right = _best(candidates, val.__getitem__)
            if got == right:
                continue
            expected = f"expected {right!r} (best mean validation accuracy, {val[right]:.1f}%)"
            if got not in candidates:
                fb.fail(
                    f"On {setup} your function returned {got!r}, which is not one of the candidates "
                    f"{list(candidates)}: pick among `candidates` only ({expected})."
                )
            if got in (_best(candidates, test.__getitem__), _best(tuple(table), test.__getitem__)):
                fb.fail(
                    f"On {setup} your function returned {got!r}, the block with the best *test* accuracy "
                    f"({test[got]:.1f}%); {expected}. A choice made with the test split makes the test number "
                    "of the chosen block optimistic: choose with result.val_acc(name), report test only for it."
                )
            first_seed = {a: table[a][0][0] for a in table}
            best_seed = {a: max(table[a][0]) for a in table}
            if got in (_best(candidates, first_seed.__getitem__), _best(candidates, best_seed.__getitem__)):
                fb.fail(
                    f"On {setup} your function returned {got!r}, the best on a single seed; {expected}. "
                    "Average each block's validation accuracy over the seeds: result.val_acc(name).mean()."
                )
            fb.fail(f"On {setup} your function returned {got!r}; {expected}.")
        fb.add(
            True,
            f"On {len(_PICK_SETUPS)} comparisons your function picks the candidate with the best mean "
            "validation accuracy, even where test accuracy, a single seed or tuning all points elsewhere.",
            "",
        )

    return check(
        "pick the block to tune, on validation",
        is_function(pick_block, "pick_block(result, candidates)"),
        works,
        verbose=verbose,
    )
