"""Checkers for notebook 03 (freezing with requires_grad). They print feedback, never raise."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from ._feedback import Feedback, call, check, is_function
from ._fixtures import (
    attribute_tricks,
    frozen_state,
    no_helpers,
    require_course_cnn,
    require_module,
    require_optimizer,
    require_same_layers,
)

_BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def check_frozen_middle(model: Any, frozen: tuple[str, ...] = ("block2", "block3")) -> Feedback:
    """Exercise 1: ``frozen`` (block2 and block3) frozen by hand, the other blocks trainable, every block in place."""

    def still_there(fb: Feedback) -> None:
        require_course_cnn(fb, model, "exercise_model")

    def by_hand(fb: Feedback) -> None:
        no_helpers(fb, model, "Loop over model.<block>.parameters() and set requires_grad = False on each one.")
        tricked = attribute_tricks(model)
        fb.add(
            not tricked,
            "No `module.requires_grad = ...` attribute left behind.",
            f"{tricked} got a plain Python attribute `requires_grad`: that freezes nothing. "
            "Set it on the parameters (or call module.requires_grad_(False)).",
        )

    def flags(fb: Feedback) -> None:
        for name in ("block1", "block2", "block3", "head"):
            frozen_count, total = frozen_state(getattr(model, name))
            if name in frozen:
                fb.add(
                    frozen_count == total,
                    f"{name} is frozen ({total} of {total} parameter tensors).",
                    f"{name} still has {total - frozen_count} of {total} parameter tensors with requires_grad=True: "
                    f"loop over model.{name}.parameters() and set requires_grad = False on each one.",
                )
            else:
                fb.add(
                    frozen_count == 0,
                    f"{name} is still trainable.",
                    f"{name} should stay trainable, but {frozen_count} of its {total} parameter tensors are frozen.",
                )

    return check(f"freeze {' and '.join(frozen)} by hand", still_there, by_hand, flags)


def check_unfreeze_into_optimizer(
    optimizer: Any, model: Any, lr: float = 0.01, new_lr: float = 0.001, block: str = "block1"
) -> Feedback:
    """Exercise 2: ``block`` unfrozen mid-training and added to the *same* optimizer at ``new_lr``.

    The optimizer was built with ``block`` frozen and has taken a step (SGD with momentum), so a
    rebuilt optimizer shows up as missing momentum. The other parameters must keep ``lr``.
    """
    names: dict[int, str] = {}

    def kept_optimizer(fb: Feedback) -> None:
        require_optimizer(
            fb, optimizer, "An optimizer.", "Keep the `optimizer` of the cell and add block1 to it with add_param_group"
        )
        require_module(fb, model, "opt_model")
        names.update({id(p): n for n, p in model.named_parameters()})
        fb.add(
            type(optimizer) is torch.optim.SGD,
            "It is still the SGD optimizer.",
            f"It is a {type(optimizer).__name__}: keep the SGD optimizer and add a param group to it.",
        )
        trained = [p for n, p in model.named_parameters() if not n.startswith(f"{block}.")]
        kept = all("momentum_buffer" in optimizer.state.get(p, {}) for p in trained)
        fb.require(
            kept,
            "The same optimizer: the momentum of the parameters that already trained is still there.",
            "This optimizer has no momentum for the parameters that already trained: it is a new optimizer, and "
            "building one throws their momentum away. Keep `optimizer` and call optimizer.add_param_group(...).",
        )

    def unfrozen(fb: Feedback) -> None:
        still = [n for n, p in model.named_parameters() if n.startswith(f"{block}.") and not p.requires_grad]
        fb.add(
            not still,
            f"{block} is unfrozen.",
            f"{len(still)} parameter(s) of {block} still have requires_grad=False, e.g. {still[:1]}: in the "
            f"optimizer or not, they get no .grad and never move. Call opt_model.{block}.requires_grad_(True).",
        )
        others = [n for n, p in model.named_parameters() if not n.startswith(f"{block}.") and not p.requires_grad]
        fb.add(not others, "", f"Only {block} was to change, but {others[:2]} are now frozen.")

    def groups(fb: Feedback) -> None:
        held = [(p, g) for g in optimizer.param_groups for p in g["params"]]
        counts: dict[int, int] = {}
        for p, _ in held:
            counts[id(p)] = counts.get(id(p), 0) + 1
        missing = [n for i, n in names.items() if n.startswith(f"{block}.") and i not in counts]
        fb.add(
            not missing,
            f"Every parameter of {block} is in the optimizer.",
            f"{len(missing)} parameter(s) of {block} are not in the optimizer, e.g. {missing[:1]}: an optimizer "
            "only updates what it holds. Add them with optimizer.add_param_group({'params': ..., 'lr': ...}).",
        )
        foreign = [p for p, _ in held if id(p) not in names]
        fb.add(not foreign, "", f"It holds {len(foreign)} tensor(s) that are not parameters of opt_model.")
        block_rates = sorted({float(g["lr"]) for p, g in held if names.get(id(p), "").startswith(f"{block}.")})
        fb.add(
            not block_rates or block_rates == [new_lr],
            f"{block} trains at lr={new_lr:g}." if block_rates else "",
            f"{block}'s parameters train at lr {block_rates}, asked lr={new_lr:g}: put them in a group of their "
            f"own, add_param_group({{'params': ..., 'lr': {new_lr:g}}}) (extending the first group gives them "
            "its lr).",
        )
        other_rates = sorted({float(g["lr"]) for p, g in held if not names.get(id(p), "").startswith(f"{block}.")})
        fb.add(
            other_rates == [lr],
            f"The other blocks still train at lr={lr:g}.",
            f"The other blocks now train at lr {other_rates}: leave the first group at lr={lr:g}; only the new "
            "group gets the lower rate.",
        )

    return check(f"unfreeze {block} into the running optimizer", kept_optimizer, unfrozen, groups)


class _BiasedConvNet(nn.Module):
    """A small ResNet-like model whose convolutions have biases (resnet18's have none) and an ``fc``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, bias=True)
        self.bn1 = nn.BatchNorm2d(8)
        self.layer1 = nn.Sequential(nn.Conv2d(8, 8, 3, bias=True), nn.BatchNorm2d(8), nn.ReLU())
        self.fc = nn.Linear(8, 5)


def _fc_and_bn_models() -> dict[str, nn.Module]:
    from torchvision.models import resnet18

    torch.manual_seed(0)
    return {
        "resnet18(weights=None)": resnet18(weights=None),
        "a small CNN whose convolutions have biases": _BiasedConvNet(),
    }


def check_fc_and_bn_only(fc_and_bn_only: Any) -> Feedback:
    """Exercise 3: ``fc_and_bn_only(model)`` freezes everything except ``fc`` and every BatchNorm layer.

    Tried on resnet18 and on a model whose convolutions have biases, so a rule that only works
    because resnet18's convolutions have none (``p.ndim == 1``) fails.
    """

    def right_flags(fb: Feedback) -> None:
        for setup, model in _fc_and_bn_models().items():
            reference = copy.deepcopy(model)
            call(fb, fc_and_bn_only, model, setup=setup)
            fb.require(isinstance(model, nn.Module), "", "Change the model in place.")
            require_same_layers(fb, model, reference)
            wrong_frozen, wrong_trainable = [], []
            for name, module in model.named_modules():
                should_train = isinstance(module, _BN_TYPES) or name == "fc" or name.startswith("fc.")
                for pname, p in module.named_parameters(recurse=False):
                    full = f"{name}.{pname}"
                    if should_train and not p.requires_grad:
                        wrong_frozen.append(full)
                    if not should_train and p.requires_grad:
                        wrong_trainable.append(full)
            tricked = attribute_tricks(model)
            if tricked:
                fb.fail(
                    f"On {setup}, {tricked[:3]} got a plain Python attribute `requires_grad`, which changes nothing: "
                    "use module.requires_grad_(True) (with the underscore, called)."
                )
            if wrong_trainable:
                bias = " (a conv bias is 1-D like a BatchNorm weight: choose by module type, not by shape)"
                fb.fail(
                    f"On {setup}, {len(wrong_trainable)} parameter(s) should be frozen but train, e.g. "
                    f"{wrong_trainable[:2]}" + (bias if any(n.endswith("bias") for n in wrong_trainable) else "") + "."
                )
            if wrong_frozen:
                fb.fail(
                    f"On {setup}, {len(wrong_frozen)} parameter(s) should train but are frozen, "
                    f"e.g. {wrong_frozen[:2]}: "
                    "after freezing all, unfreeze the modules that are isinstance(m, nn.BatchNorm2d), and fc."
                )
        fb.add(
            True,
            "Every convolution frozen (weights and biases), fc and every BatchNorm trainable — on resnet18 and on "
            "a model whose convolutions have biases.",
            "",
        )

    return check("train only fc and BatchNorm", is_function(fc_and_bn_only, "fc_and_bn_only(model)"), right_flags)
