"""examples/finetune.py's results: predict from best.pt alone, per-class scores and confusion matrices,
the held-out rule for test/, a resumed run identical to an uninterrupted one, mixed precision options."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import ModuleType

import pytest
import torch
from PIL import Image
from test_finetune_data import TINY, write_colours
from test_finetune_script import error_of, examples_module, quietly_on_one_thread


@pytest.fixture(scope="module")
def finetune() -> ModuleType:
    return examples_module("finetune")


@pytest.fixture(scope="module")
def trained(finetune: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict, str]:
    """(images with train/, val/, test/; OUT; summary; stdout) of a 2-epoch run."""
    root = write_colours(tmp_path_factory.mktemp("images"), {"train": [4, 4, 4], "val": [3, 3, 3], "test": [2, 2, 2]})
    out = tmp_path_factory.mktemp("out")
    with quietly_on_one_thread() as stdout:
        finetune.main(["train", "--data", str(root), "--epochs", "2", "--out", str(out), *TINY])
    return root, out, json.loads((out / "summary.json").read_text()), stdout.getvalue()


def predict(finetune: ModuleType, *argv: str) -> list[str]:
    with quietly_on_one_thread() as stdout:
        finetune.main(["predict", *argv])
    return stdout.getvalue().splitlines()


def test_predict_gives_the_predictions_of_the_chosen_epoch(finetune: ModuleType, trained: tuple) -> None:
    root, out, summary, _ = trained
    lines = predict(finetune, "--checkpoint", str(out / "best.pt"), str(root / "val"), "--top-k", "1")
    val_images = [path for path, _ in examples_module("finetune_data").check_data(root).splits["val"]]
    expected = {
        f"{path}": summary["classes"][label] for path, label in zip(val_images, summary["best_val_predictions"])
    }
    printed = dict(line.rsplit(" ", 1)[0].split(": ") for line in lines)
    assert printed == expected and len(lines) == 9


def test_predict_csv_lists_top_k_most_probable_first(finetune: ModuleType, trained: tuple, tmp_path: Path) -> None:
    root, out, summary, _ = trained
    red, blue = root / "val" / "red" / "0.png", root / "val" / "blue"
    lines = predict(
        finetune,
        "--checkpoint",
        str(out / "best.pt"),
        str(red),
        str(blue),
        "--top-k",
        "2",
        "--csv",
        str(tmp_path / "p.csv"),
    )
    assert lines[-1] == f"wrote 4 predictions to {tmp_path / 'p.csv'}"
    rows = list(csv.reader((tmp_path / "p.csv").open()))
    assert rows[0] == ["image", "class_1", "probability_1", "class_2", "probability_2"]
    assert [row[0] for row in rows[1:]] == [str(red), *(str(blue / f"{i}.png") for i in range(3))]
    model, checkpoint = finetune.load_checkpoint(out / "best.pt")  # the same numbers, computed here
    transform = examples_module("finetune_data").Preprocessing.from_dict(checkpoint["preprocessing"]).eval_transform()
    for row, line in zip(rows[1:], lines):
        probabilities = model(transform(Image.open(row[0]).convert("RGB"))[None]).softmax(1)[0]
        first, second = float(row[2]), float(row[4])
        assert row[1] != row[3] and 1.0 >= first + second and first >= second >= 0
        assert (first, second) == pytest.approx(probabilities.sort(descending=True).values[:2].tolist(), abs=1e-6)
        assert [row[1], row[3]] == [summary["classes"][i] for i in probabilities.argsort(descending=True)[:2]]
        assert line == f"{row[0]}: {row[1]} {first:.3f}, {row[3]} {second:.3f}"
    every_class = predict(finetune, "--checkpoint", str(out / "best.pt"), str(red), "--top-k", "10")[0]
    shown = [float(word.rstrip(",")) for word in every_class.split()[2::2]]
    assert len(shown) == 3 and sum(shown) == pytest.approx(1.0, abs=2e-3) and shown == sorted(shown, reverse=True)


def test_predict_skips_unreadable_images_and_says_what_is_wrong(
    finetune: ModuleType, trained: tuple, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root, out, _, _ = trained
    (tmp_path / "broken.jpg").write_text("not an image")
    Image.new("RGB", (20, 30), "red").save(tmp_path / "fine.jpg")
    lines = predict(finetune, "--checkpoint", str(out / "best.pt"), str(tmp_path))
    assert [line.split(":")[0] for line in lines] == [str(tmp_path / "fine.jpg")]
    checkpoint = ["--checkpoint", str(out / "best.pt")]
    assert "no readable images in" in error_of(finetune, "predict", *checkpoint, str(tmp_path / "broken.jpg"))
    assert "nowhere.jpg: no such file or folder" in error_of(
        finetune, "predict", *checkpoint, str(tmp_path / "nowhere.jpg")
    )
    missing = error_of(finetune, "predict", "--checkpoint", str(tmp_path / "best.pt"), str(tmp_path))
    assert "no such file (training writes OUT/best.pt)" in missing
    assert "--top-k and --batch-size must be at least 1" in error_of(
        finetune, "predict", *checkpoint, str(tmp_path), "--top-k", "0"
    )


def test_confusion_matrix_counts_every_val_image_and_gives_per_class_accuracy(
    finetune: ModuleType, trained: tuple
) -> None:
    root, out, summary, stdout = trained
    evaluate = examples_module("finetune_evaluate")
    matrix = evaluate.confusion_matrix(torch.tensor([0, 0, 1, 2]), torch.tensor([0, 1, 1, 0]), 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]  # rows: true class; columns: predicted
    assert evaluate.split_scores(matrix, ["a", "b", "c"])["per_class_accuracy"] == {"a": 0.5, "b": 1.0, "c": 0.0}
    val = summary["val"]
    assert sum(map(sum, val["confusion_matrix"])) == val["images"] == 9
    labels = [label for _, label in examples_module("finetune_data").check_data(root).splits["val"]]
    for index, name in enumerate(summary["classes"]):  # per class, from the predictions themselves
        mine = [p == index for p, y in zip(summary["best_val_predictions"], labels) if y == index]
        assert val["per_class_accuracy"][name] == pytest.approx(sum(mine) / len(mine))
    assert val["accuracy"] == pytest.approx(summary["best_val_acc"])
    for split in ("val", "test"):
        with Image.open(out / f"confusion_{split}.png") as picture:
            assert picture.format == "PNG" and picture.width > 200
    assert f"confusion matrices: {out / 'summary.json'}; {out / 'confusion_val.png'}" in stdout
    table = stdout.split("(chosen on val/)")[1]
    for name in summary["classes"]:
        correct = val["confusion_matrix"][summary["classes"].index(name)][summary["classes"].index(name)]
        assert f"{val['per_class_accuracy'][name]:.1%} ({correct} of 3)" in table


def test_test_folder_is_scored_for_the_epoch_chosen_on_val(
    finetune: ModuleType, trained: tuple, tmp_path: Path
) -> None:
    root, out, summary, stdout = trained
    assert summary["test"]["images"] == 6 == sum(map(sum, summary["test"]["confusion_matrix"]))
    assert f"test/ (held out), 6 images, epoch {summary['best_epoch']}: accuracy" in stdout
    assert "optimistic" not in stdout and summary["held_out"] == "test/ scored once, for the epoch chosen on val/"
    no_test = write_colours(tmp_path / "images", {"train": [2, 2, 2], "val": [1, 1, 1]})
    with quietly_on_one_thread() as stdout:
        finetune.main(["--data", str(no_test), "--epochs", "1", "--out", str(tmp_path / "out"), *TINY])
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["test"] is None and "optimistic, because the epoch was chosen on val/" in summary["held_out"]
    assert "no test/ folder: the val accuracy is optimistic" in stdout.getvalue()


def test_resumed_run_ends_with_bit_identical_weights(
    finetune: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_colours(tmp_path / "images", {"train": [4, 4, 4], "val": [1, 1, 1]})
    options = ["--data", str(root), "--epochs", "3", "--strategy", "gradual", *TINY, "--balance", "sampler"]
    options += ["--model", "mobilenet_v3_small"]  # its dropout draws from the random number generator
    with quietly_on_one_thread():
        finetune.main([*options, "--out", str(tmp_path / "whole")])
    real_epoch, calls = finetune.train_epoch, []

    def interrupted_in_epoch_3(*args: object) -> float:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_epoch(*args)

    monkeypatch.setattr(finetune, "train_epoch", interrupted_in_epoch_3)
    with quietly_on_one_thread(), pytest.raises(KeyboardInterrupt):
        finetune.main([*options, "--out", str(tmp_path / "split")])
    assert torch.load(tmp_path / "split" / "last.pt", weights_only=True)["epoch"] == 2
    monkeypatch.setattr(finetune, "train_epoch", real_epoch)
    with quietly_on_one_thread():
        finetune.main([*options, "--out", str(tmp_path / "split"), "--resume"])
    whole, split = (torch.load(tmp_path / run / "last.pt", weights_only=True) for run in ("whole", "split"))
    assert whole["trained_blocks"] == split["trained_blocks"] == ["features.11", "features.12", "head"]
    assert whole["model"].keys() == split["model"].keys()
    assert all(torch.equal(whole["model"][key], split["model"][key]) for key in whole["model"])
    untrained = finetune.build_model("mobilenet_v3_small", examples_module("finetune_model").Weights("none"), 3, 0)
    assert not torch.equal(whole["model"]["features.11.block.0.0.weight"], untrained.features[11].block[0][0].weight)
    summaries = [json.loads((tmp_path / run / "summary.json").read_text()) for run in ("whole", "split")]
    assert [e["train_loss"] for e in summaries[0]["epochs"]] == [e["train_loss"] for e in summaries[1]["epochs"]]
    assert "--resume" in error_of(finetune, *options, "--out", str(tmp_path / "split"), "--resume", "--lr", "0.5")
    assert "already has 3 epochs" in error_of(finetune, *options, "--out", str(tmp_path / "split"), "--resume")
    assert "does not exist" in error_of(finetune, *options, "--out", str(tmp_path / "new"), "--resume")


def test_mixed_precision_and_loader_options(finetune: ModuleType, tmp_path: Path) -> None:
    model = examples_module("finetune_model")
    cpu = torch.device("cpu")
    assert [model.amp_dtype(cpu, wanted) for wanted in (None, True, False)] == [None, "bfloat16", None]
    root = write_colours(tmp_path / "images", {"train": [2, 2, 2], "val": [1, 1, 1]})
    with quietly_on_one_thread():
        finetune.main(["--data", str(root), "--epochs", "1", "--out", str(tmp_path / "out"), *TINY, "--amp"])
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["amp"] == "bfloat16"
    args = finetune.parse_args(["--data", str(root), "--workers", "1", *TINY[:2]])
    data = examples_module("finetune_data")
    plain = data.Preprocessing(16, 16, (0.5,) * 3, (0.5,) * 3)
    train, evaluate = finetune.make_loaders(args, data.check_data(root), plain, 0, 1, cpu)
    assert train.persistent_workers and not train.pin_memory and evaluate["val"].persistent_workers
    assert not hasattr(finetune, "train_mode") and not hasattr(finetune, "predict")  # old names are gone
