"""What training really changed: a snapshot of a model, the parameters and buffers that differ from it,
and the relative change of each block."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from .layers import OWN, LayerNameError, blocks, own_parameters


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of every parameter and buffer, to compare against later."""
    return {name: t.detach().clone() for name, t in model.state_dict().items()}


def changed_since(model: nn.Module, before: Mapping[str, torch.Tensor]) -> list[str]:
    """Names of parameters and buffers whose values differ (bitwise) from the snapshot."""
    now = model.state_dict()
    missing = set(before) - set(now)
    if missing:
        raise LayerNameError(f"The snapshot has entries the model lacks: {sorted(missing)[:5]}.")
    return [name for name, old in before.items() if not torch.equal(now[name], old)]


def weight_change_by_block(model: nn.Module, before: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """Relative change of each block's parameters since the snapshot: ||w - w0|| / ||w0||.

    Exactly 0.0 for a block whose parameters did not move at all.
    """
    groups = ({OWN: [""]} if own_parameters(model) else {}) | blocks(model)
    changes = {}
    for block, members in groups.items():
        delta_sq, base_sq = 0.0, 0.0
        for member in members:
            module = model.get_submodule(member)
            prefix = f"{member}." if member else ""
            for name, param in module.named_parameters(recurse=bool(member)):
                old = before[prefix + name]
                delta_sq += float((param.detach() - old).pow(2).sum())
                base_sq += float(old.pow(2).sum())
        if base_sq:
            changes[block] = (delta_sq / base_sq) ** 0.5
    return changes
