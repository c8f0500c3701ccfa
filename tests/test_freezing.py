from __future__ import annotations

import pytest
import torch
from torchvision.ops import FrozenBatchNorm2d

from course_utils.freezing import (
    LayerNameError,
    NothingTrainableError,
    audit,
    block_names,
    changed_since,
    freeze,
    freeze_to,
    keep_frozen_bn_eval,
    param_groups,
    set_bn_eval,
    snapshot,
    to_frozen_batchnorm,
    trainable_parameters,
    trainable_summary,
    unfreeze,
    unfreeze_next,
    weight_change_by_block,
)
from course_utils.models import CourseCNN


def trainable_blocks(model) -> list[str]:
    return [n for n, c in model.named_children() if any(p.requires_grad for p in c.parameters())]


def test_freeze_and_unfreeze_named_blocks(model: CourseCNN) -> None:
    freeze(model, "block1", "block2")
    assert trainable_blocks(model) == ["block3", "head"]
    unfreeze(model, "block1")
    assert trainable_blocks(model) == ["block1", "block3", "head"]
    freeze(model)
    assert trainable_blocks(model) == []
    unfreeze(model)
    assert trainable_blocks(model) == ["block1", "block2", "block3", "head"]


def test_freeze_nested_layer_by_dotted_name(model: CourseCNN) -> None:
    freeze(model, "block1.1")
    assert not model.block1[1].weight.requires_grad and model.block1[0].weight.requires_grad


def test_unknown_name_lists_valid_names(model: CourseCNN) -> None:
    with pytest.raises(LayerNameError, match="No layer named 'blok1'. Top-level layers: block1, block2, block3, head"):
        freeze(model, "blok1")
    assert all(p.requires_grad for p in model.parameters()), "a failed call must not freeze anything"


def test_layer_without_parameters_is_refused(model: CourseCNN) -> None:
    with pytest.raises(LayerNameError, match="has no parameters"):
        freeze(model, "block1.2")  # the ReLU


def test_train_bn_keeps_batchnorm_trainable(model: CourseCNN) -> None:
    freeze(model, "block1", train_bn=True)
    assert not model.block1[0].weight.requires_grad
    assert model.block1[1].weight.requires_grad and model.block1[1].bias.requires_grad


@pytest.mark.parametrize("n, expected", [(0, 4), (1, 3), (3, 1), (4, 0), (-1, 1), (-4, 4)])
def test_freeze_to(model: CourseCNN, n: int, expected: int) -> None:
    freeze(model, "head")  # freeze_to must also unfreeze what comes after n
    freeze_to(model, n)
    assert trainable_blocks(model) == block_names(model)[len(block_names(model)) - expected :]


@pytest.mark.parametrize("n", [5, -5])
def test_freeze_to_out_of_range(model: CourseCNN, n: int) -> None:
    with pytest.raises(ValueError, match="between -4 and 4"):
        freeze_to(model, n)


def test_trainable_summary_counts_and_prints(model: CourseCNN) -> None:
    freeze(model, "block1", "block2", "block3")
    summary = trainable_summary(model)
    total = sum(p.numel() for p in model.parameters())
    assert summary.total == total and summary.trainable == model.head[-1].weight.numel() + 5
    assert summary.frozen_blocks == ["block1", "block2", "block3"]
    text = str(summary)
    assert "block1" in text and "frozen" in text and "% trainable" in text
    freeze(model, "block2.1")
    unfreeze(model, "block2.0")
    assert "partly frozen" in str(trainable_summary(model))


def test_trainable_parameters_and_clear_error(model: CourseCNN) -> None:
    freeze(model, "block1")
    assert len(trainable_parameters(model)) == len([p for p in model.parameters() if p.requires_grad])
    freeze(model)
    with pytest.raises(NothingTrainableError, match="Every parameter of the model is frozen.*unfreeze"):
        trainable_parameters(model)


def test_param_groups_with_decay(model: CourseCNN) -> None:
    freeze(model, "block1")
    groups = param_groups(model, lr=1e-2, decay=0.1)
    assert [g["name"] for g in groups] == ["block2", "block3", "head"]
    assert [g["lr"] for g in groups] == pytest.approx([1e-4, 1e-3, 1e-2])
    optimizer = torch.optim.Adam(groups)
    assert optimizer.param_groups[0]["name"] == "block2"


