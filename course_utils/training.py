"""Seeding, device choice, and a short, seeded train/evaluate loop that returns its history."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from tqdm.auto import tqdm

from .batchnorm import set_bn_eval
from .data import batches
from .layers import BATCHNORM_TYPES
from .optim_groups import trainable_parameters


def seed_everything(seed: int = 0, threads: int | None = 1) -> None:
    """Seed Python, NumPy and PyTorch (CPU and CUDA), and pin PyTorch to ``threads`` CPU threads.

    One thread by default: the course's models are too small to gain from more, a single
    thread gives the same float results on every machine, and it does not slow to a crawl
    when other processes compete for the cores. ``threads=None`` leaves the setting alone.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if threads is not None:
        torch.set_num_threads(threads)


def get_device() -> torch.device:
    """CUDA when a GPU is present, else the CPU. Everything in the course runs on either."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@contextmanager
def _modes_restored(model: nn.Module) -> Iterator[nn.Module]:
    """Run the block, then give every module back its own train/eval flag."""
    modes = {m: m.training for m in model.modules()}
    try:
        yield model
    finally:
        for module, mode in modes.items():
            module.train(mode)


def _set_train_mode(model: nn.Module, frozen_bn_eval: bool = True) -> None:
    """``model.train()``, then (with ``frozen_bn_eval``) frozen BatchNorm layers back to eval mode."""
    model.train()
    if frozen_bn_eval:
        set_bn_eval(model)


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Evaluate in eval mode, then restore every module's own train/eval flag."""
    with _modes_restored(model):
        model.eval()
        yield model


