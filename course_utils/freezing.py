"""Freezing helpers: freeze/unfreeze by name, freeze_to, summaries, BatchNorm handling,
per-block learning rates, gradual unfreezing, and checks of what really moved."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

import torch
from torch import nn

_BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


class LayerNameError(KeyError):
    """A layer name that does not exist in the model (or has nothing to freeze)."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


class NothingTrainableError(ValueError):
    """Every parameter is frozen, so there is nothing for an optimizer to train."""


def block_names(model: nn.Module) -> list[str]:
    """Names of the model's top-level children, in order (the 'blocks' of the course)."""
    return [name for name, _ in model.named_children()]


def _module(model: nn.Module, name: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name not in modules or name == "":
        tops = ", ".join(block_names(model))
        raise LayerNameError(
            f"No layer named {name!r}. Top-level layers: {tops}. "
            f"Nested layers use dots, e.g. {next(iter(n for n in modules if '.' in n), 'block1.0')!r}; "
            "list them all with [n for n, _ in model.named_modules()]."
        )
    module = modules[name]
    if not any(True for _ in module.parameters()):
        raise LayerNameError(
            f"Layer {name!r} ({type(module).__name__}) has no parameters, so freezing it would do nothing."
        )
    return module


def _set_requires_grad(
    model: nn.Module, names: Iterable[str], flag: bool, train_bn: bool = False
) -> None:
    names = list(names)
    targets = [_module(model, n) for n in names] if names else [model]
    for module in targets:
        for sub in module.modules():
            keep_trainable = train_bn and isinstance(sub, _BN_TYPES) and not flag
            for param in sub.parameters(recurse=False):
                param.requires_grad_(flag or keep_trainable)


def freeze(model: nn.Module, *names: str, train_bn: bool = False) -> None:
    """Freeze the named layers (the whole model if no name is given).

    ``train_bn=True`` keeps BatchNorm weight/bias trainable (fastai's default). An unknown
    name raises ``LayerNameError`` listing the valid ones, never a silent no-op.
    """
    _set_requires_grad(model, names, False, train_bn)


def unfreeze(model: nn.Module, *names: str) -> None:
    """Make the named layers trainable again (the whole model if no name is given)."""
    _set_requires_grad(model, names, True)


def freeze_to(model: nn.Module, n: int, train_bn: bool = False) -> None:
    """Freeze the first ``n`` top-level blocks and unfreeze the rest (negative n counts from the end).

    ``freeze_to(model, 3)`` on the course CNN freezes block1-3 and trains the head;
    ``freeze_to(model, -1)`` does the same for any model.
    """
    names = block_names(model)
    if not -len(names) <= n <= len(names):
        raise ValueError(f"n must be between {-len(names)} and {len(names)} for blocks {names}, got {n}.")
    n = n % len(names) if n < 0 else n
    unfreeze(model)
    if n:
        freeze(model, *names[:n], train_bn=train_bn)


@dataclass
class TrainableSummary:
    """Trainable vs total parameters per top-level block."""

    rows: list[tuple[str, int, int]] = field(default_factory=list)

    @property
    def trainable(self) -> int:
        return sum(r[1] for r in self.rows)

    @property
    def total(self) -> int:
        return sum(r[2] for r in self.rows)

    @property
    def frozen_blocks(self) -> list[str]:
        return [name for name, trainable, total in self.rows if total and trainable == 0]

    def __str__(self) -> str:
        lines = [f"{'block':<10}{'trainable':>11}{'total':>9}  status"]
        for name, trainable, total in self.rows:
            status = "frozen" if trainable == 0 else "trainable" if trainable == total else "partly frozen"
            lines.append(f"{name:<10}{trainable:>11,}{total:>9,}  {status}")
        share = 100 * self.trainable / self.total if self.total else 0.0
        lines.append(f"{'total':<10}{self.trainable:>11,}{self.total:>9,}  {share:.1f}% trainable")
        return "\n".join(lines)

    __repr__ = __str__


def trainable_summary(model: nn.Module) -> TrainableSummary:
    """Per-block count of trainable and total parameters (prints as a table)."""
    rows = []
    for name, child in model.named_children():
        params = list(child.parameters())
        rows.append((name, sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)))
    own = list(model.parameters(recurse=False))
    if own:
        rows.append(("(own)", sum(p.numel() for p in own if p.requires_grad), sum(p.numel() for p in own)))
    return TrainableSummary(rows)


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters that require grad; raises ``NothingTrainableError`` if there are none."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise NothingTrainableError(
            "Every parameter of the model is frozen, so there is nothing to train. "
            f"Unfreeze at least one block, e.g. unfreeze(model, {block_names(model)[-1]!r}) "
            "or freeze_to(model, -1)."
        )
    return params