def test_param_groups_with_dict_and_errors(model: CourseCNN) -> None:
    groups = param_groups(model, {"block3": 1e-3, "head": 1e-2})
    assert [(g["name"], g["lr"]) for g in groups] == [("block3", 1e-3), ("head", 1e-2)]
    with pytest.raises(LayerNameError, match="Unknown block"):
        param_groups(model, {"haed": 1e-2})
    freeze(model)
    with pytest.raises(NothingTrainableError):
        param_groups(model, lr=1e-3)


def test_unfreeze_next_goes_backwards(model: CourseCNN) -> None:
    freeze_to(model, 3)
    optimizer = torch.optim.SGD(trainable_parameters(model), lr=0.1)
    assert unfreeze_next(model, optimizer, lr=0.01) == "block3"
    assert unfreeze_next(model, optimizer, lr=0.001) == "block2"
    assert [g.get("name") for g in optimizer.param_groups] == [None, "block3", "block2"]
    assert optimizer.param_groups[2]["lr"] == 0.001
    unfreeze_next(model, optimizer, lr=0.001)
    assert unfreeze_next(model, optimizer, lr=0.001) is None


def test_set_bn_eval_only_touches_frozen_bn(model: CourseCNN) -> None:
    freeze(model, "block1")
    model.train()
    assert set_bn_eval(model) == 1
    assert not model.block1[1].training and model.block2[1].training and model.head[1].training


def test_keep_frozen_bn_eval_survives_model_train(model: CourseCNN, batch) -> None:
    handles = keep_frozen_bn_eval(model)
    freeze(model, "block1")
    stats = model.block1[1].running_mean.clone()
    model.train()
    model(batch[0])
    assert torch.equal(model.block1[1].running_mean, stats)
    assert not model.block2[1].running_mean.eq(0).all(), "trainable BN still updates"
    unfreeze(model, "block1")
    model.train()
    model(batch[0])
    assert not torch.equal(model.block1[1].running_mean, stats), "unfrozen BN trains normally again"
    for handle in handles:
        handle.remove()


def test_to_frozen_batchnorm_preserves_outputs(pretrained: CourseCNN, batch) -> None:
    freeze(pretrained, "block1", "block2")
    expected = pretrained(batch[0])
    assert to_frozen_batchnorm(pretrained) == 2
    assert isinstance(pretrained.block1[1], FrozenBatchNorm2d)
    assert isinstance(pretrained.block3[1], torch.nn.BatchNorm2d)
    pretrained.eval()
    assert torch.allclose(pretrained(batch[0]), expected, atol=1e-5)
    pretrained.train()
    pretrained(batch[0])
    assert torch.equal(pretrained.block1[1].running_mean, pretrained.block1[1].running_mean)
    assert to_frozen_batchnorm(pretrained, only_frozen=False) == 1


def test_snapshot_and_changes(model: CourseCNN, batch) -> None:
    freeze(model, "block1")
    before = snapshot(model)
    optimizer = torch.optim.SGD(trainable_parameters(model), lr=0.1)
    model.train()
    set_bn_eval(model)
    torch.nn.functional.cross_entropy(model(batch[0]), batch[1]).backward()
    optimizer.step()
    changed = changed_since(model, before)
    assert not any(name.startswith("block1.") for name in changed)
    assert "head.2.weight" in changed and "block2.1.running_mean" in changed
    change = weight_change_by_block(model, before)
    assert change["block1"] == 0.0 and change["head"] > 0
    with pytest.raises(LayerNameError, match="snapshot has entries"):
        changed_since(model, {**before, "extra": torch.zeros(1)})


def test_audit_finds_every_pitfall(model: CourseCNN, batch) -> None:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    torch.nn.functional.cross_entropy(model(batch[0]), batch[1]).backward()
    optimizer.step()
    freeze(model, "block1")
    model.train()
    report = audit(model, optimizer)
    text = str(report)
    assert not report.ok
    assert "BatchNorm in train mode with frozen weights" in text and "block1.1" in text
    assert "optimizer holds" in text and "keeps state" in text and "still hold a .grad" in text


def test_audit_passes_a_clean_setup(model: CourseCNN) -> None:
    freeze(model, "block1")
    model.train()
    set_bn_eval(model)
    report = audit(model, torch.optim.Adam(trainable_parameters(model)))
    assert report.ok and "no problems found" in str(report)
    freeze(model)
    assert "nothing is trainable" in str(audit(model))
