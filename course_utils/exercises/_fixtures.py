"""Small, seeded inputs the checkers try a learner's code on."""
from __future__ import annotations

import torch

from ..models import CourseCNN


def model_and_batch(seed: int = 0) -> tuple[CourseCNN, torch.Tensor, torch.Tensor]:
    """A freshly initialised course CNN and a random batch of 8 images with labels."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = CourseCNN()
    x = torch.rand(8, 1, 28, 28, generator=generator)
    y = torch.randint(0, 5, (8,), generator=generator)
    return model, x, y
