"""extract_features (cache of a frozen prefix), recalibrate_bn and plot_heatmap."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pytest
import torch
from torch import nn

from course_utils.freezing import freeze, freeze_to
from course_utils.plots import plot_heatmap
from course_utils.training import extract_features, predict, recalibrate_bn


def test_features_match_model_features(pretrained, batch) -> None:
    x, _ = batch
    cached = extract_features(pretrained, x, batch_size=5)
    with torch.no_grad():
        expected = pretrained.features(x)
    assert cached.shape == (16, 64, 2, 2)
    assert torch.allclose(cached.flatten(1), expected, atol=1e-6)


def test_prefix_then_suffix_equals_whole_model(pretrained, batch) -> None:
    x, _ = batch
    for n in range(4):
        cached = extract_features(pretrained, x, n_blocks=n)
        suffix = nn.Sequential(*list(pretrained.children())[n:])
        assert torch.allclose(predict(suffix, cached), predict(pretrained, x), atol=1e-5)


def test_extract_features_keeps_modes_and_rejects_bad_n(pretrained, batch) -> None:
    pretrained.train()
    extract_features(pretrained, batch[0], n_blocks=2)
    assert all(m.training for m in pretrained.modules())
    with pytest.raises(ValueError, match="n_blocks"):
        extract_features(pretrained, batch[0], n_blocks=7)


def test_recalibrate_only_trainable_bn(pretrained, batch) -> None:
    x, _ = batch
    freeze_to(pretrained, 1)  # block1 frozen, rest trainable
    before = {n: b.clone() for n, b in pretrained.named_buffers()}
    count = recalibrate_bn(pretrained, x * 0.1)
    assert count == 2 and not pretrained.training
    assert torch.equal(pretrained.block1[1].running_mean, before["block1.1.running_mean"])
    assert not torch.equal(pretrained.block2[1].running_mean, before["block2.1.running_mean"])
    assert pretrained.block2[1].momentum == 0.1
    freeze(pretrained)
    assert recalibrate_bn(pretrained, x) == 0


def test_heatmap_annotates_cells() -> None:
    values = np.array([[1.0, np.nan], [50.0, 99.5]])
    ax = plot_heatmap(values, ["a", "b"], ["x", "y"], "title")
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["1.0", "50.0", "99.5"] and ax.get_title() == "title"
    with pytest.raises(ValueError):
        plot_heatmap(values, ["a"], ["x", "y"], "bad")
