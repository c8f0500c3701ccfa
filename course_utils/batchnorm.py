"""BatchNorm in a partly frozen model: keep frozen BatchNorm layers in eval mode (their running statistics
would drift otherwise), or swap them for torchvision's ``FrozenBatchNorm2d`` and back."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .freezing import record_helper
from .layers import BATCHNORM_TYPES, is_frozen_batchnorm2d, resolve_names


def is_frozen_bn(module: nn.Module) -> bool:
    """True for a BatchNorm layer (any of ``BATCHNORM_TYPES``) whose weight and bias are frozen or absent."""
    params = list(module.parameters(recurse=False))
    return isinstance(module, BATCHNORM_TYPES) and (not params or not any(p.requires_grad for p in params))


def set_bn_eval(model: nn.Module) -> int:
    """Put every BatchNorm layer whose parameters are frozen into eval mode (SyncBatchNorm too: ``BATCHNORM_TYPES``).

    Call it after every ``model.train()``: running statistics of frozen BN layers then stop
    moving while the rest of the model (dropout included) stays in train mode.
    Returns how many BN layers it switched.
    """
    record_helper(model, "set_bn_eval")
    count = 0
    for module in model.modules():
        if is_frozen_bn(module) and module.training:
            module.eval()
            count += 1
    return count


def keep_frozen_bn_eval(model: nn.Module) -> list[torch.utils.hooks.RemovableHandle]:
    """Make frozen BN layers run in eval mode on every forward, whatever ``model.train()`` did.

    Registers a forward pre-hook on each BN layer; it checks ``requires_grad`` at call time, so
    unfreezing a BN layer later lets it train normally. Returns the hook handles.
    """
    record_helper(model, "keep_frozen_bn_eval")

    def hook(module: nn.Module, inputs: tuple[Any, ...]) -> None:
        if module.training and is_frozen_bn(module):
            module.eval()

    return [m.register_forward_pre_hook(hook) for m in model.modules() if isinstance(m, BATCHNORM_TYPES)]


def to_frozen_batchnorm2d(model: nn.Module, only_frozen: bool = True) -> int:
    """Replace BatchNorm2d layers with ``torchvision.ops.FrozenBatchNorm2d`` (in place).

    FrozenBatchNorm2d keeps weight, bias and running stats as buffers: they can neither train
    nor drift, in any mode (and ``model.parameters()`` no longer lists them). With ``only_frozen``
    only BN layers whose parameters are frozen are replaced. ``from_frozen_batchnorm2d`` undoes it.
    Returns how many were replaced.
    """
    from torchvision.ops import FrozenBatchNorm2d  # imported here: torchvision.ops costs seconds to import

    count = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.BatchNorm2d) and (not only_frozen or is_frozen_bn(child)):
                frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
                device = child.running_mean.device if child.running_mean is not None else "cpu"
                frozen.to(device)
                with torch.no_grad():
                    if child.affine:
                        frozen.weight.copy_(child.weight)
                        frozen.bias.copy_(child.bias)
                    if child.track_running_stats:
                        frozen.running_mean.copy_(child.running_mean)
                        frozen.running_var.copy_(child.running_var)
                # what FrozenBatchNorm2d does not keep, so that from_frozen_batchnorm2d restores it exactly
                frozen._batchnorm_settings = {
                    "momentum": child.momentum,
                    "affine": child.affine,
                    "track_running_stats": child.track_running_stats,
                    "num_batches_tracked": int(child.num_batches_tracked or 0) if child.track_running_stats else 0,
                }
                frozen.train(child.training)
                setattr(parent, name, frozen)
                count += 1
    return count


def from_frozen_batchnorm2d(model: nn.Module, name: str = "") -> int:
    """Undo ``to_frozen_batchnorm2d``: replace each ``FrozenBatchNorm2d`` (inside layer ``name``, default
    everywhere) by an ``nn.BatchNorm2d`` with the same weight, bias, running statistics and eps.

    timm calls this ``unfreeze_batch_norm_2d``. The weight and bias are parameters again, frozen
    (``requires_grad=False``) as they were; ``unfreeze`` makes them trainable. Returns how many were
    replaced.
    """
    if name:
        resolve_names(model, [name])  # a clear error for a typo
    return _convert_frozen_batchnorm(model, name)


def _convert_frozen_batchnorm(model: nn.Module, name: str) -> int:
    prefix = f"{name}." if name else ""
    count = 0
    for parent_name, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            full = f"{parent_name}.{child_name}" if parent_name else child_name
            if not (is_frozen_batchnorm2d(child) and (not name or full == name or full.startswith(prefix))):
                continue
            settings = getattr(child, "_batchnorm_settings", {})
            bn = nn.BatchNorm2d(
                child.weight.numel(),
                eps=child.eps,
                momentum=settings.get("momentum", 0.1),
                affine=settings.get("affine", True),
                track_running_stats=settings.get("track_running_stats", True),
                device=child.weight.device,
                dtype=child.weight.dtype,
            )
            with torch.no_grad():
                if bn.affine:
                    bn.weight.copy_(child.weight)
                    bn.bias.copy_(child.bias)
                    bn.requires_grad_(False)
                if bn.running_mean is not None and bn.running_var is not None and bn.num_batches_tracked is not None:
                    bn.running_mean.copy_(child.running_mean)
                    bn.running_var.copy_(child.running_var)
                    bn.num_batches_tracked.fill_(settings.get("num_batches_tracked", 0))
            bn.train(child.training)
            setattr(parent, child_name, bn)
            count += 1
    return count
