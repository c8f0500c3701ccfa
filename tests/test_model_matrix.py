"""The freezing helpers on the models people fine-tune, not only on the course CNN.

Every torchvision model is built with ``weights=None`` (no download) and fed tiny inputs, so the
whole matrix runs in seconds. For each model: ``freeze_to(m, -1)`` trains exactly the classifier;
two SGD-with-momentum steps in ``model.train()`` + ``set_bn_eval`` leave every frozen parameter and
every BatchNorm buffer bitwise unchanged; ``audit`` is clean for a correct set-up and names each
problem of a broken one; ``param_groups`` gives each block the right lr ratio; gradual unfreezing
reaches every block; the FrozenBatchNorm2d round trip restores the parameters; nested dotted names work.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from torch import nn
from torchvision import models

from course_utils.batchnorm import from_frozen_batchnorm2d, set_bn_eval, to_frozen_batchnorm2d
from course_utils.changes import changed_since
from course_utils.freezing import freeze, freeze_to, trainable_summary, unfreeze
from course_utils.layers import BATCHNORM_TYPES, OWN, block_names
from course_utils.models import CourseCNN
from course_utils.optim_groups import audit, param_groups, trainable_parameters, unfreeze_next

NUM_CLASSES = 10


@dataclass(frozen=True)
class Case:
    build: Callable[[], nn.Module]
    classifier: str  # the last block: what freeze_to(m, -1) must leave trainable
    nested: str  # a dotted name deep inside the model
    input_shape: tuple[int, ...]  # one small batch


CASES: dict[str, Case] = {
    "resnet18": Case(
        lambda: models.resnet18(weights=None, num_classes=NUM_CLASSES), "fc", "layer4.1.bn2", (2, 3, 32, 32)
    ),
    "mobilenet_v3_small": Case(
        lambda: models.mobilenet_v3_small(weights=None, num_classes=NUM_CLASSES),
        "classifier",
        "features.1.block.0.1",
        (2, 3, 32, 32),
    ),
    "efficientnet_b0": Case(
        lambda: models.efficientnet_b0(weights=None, num_classes=NUM_CLASSES),
        "classifier",
        "features.1.0.block.0.1",
        (2, 3, 32, 32),
    ),
    "convnext_tiny": Case(
        lambda: models.convnext_tiny(weights=None, num_classes=NUM_CLASSES),
        "classifier",
        "features.1.0.block.2",
        (2, 3, 32, 32),
    ),
    "vit_b_16": Case(
        lambda: models.vit_b_16(weights=None, image_size=32, num_classes=NUM_CLASSES),
        "heads",
        "encoder.layers.encoder_layer_0.ln_1",
        (2, 3, 32, 32),
    ),
    "course_cnn": Case(lambda: CourseCNN(num_classes=NUM_CLASSES), "head", "block1.1", (2, 1, 28, 28)),
}

_BUILT: dict[str, tuple[nn.Module, nn.Module]] = {}  # name -> (pristine, working copy)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One CPU thread, as in the course (``seed_everything``): faster for these tiny batches."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _reset(model: nn.Module, pristine: nn.Module) -> nn.Module:
    """Bring the working copy back to the pristine model without copying 86 M parameters each time."""
    from_frozen_batchnorm2d(model)
    reference = pristine.state_dict()
    with torch.no_grad():
        for name in changed_since(model, reference):
            model.state_dict()[name].copy_(reference[name])
    model.requires_grad_(True)
    model.zero_grad(set_to_none=True)
    return model.train()


@pytest.fixture(params=list(CASES))
def case(request: pytest.FixtureRequest) -> tuple[str, Case, nn.Module, dict[str, torch.Tensor]]:
    """(name, case, the model as freshly built, its state as built); each architecture is built once."""
    name = request.param
    if name not in _BUILT:
        torch.manual_seed(0)
        pristine = CASES[name].build()
        _BUILT[name] = (pristine, copy.deepcopy(pristine))
    pristine, model = _BUILT[name]
    return name, CASES[name], _reset(model, pristine), pristine.state_dict()


def batch_for(spec: Case) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(spec.input_shape, generator=generator)
    return x, torch.randint(0, NUM_CLASSES, (spec.input_shape[0],), generator=generator)


def batchnorms(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if isinstance(m, BATCHNORM_TYPES)]


def problem(report_text: str, start: str) -> str:
    lines = [line for line in report_text.splitlines() if line.startswith(f"PROBLEM: {start}")]
    assert len(lines) == 1, f"expected one problem starting {start!r} in:\n{report_text}"
    return lines[0]


def test_freeze_to_last_trains_exactly_the_classifier(case) -> None:
    name, spec, model, _ = case
    assert block_names(model)[-1] == spec.classifier
    freeze_to(model, -1)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    expected = [f"{spec.classifier}.{n}" for n, _ in model.get_submodule(spec.classifier).named_parameters()]
    assert trainable == expected, f"{name}: {trainable[:5]}"
    summary = trainable_summary(model)
    assert summary.frozen_blocks == [r[0] for r in summary.rows][:-1] and summary.total == sum(
        p.numel() for p in model.parameters()
    )


def test_training_moves_only_the_classifier(case) -> None:
    name, spec, model, before = case  # before: the state as built, never modified
    freeze_to(model, -1)
    optimizer = torch.optim.SGD(trainable_parameters(model), lr=0.1, momentum=0.9)
    x, y = batch_for(spec)
    for _ in range(2):
        model.train()
        set_bn_eval(model)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    changed = set(changed_since(model, before))
    classifier = {f"{spec.classifier}.{n}" for n, _ in model.get_submodule(spec.classifier).named_parameters()}
    assert changed and changed <= classifier, (
        f"{name}: moved outside the classifier: {sorted(changed - classifier)[:5]}"
    )
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert with_grad == classifier, f"{name}: gradients reach exactly the classifier"
    bn_buffers = [k for k in before if k.rsplit(".", 1)[0] in set(batchnorms(model))]
    assert all(torch.equal(model.state_dict()[k], before[k]) for k in bn_buffers)
    if name == "vit_b_16":
        assert "class_token" not in changed and "encoder.pos_embedding" not in changed
        assert trainable_summary(model).rows[0] == (OWN, 0, 768)


def test_audit_is_clean_for_a_correct_setup_and_names_each_problem(case) -> None:
    name, spec, model, _ = case
    early = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)  # broken 1, checked below
    freeze_to(model, -1)
    model.train()
    set_bn_eval(model)
    optimizer = torch.optim.SGD(trainable_parameters(model), lr=0.1, momentum=0.9)
    assert audit(model, optimizer).ok, str(audit(model, optimizer))

    # broken 1: the optimizer was built before freezing
    frozen_tensors = sum(1 for p in model.parameters() if not p.requires_grad)
    text = str(audit(model, early))
    assert f"optimizer holds {frozen_tensors} frozen parameter(s)" in problem(text, "optimizer holds"), text

    # broken 2: frozen BatchNorm left in train mode (models without BatchNorm have nothing to drift)
    model.train()
    text = str(audit(model, optimizer))
    if batchnorms(model):
        listed = problem(text, "BatchNorm in train mode").split("drift): ")[1].split("; call")[0].split(", ")
        assert listed == batchnorms(model), f"{name}: every BatchNorm is frozen and must be listed"
    else:
        assert audit(model, optimizer).ok, text

    # broken 3: a block unfrozen without adding it to the optimizer
    set_bn_eval(model)
    second_last = block_names(model)[-2]
    unfreeze(model, second_last)
    missing = sum(1 for _ in model.get_submodule(second_last).parameters())
    line = problem(str(audit(model, optimizer)), f"{missing} trainable parameter(s) are not in the optimizer")
    assert f"{second_last}." in line


def test_param_groups_give_each_block_its_lr_ratio(case) -> None:
    name, _, model, _ = case
    blocks = block_names(model)
    own = [OWN] if list(model.parameters(recurse=False)) else []
    groups = param_groups(model, 1.0, decay=0.5)
    assert [g["name"] for g in groups] == own + blocks
    lrs = {g["name"]: g["lr"] for g in groups}
    assert [lrs[b] for b in blocks] == [0.5 ** (len(blocks) - 1 - i) for i in range(len(blocks))]
    if own:
        assert lrs[OWN] == lrs[blocks[0]]
    grouped = [id(p) for g in groups for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters()), f"{name}: each parameter exactly once"

    freeze_to(model, 1)
    later = {g["name"]: g["lr"] for g in param_groups(model, 1.0, decay=0.5)}
    assert later == {b: lrs[b] for b in blocks[1:]}, "frozen blocks drop out, the others keep their lr"


def test_gradual_unfreezing_reaches_every_block(case) -> None:
    _, _, model, _ = case
    freeze_to(model, -1)
    optimizer = torch.optim.SGD(trainable_parameters(model), lr=0.1, momentum=0.9)
    order = []
    while (unfrozen := unfreeze_next(model, optimizer, lr=0.01)) is not None:
        order.append(unfrozen)
    own = [OWN] if list(model.parameters(recurse=False)) else []
    assert order == list(reversed(block_names(model)))[1:] + own
    assert all(p.requires_grad for p in model.parameters())
    in_optimizer = [id(p) for g in optimizer.param_groups for p in g["params"]]
    assert sorted(in_optimizer) == sorted(id(p) for p in model.parameters()), "each parameter exactly once"
    assert audit(model, optimizer).ok


def test_frozen_batchnorm_round_trip_restores_parameters(case) -> None:
    name, _, model, before = case
    freeze(model)
    settings = [(n, type(m), m.eps, m.momentum) for n, m in model.named_modules() if isinstance(m, BATCHNORM_TYPES)]
    count = sum(p.numel() for p in model.parameters())
    converted = to_frozen_batchnorm2d(model)
    assert converted == len(settings)
    if converted:
        assert sum(p.numel() for p in model.parameters()) < count
    assert from_frozen_batchnorm2d(model) == converted
    assert sum(p.numel() for p in model.parameters()) == count
    assert [
        (n, type(m), m.eps, m.momentum) for n, m in model.named_modules() if isinstance(m, BATCHNORM_TYPES)
    ] == settings
    assert set(model.state_dict()) == set(before) and changed_since(model, before) == [], name


def test_nested_dotted_names(case) -> None:
    _, spec, model, _ = case
    freeze(model, spec.nested)
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert frozen and all(n.startswith(spec.nested + ".") for n in frozen)
    assert len(frozen) == len(list(model.get_submodule(spec.nested).parameters()))
    unfreeze(model, spec.nested)
    assert all(p.requires_grad for p in model.parameters())
