"""Shared fixtures: a fresh course CNN and the pretrained one, on the CPU."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
import torch

from course_utils.models import CourseCNN, load_pretrained


@pytest.fixture
def model() -> CourseCNN:
    torch.manual_seed(0)
    return CourseCNN(num_classes=5)


@pytest.fixture
def pretrained() -> CourseCNN:
    return load_pretrained()


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return torch.rand(16, 1, 28, 28), torch.randint(0, 5, (16,))


@pytest.fixture
def state_bars_calls(monkeypatch: pytest.MonkeyPatch) -> Callable[[ModuleType], list[list[str]]]:
    """``state_bars_calls(module)``: record the frozen names ``module`` passes to ``plots.state_bars``
    (the one place that colours blocks by state), still drawing the bars."""

    def record(module: ModuleType) -> list[list[str]]:
        calls: list[list[str]] = []
        real = module.state_bars

        def recording(ax: Any, values: Any, frozen: Any = (), **kwargs: Any) -> None:
            calls.append(list(frozen))
            real(ax, values, frozen, **kwargs)

        monkeypatch.setattr(module, "state_bars", recording)
        return calls

    return record
