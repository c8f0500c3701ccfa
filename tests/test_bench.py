"""`make bench`: the pure parts (ratios on tiny models, targets, the report), no notebooks run."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from tools import bench
from tools.bench import Headlines, Target, TARGETS, cached_epoch_speedup, frozen_step_speedup, head_epoch, report

ACCURACY = {
    1: {"scratch": [30.0, 40.0, 50.0], "frozen": [60.0, 65.0, 70.0]},
    3: {"scratch": [55.0, 60.0, 65.0], "frozen": [62.0, 63.0, 64.0]},
    10: {"scratch": [80.0, 80.0, 80.0], "frozen": [90.0, 90.0, 90.0]},
}


def headlines(cached: float = 25.0) -> Headlines:
    return Headlines(cnn_step=1.9, resnet_step=2.75, cached_epoch=cached, accuracy=ACCURACY)


def test_transfer_gap_is_the_smaller_gap_at_one_and_three_labels() -> None:
    assert headlines().transfer_gap() == pytest.approx(3.0)  # k=1: +25, k=3: +3
    assert headlines().transfer_gap(ks=(10,)) == pytest.approx(10.0)


def test_targets() -> None:
    assert Target("x", 20.0).met(20.0) and not Target("x", 20.0).met(19.9)
    assert set(headlines().values()) == set(TARGETS)


def test_report_with_notebooks() -> None:
    text = report({"01_layers.ipynb": 12.34, "06_training_dynamics.ipynb": 31.0}, headlines())
    assert "| 01_layers.ipynb | 12.3 | yes (≤ 30 s) |" in text
    assert "| 06_training_dynamics.ipynb | 31.0 | **NO** (≤ 30 s) |" in text
    assert "| **total** | **43.3** | yes (≤ 120 s) |" in text
    assert "| 1.90× | ≥ 1.3× | yes |" in text and "| 25.00× | ≥ 20× | yes |" in text
    assert "| +3.0 points | ≥ 5 points | **NO** |" in text  # the k=3 gap is too small
    assert "| 1 | 40.0 % (30–50) | 65.0 % (60–70) | +25.0 |" in text
    assert "mean of 3 seeds" in text and "misses the design's 20×" not in text
    assert text.rstrip().endswith("**5 of 7 targets met.**")


def test_report_without_notebooks_explains_a_missed_caching_target() -> None:
    text = report({}, headlines(cached=4.2))
    assert "notebook | seconds" not in text and "| 4.20× | ≥ 20× | **NO** |" in text
    assert "misses the design's 20×" in text and text.rstrip().endswith("**2 of 4 targets met.**")


def test_frozen_step_speedup_on_a_tiny_model() -> None:
    def make() -> nn.Module:
        return nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 3))

    def freeze_backbone(model: nn.Module) -> None:
        for param in model[:4].parameters():
            param.requires_grad_(False)

    x, y = torch.rand(16, 8), torch.randint(0, 3, (16,))
    ratio = frozen_step_speedup(make, freeze_backbone, x, y, repeats=3, warmup=1)
    assert math.isfinite(ratio) and ratio > 0


def test_head_epoch_trains_the_head_and_leaves_the_backbone_alone() -> None:
    torch.manual_seed(0)
    backbone, head = nn.Linear(4, 6).requires_grad_(False), nn.Linear(6, 2)
    x, y = torch.rand(20, 4), torch.randint(0, 2, (20,))
    before_backbone, before_head = backbone.weight.clone(), head.weight.clone()
    head_epoch(head, x, y, torch.optim.SGD(head.parameters(), lr=0.1), batch_size=8, backbone=backbone)
    assert torch.equal(backbone.weight, before_backbone) and not torch.equal(head.weight, before_head)
    ratio = cached_epoch_speedup(backbone, head, x, y, batch_size=8, repeats=2)
    assert math.isfinite(ratio) and ratio > 0


def test_unknown_strategy_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="scratch"):
        bench.few_label_accuracy("finetune", k=1, seed=0)


def test_main_writes_the_report(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(bench, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(bench, "measure_headlines", headlines)
    assert bench.main(["--no-notebooks"]) == 0
    written = (tmp_path / "bench" / "results.md").read_text()
    assert written == report({}, headlines()) and "written to bench/results.md" in capsys.readouterr().out


def test_measured_ratios_run_on_tiny_settings() -> None:
    assert bench.step_time_ratio(batch_size=8, repeats=2) > 0
    assert bench.resnet18_step_time_ratio(image_size=32, batch_size=2, repeats=1) > 0
    assert bench.course_cached_epoch_speedup(repeats=1) > 1, "skipping the backbone cannot be slower"


def test_transfer_vs_scratch_shape_and_bad_strategy() -> None:
    result = bench.transfer_vs_scratch(ks=(1,), seeds=(0,))
    assert set(result) == {1} and set(result[1]) == {"scratch", "frozen"}
    assert all(0 <= acc[0] <= 100 for acc in result[1].values())
    with pytest.raises(ValueError, match="strategy must be"):
        bench.few_label_accuracy("full", 1, 0)


def test_notebook_times_executes_without_writing(tmp_path: Path) -> None:
    import nbformat

    path = tmp_path / "tiny.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1 + 1")]), path)
    before = path.read_text()
    times = bench.notebook_times([path])
    assert list(times) == ["tiny.ipynb"] and times["tiny.ipynb"] > 0
    assert path.read_text() == before
