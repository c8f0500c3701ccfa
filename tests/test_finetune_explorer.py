"""FineTuneExplorer driven headless: set a control's value, read the result."""

from __future__ import annotations

import pytest
import torch

from course_utils.widgets import FineTuneExplorer


@pytest.fixture(scope="module")
def explorer() -> FineTuneExplorer:
    return FineTuneExplorer(steps=3, k_per_class=2)


def test_initial_run_is_rendered(explorer: FineTuneExplorer) -> None:
    r = explorer.result
    assert r is not None and r.frozen_blocks == 3 and len(r.losses) == 3
    assert explorer.image.value[:4] == b"\x89PNG"
    assert f"{r.test_acc:.1f}%" in explorer.readout.value
    assert "FineTuneExplorer(frozen=3" in repr(explorer)


@pytest.mark.parametrize("target", ["near", "far"])
@pytest.mark.parametrize("frozen", [0, 1, 2, 3])
def test_every_depth_and_target_runs(explorer: FineTuneExplorer, frozen: int, target: str) -> None:
    explorer.target.value = target
    explorer.frozen.value = frozen
    r = explorer.result
    assert (r.frozen_blocks, r.target) == (frozen, target)
    frozen_names = ["block1", "block2", "block3"][:frozen]
    assert all(r.weight_change[name] == 0.0 for name in frozen_names)
    assert all(r.weight_change[name] > 0.0 for name in ["block1", "block2", "block3", "head"][frozen:])
    n_test = len(explorer._task(target).y_test)
    correct = r.test_acc * n_test / 100
    assert correct == pytest.approx(round(correct), abs=1e-3), "a percentage of the test images answered right"
    assert 0 < r.trainable_params <= r.total_params


def test_learning_rate_change_reruns(explorer: FineTuneExplorer) -> None:
    runs = len(explorer.history)
    explorer.lr.value = 1e-2
    assert len(explorer.history) == runs + 1 and explorer.result.lr == 1e-2
    explorer.lr.value = min(v for _, v in explorer.lr.options)  # the extremes: no crash, finite losses
    assert torch.isfinite(torch.tensor(explorer.result.losses)).all()
    explorer.lr.value = max(v for _, v in explorer.lr.options)
    assert torch.isfinite(torch.tensor(explorer.result.losses)).all()


def test_callers_model_is_not_touched(pretrained) -> None:
    before = {k: v.clone() for k, v in pretrained.state_dict().items()}
    pretrained.train()
    FineTuneExplorer(pretrained, steps=2, k_per_class=1, frozen=0)
    assert pretrained.training and all(torch.equal(before[k], v) for k, v in pretrained.state_dict().items())


def test_bad_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="target"):
        FineTuneExplorer(steps=1, k_per_class=1, target="moon")
    with pytest.raises(ValueError, match="lr"):
        FineTuneExplorer(steps=1, k_per_class=1, lr=0.5)


def test_plain_text_fallback_and_repr_before_a_run(explorer: FineTuneExplorer) -> None:
    assert explorer._repr_mimebundle_()["text/plain"] == "Fine-tune explorer: run the cell to use it."
    result, explorer.result = explorer.result, None
    try:
        assert "acc=not run" in repr(explorer)
    finally:
        explorer.result = result


def test_frozen_blocks_drawn_in_the_shared_frozen_colour(state_bars_calls, explorer: FineTuneExplorer) -> None:
    import course_utils.widgets.finetune_explorer as module

    seen = state_bars_calls(module)
    explorer.frozen.value = 2 if explorer.frozen.value != 2 else 1
    assert seen[-1] == ["block1", "block2"][: explorer.frozen.value]
