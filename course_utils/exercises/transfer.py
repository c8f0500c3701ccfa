"""Checkers for the exercises of 04_transfer_learning. They print feedback and never raise."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ._feedback import Feedback, check

_BACKBONE = ("block1", "block2", "block3")


def check_frozen_backbone(model: nn.Module, pretrained: nn.Module, num_classes: int = 5, verbose: bool = True) -> Feedback:
    """Exercise 1: backbone frozen, a *new* ``num_classes``-way head, and only the head trainable."""

    def is_model(fb: Feedback) -> None:
        fb.add(isinstance(model, nn.Module), "`exercise_model` is a model.",
               f"`exercise_model` should be the copied model, got {type(model).__name__}.")

    def backbone_frozen(fb: Feedback) -> None:
        trainable = [n for n, p in model.named_parameters() if p.requires_grad and not n.startswith("head.")]
        fb.add(not trainable, "Every backbone parameter is frozen.",
               f"These backbone parameters still require grad: {trainable[:4]}. Set requires_grad = False on them.")

    def head_is_new(fb: Feedback) -> None:
        linears = [m for m in model.head.modules() if isinstance(m, nn.Linear)]
        fb.add(bool(linears) and linears[-1].out_features == num_classes,
               f"The head ends in a Linear layer with {num_classes} outputs.",
               f"The head should end in nn.Linear(256, {num_classes}); found {linears[-1] if linears else 'no Linear layer'}.")
        old = [m for m in pretrained.head.modules() if isinstance(m, nn.Linear)][-1]
        fb.add(not torch.equal(linears[-1].weight.detach().cpu(), old.weight.detach().cpu()),
               "The head is a fresh layer, not the old 0-4 classifier.",
               "The head still holds the pretrained 0-4 weights: replace it with a new nn.Sequential(...).")

    def head_trainable(fb: Feedback) -> None:
        params = list(model.head.parameters())
        fb.add(bool(params) and all(p.requires_grad for p in params), "The new head is trainable.",
               "The head is frozen too: create it *after* freezing, or set requires_grad = True on its parameters.")

    return check("freeze the backbone and replace the head", is_model, backbone_frozen, head_is_new, head_trainable,
                 verbose=verbose)


def check_cached_features(features: object, pretrained: nn.Module, x: torch.Tensor, verbose: bool = True) -> Feedback:
    """Exercise 2: the frozen backbone's features of ``x``, eval-mode BN, no autograd graph."""

    def is_tensor(fb: Feedback) -> None:
        fb.add(isinstance(features, torch.Tensor), "`my_features` is a tensor.",
               f"`my_features` should be a tensor (model.features(x)), got {type(features).__name__}.")

    def shape(fb: Feedback) -> None:
        expected = (len(x), 256)
        fb.add(tuple(features.shape) == expected, f"Shape {expected}: one 256-number vector per image.",
               f"Expected shape {expected}, got {tuple(features.shape)}. Use model.features(x), not model(x).")

    def no_graph(fb: Feedback) -> None:
        fb.add(features.grad_fn is None and not features.requires_grad, "No autograd graph is attached.",
               "The features carry an autograd graph: compute them inside `with torch.no_grad():`.")

    def values(fb: Feedback) -> None:
        was_training = pretrained.training
        pretrained.eval()
        device = next(pretrained.parameters()).device
        with torch.no_grad():
            expected = pretrained.features(x.to(device)).cpu()
        pretrained.train(was_training)
        ok = torch.allclose(features.detach().cpu().float(), expected, atol=1e-4)
        fb.add(ok, "The values match the backbone in eval mode.",
               "The values differ from the backbone's eval-mode features: call model.eval() first "
               "(BatchNorm in train mode uses batch statistics).")

    return check("cache the backbone features", is_tensor, shape, no_graph, values, verbose=verbose)


def check_crossover(
    answer: object, labels: Sequence[int], frozen_means: Sequence[float], full_means: Sequence[float], verbose: bool = True
) -> Feedback:
    """Exercise 3: the first labels-per-class value where full fine-tuning beats the frozen backbone."""
    expected = next((k for k, fr, fu in zip(labels, frozen_means, full_means) if fu > fr), None)

    def valid(fb: Feedback) -> None:
        fb.add(answer is None or answer in list(labels), "Your answer is one of the measured label counts.",
               f"Answer with one of {list(labels)} (or None), got {answer!r}.")

    def right(fb: Feedback) -> None:
        fb.add(answer == expected, "Right: that is where the red curve first rises above the blue one.",
               "Not this one: compare the 'frozen' and 'full' columns row by row, from the top.")

    return check("read the learning curve", valid, right, verbose=verbose)
