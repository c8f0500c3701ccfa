from __future__ import annotations

import copy

import pytest
import torch
from torchvision.ops import FrozenBatchNorm2d

from course_utils.batchnorm import from_frozen_batchnorm2d, keep_frozen_bn_eval, set_bn_eval, to_frozen_batchnorm2d
from course_utils.changes import changed_since, snapshot, weight_change_by_block
from course_utils.freezing import freeze, freeze_to, trainable_summary, unfreeze
from course_utils.layers import BATCHNORM_TYPES, OWN, LayerNameError, block_names, blocks
from course_utils.models import CourseCNN
from course_utils.optim_groups import NothingTrainableError, audit, param_groups, trainable_parameters, unfreeze_next


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
    with pytest.raises(
        LayerNameError,
        match="No layer named 'blok1'. Did you mean 'block1', 'block2', 'block3'[?] "
        "Blocks: block1, block2, block3, head",
    ):
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
    freeze(model, "block1", "block2")
    groups = param_groups(model, {"block3": 1e-3, "head": 1e-2})
    assert [(g["name"], g["lr"]) for g in groups] == [("block3", 1e-3), ("head", 1e-2)]
    with_frozen = param_groups(model, {"block1": 1.0, "block3": 1e-3, "head": 1e-2})  # a frozen block's lr is unused
    assert [(g["name"], g["lr"]) for g in with_frozen] == [("block3", 1e-3), ("head", 1e-2)]
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
    assert to_frozen_batchnorm2d(pretrained) == 2
    assert isinstance(pretrained.block1[1], FrozenBatchNorm2d)
    assert isinstance(pretrained.block3[1], torch.nn.BatchNorm2d)
    pretrained.eval()
    assert torch.allclose(pretrained(batch[0]), expected, atol=1e-5)
    frozen_stats = pretrained.block1[1].running_mean.clone()
    trainable_stats = pretrained.block3[1].running_mean.clone()
    pretrained.train()
    pretrained(batch[0])
    assert torch.equal(pretrained.block1[1].running_mean, frozen_stats), "FrozenBatchNorm2d must not drift"
    assert not torch.equal(pretrained.block3[1].running_mean, trainable_stats), "a BatchNorm2d in train mode does"
    assert to_frozen_batchnorm2d(pretrained, only_frozen=False) == 1


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


# --- Real-model regressions: parameterless children, model-owned parameters, BatchNorm variants ---


@pytest.fixture(scope="module")
def _resnet18_pristine() -> torch.nn.Module:
    from torchvision.models import resnet18

    torch.manual_seed(0)
    return resnet18(weights=None, num_classes=10)


@pytest.fixture
def resnet(_resnet18_pristine: torch.nn.Module) -> torch.nn.Module:
    return copy.deepcopy(_resnet18_pristine)


