"""Checkers for notebook 03 (freezing with requires_grad). They print feedback, never raise."""
from __future__ import annotations

from torch import nn

from ._feedback import Feedback, check

_BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _is_module(fb: Feedback, model, what: str = "model") -> bool:
    return fb.add(isinstance(model, nn.Module), f"You passed a {what} (an nn.Module).",
                  f"Pass the {what} itself (an nn.Module), got {type(model).__name__}.")


def check_frozen_first_two(model) -> Feedback:
    """Exercise 1: block1 and block2 frozen, block3 and head trainable, every parameter covered."""

    def flags(fb: Feedback) -> None:
        if not _is_module(fb, model):
            return
        blocks = dict(model.named_children())
        missing = [name for name in ("block1", "block2", "block3", "head") if name not in blocks]
        if missing:
            fb.add(False, "", f"This model has no {missing}: use a CourseCNN.")
            return
        for name, want_frozen in [("block1", True), ("block2", True), ("block3", False), ("head", False)]:
            flags = [p.requires_grad for p in blocks[name].parameters()]
            frozen, trainable = not any(flags), all(flags)
            if want_frozen:
                fb.add(frozen, f"{name} is frozen.",
                       f"{name} still has {sum(flags)} of {len(flags)} parameter tensors with requires_grad=True: "
                       f"loop over model.{name}.parameters() and set requires_grad = False on each one.")
            else:
                fb.add(trainable, f"{name} is still trainable.",
                       f"{name} should stay trainable, but {len(flags) - sum(flags)} of its parameter tensors are frozen.")

    def no_attribute_trick(fb: Feedback) -> None:
        if not isinstance(model, nn.Module):
            return
        tricked = [name for name, child in model.named_children() if "requires_grad" in vars(child)]
        fb.add(not tricked, "No `module.requires_grad = ...` attribute left behind.",
               f"{tricked} got a plain Python attribute `requires_grad`: that freezes nothing. "
               "Set it on the parameters (or call module.requires_grad_(False)).")

    return check("freeze block1 and block2", flags, no_attribute_trick)


def check_optimizer_params(optimizer, model) -> Feedback:
    """Exercise 2: an optimizer that holds exactly the trainable parameters of ``model``."""

    def right_params(fb: Feedback) -> None:
        import torch

        if not fb.add(isinstance(optimizer, torch.optim.Optimizer), "An optimizer.",
                      f"Build a torch.optim optimizer (e.g. torch.optim.SGD), got {type(optimizer).__name__}."):
            return
        if not _is_module(fb, model):
            return
        held = {id(p) for group in optimizer.param_groups for p in group["params"]}
        names = {id(p): n for n, p in model.named_parameters()}
        trainable = {id(p) for p in model.parameters() if p.requires_grad}
        frozen_held = sorted(names[i] for i in held & set(names) if i not in trainable)
        missing = sorted(names[i] for i in trainable - held)
        fb.add(not frozen_held, "It holds no frozen parameter.",
               f"It holds {len(frozen_held)} frozen parameter(s), e.g. {frozen_held[:1]}: pass only "
               "[p for p in model.parameters() if p.requires_grad].")
        fb.add(not missing, "It holds every trainable parameter.",
               f"{len(missing)} trainable parameter(s) are missing, e.g. {missing[:1]}.")

    return check("an optimizer over the trainable parameters only", right_params)


def check_resnet_fc_and_bn(model) -> Feedback:
    """Exercise 3: a resnet18 with everything frozen except ``fc`` and every BatchNorm layer."""

    def flags(fb: Feedback) -> None:
        if not _is_module(fb, model):
            return
        if not hasattr(model, "fc") or not hasattr(model, "layer4"):
            fb.add(False, "", "Use the torchvision resnet18 from the exercise cell.")
            return
        wrong_frozen, wrong_trainable = [], []
        for name, module in model.named_modules():
            should_train = isinstance(module, _BN_TYPES) or name == "fc" or name.startswith("fc.")
            for pname, p in module.named_parameters(recurse=False):
                full = f"{name}.{pname}"
                if should_train and not p.requires_grad:
                    wrong_frozen.append(full)
                if not should_train and p.requires_grad:
                    wrong_trainable.append(full)
        fb.add(not wrong_trainable, "Every conv weight is frozen.",
               f"{len(wrong_trainable)} parameter(s) should be frozen but train, e.g. {wrong_trainable[:2]}.")
        fb.add(not wrong_frozen, "fc and every BatchNorm weight/bias still train.",
               f"{len(wrong_frozen)} parameter(s) should train but are frozen, e.g. {wrong_frozen[:2]}: "
               "after freezing all, unfreeze modules that are isinstance(m, nn.BatchNorm2d), and fc.")

    return check("resnet18: train only fc and BatchNorm", flags)
