"""examples/finetune.py on real-world folders: unreadable files, EXIF orientation, imbalance, normalisation,
an unwritable --out, a weights file named by its SHA-256."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from test_finetune_script import error_of, examples_module, quietly_on_one_thread, run_script

COLOURS = ("blue", "green", "red")
TINY = ["--weights", "none", "--workers", "0", "--batch-size", "4", "--lr", "1e-2", "--image-size", "16"]


def write_colours(root: Path, per_class: dict[str, list[int]], suffix: str = ".png") -> Path:
    """root/<split>/<colour>/<i><suffix>: 32x32 noise with one strong channel; per_class[split][c] images of c."""
    rng = np.random.default_rng(0)
    for split, counts in per_class.items():
        for channel, (name, count) in enumerate(zip(COLOURS[::-1], counts[::-1])):  # red = channel 0
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                pixels = rng.integers(0, 80, (32, 32, 3), dtype=np.uint8)
                pixels[..., channel] += 150
                Image.fromarray(pixels).save(folder / f"{i}{suffix}")
    return root


@pytest.fixture(scope="module")
def data() -> ModuleType:
    return examples_module("finetune_data")


@pytest.fixture(scope="module")
def finetune() -> ModuleType:
    return examples_module("finetune")


def truncated_jpeg() -> bytes:
    image = Image.fromarray(np.random.default_rng(1).integers(0, 255, (32, 32, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG")
    return buffer.getvalue()[:-200]  # the end of the scan is gone: PIL opens it, decoding fails


def test_unreadable_images_are_found_up_front_skipped_and_counted(
    data: ModuleType, finetune: ModuleType, tmp_path: Path
) -> None:
    root = write_colours(tmp_path / "images", {"train": [3, 3, 3], "val": [2, 2, 2]}, suffix=".jpg")
    (root / "train" / "red" / "cut.jpg").write_bytes(truncated_jpeg())
    (root / "train" / "blue" / "notes.jpg").write_text("a text file renamed .jpg")
    assert data.unreadable_reason(root / "train" / "red" / "0.jpg") is None  # a good JPEG reads
    assert "truncated" in data.unreadable_reason(root / "train" / "red" / "cut.jpg")
    assert "cannot identify image file" in data.unreadable_reason(root / "train" / "blue" / "notes.jpg")
    checked = data.check_data(root)
    assert len(checked.splits["train"]) == 9 and len(checked.splits["val"]) == 6
    assert not any(path.name in ("cut.jpg", "notes.jpg") for path, _ in checked.splits["train"])
    [warning] = checked.warnings
    assert warning.startswith(f"warning: skipped 2 unreadable of 11 images in {root / 'train'}: ")
    assert (
        "blue/notes.jpg (cannot identify image file)" in warning and "red/cut.jpg (image file is truncated" in warning
    )
    out = tmp_path / "out"
    done = run_script("--data", str(root), "--epochs", "1", "--out", str(out), *TINY)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert warning in done.stderr.splitlines()
    assert json.loads((out / "summary.json").read_text())["skipped_images"] == [warning]


def test_a_warning_names_the_first_few_and_counts_the_rest(data: ModuleType, tmp_path: Path) -> None:
    root = write_colours(tmp_path / "images", {"train": [2, 2, 2], "val": [1, 1, 1]})
    for i in range(7):
        (root / "train" / "green" / f"bad{i}.png").write_bytes(b"\x89PNG not really")
    [warning] = data.check_data(root).warnings
    assert "skipped 7 unreadable of 13 images" in warning and warning.count("bad") == 5 and "; and 2 more" in warning
    for path in (root / "val" / "red").iterdir():
        path.write_text("broken")
    with pytest.raises(data.UsageError, match=r"val/red has no readable images \(1 unreadable\)"):
        data.check_data(root)


def test_exif_orientation_is_applied(data: ModuleType, tmp_path: Path) -> None:
    pixels = np.random.default_rng(2).integers(0, 255, (24, 40, 3), dtype=np.uint8)  # 40 wide, 24 high
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the camera was turned, show it rotated 90 degrees clockwise
    Image.fromarray(pixels).save(tmp_path / "turned.png", exif=exif.tobytes())
    assert Image.open(tmp_path / "turned.png").size == (40, 24)  # as stored
    upright = data.load_rgb(tmp_path / "turned.png")
    assert upright.size == (24, 40)  # width and height swapped before any resize
    assert np.array_equal(np.asarray(upright), np.rot90(pixels, k=-1))  # turned clockwise
    plain = data.Preprocessing(16, 16, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    image, _ = data.ImageFiles([(tmp_path / "turned.png", 0)], plain.eval_transform())[0]
    reference = plain.eval_transform()(Image.fromarray(np.ascontiguousarray(np.rot90(pixels, k=-1))))
    assert torch.equal(image, reference)


def test_imbalance_is_reported_with_both_remedies(data: ModuleType) -> None:
    note = data.imbalance_note(["blue", "green", "red"], [12, 3, 4], "none")
    sizes = "'blue' has 12 images, 'green' 3 (4.0x)"
    assert note == f"note: train/ is imbalanced: {sizes}; --balance sampler or weights evens it out"
    assert "balanced with --balance sampler" in data.imbalance_note(["a", "b"], [10, 2], "sampler")
    assert data.imbalance_note(["a", "b", "c"], [9, 3, 5], "none") is None  # 3.0x is not above 3
    weights = data.class_weights([12, 3, 3])
    assert torch.allclose(weights, torch.tensor([0.5, 2.0, 2.0]))  # 18 images / (3 classes x class size)
    assert torch.allclose(weights * torch.tensor([12.0, 3.0, 3.0]), torch.full((3,), 6.0))  # each class weighs 6


def test_the_balanced_sampler_draws_classes_evenly(data: ModuleType) -> None:
    labels = torch.tensor([0] * 12 + [1] * 3 + [2] * 3)
    sampler = data.EpochSampler(len(labels), seed=0, weights=1 / torch.bincount(labels)[labels].float())
    drawn = []
    for epoch in range(100):
        sampler.set_epoch(epoch)
        drawn += [index for index, _ in sampler]
    counts = torch.bincount(labels[drawn], minlength=3)
    assert counts.sum() == 1800 and all(500 < count < 700 for count in counts), counts  # 600 each expected
    shuffled = data.EpochSampler(len(labels), seed=0)
    assert sorted(index for index, _ in shuffled) == list(range(18))  # no weights: each image once


def test_the_sampler_depends_on_seed_and_epoch_only_and_shards_disjointly(data: ModuleType) -> None:
    def pairs(seed: int, epoch: int, rank: int = 0, world: int = 1) -> list[tuple[int, int]]:
        sampler = data.EpochSampler(11, seed, rank, world)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert pairs(0, 3) == pairs(0, 3) and pairs(0, 3) != pairs(0, 4) and pairs(0, 3) != pairs(1, 3)
    first, second = pairs(0, 3, 0, 2), pairs(0, 3, 1, 2)
    assert len(first) == len(second) == 6
    assert {i for i, _ in first + second} == set(range(11))  # 12 slots: one image twice, padding
    assert len({seed for _, seed in first + second}) == 12  # every slot its own augmentation seed


def test_balance_options_change_training(finetune: ModuleType, tmp_path: Path) -> None:
    root = write_colours(tmp_path / "images", {"train": [8, 2, 2], "val": [1, 1, 1]})
    losses, outputs = {}, {}
    for balance in ("none", "sampler", "weights"):
        with quietly_on_one_thread() as stdout:
            finetune.main(
                ["--data", str(root), "--epochs", "1", "--out", str(tmp_path / balance), *TINY, "--balance", balance]
            )
        summary = json.loads((tmp_path / balance / "summary.json").read_text())
        assert summary["balance"] == balance and summary["imbalance_ratio"] == 4.0
        losses[balance], outputs[balance] = summary["epochs"][0]["train_loss"], stdout.getvalue()
    assert "--balance sampler or weights evens it out" in outputs["none"]
    assert "balanced with --balance sampler" in outputs["sampler"]
    assert "balanced with --balance weights" in outputs["weights"]
    assert len(set(losses.values())) == 3, losses  # each option trains on different batches or losses


def test_weights_none_normalises_with_the_training_images_statistics(
    data: ModuleType, finetune: ModuleType, tmp_path: Path
) -> None:
    one, other = tmp_path / "one.png", tmp_path / "other.png"
    Image.new("RGB", (8, 8), (255, 128, 0)).save(one)
    Image.new("RGB", (8, 8), (0, 128, 255)).save(other)
    mean, std = data.channel_stats([(one, 0), (other, 1)], size=4, workers=0)
    assert mean == pytest.approx([0.5, 128 / 255, 0.5]) and std == pytest.approx([0.5, 1.0, 0.5])  # constant: 1
    root = write_colours(tmp_path / "images", {"train": [2, 2, 2], "val": [1, 1, 1]})
    with quietly_on_one_thread():
        finetune.main(["--data", str(root), "--epochs", "1", "--out", str(tmp_path / "out"), *TINY])
    stored = torch.load(tmp_path / "out" / "best.pt", weights_only=True)["preprocessing"]
    expected = data.channel_stats(data.check_data(root).splits["train"], 16, 0)
    assert stored["mean"] == pytest.approx(expected[0]) and stored["std"] == pytest.approx(expected[1])
    assert stored["mean"] != pytest.approx([0.485, 0.456, 0.406], abs=0.01)  # not ImageNet's


def test_an_unwritable_out_is_one_line_before_training(finetune: ModuleType, tmp_path: Path) -> None:
    root = write_colours(tmp_path / "images", {"train": [2, 2, 2], "val": [1, 1, 1]})
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    done = run_script("--data", str(root), "--epochs", "1", "--out", str(a_file / "out"), *TINY)
    assert done.returncode == 1 and done.stdout == "", done.stdout  # nothing trained, nothing printed
    [line] = done.stderr.strip().splitlines()
    assert line == f"error: --out {a_file / 'out'}: cannot write there (Not a directory); choose another folder"
    cases = {a_file: "is a file, not a folder"}
    if os.geteuid() != 0:  # root writes into read-only folders
        read_only = tmp_path / "read_only"
        read_only.mkdir(mode=0o500)
        cases[read_only / "out"] = "cannot write there (Permission denied)"
    for out, expected in cases.items():
        assert expected in error_of(finetune, "--data", str(root), "--out", str(out), *TINY)


def test_weights_are_recorded_by_resolved_name_or_sha256(
    finetune: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = examples_module("finetune_model")
    for typed in ["DEFAULT", "IMAGENET1K_V1", "ResNet18_Weights.IMAGENET1K_V1"]:  # names only: no download
        assert model.resolve_weights("resnet18", typed) == model.Weights("ResNet18_Weights.IMAGENET1K_V1")
    assert model.resolve_weights("efficientnet_b0", "DEFAULT").id == "EfficientNet_B0_Weights.IMAGENET1K_V1"
    for wrong in ["MobileNet_V3_Small_Weights.IMAGENET1K_V1", "IMAGENET9K", "missing.pth"]:
        message = error_of(finetune, "--data", ".", "--out", str(tmp_path / "unused"), "--weights", wrong)
        assert "expected none, a resnet18 weights name (IMAGENET1K_V1, DEFAULT) or a weights file" in message
    torch.manual_seed(5)
    weights_file = tmp_path / "my weights.pth"
    torch.save(torchvision.models.resnet18().state_dict(), weights_file)
    digest = hashlib.sha256(weights_file.read_bytes()).hexdigest()
    assert model.resolve_weights("resnet18", str(weights_file)) == model.Weights(f"sha256:{digest}", weights_file)
    root = write_colours(tmp_path / "images", {"train": [2, 2, 2], "val": [1, 1, 1]})
    out = tmp_path / "out"
    monkeypatch.chdir(tmp_path)  # the path as typed is relative; the checkpoint records the digest
    with quietly_on_one_thread():
        finetune.main(["--data", str(root), "--epochs", "1", "--out", str(out), *TINY, "--weights", weights_file.name])
    checkpoint = torch.load(out / "best.pt", weights_only=True)
    assert checkpoint["weights"] == f"sha256:{digest}" and checkpoint["weights_file"] == str(weights_file)
    assert json.loads((out / "summary.json").read_text())["weights"] == f"sha256:{digest}"
    moved = weights_file.rename(tmp_path / "moved.pth")
    predict = ["predict", "--checkpoint", str(out / "best.pt"), str(root / "val")]
    assert "pass it with --weights-file FILE" in error_of(finetune, *predict)
    other = tmp_path / "other.pth"
    torch.save(torchvision.models.resnet18().state_dict(), other)
    assert "its SHA-256 differs" in error_of(finetune, *predict, "--weights-file", str(other))
    with quietly_on_one_thread() as stdout:
        finetune.main([*predict, "--weights-file", str(moved)])
    assert stdout.getvalue().count("\n") == 3  # one line per val image
