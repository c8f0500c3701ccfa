"""Shared fixtures: a fresh course CNN and the pretrained one, on the CPU."""
from __future__ import annotations

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
