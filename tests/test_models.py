from __future__ import annotations

import shutil

import pytest
import torch

from course_utils import data, paths
from course_utils.data import SOURCE_CLASSES, make_task
from course_utils.models import (
    CHECKPOINT_FILE,
    COURSE_CNN_BACKBONE,
    COURSE_CNN_BLOCKS,
    CourseCNN,
    load_pretrained,
    replace_head,
)
from course_utils.training import evaluate


def test_blocks_and_output_shape(model: CourseCNN) -> None:
    assert tuple(name for name, _ in model.named_children()) == COURSE_CNN_BLOCKS
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 5)
    assert model.features(torch.rand(3, 1, 28, 28)).shape == (3, 256)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.block1.modules())
    assert any(isinstance(m, torch.nn.Dropout) for m in model.head.modules())


@pytest.mark.parametrize(
    "shape, message",
    [((1, 28, 28), "unsqueeze"), ((2, 3, 28, 28), r"\(N, 1, 28, 28\), got \(2, 3, 28, 28\)"), ((2, 784), "got")],
)
def test_wrong_input_shape_is_explained(model: CourseCNN, shape, message) -> None:
    with pytest.raises(ValueError, match=message):
        model(torch.rand(*shape))


def test_integer_images_are_refused(model: CourseCNN) -> None:
    with pytest.raises(TypeError, match="float images"):
        model(torch.zeros(1, 1, 28, 28, dtype=torch.uint8))


def test_pretrained_checkpoint_is_small_and_accurate(pretrained: CourseCNN) -> None:
    assert (paths.data_dir() / CHECKPOINT_FILE).stat().st_size < 1_000_000
    task = make_task(SOURCE_CLASSES)
    assert evaluate(pretrained, task.x_test, task.y_test) >= 97
    assert not pretrained.training


def test_new_head_replaces_only_the_head(pretrained: CourseCNN) -> None:
    before = pretrained.block3[0].weight.clone()
    head = replace_head(pretrained, 3)
    assert pretrained.head is head and head[-1].out_features == 3
    assert torch.equal(pretrained.block3[0].weight, before)


@pytest.fixture
def data_copy(tmp_path, monkeypatch):
    for name in ["SHA256SUMS", CHECKPOINT_FILE, data.DATA_FILE]:
        shutil.copy(paths.data_dir() / name, tmp_path / name)
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    data.clear_cache()
    yield tmp_path
    data.clear_cache()


def test_corrupt_checkpoint_raises_checksum_error(data_copy) -> None:
    with open(data_copy / CHECKPOINT_FILE, "r+b") as handle:
        handle.seek(500)
        handle.write(b"\x00\x01\x02")
    with pytest.raises(paths.ChecksumError, match="corrupted.*python -m tools.pretrain"):
        load_pretrained()


def test_missing_checkpoint_says_how_to_regenerate(data_copy) -> None:
    (data_copy / CHECKPOINT_FILE).unlink()
    with pytest.raises(paths.ChecksumError, match="missing.*python -m tools.pretrain"):
        load_pretrained()


def test_corrupt_data_file_raises(data_copy) -> None:
    (data_copy / data.DATA_FILE).write_bytes(b"not an npz")
    with pytest.raises(paths.ChecksumError, match="build_dataset.py"):
        data.load_digits()


def test_missing_checksum_entry(data_copy) -> None:
    (data_copy / "SHA256SUMS").write_text("")
    with pytest.raises(KeyError, match="no entry"):
        load_pretrained()


def test_data_dir_outside_a_checkout_asks_for_the_variable(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    assert (paths.data_dir() / "SHA256SUMS").exists()  # this checkout's data/
    monkeypatch.setattr(paths, "_CHECKOUT_DATA", tmp_path / "site-packages" / "data")
    with pytest.raises(FileNotFoundError, match="Set COURSE_DATA_DIR"):
        paths.data_dir()
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    assert paths.data_dir() == tmp_path


def test_backbone_blocks_are_every_block_but_the_head(model: CourseCNN) -> None:
    assert COURSE_CNN_BACKBONE == tuple(name for name, _ in model.named_children() if name != "head")
