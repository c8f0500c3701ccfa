from __future__ import annotations

import torch

from course_utils.exercises import pitfalls as ex
from course_utils.freezing import freeze, set_bn_eval
from course_utils.models import CourseCNN


def frozen_backbone() -> CourseCNN:
    model = CourseCNN()
    freeze(model, "block1", "block2", "block3")
    return model


def test_optimizer_right_and_wrong(capsys) -> None:
    model = frozen_backbone()
    right = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1, momentum=0.9)
    assert ex.check_optimizer_for_frozen_backbone(model, right).passed
    assert "All checks passed" in capsys.readouterr().out
    wrong = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    result = ex.check_optimizer_for_frozen_backbone(model, wrong)
    assert not result.passed and "holds frozen parameters" in str(result)
    no_momentum = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    assert not ex.check_optimizer_for_frozen_backbone(model, no_momentum).passed


def test_optimizer_never_raises() -> None:
    assert not ex.check_optimizer_for_frozen_backbone(frozen_backbone(), None).passed
    assert not ex.check_optimizer_for_frozen_backbone(None, None).passed
    unfrozen = CourseCNN()
    opt = torch.optim.SGD(unfrozen.parameters(), lr=0.1, momentum=0.9)
    assert "Nothing in the model is frozen" in str(ex.check_optimizer_for_frozen_backbone(unfrozen, opt))


def test_train_mode_right_and_wrong() -> None:
    def right(model):
        model.train()
        set_bn_eval(model)

    result = ex.check_train_mode(right)
    assert result.passed, str(result)
    result = ex.check_train_mode(lambda model: model.eval())  # the text's fix: dropout off too
    assert not result.passed and "Dropout must stay in train mode" in str(result)
    assert not ex.check_train_mode(lambda model: model.train()).passed


def test_train_mode_never_raises() -> None:
    assert not ex.check_train_mode(None).passed
    assert not ex.check_train_mode(lambda model: 1 / 0).passed


def test_safe_load_right_and_wrong() -> None:
    def right(model, state):
        result = model.load_state_dict(state, strict=False)
        if result.unexpected_keys:
            raise KeyError(f"unexpected keys: {result.unexpected_keys}")

    def silent(model, state):
        model.load_state_dict(state, strict=False)

    def strict(model, state):
        model.load_state_dict(state)

    assert ex.check_safe_load(right).passed
    result = ex.check_safe_load(silent)
    assert not result.passed and "loaded silently" in str(result)
    result = ex.check_safe_load(strict)
    assert not result.passed and "was refused" in str(result)


def test_safe_load_never_raises() -> None:
    assert not ex.check_safe_load(None).passed
    assert not ex.check_safe_load(lambda model, state: None).passed
