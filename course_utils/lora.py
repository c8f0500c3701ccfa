"""LoRA in plain PyTorch: a frozen linear layer plus a trainable low-rank update.

``LoRALinear(base, rank, alpha)`` computes ``base(x) + (alpha / rank) * x @ A.T @ B.T``.
``A`` (rank x in_features) starts small and random, ``B`` (out_features x rank) starts at
zero, so at initialisation the layer computes exactly what ``base`` computes. Only A and B
train. ``merge()`` folds the update back into one ordinary ``nn.Linear`` for deployment.
For real models use the ``peft`` library, which does the same for you.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["LoRALinear"]  # what a notebook imports from here


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable rank-``rank`` update scaled by ``alpha / rank``."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float = 1.0) -> None:
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRALinear wraps an nn.Linear, got {type(base).__name__}.")
        limit = min(base.in_features, base.out_features)
        if not isinstance(rank, int) or not 1 <= rank <= limit:
            raise ValueError(
                f"rank must be an integer between 1 and {limit} (min of in_features={base.in_features} "
                f"and out_features={base.out_features}), got {rank!r}."
            )
        self.base, self.rank, self.alpha = base, rank, float(alpha)
        self.base.requires_grad_(False)  # the pretrained weights stay frozen
        device, dtype = base.weight.device, base.weight.dtype
        self.lora_A = nn.Parameter(torch.randn(rank, base.in_features, device=device, dtype=dtype) * 0.01)
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, device=device, dtype=dtype))

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    def delta_weight(self) -> torch.Tensor:
        """The low-rank update (alpha / rank) * B @ A, shaped like ``base.weight``."""
        return self.scale * self.lora_B @ self.lora_A

    def trainable_fraction(self) -> float:
        """Trainable numbers (A and B) per number of the frozen weight matrix: r (d_in + d_out) / (d_in d_out).

        Small for a large matrix, close to (or above) 1 for a small one: LoRA saves most on large layers.
        """
        return (self.lora_A.numel() + self.lora_B.numel()) / self.base.weight.numel()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.scale * (x @ self.lora_A.T @ self.lora_B.T)

    @torch.no_grad()
    def merge(self) -> nn.Linear:
        """A plain ``nn.Linear`` whose weight is W + (alpha / rank) * B @ A (bias unchanged)."""
        merged = nn.Linear(
            self.base.in_features,
            self.base.out_features,
            bias=self.base.bias is not None,
            device=self.base.weight.device,
            dtype=self.base.weight.dtype,
        )
        merged.weight.copy_(self.base.weight + self.delta_weight())
        if self.base.bias is not None:
            merged.bias.copy_(self.base.bias)
        return merged

    def extra_repr(self) -> str:
        return f"rank={self.rank}, alpha={self.alpha:g}"