@contextmanager
def train_mode(model: nn.Module, frozen_bn_eval: bool = True) -> Iterator[nn.Module]:
    """Train in train mode (frozen BatchNorm kept in eval), then restore every module's own flag."""
    with _modes_restored(model):
        _set_train_mode(model, frozen_bn_eval)
        yield model


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> float:
    """One optimizer step on the batch (x, y): cross-entropy, backward, step. Returns the loss.

    The one training step of the course: ``train``, ``measure.step_to_time`` and the widgets
    all call it. Gradients are reset with ``set_to_none=True``, so frozen parameters keep ``.grad = None``.
    """
    loss = nn.functional.cross_entropy(model(x), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Model outputs for ``x`` in eval mode, batched, without touching the model's modes."""
    device = next(model.parameters()).device
    with eval_mode(model):
        return torch.cat([model(x[i : i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)])


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Accuracy of ``model`` on (x, y) in percent, the course's one unit for accuracy (0-100).

    Computed from the count of correct predictions, so it is an exact multiple of 100 / len(y).
    """
    correct = int((predict(model, x).argmax(1) == y.cpu()).sum())  # predict returns CPU tensors
    return 100.0 * correct / len(y)


@dataclass
class History:
    """What a training run recorded: loss per step, test accuracy (%) per epoch, wall time."""

    loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    step_at_eval: list[int] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def final_acc(self) -> float:
        if not self.test_acc:
            raise ValueError("No evaluation was recorded: pass x_test/y_test to train().")
        return self.test_acc[-1]


def make_optimizer(model: nn.Module, kind: str = "adam", lr: float = 1e-3, **kwargs: Any) -> torch.optim.Optimizer:
    """An optimizer over the trainable parameters only (clear error if there are none)."""
    kinds = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD, "adamw": torch.optim.AdamW}
    if kind not in kinds:
        raise ValueError(f"Unknown optimizer {kind!r}; choose one of {sorted(kinds)}.")
    return kinds[kind](trainable_parameters(model), lr=lr, **kwargs)


def train(
    model: nn.Module,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    *,
    epochs: int = 10,
    lr: float = 1e-3,
    batch_size: int = 64,
    optimizer: torch.optim.Optimizer | None = None,
    x_test: torch.Tensor | None = None,
    y_test: torch.Tensor | None = None,
    seed: int = 0,
    frozen_bn_eval: bool = True,
    min_steps: int = 0,
    steps: int | None = None,
    on_epoch_end: Callable[[int, nn.Module, torch.optim.Optimizer], None] | None = None,
    progress: bool = False,
) -> History:
    """Train with cross-entropy; evaluate on (x_test, y_test) after every epoch if given.

    The optimizer defaults to Adam over the trainable parameters. With ``frozen_bn_eval``
    (the default) frozen BatchNorm layers are put back in eval mode after ``model.train()``,
    so a frozen block really stays frozen. ``min_steps`` adds epochs until at least that many
    optimizer steps ran (useful with very few labels); ``steps`` runs exactly that many optimizer
    steps instead (``epochs`` and ``min_steps`` are ignored; the last epoch may be cut short), so
    arms with different data sizes get the same budget. ``on_epoch_end(epoch, model, optimizer)``
    is called after each epoch (e.g. to unfreeze a block).
    """
    if len(x_train) != len(y_train):
        raise ValueError(f"x_train has {len(x_train)} rows but y_train has {len(y_train)}.")
    device = next(model.parameters()).device
    optimizer = optimizer or make_optimizer(model, lr=lr)
    steps_per_epoch = -(-len(x_train) // batch_size)
    if steps is not None and steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}.")
    epochs = -(-steps // steps_per_epoch) if steps is not None else max(epochs, -(-min_steps // steps_per_epoch))
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # dropout masks
    history = History()
    start = time.perf_counter()
    # No tqdm object at all without a bar: compare() runs train() in forked workers, which must not touch tqdm's lock.
    for epoch in tqdm(range(epochs), desc="epochs", leave=False) if progress else range(epochs):
        _set_train_mode(model, frozen_bn_eval)
        for xb, yb in batches(x_train, y_train, batch_size, generator):
            if steps is not None and len(history.loss) == steps:
                break
            history.loss.append(train_step(model, optimizer, xb.to(device), yb.to(device)))
        if x_test is not None and y_test is not None:
            history.test_acc.append(evaluate(model, x_test, y_test))
            history.step_at_eval.append(len(history.loss))
        if on_epoch_end is not None:
            on_epoch_end(epoch, model, optimizer)
    history.seconds = time.perf_counter() - start
    return history


@torch.no_grad()
def extract_features(
    model: nn.Module, x: torch.Tensor, n_blocks: int | None = None, batch_size: int = 1000
) -> torch.Tensor:
    """Outputs of the model's first ``n_blocks`` top-level blocks for ``x`` (all but the last if None).

    Runs in eval mode, without autograd, batched, and returns CPU tensors: the cache of a
    frozen prefix. Only valid while that prefix stays frozen, with BatchNorm in eval mode and
    no random augmentation of ``x``.
    """
    blocks = [child for _, child in model.named_children()]
    n_blocks = len(blocks) - 1 if n_blocks is None else n_blocks
    if not 0 <= n_blocks <= len(blocks):
        raise ValueError(f"n_blocks must be between 0 and {len(blocks)}, got {n_blocks}.")
    device = next(model.parameters()).device
    prefix = nn.Sequential(*blocks[:n_blocks])
    with eval_mode(model):
        return torch.cat([prefix(x[i : i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)])


@torch.no_grad()
def recalibrate_bn(model: nn.Module, x: torch.Tensor) -> int:
    """Re-estimate the running statistics of the *trainable* BatchNorm layers on ``x`` (one pass).

    Frozen BN layers keep theirs. Like ``torch.optim.swa_utils.update_bn`` but leaves frozen
    layers alone; useful after a short fine-tune, when running stats still lag behind the new
    data. Returns how many BN layers were re-estimated; the model is left in eval mode.
    """
    layers = [
        cast(_BatchNorm, m)  # BATCHNORM_TYPES holds _BatchNorm subclasses only
        for m in model.modules()
        if isinstance(m, BATCHNORM_TYPES) and any(p.requires_grad for p in m.parameters())
    ]
    device = next(model.parameters()).device
    _set_train_mode(model)
    momenta = [m.momentum for m in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative average over the pass
    model(x.to(device))
    for layer, momentum in zip(layers, momenta):
        layer.momentum = momentum
    model.eval()
    return len(layers)
