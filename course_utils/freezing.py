"""Freezing helpers: freeze/unfreeze by name or glob pattern, freeze_to, summaries, BatchNorm handling,
per-block learning rates, gradual unfreezing, and checks of what really moved.

A *block* is a top-level child of the model that holds weights (``block_names``). Children without
parameters (ReLU, MaxPool, AdaptiveAvgPool, Dropout, Identity) are not blocks: the block-level helpers
skip them. Parameters owned by the model itself rather than by a child (ViT's ``class_token``) form the
pseudo-block ``OWN``; it sits on the input side of the network.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
import sys
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

BATCHNORM_TYPES: tuple[type[nn.Module], ...] = (nn.modules.batchnorm._BatchNorm,)
"""Every BatchNorm with trainable weight/bias and running statistics: BatchNorm1d/2d/3d, their Lazy
versions and SyncBatchNorm all subclass ``_BatchNorm``. Use ``isinstance(m, BATCHNORM_TYPES)``.
torchvision's ``FrozenBatchNorm2d`` is not one of them: it holds only buffers and never updates."""

OWN = "(own)"
"""Name of the pseudo-block of parameters owned by the model itself (e.g. ViT's ``class_token``)."""

_GLOB_CHARS = "*?["

_HELPER_CALLS: weakref.WeakKeyDictionary[nn.Module, set[str]] = weakref.WeakKeyDictionary()


def _record(model: nn.Module, helper: str) -> None:
    """Note that ``helper`` was applied to ``model`` (read by ``helpers_applied``)."""
    if isinstance(model, nn.Module):
        _HELPER_CALLS.setdefault(model, set()).add(helper)


def helpers_applied(model: nn.Module) -> list[str]:
    """The freezing helpers (``freeze``, ``freeze_to``, ``unfreeze``, ``set_bn_eval``, ``keep_frozen_bn_eval``)
    applied so far to ``model`` or to one of its submodules, sorted. A copy (``copy.deepcopy``) starts with none.

    Exercise checkers use it where an exercise asks for the lines a helper would hide.
    """
    return sorted({name for module in model.modules() for name in _HELPER_CALLS.get(module, set())})


