"""A model's layers by name: its blocks (a ResNet's stem is one), the kinds of BatchNorm, and names or glob
patterns resolved to modules, with an error that suggests close names.

A *block* is what freezes together: a top-level child of the model that holds weights, except that
the single layers a model starts with (a ResNet's ``conv1`` and ``bn1``) form one block, ``STEM``,
when they come before the model's first stage. Children without parameters (ReLU, MaxPool,
AdaptiveAvgPool, Dropout, Identity) are not blocks. Parameters owned by the model itself rather
than by a child (ViT's ``class_token``) form the pseudo-block ``OWN``, on the input side.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
import sys
from collections.abc import Iterable

from torch import nn

BATCHNORM_TYPES: tuple[type[nn.Module], ...] = (nn.modules.batchnorm._BatchNorm,)
"""Every BatchNorm with trainable weight/bias and running statistics: BatchNorm1d/2d/3d, their Lazy
versions and SyncBatchNorm all subclass ``_BatchNorm``. Use ``isinstance(m, BATCHNORM_TYPES)``.
torchvision's ``FrozenBatchNorm2d`` is not one of them: it holds only buffers and never updates."""

OWN = "(own)"
"""Name of the pseudo-block of parameters owned by the model itself (e.g. ViT's ``class_token``)."""

STEM = "stem"
"""Name of the block made of the single layers a model starts with (a ResNet's ``conv1`` + ``bn1``)."""

_GLOB_CHARS = "*?["


class LayerNameError(KeyError):
    """A layer name that does not exist in the model (or has nothing to freeze)."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


def is_frozen_batchnorm2d(module: nn.Module) -> bool:
    """True for torchvision's ``FrozenBatchNorm2d`` (weights kept as buffers, never trained)."""
    # No FrozenBatchNorm2d can exist before torchvision.ops is imported; importing it costs seconds.
    frozen_bn = getattr(sys.modules.get("torchvision.ops.misc"), "FrozenBatchNorm2d", None)
    return frozen_bn is not None and isinstance(module, frozen_bn)


def holds_weights(module: nn.Module) -> bool:
    """True if the module has parameters, or FrozenBatchNorm2d layers (weights kept as buffers)."""
    return any(True for _ in module.parameters()) or any(is_frozen_batchnorm2d(m) for m in module.modules())


def blocks(model: nn.Module) -> dict[str, list[str]]:
    """The model's blocks in order, input to output: block name -> the top-level children it groups.

    Every child that holds weights is a block of its own, except a leading run of two or more
    single layers (children without children) followed by a stage: that run is one block, ``STEM``.
    On a torchvision resnet18: stem (conv1, bn1), layer1-4, fc; on the course CNN: block1-3, head.
    """
    children = [(name, child) for name, child in model.named_children() if holds_weights(child)]
    lead = []
    for name, child in children:
        if any(True for _ in child.children()):
            break
        lead.append(name)
    has_stem = 2 <= len(lead) < len(children) and STEM not in dict(model.named_children())
    grouped = {STEM: lead} if has_stem else {}
    return grouped | {name: [name] for name, _ in children if not (has_stem and name in lead)}


def block_names(model: nn.Module) -> list[str]:
    """Names of the model's blocks, input to output (see ``blocks``): what ``freeze_to`` counts."""
    return list(blocks(model))


def own_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Parameters the model owns itself, outside every child (``OWN``)."""
    return list(model.parameters(recurse=False))


def block_parameters(model: nn.Module, name: str) -> list[nn.Parameter]:
    """The parameters of block ``name`` (a name from ``block_names``, or ``OWN``)."""
    if name == OWN:
        return own_parameters(model)
    members = blocks(model).get(name, [name])
    return [p for member in members for p in model.get_submodule(member).parameters()]


def skipped_children(model: nn.Module) -> list[str]:
    """Top-level children without weights: not blocks."""
    return [name for name, child in model.named_children() if not holds_weights(child)]


# ------------------------------------------------------------------------------ name resolution


def _literal_part(pattern: str) -> str:
    return re.sub(r"\[[^\]]*\]|[*?]", "", pattern)


def _close_names(name: str, candidates: list[str], n: int = 3) -> list[str]:
    """Up to ``n`` candidates that look like ``name``, preferring those at the same nesting depth."""
    same_depth = [c for c in candidates if c.count(".") == name.count(".")]
    for pool in (same_depth, candidates):
        scored = [(difflib.SequenceMatcher(None, name, c).ratio(), c) for c in pool]
        close = sorted((item for item in scored if item[0] >= 0.6), key=lambda item: (-item[0], item[1]))
        if close:
            return [c for _, c in close[:n]]
    return []


def _unknown_name_message(model: nn.Module, name: str, candidates: list[str], is_pattern: bool) -> str:
    close = _close_names(_literal_part(name) if is_pattern else name, candidates)
    tops = ", ".join(block_names(model)) or "(none)"
    example = next((n for n in candidates if "." in n), "block1.0")
    what = f"No layer matches the pattern {name!r}." if is_pattern else f"No layer named {name!r}."
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    how = " Patterns are matched with fnmatch against dotted names ('*' also matches dots)." if is_pattern else ""
    return (
        f"{what}{hint} Blocks: {tops}.{how} Nested layers use dots, e.g. {example!r}; "
        "list them all with [n for n, _ in model.named_modules()]."
    )


def resolve_names(model: nn.Module, names: Iterable[str]) -> list[str]:
    """Dotted module names for plain names, glob patterns and ``STEM``; raises before changing anything."""
    modules = {n: m for n, m in model.named_modules() if n}
    stem = blocks(model).get(STEM) if STEM not in modules else None
    resolved: dict[str, None] = {}
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"Layer names must be strings like 'block1' or 'layer[1-3]', got {name!r}.")
        if name == STEM and stem:
            resolved.update(dict.fromkeys(stem))
        elif any(c in name for c in _GLOB_CHARS):
            matched = [n for n in modules if fnmatch.fnmatchcase(n, name)]
            if not matched:
                raise LayerNameError(_unknown_name_message(model, name, list(modules), is_pattern=True))
            with_weights = [n for n in matched if holds_weights(modules[n])]
            if not with_weights:
                raise LayerNameError(
                    f"The pattern {name!r} matches only layers without parameters ({', '.join(matched[:5])}), "
                    "so freezing them would do nothing."
                )
            resolved.update(dict.fromkeys(with_weights))
        elif name not in modules:
            raise LayerNameError(_unknown_name_message(model, name, list(modules), is_pattern=False))
        elif not holds_weights(modules[name]):
            raise LayerNameError(
                f"Layer {name!r} ({type(modules[name]).__name__}) has no parameters, so freezing it would do nothing."
            )
        else:
            resolved[name] = None
    return list(resolved)
