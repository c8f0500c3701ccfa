"""The live freeze panel, driven headless: toggle checkboxes, click buttons, read the state."""

from __future__ import annotations

import pytest
import torch

from course_utils.models import CourseCNN
from course_utils.training import evaluate
from course_utils.widgets import FreezePanel
from course_utils.widgets.freeze_panel import ALL_FROZEN_MESSAGE

PNG_MAGIC = b"\x89PNG"


@pytest.fixture
def panel(model: CourseCNN, batch: tuple[torch.Tensor, torch.Tensor]) -> FreezePanel:
    x, y = batch
    return FreezePanel(model, x, y, steps_per_click=3, batch_size=8)


def params_of(model: CourseCNN, block: str) -> list[torch.Tensor]:
    return [p.detach().clone() for p in getattr(model, block).parameters()]


def test_layout_and_css_classes(panel: FreezePanel) -> None:
    assert list(panel.checkboxes) == ["block1", "block2", "block3", "head"]
    assert all(box.description == name for name, box in panel.checkboxes.items())
    assert not any(box.value for box in panel.checkboxes.values())  # fresh model: nothing frozen
    assert panel.train_button.description.startswith("Train")
    assert panel.reset_button.description == "Reset"
    assert "freeze-panel" in panel.widget._dom_classes
    assert "freeze-panel-trainable" in panel.trainable_label._dom_classes
    assert "freeze-panel-changes" in panel.changes_label._dom_classes
    assert "freeze-panel-message" in panel.message._dom_classes
    assert bytes(panel.plot.value).startswith(PNG_MAGIC)  # drawn before the first click
    assert "application/vnd.jupyter.widget-view+json" in panel._repr_mimebundle_()


def test_checkboxes_reflect_an_already_frozen_model(model: CourseCNN, batch) -> None:
    for p in model.block1.parameters():
        p.requires_grad_(False)
    panel = FreezePanel(model, *batch)
    assert panel.checkboxes["block1"].value and not panel.checkboxes["head"].value


def test_toggle_changes_requires_grad_and_label(panel: FreezePanel, model: CourseCNN) -> None:
    assert panel.trainable_label.value == "Trainable: 24,949 / 24,949 parameters (100.0%)"
    for name in ["block1", "block2", "block3"]:
        panel.checkboxes[name].value = True
    assert not any(p.requires_grad for p in model.block1.parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    assert panel.trainable_label.value == "Trainable: 1,285 / 24,949 parameters (5.2%)"
    assert panel.frozen_blocks() == ["block1", "block2", "block3"]
    panel.checkboxes["block2"].value = False
    assert all(p.requires_grad for p in model.block2.parameters())
    assert "5,957 / 24,949" in panel.trainable_label.value


def test_train_moves_only_trainable_blocks(panel: FreezePanel, model: CourseCNN) -> None:
    panel.checkboxes["block1"].value = True
    panel.checkboxes["block3"].value = True
    block1, block2, head = params_of(model, "block1"), params_of(model, "block2"), params_of(model, "head")
    buffers1 = [b.clone() for b in model.block1.buffers()]
    before_image = bytes(panel.plot.value)
    panel.train_button.click()
    assert all(torch.equal(a, b) for a, b in zip(block1, model.block1.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(buffers1, model.block1.buffers()))  # BN stats too
    assert not all(torch.equal(a, b) for a, b in zip(block2, model.block2.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(head, model.head.parameters()))
    assert len(panel.losses) == 3 and all(loss > 0 for loss in panel.losses)
    assert panel.last_changes["block1"] == 0.0 and panel.last_changes["block3"] == 0.0
    assert panel.last_changes["block2"] > 0 and panel.last_changes["head"] > 0
    assert "block1: 0 (frozen)" in panel.changes_label.value
    image = bytes(panel.plot.value)
    assert image.startswith(PNG_MAGIC) and image != before_image
    assert "Trained 3 steps" in panel.message.value
    assert not panel.train_button.disabled


def test_training_restores_the_model_modes(panel: FreezePanel, model: CourseCNN) -> None:
    model.eval()
    panel.train_button.click()
    assert not any(m.training for m in model.modules())


def test_freeze_all_gives_a_message_not_an_exception(panel: FreezePanel, model: CourseCNN) -> None:
    before = [p.detach().clone() for p in model.parameters()]
    for box in panel.checkboxes.values():
        box.value = True
    assert panel.trainable_label.value.startswith("Trainable: 0 / 24,949")
    panel.train_button.click()
    assert ALL_FROZEN_MESSAGE in panel.message.value
    assert panel.losses == []
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_reset_restores_weights_and_clears_history(panel: FreezePanel, model: CourseCNN) -> None:
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    panel.train_button.click()
    panel.train_button.click()
    assert len(panel.losses) == 6 and panel.click_ends == [3, 6]
    panel.reset_button.click()
    assert all(torch.equal(initial[k], v) for k, v in model.state_dict().items())
    assert panel.losses == [] and panel.click_ends == []
    assert set(panel.last_changes.values()) == {0.0}
    assert "restored" in panel.message.value


def test_double_and_reentrant_clicks_are_safe(panel: FreezePanel) -> None:
    panel.train_button.click()
    panel.train_button.click()
    assert len(panel.losses) == 6
    panel._busy = True  # as if a training call were still running
    panel.train_button.click()
    panel.reset_button.click()
    assert len(panel.losses) == 6
    panel._busy = False


def test_test_accuracy_is_reported(model: CourseCNN, batch) -> None:
    x, y = batch
    panel = FreezePanel(model, x, y, steps_per_click=2, x_test=x, y_test=y)
    panel.train_button.click()
    assert panel.test_accuracy == evaluate(panel.model, x, y), "the accuracy shown is the model's, computed again"
    assert panel.test_accuracy * len(y) / 100 == pytest.approx(round(panel.test_accuracy * len(y) / 100)), (
        "of 16 images"
    )
    assert "test accuracy" in panel.message.value


def test_bad_input_is_rejected(model: CourseCNN) -> None:
    with pytest.raises(ValueError, match="rows"):
        FreezePanel(model, torch.rand(4, 1, 28, 28), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="steps_per_click"):
        FreezePanel(model, torch.rand(4, 1, 28, 28), torch.zeros(4, dtype=torch.long), steps_per_click=0)


def test_plain_text_fallback_is_readable(panel: FreezePanel) -> None:
    bundle = panel._repr_mimebundle_()
    assert bundle["text/plain"] == "Freeze panel: run the cell to use it."
    assert "VBox" not in bundle["text/plain"]


def test_toggles_go_through_freeze_and_unfreeze(monkeypatch, panel: FreezePanel, model: CourseCNN) -> None:
    import course_utils.widgets.freeze_panel as module

    calls = []
    monkeypatch.setattr(module, "freeze", lambda m, *names: calls.append(("freeze", m, names)))
    monkeypatch.setattr(module, "unfreeze", lambda m, *names: calls.append(("unfreeze", m, names)))
    panel.checkboxes["block2"].value = True
    panel.checkboxes["block2"].value = False
    assert calls == [("freeze", model, ("block2",)), ("unfreeze", model, ("block2",))]


def test_bars_use_the_shared_state_colours(state_bars_calls, panel: FreezePanel) -> None:
    import course_utils.widgets.freeze_panel as module

    seen = state_bars_calls(module)
    panel.checkboxes["block1"].value = True
    panel.train_button.click()
    assert seen[-1] == ["block1"]
