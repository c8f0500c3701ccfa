"""Freezing flags: freeze, unfreeze and freeze_to by block name or pattern, what is left trainable, and
which of these helpers were applied to a model (read by the exercise checkers).

``freeze`` and ``unfreeze`` are a symmetric pair: each sets ``requires_grad`` on the parameters of the
named layers and changes nothing else. Swapping BatchNorm for torchvision's ``FrozenBatchNorm2d`` and
back is the other pair, ``to_frozen_batchnorm2d`` / ``from_frozen_batchnorm2d`` (``course_utils.batchnorm``).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

from torch import nn

from .layers import (
    BATCHNORM_TYPES,
    OWN,
    block_names,
    block_parameters,
    blocks,
    own_parameters,
    resolve_names,
    skipped_children,
)

_HELPER_CALLS: weakref.WeakKeyDictionary[nn.Module, set[str]] = weakref.WeakKeyDictionary()


def record_helper(model: nn.Module, helper: str) -> None:
    """Note that ``helper`` was applied to ``model`` (read by ``helpers_applied``)."""
    if isinstance(model, nn.Module):
        _HELPER_CALLS.setdefault(model, set()).add(helper)


def helpers_applied(model: nn.Module) -> list[str]:
    """The freezing helpers (``freeze``, ``freeze_to``, ``unfreeze``, ``set_bn_eval``, ``keep_frozen_bn_eval``)
    applied so far to ``model`` or to one of its submodules, sorted. A copy (``copy.deepcopy``) starts with none.

    Exercise checkers use it where an exercise asks for the lines a helper would hide.
    """
    return sorted({name for module in model.modules() for name in _HELPER_CALLS.get(module, set())})


def _set_flags(module: nn.Module, trainable: bool, train_bn: bool = False) -> None:
    """``requires_grad = trainable`` for every parameter of ``module``; BatchNorm's stays True with ``train_bn``."""
    for sub in module.modules():
        keep_trainable = trainable or (train_bn and isinstance(sub, BATCHNORM_TYPES))
        for param in sub.parameters(recurse=False):
            param.requires_grad_(keep_trainable)


def freeze(model: nn.Module, *names: str, train_bn: bool = False) -> None:
    """Freeze the named layers (the whole model if no name is given): ``requires_grad=False``, nothing else.

    Names are block names (``"stem"``), dotted module names (``"layer4.1.bn2"``) or glob patterns
    over them (``freeze(model, "features.[0-9]", "layer[1-3]*")``). ``train_bn=True`` keeps BatchNorm
    weight/bias trainable (fastai's default). An unknown name, or a pattern that matches nothing,
    raises ``LayerNameError`` with close names, never a silent no-op.
    """
    record_helper(model, "freeze")
    for name in resolve_names(model, names) if names else [""]:
        _set_flags(model.get_submodule(name), trainable=False, train_bn=train_bn)


def unfreeze(model: nn.Module, *names: str) -> None:
    """Make the named layers (names as in ``freeze``) trainable again, the whole model if no name is given:
    ``requires_grad=True``, nothing else, so ``unfreeze`` undoes ``freeze`` exactly.

    A torchvision ``FrozenBatchNorm2d`` holds its weight and bias as buffers: no flag makes it train,
    and ``unfreeze`` leaves it as it is (torchvision's detection backbones use it on purpose). To
    train it, convert it back first with ``from_frozen_batchnorm2d``.
    """
    record_helper(model, "unfreeze")
    for name in resolve_names(model, names) if names else [""]:
        _set_flags(model.get_submodule(name), trainable=True)


def freeze_to(model: nn.Module, n: int, train_bn: bool = False) -> None:
    """Freeze the first ``n`` blocks and unfreeze the rest (negative n counts from the end).

    Blocks are those of ``block_names``: ``freeze_to(resnet, 1)`` freezes the stem (conv1 and bn1
    together) and ``freeze_to(model, -1)`` trains only the last block (the classifier) on the
    course CNN and on torchvision models alike. Parameters owned by the model itself (``OWN``, e.g.
    ViT's ``class_token``) sit on the input side, so they are frozen whenever ``n >= 1`` and train
    only with ``n == 0``.
    """
    record_helper(model, "freeze_to")
    groups = blocks(model)
    names = list(groups)
    if not -len(names) <= n <= len(names):
        raise ValueError(f"n must be between {-len(names)} and {len(names)} for blocks {names}, got {n}.")
    n = n + len(names) if n < 0 else n
    for index, name in enumerate(names):
        for member in groups[name]:
            _set_flags(model.get_submodule(member), trainable=index >= n, train_bn=train_bn)
    for param in own_parameters(model):
        param.requires_grad_(n == 0)


# --------------------------------------------------------------------------------------- summary


def share_text(part: int, whole: int) -> str:
    """A share as text with one decimal, or two significant digits below 0.1% (0.023%, not 0.0%)."""
    share = 100 * part / whole if whole else 0.0
    return f"{share:.2g}%" if 0 < share < 0.1 else f"{share:.1f}%"


@dataclass
class TrainableSummary:
    """Trainable vs total parameters per block (``OWN`` first if the model owns parameters itself)."""

    rows: list[tuple[str, int, int]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # children without parameters

    @property
    def trainable(self) -> int:
        return sum(r[1] for r in self.rows)

    @property
    def total(self) -> int:
        return sum(r[2] for r in self.rows)

    @property
    def frozen_blocks(self) -> list[str]:
        return [name for name, trainable, _ in self.rows if trainable == 0]

    def __str__(self) -> str:
        def status(trainable: int, total: int) -> str:
            return "frozen" if trainable == 0 else "trainable" if trainable == total else "partly frozen"

        table = [(name, f"{t:,}", f"{n:,}", status(t, n)) for name, t, n in self.rows]
        table.append(
            ("total", f"{self.trainable:,}", f"{self.total:,}", f"{share_text(self.trainable, self.total)} trainable")
        )
        # column widths from the data, never narrower than the classic 10/11/9 layout
        name_w = max(10, *(len(r[0]) + 2 for r in table))
        train_w = max(11, *(len(r[1]) + 2 for r in table))
        total_w = max(9, *(len(r[2]) + 2 for r in table))
        lines = [f"{'block':<{name_w}}{'trainable':>{train_w}}{'total':>{total_w}}  status"]
        lines += [f"{a:<{name_w}}{b:>{train_w}}{c:>{total_w}}  {d}" for a, b, c, d in table]
        if self.skipped:
            lines.append(f"(children without parameters, not blocks: {', '.join(self.skipped)})")
        return "\n".join(lines)

    __repr__ = __str__


def trainable_summary(model: nn.Module) -> TrainableSummary:
    """Per-block count of trainable and total parameters (prints as a table)."""
    rows = []
    for name in ([OWN] if own_parameters(model) else []) + block_names(model):
        params = block_parameters(model, name)
        rows.append((name, sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)))
    return TrainableSummary(rows, skipped_children(model))
