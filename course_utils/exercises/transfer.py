"""Checkers for the exercises of 04_transfer_learning. They print feedback and never raise."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ._feedback import Feedback, check, describe, is_number
from ._fixtures import attribute_tricks, require_course_cnn, require_module

_BACKBONE = ("block1", "block2", "block3")


def check_frozen_backbone(model: Any, pretrained: nn.Module, num_classes: int = 5, verbose: bool = True) -> Feedback:
    """Exercise 1: backbone frozen, a *new* ``num_classes``-way head, and only the head trainable."""

    def is_model(fb: Feedback) -> None:
        require_module(fb, pretrained, "pretrained")
        fb.require(
            model is not pretrained,
            "",
            "`exercise_model` is `pretrained` itself: work on the copy (copy.deepcopy(pretrained)), "
            "so the pretrained model stays as it was.",
        )
        require_course_cnn(fb, model, "exercise_model", ignore=("head.",))

    def backbone_kept(fb: Feedback) -> None:
        reference = dict(pretrained.named_parameters())
        changed = [
            n
            for n, p in model.named_parameters()
            if n.split(".")[0] in _BACKBONE and not torch.equal(p.detach().cpu(), reference[n].detach().cpu())
        ]
        fb.add(
            not changed,
            "The backbone keeps its pretrained weights.",
            f"The backbone's weights differ from the pretrained ones (e.g. {changed[:1]}): start from "
            "copy.deepcopy(pretrained), not a new CourseCNN().",
        )

    def backbone_frozen(fb: Feedback) -> None:
        trainable = [n for n, p in model.named_parameters() if p.requires_grad and not n.startswith("head.")]
        fb.add(
            not trainable,
            "Every backbone parameter is frozen.",
            f"These backbone parameters still require grad: {trainable[:4]}. Set requires_grad = False on them"
            + (
                f" (a plain attribute on {attribute_tricks(model)[:2]} freezes nothing)."
                if attribute_tricks(model)
                else "."
            ),
        )

    def head_is_new(fb: Feedback) -> None:
        linears = [m for m in model.head.modules() if isinstance(m, nn.Linear)]
        fb.require(
            bool(linears) and linears[-1].out_features == num_classes,
            f"The head ends in a Linear layer with {num_classes} outputs.",
            f"The head should end in nn.Linear(256, {num_classes}); found "
            f"{linears[-1] if linears else 'no Linear layer'}.",
        )
        old = [m for m in pretrained.get_submodule("head").modules() if isinstance(m, nn.Linear)][-1]
        same = linears[-1].weight.shape == old.weight.shape and torch.equal(
            linears[-1].weight.detach().cpu(), old.weight.detach().cpu()
        )
        fb.add(
            not same,
            "The head is a fresh layer, not the old 0-4 classifier.",
            "The head still holds the pretrained 0-4 weights: replace it with a new nn.Sequential(...).",
        )

    def head_trainable(fb: Feedback) -> None:
        params = list(model.head.parameters())
        fb.add(
            bool(params) and all(p.requires_grad for p in params),
            "The new head is trainable.",
            "The head is frozen too: create it *after* freezing, or set requires_grad = True on its parameters.",
        )

    return check(
        "freeze the backbone and replace the head",
        is_model,
        backbone_kept,
        backbone_frozen,
        head_is_new,
        head_trainable,
        verbose=verbose,
    )


def check_cached_features(features: Any, pretrained: nn.Module, x: torch.Tensor, verbose: bool = True) -> Feedback:
    """Exercise 2: the frozen backbone's features of ``x``, eval-mode BN, no autograd graph."""

    def is_tensor(fb: Feedback) -> None:
        fb.require(
            isinstance(features, torch.Tensor),
            "`my_features` is a tensor.",
            f"`my_features` should be a tensor (model.features(x)), got {describe(features)}.",
        )
        require_module(fb, pretrained, "pretrained")
        fb.require(isinstance(x, torch.Tensor), "", f"Pass the images as the third argument, got {describe(x)}.")

    def shape(fb: Feedback) -> None:
        expected = (len(x), 256)
        hint = "Use model.features(x), not model(x)."
        if features.dim() == 4:
            hint = "Flatten the backbone's output to one vector per image: model.features(x) does it."
        elif features.dim() == 2 and len(features) != len(x):
            hint = f"Compute the features of all {len(x)} images of exercise_x."
        fb.require(
            tuple(features.shape) == expected,
            f"Shape {expected}: one 256-number vector per image.",
            f"Expected shape {expected}, got {tuple(features.shape)}. {hint}",
        )

    def no_graph(fb: Feedback) -> None:
        fb.add(
            features.grad_fn is None and not features.requires_grad,
            "No autograd graph is attached.",
            "The features carry an autograd graph: compute them inside `with torch.no_grad():`.",
        )

    def values(fb: Feedback) -> None:
        was_training = pretrained.training
        pretrained.eval()
        device = next(pretrained.parameters()).device
        with torch.no_grad():
            expected = getattr(pretrained, "features")(x.to(device)).cpu()  # noqa: B009 - any course CNN
        pretrained.train(was_training)
        ok = torch.allclose(features.detach().cpu().float(), expected, atol=1e-4)
        fb.add(
            ok,
            "The values match the backbone in eval mode.",
            "The values differ from the pretrained backbone's eval-mode features: use the pretrained "
            "weights, and call model.eval() first (BatchNorm in train mode uses batch statistics).",
        )

    return check("cache the backbone features", is_tensor, shape, no_graph, values, verbose=verbose)


def check_crossover(
    answer: Any,
    labels: Sequence[int],
    frozen_means: Sequence[float],
    full_means: Sequence[float],
    verbose: bool = True,
) -> Feedback:
    """Exercise 3: the first labels-per-class value where full fine-tuning beats the frozen backbone."""

    def valid(fb: Feedback) -> None:
        options = list(labels)
        fb.require(
            len(options) == len(list(frozen_means)) == len(list(full_means)) and len(options) > 0,
            "",
            "The checker needs LABELS, means['frozen'] and means['full'] of the same length: "
            "pass them as in the exercise cell.",
        )
        fb.require(
            answer is None or (is_number(answer) and answer in options),
            "Your answer is one of the measured label counts.",
            f"Answer with one of {options} (a number, or None), got {describe(answer)}.",
        )

    def right(fb: Feedback) -> None:
        expected = next((k for k, fr, fu in zip(labels, frozen_means, full_means) if fu > fr), None)
        if answer == expected:
            fb.add(
                True,
                "Right: that is where the red curve first rises above the blue one."
                if expected is not None
                else "Right: full fine-tuning never beats the frozen backbone here.",
                "",
            )
            return
        later = [k for k, fr, fu in zip(labels, frozen_means, full_means) if fu > fr]
        if answer is None:
            hint = f"it does: full fine-tuning is ahead at {len(later)} label count(s)"
        elif answer in later:
            hint = "full fine-tuning is ahead there, but not for the first time: read from the top"
        else:
            hint = "there the frozen backbone is still ahead (or level): compare the 'frozen' and 'full' columns"
        fb.add(False, "", f"Not {answer}: {hint}.")

    return check("read the learning curve", valid, right, verbose=verbose)
