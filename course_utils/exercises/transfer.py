"""Checkers for the exercises of 04_transfer_learning. They print feedback and never raise."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..models import FEATURE_DIM
from ._feedback import Feedback, call, check, describe, is_function, is_number
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

    def trains(fb: Feedback) -> None:
        trial = copy.deepcopy(model).train()
        device = next(trial.parameters()).device
        generator = torch.Generator().manual_seed(0)
        x = torch.rand(8, 1, 28, 28, generator=generator).to(device)
        y = torch.randint(0, num_classes, (8,), generator=generator).to(device)
        try:
            out = trial(x)
        except Exception as error:  # a head that does not fit the features: report it, never raise
            fb.fail(
                f"A forward pass fails ({type(error).__name__}: {error}). The backbone gives {FEATURE_DIM} "
                f"features per image: the head needs nn.Linear({FEATURE_DIM}, {num_classes})."
            )
        fb.require(
            tuple(out.shape) == (8, num_classes),
            "",
            f"The model gives shape {tuple(out.shape)} for 8 images, not (8, {num_classes}).",
        )
        before = {n: p.detach().clone() for n, p in trial.named_parameters()}
        trainable = [p for p in trial.parameters() if p.requires_grad]
        optimizer = torch.optim.SGD(trainable, lr=0.1)
        nn.functional.cross_entropy(out, y).backward()
        optimizer.step()
        moved = sorted({n.split(".")[0] for n, p in trial.named_parameters() if not torch.equal(p, before[n])})
        fb.add(
            moved == ["head"],
            "A forward pass and a training step work, and the step moves only the head.",
            f"After one training step these blocks moved: {moved}; only the head should.",
        )

    return check(
        "freeze the backbone and replace the head",
        is_model,
        backbone_kept,
        backbone_frozen,
        head_is_new,
        head_trainable,
        trains,
        verbose=verbose,
    )


def check_cached_features(
    cache_features: Any, pretrained: nn.Module, x: torch.Tensor, verbose: bool = True
) -> Feedback:
    """Exercise 2: ``cache_features(model, x)`` = the backbone's features, BN in eval mode, no autograd graph built.

    The checker hands it a copy of ``pretrained`` left in train mode (as after a training loop), so
    forgetting ``model.eval()`` shows; and it watches whether autograd was recording during the
    forward pass, so ``.detach()`` after building a graph is told apart from ``torch.no_grad()``.
    """

    def inputs(fb: Feedback) -> None:
        require_module(fb, pretrained, "pretrained")
        fb.require(isinstance(x, torch.Tensor), "", f"Pass the images as the third argument, got {describe(x)}.")

    def right_features(fb: Feedback) -> None:
        trial = copy.deepcopy(pretrained).train()
        recording: list[bool] = []
        handles = [
            m.register_forward_hook(lambda *_: recording.append(torch.is_grad_enabled())) for m in trial.modules()
        ]
        device = next(trial.parameters()).device
        features = call(fb, cache_features, trial, x.to(device), setup="a copy of the pretrained model in train mode")
        for handle in handles:
            handle.remove()
        fb.require(
            isinstance(features, torch.Tensor),
            "It returns a tensor.",
            f"Return the features as a tensor (model.features(x)), got {describe(features)}.",
        )
        expected_shape = (len(x), FEATURE_DIM)
        hint = "Use model.features(x), not model(x)."
        if features.dim() == 4:
            hint = "Flatten the backbone's output to one vector per image: model.features(x) does it."
        fb.require(
            tuple(features.shape) == expected_shape,
            f"Shape {expected_shape}: one {FEATURE_DIM}-number vector per image.",
            f"Expected shape {expected_shape}, got {tuple(features.shape)}. {hint}",
        )
        fb.add(
            bool(recording) and not any(recording),
            "Autograd recorded nothing during the forward pass.",
            "Autograd was recording during the forward pass: it built a graph (and kept every activation) that "
            "you then threw away. Run the backbone inside `with torch.no_grad():` "
            "(.detach() only drops it afterwards).",
        )
        fb.add(
            features.grad_fn is None and not features.requires_grad,
            "No autograd graph is attached.",
            "The features carry an autograd graph: compute them inside `with torch.no_grad():`.",
        )
        reference = copy.deepcopy(pretrained).eval()
        with torch.no_grad():
            expected = getattr(reference, "features")(x.to(device)).cpu()  # noqa: B009 - any course CNN
        fb.add(
            torch.allclose(features.detach().cpu().float(), expected, atol=1e-4),
            "The values match the backbone in eval mode.",
            "The values differ from the backbone's eval-mode features: the model you get is in train mode, where "
            "BatchNorm normalises with the batch's statistics (and updates them). Call model.eval() first.",
        )

    return check(
        "cache the backbone features",
        is_function(cache_features, "cache_features(model, x)"),
        inputs,
        right_features,
        verbose=verbose,
    )


def check_crossover(answer: Any, labels: Sequence[int], pairs: Sequence[Any], verbose: bool = True) -> Feedback:
    """Exercise 3: the first labels-per-class value where full fine-tuning is ahead of the frozen backbone on
    every seed, or None. ``pairs``: ``curve[k].paired("full", "frozen")`` per label count (``.mean/.low/.high``)."""

    def valid(fb: Feedback) -> None:
        options = list(labels)
        fb.require(
            len(options) == len(list(pairs)) > 0
            and all(all(is_number(getattr(p, f, None)) for f in ("mean", "low", "high")) for p in pairs),
            "",
            'The checker needs LABELS and [curve[k].paired("full", "frozen") for k in LABELS]: pass them as in '
            "the exercise cell.",
        )
        fb.require(
            answer is None or (is_number(answer) and answer in options),
            "Your answer is one of the measured label counts.",
            f"Answer with one of {options} (a number, or None), got {describe(answer)}.",
        )

    def right(fb: Feedback) -> None:
        by_k = dict(zip(labels, pairs))
        expected = next((k for k in labels if by_k[k].low > 0), None)
        if answer == expected:
            if expected is not None:
                fb.add(True, f"Right: from {expected} labels per class full fine-tuning is ahead on every seed.", "")
                return
            closest = max(labels, key=lambda k: by_k[k].high)
            pair = by_k[closest]
            fb.add(
                True,
                "Right: at no label count is full fine-tuning ahead on every seed. "
                + (
                    f"At {closest} labels it is ahead on average ({pair.mean:+.1f} points) and on its best seed "
                    f"({pair.high:+.1f}), but behind on another ({pair.low:+.1f}): no clear difference, not a win."
                    if pair.high > 0
                    else "The frozen backbone is ahead or level on every seed at every label count."
                ),
                "",
            )
            return
        if answer is None and expected is not None:
            lead = by_k[expected].low
            hint = f"at {expected} labels full fine-tuning is ahead on every seed (smallest lead {lead:+.1f})"
        else:
            pair = by_k[answer]
            if pair.low > 0:
                hint = "full fine-tuning is ahead on every seed there, but not for the first time: read from the top"
            elif pair.high > 0:
                hint = (
                    f"there full fine-tuning is ahead on average ({pair.mean:+.1f}) "
                    f"and on one seed ({pair.high:+.1f}), "
                    f"but behind on another ({pair.low:+.1f}): not ahead on every seed"
                )
            else:
                spread = f"{pair.low:+.1f} to {pair.high:+.1f}"
                hint = f"there the frozen backbone is ahead on every seed (full - frozen: {spread})"
        fb.add(False, "", f"Not {answer}: {hint}.")

    return check("read the learning curve", valid, right, verbose=verbose)