class LayerNameError(KeyError):
    """A layer name that does not exist in the model (or has nothing to freeze)."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


class NothingTrainableError(ValueError):
    """Every parameter is frozen, so there is nothing for an optimizer to train."""


# ----------------------------------------------------------------------------------------- blocks


def _frozen_bn_class() -> type | None:
    # No FrozenBatchNorm2d can exist before torchvision.ops is imported; importing it costs seconds.
    misc = sys.modules.get("torchvision.ops.misc")
    return getattr(misc, "FrozenBatchNorm2d", None)


def _is_frozen_batchnorm2d(module: nn.Module) -> bool:
    cls = _frozen_bn_class()
    return cls is not None and isinstance(module, cls)


def _holds_weights(module: nn.Module) -> bool:
    """True if the module has parameters, or FrozenBatchNorm2d layers (weights kept as buffers)."""
    return any(True for _ in module.parameters()) or any(_is_frozen_batchnorm2d(m) for m in module.modules())


def block_names(model: nn.Module) -> list[str]:
    """Names of the model's top-level children that hold weights, in order: the model's *blocks*.

    Children without parameters (ReLU, pooling, Dropout, Identity) are skipped, so on a torchvision
    resnet18 the blocks are conv1, bn1, layer1-4 and fc. Parameters owned by the model itself are
    not a child: see ``OWN``.
    """
    return [name for name, child in model.named_children() if _holds_weights(child)]


def _own_parameters(model: nn.Module) -> list[nn.Parameter]:
    return list(model.parameters(recurse=False))


def _block_parameters(model: nn.Module, name: str) -> list[nn.Parameter]:
    if name == OWN:
        return _own_parameters(model)
    return list(model.get_submodule(name).parameters())


def _skipped_children(model: nn.Module) -> list[str]:
    return [name for name, child in model.named_children() if not _holds_weights(child)]


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
        f"{what}{hint} Top-level layers: {tops}.{how} Nested layers use dots, e.g. {example!r}; "
        "list them all with [n for n, _ in model.named_modules()]."
    )


def _resolve(model: nn.Module, names: Iterable[str]) -> list[str]:
    """Dotted module names for plain names and glob patterns; raises before changing anything."""
    modules = {n: m for n, m in model.named_modules() if n}
    resolved: dict[str, None] = {}
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"Layer names must be strings like 'block1' or 'layer[1-3]', got {name!r}.")
        if any(c in name for c in _GLOB_CHARS):
            matched = [n for n in modules if fnmatch.fnmatchcase(n, name)]
            if not matched:
                raise LayerNameError(_unknown_name_message(model, name, list(modules), is_pattern=True))
            with_weights = [n for n in matched if _holds_weights(modules[n])]
            if not with_weights:
                raise LayerNameError(
                    f"The pattern {name!r} matches only layers without parameters ({', '.join(matched[:5])}), "
                    "so freezing them would do nothing."
                )
            resolved.update(dict.fromkeys(with_weights))
        elif name not in modules:
            raise LayerNameError(_unknown_name_message(model, name, list(modules), is_pattern=False))
        elif not _holds_weights(modules[name]):
            raise LayerNameError(
                f"Layer {name!r} ({type(modules[name]).__name__}) has no parameters, so freezing it would do nothing."
            )
        else:
            resolved[name] = None
    return list(resolved)


# ------------------------------------------------------------------------------ freeze / unfreeze


def _freeze_module(module: nn.Module, train_bn: bool) -> None:
    for sub in module.modules():
        keep_trainable = train_bn and isinstance(sub, BATCHNORM_TYPES)
        for param in sub.parameters(recurse=False):
            param.requires_grad_(keep_trainable)


def _unfreeze_module(model: nn.Module, name: str) -> None:
    _convert_frozen_batchnorm(model, name)
    model.get_submodule(name).requires_grad_(True)


def freeze(model: nn.Module, *names: str, train_bn: bool = False) -> None:
    """Freeze the named layers (the whole model if no name is given).

    Names are dotted module names (``"layer4.1.bn2"``) or glob patterns over them
    (``freeze(model, "features.[0-9]", "layer[1-3]*")``). ``train_bn=True`` keeps BatchNorm
    weight/bias trainable (fastai's default). An unknown name, or a pattern that matches nothing,
    raises ``LayerNameError`` with close names, never a silent no-op.
    """
    _record(model, "freeze")
    for name in _resolve(model, names) if names else [""]:
        _freeze_module(model.get_submodule(name), train_bn)


def unfreeze(model: nn.Module, *names: str) -> None:
    """Make the named layers (names or glob patterns as in ``freeze``) trainable again; no name: everything.

    A torchvision ``FrozenBatchNorm2d`` inside them holds its weight and bias as buffers, so it could
    never train: it is converted back to a trainable ``nn.BatchNorm2d`` (``from_frozen_batchnorm``,
    as timm's ``unfreeze`` does). Those are new parameter objects: an optimizer built earlier does
    not have them (``unfreeze_next`` adds them, ``audit`` reports them).
    """
    _record(model, "unfreeze")
    for name in _resolve(model, names) if names else [""]:
        _unfreeze_module(model, name)


def freeze_to(model: nn.Module, n: int, train_bn: bool = False) -> None:
    """Freeze the first ``n`` blocks and unfreeze the rest (negative n counts from the end).

    Blocks are the children that hold weights (``block_names``): ``freeze_to(model, -1)`` trains
    only the last block (the classifier) on the course CNN and on torchvision models alike.
    Parameters owned by the model itself (``OWN``, e.g. ViT's ``class_token``) sit on the input
    side, so they are frozen whenever ``n >= 1`` and train only with ``n == 0``.
    """
    _record(model, "freeze_to")
    names = block_names(model)
    if not -len(names) <= n <= len(names):
        raise ValueError(f"n must be between {-len(names)} and {len(names)} for blocks {names}, got {n}.")
    n = n + len(names) if n < 0 else n
    for name in names[n:]:
        _unfreeze_module(model, name)
    for name in names[:n]:
        _freeze_module(model.get_submodule(name), train_bn)
    for param in _own_parameters(model):
        param.requires_grad_(n == 0)


# --------------------------------------------------------------------------------------- summary


def _percent(part: int, whole: int) -> str:
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
            ("total", f"{self.trainable:,}", f"{self.total:,}", f"{_percent(self.trainable, self.total)} trainable")
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
    for name in ([OWN] if _own_parameters(model) else []) + block_names(model):
        params = _block_parameters(model, name)
        rows.append((name, sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)))
    return TrainableSummary(rows, _skipped_children(model))


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


# ---------------------------------------------------------------------- optimizers and schedules


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
    order = ([OWN] if _own_parameters(model) else []) + names
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
        params = [p for p in _block_parameters(model, name) if p.requires_grad]
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
    """
    order = list(reversed(block_names(model))) + ([OWN] if _own_parameters(model) else [])
    for name in order:
        params = _block_parameters(model, name)
        has_frozen_bn = name != OWN and any(_is_frozen_batchnorm2d(m) for m in model.get_submodule(name).modules())
        if not has_frozen_bn and all(p.requires_grad for p in params):
            continue
        if name == OWN:
            for param in params:
                param.requires_grad_(True)
        else:
            _unfreeze_module(model, name)
        known = _optimizer_parameter_ids(optimizer)
        new = [p for p in _block_parameters(model, name) if id(p) not in known]
        if new:
            optimizer.add_param_group({"params": new, "lr": lr, "name": name})
        return name
    return None


# ------------------------------------------------------------------------------------- BatchNorm


def _is_frozen_bn(module: nn.Module) -> bool:
    params = list(module.parameters(recurse=False))
    return isinstance(module, BATCHNORM_TYPES) and (not params or not any(p.requires_grad for p in params))


def set_bn_eval(model: nn.Module) -> int:
    """Put every BatchNorm layer whose parameters are frozen into eval mode (SyncBatchNorm too: ``BATCHNORM_TYPES``).

    Call it after every ``model.train()``: running statistics of frozen BN layers then stop
    moving while the rest of the model (dropout included) stays in train mode.
    Returns how many BN layers it switched.
    """
    _record(model, "set_bn_eval")
    count = 0
    for module in model.modules():
        if _is_frozen_bn(module) and module.training:
            module.eval()
            count += 1
    return count


def keep_frozen_bn_eval(model: nn.Module) -> list[torch.utils.hooks.RemovableHandle]:
    """Make frozen BN layers run in eval mode on every forward, whatever ``model.train()`` did.

    Registers a forward pre-hook on each BN layer; it checks ``requires_grad`` at call time, so
    unfreezing a BN layer later lets it train normally. Returns the hook handles.
    """
    _record(model, "keep_frozen_bn_eval")

    def hook(module: nn.Module, inputs: tuple[Any, ...]) -> None:
        if module.training and _is_frozen_bn(module):
            module.eval()

    return [m.register_forward_pre_hook(hook) for m in model.modules() if isinstance(m, BATCHNORM_TYPES)]


def to_frozen_batchnorm(model: nn.Module, only_frozen: bool = True) -> int:
    """Replace BatchNorm2d layers with ``torchvision.ops.FrozenBatchNorm2d`` (in place).

    FrozenBatchNorm2d keeps weight, bias and running stats as buffers: they can neither train
    nor drift, in any mode (and ``model.parameters()`` no longer lists them). With ``only_frozen``
    only BN layers whose parameters are frozen are replaced. ``from_frozen_batchnorm`` (or
    ``unfreeze``) undoes it. Returns how many were replaced.
    """
    from torchvision.ops import FrozenBatchNorm2d  # imported here: torchvision.ops costs seconds to import

    count = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.BatchNorm2d) and (not only_frozen or _is_frozen_bn(child)):
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
                # what FrozenBatchNorm2d does not keep, so that from_frozen_batchnorm restores it exactly
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


def from_frozen_batchnorm(model: nn.Module, name: str = "") -> int:
    """Undo ``to_frozen_batchnorm``: replace each ``FrozenBatchNorm2d`` (inside layer ``name``, default
    everywhere) by an ``nn.BatchNorm2d`` with the same weight, bias, running statistics and eps.

    timm calls this ``unfreeze_batch_norm_2d``. The weight and bias are parameters again, frozen
    (``requires_grad=False``) as they were; ``unfreeze`` makes them trainable. Returns how many were
    replaced.
    """
    if name:
        _resolve(model, [name])  # a clear error for a typo
    return _convert_frozen_batchnorm(model, name)


def _convert_frozen_batchnorm(model: nn.Module, name: str) -> int:
    prefix = f"{name}." if name else ""
    count = 0
    for parent_name, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            full = f"{parent_name}.{child_name}" if parent_name else child_name
            if not (_is_frozen_batchnorm2d(child) and (not name or full == name or full.startswith(prefix))):
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


# ---------------------------------------------------------------------------- what really moved


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
    changes = {}
    for block in ([OWN] if _own_parameters(model) else []) + block_names(model):
        named = model.named_parameters(recurse=False) if block == OWN else model.get_submodule(block).named_parameters()
        prefix = "" if block == OWN else f"{block}."
        delta_sq, base_sq = 0.0, 0.0
        for name, param in named:
            old = before[prefix + name]
            delta_sq += float((param.detach() - old).pow(2).sum())
            base_sq += float(old.pow(2).sum())
        if base_sq:
            changes[block] = (delta_sq / base_sq) ** 0.5
    return changes


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
        share = _percent(self.trainable, total)
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
    drifting = [n for n, m in model.named_modules() if _is_frozen_bn(m) and m.training and m.track_running_stats]
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
