"""Checkers for the exercises of 05_partial_freezing. They print feedback and never raise."""
from __future__ import annotations

from typing import Mapping

from torch import nn

from ._feedback import Feedback, check

_BLOCKS = ("block1", "block2", "block3", "head")


def check_partial_freeze(model: nn.Module, n_frozen: int = 2, verbose: bool = True) -> Feedback:
    """Exercise 1: the first ``n_frozen`` blocks frozen (every parameter), the rest trainable."""

    def is_model(fb: Feedback) -> None:
        fb.add(isinstance(model, nn.Module), "`exercise_model` is a model.",
               f"`exercise_model` should be a model, got {type(model).__name__}.")

    def frozen_part(fb: Feedback) -> None:
        wrong = [n for n, p in model.named_parameters() if n.split(".")[0] in _BLOCKS[:n_frozen] and p.requires_grad]
        fb.add(not wrong, f"{', '.join(_BLOCKS[:n_frozen])} are frozen.",
               f"Still trainable but should be frozen: {wrong[:4]}. Loop over model.<block>.parameters().")

    def trainable_part(fb: Feedback) -> None:
        wrong = [n for n, p in model.named_parameters() if n.split(".")[0] in _BLOCKS[n_frozen:] and not p.requires_grad]
        fb.add(not wrong, f"{', '.join(_BLOCKS[n_frozen:])} stay trainable.",
               f"Frozen but should be trainable: {wrong[:4]}. Freeze only the first {n_frozen} blocks.")

    return check(f"freeze the first {n_frozen} blocks by hand", is_model, frozen_part, trainable_part, verbose=verbose)


def check_param_groups(
    groups: object, model: nn.Module, head_lr: float = 1e-3, decay: float = 0.5, verbose: bool = True
) -> Feedback:
    """Exercise 2: one group per *trainable* block, the head at ``head_lr``, each earlier block ``decay``× the next."""
    blocks = dict(model.named_children())
    trainable = [n for n in _BLOCKS if any(p.requires_grad for p in blocks[n].parameters())]

    def is_list(fb: Feedback) -> None:
        ok = isinstance(groups, list) and all(isinstance(g, dict) and "params" in g and "lr" in g for g in groups)
        fb.add(ok, "A list of dicts with 'params' and 'lr'.",
               "`my_groups` should be a list of dicts like {'params': [...], 'lr': 1e-3}, one per block.")

    def one_per_trainable_block(fb: Feedback) -> None:
        owners = []
        ids = {id(p): n for n in _BLOCKS for p in blocks[n].parameters()}
        for g in groups:
            names = {ids.get(id(p), "?") for p in g["params"]}
            owners.append(names.pop() if len(names) == 1 else "mixed")
        fb.add(sorted(owners) == sorted(trainable), f"One group per trainable block: {trainable}.",
               f"Your groups hold {owners}; expected exactly one group for each of {trainable} "
               "(leave frozen blocks out).")
        frozen_in = [n for g in groups for n, p in model.named_parameters() if any(p is q for q in g["params"]) and not p.requires_grad]
        fb.add(not frozen_in, "No frozen parameter is handed to the optimizer.",
               f"These frozen parameters are in your groups: {frozen_in[:3]}.")

    def rates(fb: Feedback) -> None:
        ids = {id(p): n for n in _BLOCKS for p in blocks[n].parameters()}
        lr_of = {ids.get(id(g["params"][0]), "?"): float(g["lr"]) for g in groups if g["params"]}
        expected = {n: head_lr * decay ** (len(_BLOCKS) - 1 - _BLOCKS.index(n)) for n in trainable}
        ok = all(abs(lr_of.get(n, -1) - v) <= 1e-12 + 1e-6 * v for n, v in expected.items())
        fb.add(ok, "Learning rates shrink by the factor going down the network.",
               "Expected learning rates " + ", ".join(f"{n}: {v:g}" for n, v in expected.items())
               + "; got " + ", ".join(f"{n}: {v:g}" for n, v in lr_of.items()) + ".")

    return check("discriminative learning rates", is_list, one_per_trainable_block, rates, verbose=verbose)


def check_best_block(answer: object, results: Mapping[str, float], shift: str = "", verbose: bool = True) -> Feedback:
    """Exercise 3: the single block whose tuning scored best (within 1 point counts as a tie)."""
    best = max(results.values())
    good = sorted(n for n, v in results.items() if v >= best - 1.0)

    def valid(fb: Feedback) -> None:
        fb.add(answer in results, "Your answer is one of the blocks.",
               f"Answer with one of {list(results)} (a string), got {answer!r}.")

    def right(fb: Feedback) -> None:
        ok = answer in good
        where = f" on {shift}" if shift else ""
        fb.add(ok, f"Right: tuning {answer} alone scores {results[answer]:.1f}%{where}." if ok else "",
               "Not the best one: read the row of the table and compare the single-block columns.")

    return check("pick the block to tune", valid, right, verbose=verbose)
