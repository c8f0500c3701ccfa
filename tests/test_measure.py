from __future__ import annotations

import time

import pytest
import torch

from course_utils.freezing import freeze
from course_utils.measure import (
    Timing,
    clock_for,
    gradient_bytes,
    optimizer_state_bytes,
    parameter_bytes,
    saved_activation_bytes,
    speedups,
    step_to_time,
    tensor_bytes,
    time_calls,
)
from course_utils.models import CourseCNN
from course_utils.optim_groups import trainable_parameters


def busy(seconds: float) -> None:
    """Work on the CPU for about ``seconds`` of CPU time (a sleep costs none)."""
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_time_calls_orders_and_counts() -> None:
    timings = time_calls({"slow": lambda: busy(0.004), "fast": lambda: None}, repeats=5, warmup=1)
    assert len(timings["slow"].times) == 5
    assert timings["slow"].median > timings["fast"].median
    assert speedups(timings, "slow")["fast"] > 5
    assert "ms" in str(timings["slow"])


def test_on_one_cpu_thread_only_the_calls_own_work_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Time given to other programs (here: a sleep) is not the call's cost; a busy machine cannot bend a ratio."""
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert clock_for() is clock_for(torch.device("cpu")) is time.process_time
    timings = time_calls({"works": lambda: busy(0.005), "waits": lambda: time.sleep(0.005)}, repeats=3, warmup=0)
    assert timings["works"].median >= 0.004 and timings["waits"].median < 0.001, timings


def test_a_gpu_or_several_threads_are_timed_on_the_wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """A GPU works while the CPU waits; several threads add up their CPU time: both need wall time."""
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert clock_for(torch.device("cuda")) is time.perf_counter
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    assert clock_for() is time.perf_counter
    timings = time_calls({"waits": lambda: time.sleep(0.005)}, repeats=3, warmup=0)
    assert timings["waits"].median >= 0.004, timings


def test_time_calls_alternates_the_order_each_round() -> None:
    calls: list[str] = []
    time_calls({name: (lambda name=name: calls.append(name)) for name in "abc"}, repeats=3, warmup=1)
    assert calls == list("abccbaabccba"), "a fixed order gives a candidate the same neighbour every round"


def test_time_calls_and_speedups_validate() -> None:
    with pytest.raises(ValueError, match="repeats"):
        time_calls({"a": lambda: None}, repeats=0)
    with pytest.raises(KeyError, match="Baseline 'x'"):
        speedups({"a": Timing(1.0, (1.0,))}, "x")


def test_frozen_backbone_step_is_faster(batch) -> None:
    full, frozen = CourseCNN(), CourseCNN()
    freeze(frozen, "block1", "block2", "block3")
    x, y = torch.rand(64, 1, 28, 28), torch.randint(0, 5, (64,))
    steps = {
        "full": step_to_time(full, torch.optim.Adam(full.parameters()), x, y),
        "frozen": step_to_time(frozen, torch.optim.Adam(trainable_parameters(frozen)), x, y),
    }
    assert speedups(time_calls(steps, repeats=10), "full")["frozen"] > 1.2


def test_bytes_follow_trainable_parameters(model: CourseCNN, batch) -> None:
    total = sum(p.numel() for p in model.parameters()) * 4
    assert parameter_bytes(model) == total == tensor_bytes(model.parameters())
    freeze(model, "block1", "block2", "block3")
    trainable = parameter_bytes(model, trainable_only=True)
    assert trainable == (256 * 5 + 5) * 4
    optimizer = torch.optim.Adam(trainable_parameters(model))
    assert gradient_bytes(model) == 0
    step_to_time(model, optimizer, *batch)()
    assert gradient_bytes(model) == trainable
    n_tensors = len(trainable_parameters(model))  # the head's weight and bias
    assert optimizer_state_bytes(optimizer) == 2 * trainable + 4 * n_tensors, (
        "Adam keeps two moments per trainable weight and one float32 step counter per trainable tensor"
    )
    sgd = torch.optim.SGD(trainable_parameters(model), lr=0.1, momentum=0.9)
    step_to_time(model, sgd, *batch)()
    assert optimizer_state_bytes(sgd) == trainable, "SGD with momentum keeps one buffer per weight, no step counter"


def test_saved_activations_shrink_when_the_backbone_is_frozen(batch) -> None:
    full, frozen = CourseCNN(), CourseCNN()
    freeze(frozen, "block1", "block2", "block3")
    full_bytes = saved_activation_bytes(full, *batch)
    frozen_bytes = saved_activation_bytes(frozen, *batch)
    assert full_bytes > 10 * frozen_bytes > 0


def test_paired_ratios_pair_rounds() -> None:
    from course_utils.measure import paired_ratios

    timings = {"base": Timing(2.0, (1.0, 2.0, 10.0)), "fast": Timing(1.0, (0.5, 1.0, 5.0))}
    assert paired_ratios(timings, "base") == {"base": 1.0, "fast": 0.5}
    with pytest.raises(KeyError, match="Baseline 'x'"):
        paired_ratios(timings, "x")


def test_step_to_time_is_the_shared_train_step(batch) -> None:
    from course_utils.training import train_step

    torch.manual_seed(0)
    a, b = CourseCNN(), CourseCNN()
    b.load_state_dict(a.state_dict())
    a.eval()  # no dropout: both runs see the same forward
    b.eval()
    step = step_to_time(a, torch.optim.SGD(a.parameters(), lr=0.1), *batch)
    reference = torch.optim.SGD(b.parameters(), lr=0.1)
    for _ in range(2):
        assert step() == train_step(b, reference, *batch)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
