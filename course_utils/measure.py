"""Measuring what freezing saves: step times (interleaved medians, ratios) and bytes."""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from .training import train_step

__all__ = [
    "Timing",
    "clock_for",
    "gradient_bytes",
    "optimizer_state_bytes",
    "paired_ratios",
    "parameter_bytes",
    "saved_activation_bytes",
    "speedups",
    "step_to_time",
    "tensor_bytes",
    "time_calls",
]  # what a notebook imports from here


@dataclass(frozen=True)
class Timing:
    """Seconds per call: the median and all repeats."""

    median: float
    times: tuple[float, ...]

    def __str__(self) -> str:
        return f"{self.median * 1e3:.2f} ms (median of {len(self.times)})"


def _sync(device: torch.device | None) -> None:
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)


def clock_for(device: torch.device | None = None) -> Callable[[], float]:
    """The clock ``time_calls`` reads: CPU time of this process for work on one CPU thread, wall time otherwise.

    On one thread a call's CPU time is its wall time on an idle machine, but time the operating system
    gives to other programs does not count, so a busy machine does not bend the ratios. A GPU works
    while the CPU waits, and several threads add up their CPU time: there, wall time (after synchronising).
    """
    on_cpu = device is None or device.type == "cpu"
    return time.process_time if on_cpu and torch.get_num_threads() == 1 else time.perf_counter


def time_calls(
    fns: Mapping[str, Callable[[], object]],
    repeats: int = 15,
    warmup: int = 3,
    device: torch.device | None = None,
) -> dict[str, Timing]:
    """Time several functions, interleaved round by round, after ``warmup`` untimed rounds.

    Interleaving makes the ratios robust: a burst of background load hits every candidate
    in the same round instead of one candidate only. The order is reversed every other round,
    so no candidate always runs first (cold caches) or always right after the same neighbour.
    The clock is ``clock_for(device)``: CPU time on one CPU thread, wall time on a GPU.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats} and {warmup}.")
    clock = clock_for(device)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    order = list(fns.items())
    for round_ in range(warmup + repeats):
        for name, fn in order if round_ % 2 == 0 else reversed(order):
            _sync(device)
            start = clock()
            fn()
            _sync(device)
            if round_ >= warmup:
                samples[name].append(clock() - start)
    return {name: Timing(statistics.median(t), tuple(t)) for name, t in samples.items()}


def step_to_time(
    model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor
) -> Callable[[], float]:
    """A closure running one ``training.train_step`` on (x, y), ready for ``time_calls``; returns the loss."""
    return functools.partial(train_step, model, optimizer, x, y)


def speedups(timings: Mapping[str, Timing], baseline: str) -> dict[str, float]:
    """How many times faster than ``baseline`` each candidate is (baseline time / its time)."""
    if baseline not in timings:
        raise KeyError(f"Baseline {baseline!r} not among {sorted(timings)}.")
    base = timings[baseline].median
    return {name: base / t.median for name, t in timings.items()}


def tensor_bytes(tensors: Iterable[torch.Tensor | None]) -> int:
    """Total bytes of an iterable of tensors (None entries are skipped)."""
    return sum(t.numel() * t.element_size() for t in tensors if t is not None)


def parameter_bytes(model: nn.Module, trainable_only: bool = False) -> int:
    """Bytes held by parameters (only the trainable ones if asked)."""
    return tensor_bytes(p for p in model.parameters() if p.requires_grad or not trainable_only)


def gradient_bytes(model: nn.Module) -> int:
    """Bytes held by ``.grad`` tensors right now."""
    return tensor_bytes(p.grad for p in model.parameters())


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes of every tensor the optimizer keeps per parameter: momentum buffers, Adam's two
    moments (``exp_avg``, ``exp_avg_sq``) *and* its per-tensor ``step`` counter (a 0-dim tensor,
    4 bytes in float32). Plain Python numbers in the state are not tensors and are not counted.

    For Adam on float32 weights this is ``2 * trainable bytes + 4 * number of trainable tensors``.
    """
    return tensor_bytes(
        value for state in optimizer.state.values() for value in state.values() if isinstance(value, torch.Tensor)
    )


def saved_activation_bytes(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> int:
    """Bytes autograd saves for the backward pass during one forward (parameters excluded).

    Uses ``torch.autograd.graph.saved_tensors_hooks``: every tensor packed for backward passes
    through the hook. Storages are counted once, and the model's own parameters are skipped
    (they exist anyway).
    """
    param_ptrs = {p.data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        ptr = tensor.untyped_storage().data_ptr()
        if ptr not in param_ptrs:
            seen[ptr] = max(seen.get(ptr, 0), tensor.untyped_storage().nbytes())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x)
        if y is not None:
            nn.functional.cross_entropy(out, y)
    return sum(seen.values())


def paired_ratios(timings: Mapping[str, Timing], baseline: str) -> dict[str, float]:
    """Median over rounds of (candidate time / baseline time in the same round).

    ``time_calls`` runs every candidate once per round, so each round gives a paired ratio;
    its median shrugs off load bursts better than a ratio of medians. Below 1 means faster.
    """
    if baseline not in timings:
        raise KeyError(f"Baseline {baseline!r} not among {sorted(timings)}.")
    base = timings[baseline].times
    return {name: statistics.median(t / b for t, b in zip(timing.times, base)) for name, timing in timings.items()}
