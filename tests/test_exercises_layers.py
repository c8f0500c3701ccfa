"""Checkers of notebook 01: pass on a right answer, fail with a hint on a wrong one, never raise."""
from __future__ import annotations

from torch import nn

from course_utils.exercises import layers as ex
from course_utils.models import CourseCNN


def right_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_count_parameters_right() -> None:
    assert ex.check_count_parameters(right_count).passed


def test_count_parameters_wrong_counts_tensors() -> None:
    result = ex.check_count_parameters(lambda m: len(list(m.parameters())))
    assert not result.passed and "counts tensors" in str(result)


def test_count_parameters_unfinished(capsys) -> None:
    def unfinished(module):
        ...

    result = ex.check_count_parameters(unfinished)
    assert not result.passed and "return" in str(result)
    assert not ex.check_count_parameters(None).passed
    assert "Exercise:" in capsys.readouterr().out


def test_not_parameters_right_and_wrong() -> None:
    model = CourseCNN()
    buffers = [name for name, _ in model.named_buffers()]
    assert ex.check_not_parameters(buffers, model).passed
    wrong = ex.check_not_parameters(buffers[:-1] + ["block1.0.weight"], model)
    assert not wrong.passed and "missing 1" in str(wrong) and "block1.0.weight" in str(wrong)


def test_not_parameters_bad_types() -> None:
    for answer in (None, 3, "block1.1.running_mean", [1, 2]):
        assert not ex.check_not_parameters(answer).passed


def test_block2_shape() -> None:
    assert ex.check_block2_shape((8, 32, 7, 7)).passed
    wrong = ex.check_block2_shape((8, 16, 14, 14))
    assert not wrong.passed and "out_channels" in str(wrong) and "stride 2" in str(wrong)
    for answer in (None, (8, 32), "8, 32, 7, 7", 7):
        assert not ex.check_block2_shape(answer).passed