def param_groups(
    model: nn.Module,
    lr: float | Mapping[str, float],
    decay: float = 1.0,
) -> list[dict]:
    """Optimizer param groups, one per trainable top-level block, with per-block learning rates.

    ``lr`` is either a dict {block name: lr} or the head's lr; with a float, each earlier block
    gets ``decay`` times the lr of the block after it (discriminative learning rates).
    Frozen parameters are left out; each group carries its block's ``name``.
    """
    names = block_names(model)
    if isinstance(lr, Mapping):
        unknown = set(lr) - set(names)
        if unknown:
            raise LayerNameError(f"Unknown block(s) {sorted(unknown)} in lr; blocks are {names}.")
        rates = dict(lr)
    else:
        rates = {name: lr * decay ** (len(names) - 1 - i) for i, name in enumerate(names)}
    groups = []
    for name, child in model.named_children():
        params = [p for p in child.parameters() if p.requires_grad]
        if params and name in rates:
            groups.append({"params": params, "lr": rates[name], "name": name})
    if not groups:
        trainable_parameters(model)  # raises the explanatory error when everything is frozen
        raise ValueError(f"No trainable block has a learning rate in {dict(rates)}.")
    return groups


def unfreeze_next(model: nn.Module, optimizer: torch.optim.Optimizer, lr: float) -> str | None:
    """Gradual unfreezing: unfreeze the last still-frozen block and add it to ``optimizer``.

    Returns the block's name, or None when everything is already trainable.
    """
    for name, child in reversed(list(model.named_children())):
        params = list(child.parameters())
        if params and not any(p.requires_grad for p in params):
            unfreeze(model, name)
            optimizer.add_param_group({"params": params, "lr": lr, "name": name})
            return name
    return None


def _is_frozen_bn(module: nn.Module) -> bool:
    params = list(module.parameters(recurse=False))
    return isinstance(module, _BN_TYPES) and (not params or not any(p.requires_grad for p in params))


def set_bn_eval(model: nn.Module) -> int:
    """Put every BatchNorm layer whose parameters are frozen into eval mode.

    Call it after every ``model.train()``: running statistics of frozen BN layers then stop
    moving while the rest of the model (dropout included) stays in train mode.
    Returns how many BN layers it switched.
    """
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

    def hook(module: nn.Module, inputs: tuple) -> None:
        if module.training and _is_frozen_bn(module):
            module.eval()

    return [m.register_forward_pre_hook(hook) for m in model.modules() if isinstance(m, _BN_TYPES)]


def to_frozen_batchnorm(model: nn.Module, only_frozen: bool = True) -> int:
    """Replace BatchNorm2d layers with ``torchvision.ops.FrozenBatchNorm2d`` (in place).

    FrozenBatchNorm2d keeps weight, bias and running stats as buffers: they can neither train
    nor drift, in any mode. With ``only_frozen`` only BN layers whose parameters are frozen are
    replaced. Returns how many were replaced.
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
                setattr(parent, name, frozen)
                count += 1
    return count


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
    for block, child in model.named_children():
        delta_sq, base_sq = 0.0, 0.0
        for name, param in child.named_parameters():
            old = before[f"{block}.{name}"]
            delta_sq += float((param.detach() - old).pow(2).sum())
            base_sq += float(old.pow(2).sum())
        if base_sq:
            changes[block] = (delta_sq / base_sq) ** 0.5
    return changes


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
        share = 100 * self.trainable / total if total else 0.0
        head = f"trainable {self.trainable:,} / {total:,} parameters ({share:.1f}%), frozen {self.frozen:,}"
        if self.ok:
            return head + "\nno problems found"
        return head + "\n" + "\n".join(f"PROBLEM: {p}" for p in self.problems)

    __repr__ = __str__


def audit(model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> AuditReport:
    """Check a freezing set-up for the classic pitfalls and report them in words.

    Looks for: nothing trainable; BN layers in train mode whose affine parameters are frozen
    (their running stats still drift); optimizer entries for frozen parameters; optimizer
    state (momentum, Adam moments) held for frozen parameters; frozen parameters with a
    non-None ``.grad`` that weight decay or momentum could still use.
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
        problems.append(f"frozen parameters still hold a .grad: {', '.join(stale_grads[:5])}; use zero_grad(set_to_none=True)")
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
    return AuditReport(trainable, frozen, problems)
