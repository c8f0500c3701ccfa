"""Optimizers over partly frozen models: the trainable parameters, param groups with per-block learning
rates, gradual unfreezing into a running optimizer, and an audit of a set-up for the classic pitfalls."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .batchnorm import is_frozen_bn
from .freezing import share_text
from .layers import OWN, LayerNameError, block_names, block_parameters, own_parameters


class NothingTrainableError(ValueError):
    """Every parameter is frozen, so there is nothing for an optimizer to train."""


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters that require grad; raises ``NothingTrainableError`` if there are none."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        last = (block_names(model) or ["<last block>"])[-1]
        raise NothingTrainableError(
            "Every parameter of the model is frozen, so there is nothing to train. "
            f"Unfreeze at least one block, e.g. unfreeze(model, {last!r}) or freeze_to(model, -1)."
        )
    return params


def param_groups(
    model: nn.Module,
    lr: float | Mapping[str, float],
    decay: float = 1.0,
) -> list[dict[str, Any]]:
    """Optimizer param groups, one per block with trainable parameters, with per-block learning rates.

    ``lr`` as a float is the last block's lr; each earlier block gets ``decay`` times the lr of the
    block after it (discriminative learning rates; children without parameters take no step).
    Parameters owned by the model (``OWN``) share the first block's lr, as timm's layer decay puts
    ViT's class token with the patch embedding.
    ``lr`` as a dict {block name: lr} must give an lr to every block with trainable parameters:
    a missing one raises ``LayerNameError`` naming it (freeze that block or add its lr) instead of
    silently leaving it out of the optimizer. Frozen parameters are left out; each group carries
    its block's ``name``.
    """
    names = block_names(model)
    order = ([OWN] if own_parameters(model) else []) + names
    if isinstance(lr, Mapping):
        unknown = set(lr) - set(order)
        if unknown:
            raise LayerNameError(f"Unknown block(s) {sorted(unknown)} in lr; blocks are {order}.")
        rates = dict(lr)
    else:
        rates = {name: lr * decay ** (len(names) - 1 - i) for i, name in enumerate(names)}
        if names:
            rates[OWN] = rates[names[0]]
    groups, missing = [], []
    for name in order:
        params = [p for p in block_parameters(model, name) if p.requires_grad]
        if params and name in rates:
            groups.append({"params": params, "lr": rates[name], "name": name})
        elif params:
            missing.append((name, sum(p.numel() for p in params)))
    if missing:
        listed = ", ".join(f"{name} ({count:,} parameters)" for name, count in missing)
        raise LayerNameError(
            f"Trainable block(s) without a learning rate in lr: {listed}. They would silently never train. "
            f"Add them to the dict, e.g. {{{missing[0][0]!r}: 1e-4, ...}}, or freeze them first "
            "(freeze(model, name) or freeze_to(model, k))."
        )
    if not groups:
        trainable_parameters(model)  # raises the explanatory error when everything is frozen
        raise ValueError(f"No trainable block has a learning rate in {dict(rates)}.")
    return groups


def _optimizer_parameter_ids(optimizer: torch.optim.Optimizer) -> set[int]:
    return {id(p) for group in optimizer.param_groups for p in group["params"]}


def unfreeze_next(model: nn.Module, optimizer: torch.optim.Optimizer, lr: float) -> str | None:
    """Gradual unfreezing: unfreeze the last block that is not fully trainable and add it to ``optimizer``.

    Walks from the head towards the input (``OWN`` parameters come last). A block counts as
    unfrozen only when *every* parameter in it trains, so after ``freeze_to(model, 3, train_bn=True)``
    the next call unfreezes block3's convolutions. Only parameters the optimizer does not hold yet
    go into the new group (named after the block, with ``lr``), like Lightning's
    ``unfreeze_and_add_param_group``. Returns the block's name, or None when every parameter trains.
    Like ``unfreeze``, it sets flags only: a ``FrozenBatchNorm2d`` stays frozen.
    """
    order = list(reversed(block_names(model))) + ([OWN] if own_parameters(model) else [])
    for name in order:
        params = block_parameters(model, name)
        if all(p.requires_grad for p in params):
            continue
        for param in params:
            param.requires_grad_(True)
        known = _optimizer_parameter_ids(optimizer)
        new = [p for p in params if id(p) not in known]
        if new:
            optimizer.add_param_group({"params": new, "lr": lr, "name": name})
        return name
    return None


# ----------------------------------------------------------------------------------------- audit


@dataclass
class AuditReport:
    """What ``audit`` found; ``problems`` is empty when the set-up is consistent."""

    trainable: int
    frozen: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        total = self.trainable + self.frozen
        share = share_text(self.trainable, total)
        head = f"trainable {self.trainable:,} / {total:,} parameters ({share}), frozen {self.frozen:,}"
        if self.ok:
            return head + "\nno problems found"
        return head + "\n" + "\n".join(f"PROBLEM: {p}" for p in self.problems)

    __repr__ = __str__


def audit(model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> AuditReport:
    """Check a freezing set-up for the classic pitfalls and report them in words.

    Looks for: nothing trainable; BN layers (any of ``BATCHNORM_TYPES``) in train mode whose affine
    parameters are frozen (their running stats still drift); frozen parameters with a non-None
    ``.grad`` that weight decay or momentum could still use; and, given the optimizer: frozen
    parameters in it, optimizer state (momentum, Adam moments) held for frozen parameters, and
    trainable parameters missing from it (they would never update, e.g. after unfreezing).
    """
    names = {id(p): n for n, p in model.named_parameters()}
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    problems = []
    if trainable == 0:
        problems.append("nothing is trainable: every parameter has requires_grad=False")
    drifting = [n for n, m in model.named_modules() if is_frozen_bn(m) and m.training and m.track_running_stats]
    if drifting:
        problems.append(
            f"BatchNorm in train mode with frozen weights (running stats will drift): {', '.join(drifting)}; "
            "call set_bn_eval(model) after model.train()"
        )
    stale_grads = [n for n, p in model.named_parameters() if not p.requires_grad and p.grad is not None]
    if stale_grads:
        problems.append(
            f"frozen parameters still hold a .grad: {', '.join(stale_grads[:5])}; use zero_grad(set_to_none=True)"
        )
    if optimizer is not None:
        in_opt = [p for g in optimizer.param_groups for p in g["params"]]
        frozen_in_opt = [names.get(id(p), "?") for p in in_opt if not p.requires_grad]
        if frozen_in_opt:
            problems.append(
                f"optimizer holds {len(frozen_in_opt)} frozen parameter(s): {', '.join(frozen_in_opt[:5])}; "
                "build it from trainable parameters only"
            )
        with_state = [names.get(id(p), "?") for p in in_opt if not p.requires_grad and optimizer.state.get(p)]
        if with_state:
            problems.append(
                f"optimizer keeps state (momentum/moments) for frozen parameter(s): {', '.join(with_state[:5])}; "
                "rebuild the optimizer after freezing"
            )
        known = {id(p) for p in in_opt}
        missing = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in known]
        if missing:
            problems.append(
                f"{len(missing)} trainable parameter(s) are not in the optimizer and will never update: "
                f"{', '.join(missing[:5])}; add them with optimizer.add_param_group(...) "
                "(unfreeze_next does) or rebuild the optimizer after unfreezing"
            )
    return AuditReport(trainable, frozen, problems)
