from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.lora import LoRALinear


@pytest.fixture
def base() -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(16, 8)


def test_output_equals_frozen_layer_at_init(base: nn.Linear) -> None:
    x = torch.randn(4, 16)
    expected = base(x)
    lora = LoRALinear(base, rank=2, alpha=4)
    assert torch.equal(lora(x), expected), "B starts at zero, so the update is exactly zero"


def test_only_the_adapters_train(base: nn.Linear) -> None:
    lora = LoRALinear(base, rank=3)
    trainable = {n for n, p in lora.named_parameters() if p.requires_grad}
    assert trainable == {"lora_A", "lora_B"}
    assert not base.weight.requires_grad and not base.bias.requires_grad
    assert sum(p.numel() for p in lora.parameters() if p.requires_grad) == 3 * (16 + 8)


def test_trainable_fraction_counts_the_adapters(base: nn.Linear) -> None:
    lora = LoRALinear(base, rank=3)
    trainable = sum(p.numel() for p in lora.parameters() if p.requires_grad)
    assert lora.trainable_fraction() == trainable / base.weight.numel() == 3 * (16 + 8) / (16 * 8)


def test_trainable_fraction_is_small_only_for_large_matrices() -> None:
    large = LoRALinear(nn.Linear(784, 256), rank=4).trainable_fraction()
    small = LoRALinear(nn.Linear(256, 5), rank=4).trainable_fraction()
    assert large < 0.03 < 0.8 < small, (large, small)


def test_gradient_reaches_adapters_not_base(base: nn.Linear) -> None:
    lora = LoRALinear(base, rank=2)
    lora(torch.randn(4, 16)).sum().backward()
    assert base.weight.grad is None and lora.lora_B.grad is not None
    assert lora.lora_B.grad.abs().sum() > 0


def test_merge_equals_base_plus_scaled_update(base: nn.Linear) -> None:
    lora = LoRALinear(base, rank=2, alpha=8)
    with torch.no_grad():
        lora.lora_B.normal_()
    merged = lora.merge()
    assert isinstance(merged, nn.Linear)
    expected = base.weight + (8 / 2) * lora.lora_B @ lora.lora_A
    assert torch.allclose(merged.weight, expected)
    assert torch.equal(merged.bias, base.bias)
    x = torch.randn(5, 16)
    assert torch.allclose(merged(x), lora(x), atol=1e-5)


def test_merge_without_bias() -> None:
    lora = LoRALinear(nn.Linear(6, 4, bias=False), rank=1)
    assert lora.merge().bias is None


@pytest.mark.parametrize("rank", [0, -1, 9, 2.5, None])
def test_bad_rank_is_a_clear_error(base: nn.Linear, rank) -> None:
    with pytest.raises(ValueError, match="rank must be an integer between 1 and 8"):
        LoRALinear(base, rank=rank)


def test_wrapping_something_else_is_refused() -> None:
    with pytest.raises(TypeError, match="wraps an nn.Linear"):
        LoRALinear(nn.Conv2d(1, 1, 3), rank=1)