class WithOwnParameter(torch.nn.Module):
    """A ViT-like toy: a parameter owned by the model itself, then a parameterless child, then blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.token = torch.nn.Parameter(torch.zeros(4))
        self.embed = torch.nn.Linear(4, 4)
        self.act = torch.nn.ReLU()
        self.head = torch.nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(self.embed(x + self.token)))


def test_block_helpers_skip_parameterless_children(resnet) -> None:
    assert block_names(resnet) == ["stem", "layer1", "layer2", "layer3", "layer4", "fc"]
    freeze_to(resnet, -1)  # raised "Layer 'relu' (ReLU) has no parameters" before
    assert [n for n, p in resnet.named_parameters() if p.requires_grad] == ["fc.weight", "fc.bias"]
    freeze_to(resnet, 2)
    assert trainable_blocks(resnet) == ["layer2", "layer3", "layer4", "fc"]


def test_a_resnet_stem_is_one_block_that_freezes_together(resnet) -> None:
    assert blocks(resnet)["stem"] == ["conv1", "bn1"]
    freeze_to(resnet, 1)
    frozen = {n.split(".")[0] for n, p in resnet.named_parameters() if not p.requires_grad}
    assert frozen == {"conv1", "bn1"}, "freeze_to(resnet, 1) freezes conv1 and bn1 together"
    unfreeze(resnet)
    freeze(resnet, "stem")
    assert {n.split(".")[0] for n, p in resnet.named_parameters() if not p.requires_grad} == {"conv1", "bn1"}
    unfreeze(resnet, "stem")
    assert all(p.requires_grad for p in resnet.parameters())


def test_only_a_run_of_single_layers_before_a_stage_is_a_stem() -> None:
    nn = torch.nn
    plain = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2))  # single layers only: no stage follows
    assert block_names(plain) == ["0", "2"]
    one_layer = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Sequential(nn.Conv2d(2, 2, 3)))  # ViT-like: one layer first
    assert block_names(one_layer) == ["0", "1"]
    stem_first = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Sequential(nn.Conv2d(2, 2, 3)))
    assert blocks(stem_first) == {"stem": ["0", "1"], "3": ["3"]}
    with pytest.raises(LayerNameError, match="No layer named 'stem'"):
        freeze(plain, "stem")


def test_param_groups_decay_steps_over_parameter_blocks_only(resnet) -> None:
    rates = {g["name"]: g["lr"] for g in param_groups(resnet, 1e-3, decay=0.5)}
    assert list(rates) == block_names(resnet)
    assert rates["fc"] == pytest.approx(1e-3) and rates["layer4"] == pytest.approx(5e-4)  # avgpool takes no step
    assert rates["layer1"] == pytest.approx(1e-3 * 0.5**4) and rates["stem"] == pytest.approx(1e-3 * 0.5**5)
    stem_group = next(g for g in param_groups(resnet, 1e-3) if g["name"] == "stem")
    assert {id(p) for p in stem_group["params"]} == {
        id(p) for p in [*resnet.conv1.parameters(), *resnet.bn1.parameters()]
    }


def test_trainable_summary_on_resnet_has_separate_columns(resnet) -> None:
    freeze_to(resnet, -1)
    summary = trainable_summary(resnet)
    assert [r[0] for r in summary.rows] == block_names(resnet), "relu, maxpool, avgpool are not blocks"
    assert summary.frozen_blocks == ["stem", "layer1", "layer2", "layer3", "layer4"]
    lines = str(summary).splitlines()
    assert lines[0].split() == ["block", "trainable", "total", "status"]
    assert lines[1].split() == ["stem", "0", "9,536", "frozen"], "conv1 (9,408) + bn1 (128)"
    assert lines[4].split() == ["layer3", "0", "2,099,712", "frozen"]
    assert lines[7].split() == ["total", "5,130", "11,181,642", "0.046%", "trainable"], "a small share is not 0.0%"
    assert "not blocks: relu, maxpool, avgpool" in lines[-1]
    unfreeze(resnet)
    lines = str(trainable_summary(resnet)).splitlines()
    assert lines[4].split() == ["layer3", "2,099,712", "2,099,712", "trainable"]
    assert lines[7].split() == ["total", "11,181,642", "11,181,642", "100.0%", "trainable"]
    assert len({line.index("  trainable") for line in lines[1:7]}) == 1, "the columns line up"


def test_trainable_summary_keeps_course_layout(model: CourseCNN) -> None:
    assert str(trainable_summary(model)).splitlines()[:2] == [
        "block       trainable    total  status",
        "block1            432      432  trainable",
    ]


def test_frozen_batchnorm_round_trip_restores_parameters(resnet, batch) -> None:
    freeze(resnet, "layer1")
    resnet.layer1[0].bn1.momentum = 0.01
    before = snapshot(resnet)
    count = sum(p.numel() for p in resnet.parameters())
    assert to_frozen_batchnorm2d(resnet) == 4
    assert sum(p.numel() for p in resnet.parameters()) == count - 512, "weights became buffers"
    assert from_frozen_batchnorm2d(resnet) == 4
    assert sum(p.numel() for p in resnet.parameters()) == count
    assert isinstance(resnet.layer1[0].bn1, torch.nn.BatchNorm2d) and resnet.layer1[0].bn1.momentum == 0.01
    assert changed_since(resnet, before) == [] and set(snapshot(resnet)) == set(before)
    assert not any(p.requires_grad for p in resnet.layer1.parameters()), "restored as frozen, as they were"


def test_unfreeze_undoes_freeze_exactly(resnet, model: CourseCNN) -> None:
    for net, names in ((resnet, ("stem", "layer[12]", "layer4.1.bn2")), (model, ("block1", "head.2"))):
        before = {n: p.requires_grad for n, p in net.named_parameters()}
        types = [type(m) for m in net.modules()]
        freeze(net, *names, train_bn=True)
        assert any(not p.requires_grad for p in net.parameters())
        unfreeze(net, *names)
        assert {n: p.requires_grad for n, p in net.named_parameters()} == before
        assert [type(m) for m in net.modules()] == types, "neither of the pair changes the model's layers"


def test_unfreeze_sets_flags_only_and_leaves_frozen_batchnorm(resnet) -> None:
    freeze_to(resnet, -1)
    bn_weights = sum(m.weight.numel() + m.bias.numel() for m in resnet.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert to_frozen_batchnorm2d(resnet) == 20
    assert blocks(resnet)["stem"] == ["conv1", "bn1"], "a FrozenBatchNorm2d-only child is still part of the stem"
    unfreeze(resnet)
    assert sum(m is not None for m in resnet.modules() if isinstance(m, FrozenBatchNorm2d)) == 20, "left as it was"
    assert sum(p.numel() for p in resnet.parameters() if p.requires_grad) == 11_181_642 - bn_weights
    assert from_frozen_batchnorm2d(resnet, "layer2") == 5  # the other pair: the layers themselves
    assert not resnet.layer2[0].bn1.weight.requires_grad, "converted back frozen, as it was"
    unfreeze(resnet, "layer2")
    assert all(p.requires_grad for p in resnet.layer2.parameters())
    assert sum(p.numel() for p in resnet.layer2.parameters()) == 525_568


def test_freeze_to_keeps_frozen_batchnorm_in_every_block(resnet) -> None:
    freeze_to(resnet, -1)
    to_frozen_batchnorm2d(resnet)
    freeze_to(resnet, 4)  # unfreezes layer4 and fc only
    assert isinstance(resnet.layer3[0].bn1, FrozenBatchNorm2d) and isinstance(resnet.layer4[0].bn1, FrozenBatchNorm2d)
    assert resnet.layer4[0].conv1.weight.requires_grad and not resnet.layer3[0].conv1.weight.requires_grad


def test_one_batchnorm_type_tuple_covers_syncbatchnorm() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.SyncBatchNorm(4), torch.nn.BatchNorm1d(4))
    assert all(isinstance(m, BATCHNORM_TYPES) for m in list(model)[1:])
    assert not isinstance(FrozenBatchNorm2d(4), BATCHNORM_TYPES)
    freeze(model, "1")
    model.train()
    assert "running stats will drift): 1;" in str(audit(model))
    assert set_bn_eval(model) == 1 and not model[1].training and model[2].training
    stats = model[1].running_mean.clone()
    model[:2](torch.rand(2, 3, 6, 6))
    assert torch.equal(model[1].running_mean, stats) and audit(model).ok


def test_model_owned_parameters_belong_to_the_frozen_part() -> None:
    model = WithOwnParameter()
    assert block_names(model) == ["embed", "head"]
    freeze_to(model, -1)
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["head.weight", "head.bias"]
    summary = trainable_summary(model)
    assert summary.rows[0] == (OWN, 0, 4) and summary.frozen_blocks == [OWN, "embed"]
    freeze_to(model, 0)
    assert all(p.requires_grad for p in model.parameters())
    groups = param_groups(model, 1.0, decay=0.1)
    assert [(g["name"], g["lr"]) for g in groups] == [(OWN, 0.1), ("embed", 0.1), ("head", 1.0)]
    assert weight_change_by_block(model, {k: v + 1 for k, v in snapshot(model).items()})[OWN] > 0


def test_unfreeze_next_after_train_bn_unfreezes_the_convolutions(model: CourseCNN) -> None:
    freeze_to(model, 3, train_bn=True)
    optimizer = torch.optim.SGD(trainable_parameters(model), lr=0.1)  # holds every BatchNorm weight already
    assert unfreeze_next(model, optimizer, lr=0.01) == "block3"
    assert model.block3[0].weight.requires_grad
    assert optimizer.param_groups[-1]["params"] == [model.block3[0].weight], "only what the optimizer lacked"
    assert unfreeze_next(model, optimizer, lr=0.01) == "block2"
    assert unfreeze_next(model, optimizer, lr=0.01) == "block1"
    assert unfreeze_next(model, optimizer, lr=0.01) is None
    assert audit(model, optimizer).ok


def test_unfreeze_next_reaches_model_owned_parameters_last() -> None:
    model = WithOwnParameter()
    freeze_to(model, -1)
    optimizer = torch.optim.SGD(trainable_parameters(model), lr=0.1)
    assert [unfreeze_next(model, optimizer, 0.01) for _ in range(3)] == ["embed", OWN, None]
    assert audit(model, optimizer).ok


def test_param_groups_dict_refuses_trainable_blocks_without_lr(model: CourseCNN) -> None:
    freeze(model, "block1")
    with pytest.raises(LayerNameError, match=r"without a learning rate in lr: block2 \(4,672 parameters\), block3"):
        param_groups(model, {"head": 1e-2})


def test_audit_reports_trainable_parameters_missing_from_optimizer(model: CourseCNN) -> None:
    freeze_to(model, 3)
    optimizer = torch.optim.SGD(trainable_parameters(model), lr=0.1)
    unfreeze(model, "block3")  # forgot optimizer.add_param_group
    text = str(audit(model, optimizer))
    assert "3 trainable parameter(s) are not in the optimizer" in text and "block3.0.weight" in text


def test_glob_patterns_freeze_every_match(resnet) -> None:
    freeze(resnet, "layer[1-3]*", "conv?")
    assert trainable_blocks(resnet) == ["bn1", "layer4", "fc"]
    unfreeze(resnet, "layer2.*.conv1")
    assert [n for n, p in resnet.layer2.named_parameters() if p.requires_grad] == ["0.conv1.weight", "1.conv1.weight"]
    freeze(resnet, "layer4.1.bn2")  # nested dotted names still work
    assert not resnet.layer4[1].bn2.weight.requires_grad and resnet.layer4[1].bn1.weight.requires_grad


def test_glob_pattern_without_match_lists_close_names(resnet) -> None:
    with pytest.raises(LayerNameError, match=r"No layer matches the pattern 'layers\[1-3\]\*'. Did you mean 'layer1'"):
        freeze(resnet, "layers[1-3]*")
    with pytest.raises(LayerNameError, match="matches only layers without parameters"):
        freeze(resnet, "*pool")
    with pytest.raises(LayerNameError, match="No layer named 'layr4'. Did you mean 'layer4'"):
        unfreeze(resnet, "layr4")
    with pytest.raises(TypeError, match="must be strings"):
        freeze(resnet, 1)  # type: ignore[arg-type]
    assert all(p.requires_grad for p in resnet.parameters()), "a failed call changes nothing"


def test_unfreeze_next_adds_nothing_the_optimizer_already_holds(model: CourseCNN) -> None:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)  # built before freezing: holds everything
    freeze_to(model, 3)
    assert unfreeze_next(model, optimizer, lr=0.01) == "block3"  # adding block3 again would raise
    assert len(optimizer.param_groups) == 1 and model.block3[0].weight.requires_grad
