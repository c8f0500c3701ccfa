"""examples/finetune.py on a tiny ImageFolder of shipped digits: training, checkpoint, DDP, clear errors."""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from PIL import Image

from course_utils.data import load_digits

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPT = EXAMPLES / "finetune.py"
CLASSES = [f"digit{d}" for d in range(5)]
OFFLINE = ["--weights", "none", "--workers", "0", "--batch-size", "16", "--lr", "1e-2"]
SMALL = [*OFFLINE, "--image-size", "32"]
TINY = [*OFFLINE, "--image-size", "16"]  # where accuracy does not matter
RESNET_STAGES = ["stem", "layer1", "layer2", "layer3", "layer4"]


def examples_module(name: str) -> ModuleType:
    """A module of examples/: the script imports its sibling modules by name, as when it runs from there."""
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    return importlib.import_module(name)


@pytest.fixture(scope="module")
def finetune() -> ModuleType:
    return examples_module("finetune")


def write_digits(root: Path, train: int = 20, val: int = 10) -> Path:
    """An ImageFolder of RGB PNGs: digits 0-4, ``train`` and ``val`` images per class."""
    x, y = load_digits()
    for digit, name in enumerate(CLASSES):
        index = torch.nonzero(y == digit).flatten()[: train + val].tolist()
        for i, j in enumerate(index):
            folder = root / ("train" if i < train else "val") / name
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray((x[j, 0].numpy() * 255).astype(np.uint8)).convert("RGB").save(folder / f"{j}.png")
    return root


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_digits(tmp_path_factory.mktemp("digits"))


@pytest.fixture(scope="module")
def few_digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 + 2 images per class: one optimizer step per epoch, where only the mechanics are tested."""
    return write_digits(tmp_path_factory.mktemp("few_digits"), train=4, val=2)


def run_script(*args: str, torchrun: bool = False, env: dict | None = None) -> subprocess.CompletedProcess:
    launcher = (
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
        if torchrun
        else [sys.executable]
    )
    return subprocess.run(
        [*launcher, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
    )


@contextlib.contextmanager
def quietly_on_one_thread():
    """Run the script in this process: its output captured, one CPU thread (the machine is shared)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    stdout = io.StringIO()
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(io.StringIO()):
            yield stdout
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def frozen_run(finetune: ModuleType, digits: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    """One single-process run, in this process (the subprocess tests below cover the command line itself)."""
    out = tmp_path_factory.mktemp("frozen")
    with quietly_on_one_thread() as stdout:
        finetune.main(["--data", str(digits), "--strategy", "frozen", "--epochs", "3", "--out", str(out), *SMALL])
    return out, json.loads((out / "summary.json").read_text()), stdout.getvalue()


def test_frozen_run_beats_the_untrained_model(frozen_run: tuple[Path, dict, str]) -> None:
    _, summary, stdout = frozen_run
    assert summary["best_val_acc"] >= summary["val_acc_before"] + 0.10, summary
    assert all(epoch["trained_blocks"] == ["head"] for epoch in summary["epochs"])
    assert summary["epochs"][0]["trainable_params"] == 512 * 5 + 5  # resnet18's new fc only
    assert "trainable 2,565 of 11,179,077 parameters (0.02%)" in stdout
    assert "s per epoch" in stdout and "reload check (fresh model + checkpoint, same predictions): True" in stdout


def test_checkpoint_reloads_with_identical_predictions(
    finetune: ModuleType, frozen_run: tuple[Path, dict, str], digits: Path
) -> None:
    out, summary, _ = frozen_run
    checkpoint = torch.load(out / "best.pt", weights_only=True)
    assert set(checkpoint["state_dict"]) == {"fc.weight", "fc.bias"} and checkpoint["classes"] == CLASSES
    data, model_module = examples_module("finetune_data"), examples_module("finetune_model")
    val_tf = data.Preprocessing.from_dict(checkpoint["preprocessing"]).eval_transform()
    loader = torch.utils.data.DataLoader(data.ImageFiles(data.check_data(digits).splits["val"], val_tf), batch_size=16)
    model, _ = finetune.load_checkpoint(out / "best.pt")
    predicted, labels = finetune.predicted_labels(model, loader)
    assert predicted.tolist() == summary["best_val_predictions"]
    assert (predicted == labels).float().mean().item() == summary["best_val_acc"]
    untrained = finetune.build_model("resnet18", model_module.Weights("none"), 5, seed=0)  # no checkpoint: differs
    assert finetune.predicted_labels(untrained, loader)[0].tolist() != summary["best_val_predictions"]


def test_gradual_visits_every_stage(finetune: ModuleType, few_digits: Path, tmp_path: Path) -> None:
    with quietly_on_one_thread():
        summary = finetune.run(
            finetune.parse_args(
                ["--data", str(few_digits), "--strategy", "gradual", "--epochs", "6", "--out", str(tmp_path), *TINY]
            )
        )
    epochs = summary["epochs"]
    assert [e["trained_blocks"] for e in epochs] == [
        RESNET_STAGES[len(RESNET_STAGES) - k :] + ["head"] for k in range(6)
    ]
    trainable = [e["trainable_params"] for e in epochs]
    assert trainable == sorted(set(trainable)) and trainable[-1] == 11_179_077  # everything
    assert json.loads((tmp_path / "summary.json").read_text())["epochs"] == epochs


@pytest.mark.slow
def test_torchrun_keeps_replicas_identical_through_gradual_unfreezing(few_digits: Path, tmp_path: Path) -> None:
    done = run_script(
        "--data",
        str(few_digits),
        "--strategy",
        "gradual",
        "--epochs",
        "2",
        "--out",
        str(tmp_path),
        *TINY,
        torchrun=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["replicas_max_abs_diff"] == 0.0
    assert [e["trained_blocks"] for e in summary["epochs"]] == [["head"], ["layer4", "head"]]
    assert done.stdout.count("saved ") == 1  # only process 0 writes
    assert "replicas identical at the end: True" in done.stdout


def test_checkpoint_holds_parameters_and_buffers_of_trained_blocks(finetune: ModuleType, tmp_path: Path) -> None:
    model = finetune.build_model("resnet18", examples_module("finetune_model").Weights("none"), 5, seed=0)
    blocks = finetune.blocks_of(model)
    state = finetune.trained_state(model, blocks, ["layer4", "head"])
    assert {
        "layer4.0.bn1.running_mean",
        "layer4.0.bn1.running_var",
        "layer4.0.bn1.num_batches_tracked",
        "layer4.0.conv1.weight",
        "fc.weight",
    } <= set(state)
    assert not any(key.startswith(("layer3.", "conv1.", "bn1.")) for key in state)
    checkpoint = {
        "model": "resnet18",
        "weights": "none",
        "seed": 0,
        "classes": CLASSES,
        "trained_blocks": ["layer4", "head"],
    }
    torch.save({**checkpoint, "state_dict": state}, tmp_path / "good.pt")
    reloaded, _ = finetune.load_checkpoint(tmp_path / "good.pt")
    assert all(torch.equal(reloaded.state_dict()[k], v) for k, v in state.items())
    params_only = {k: v for k, v in state.items() if "running" not in k}  # forgot the BatchNorm statistics
    torch.save({**checkpoint, "state_dict": params_only}, tmp_path / "params_only.pt")
    with pytest.raises(RuntimeError, match="running_mean"):
        finetune.load_checkpoint(tmp_path / "params_only.pt")
    torch.save({**checkpoint, "state_dict": {**state, "layer4.typo": torch.zeros(1)}}, tmp_path / "typo.pt")
    with pytest.raises(RuntimeError, match="layer4.typo"):
        finetune.load_checkpoint(tmp_path / "typo.pt")


def test_frozen_batchnorm_stays_in_eval_and_backbone_learns_slower(finetune: ModuleType) -> None:
    model = finetune.build_model("resnet18", examples_module("finetune_model").Weights("none"), 5, seed=0)
    blocks, trained = finetune.blocks_of(model), ["layer4", "head"]
    finetune.set_trainable(model, blocks, trained)
    before = model.layer3[0].bn1.running_mean.clone()
    finetune.set_train_modes(model, blocks, trained)
    model(torch.rand(4, 3, 32, 32))
    assert not model.layer3[0].bn1.training and model.layer4[0].bn1.training and model.fc.training
    assert torch.equal(model.layer3[0].bn1.running_mean, before)
    assert not any(p.requires_grad for p in model.layer3.parameters())
    groups = {name: finetune.param_group(model, blocks, name, 1e-2) for name in trained}
    assert groups["head"]["lr"] == 1e-2 and groups["layer4"]["lr"] == pytest.approx(1e-3)


def test_default_weights_come_from_the_cache_or_a_local_file(
    finetune: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    weights = torchvision.models.resnet18().state_dict()
    cached = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    cached.parent.mkdir(parents=True)
    torch.save(weights, cached)
    for source in ["DEFAULT", str(cached)]:
        resolved = finetune.resolve_weights("resnet18", source)
        assert torch.equal(finetune.build_model("resnet18", resolved, 5, seed=0).conv1.weight, weights["conv1.weight"])
        preprocessing = finetune.pretrained_preprocessing("resnet18", resolved)  # as the weights were trained
        assert (preprocessing.resize, preprocessing.crop) == (256, 224)
        assert preprocessing.mean == (0.485, 0.456, 0.406) and preprocessing.std == (0.229, 0.224, 0.225)


def error_of(finetune: ModuleType, *argv: str) -> str:
    """The one-line error the script exits with; the test must not leave the default --out in the working folder."""
    default_out = Path("finetune_out")
    existed = default_out.exists()
    with pytest.raises(SystemExit) as exit_info:
        finetune.main(list(argv))
    assert existed or not default_out.exists(), "this call wrote finetune_out/ here: pass --out under tmp_path"
    message = exit_info.value.code
    assert isinstance(message, str) and message.startswith("error: ") and "\n" not in message, message
    return message


def test_bad_data_folders_get_one_clear_line(finetune: ModuleType, tmp_path: Path) -> None:
    def data(name: str) -> Path:
        return write_digits(tmp_path / name, train=2, val=2)

    no_train, no_val, extra, empty = data("no_train"), data("no_val"), data("extra"), data("empty")
    (no_train / "train").rename(no_train / "training")
    (no_val / "val").rename(no_val / "validation")
    (extra / "train" / "digit0").rename(extra / "train" / "cat")
    for image in (empty / "val" / "digit3").iterdir():
        image.unlink()
    (empty / "val" / "digit3" / "notes.txt").write_text("not an image")
    cases = {
        tmp_path / "nowhere": "no such folder",
        no_train: "has no train/ folder",
        no_val: "has no val/ folder",
        extra: "different classes (only in train: ['cat']; only in val: ['digit0'])",
        empty: "class folder " + str(empty / "val" / "digit3") + " has no images",
    }
    for folder, expected in cases.items():
        assert expected in error_of(finetune, "--data", str(folder), "--out", str(tmp_path / "out"), *SMALL)


def test_bad_model_or_strategy_gets_one_clear_line(finetune: ModuleType, digits: Path, tmp_path: Path) -> None:
    base = ["--data", str(digits), "--out", str(tmp_path / "out"), *SMALL]
    assert "unknown --model 'vgg16': choose resnet18, mobilenet_v3_small, efficientnet_b0" in error_of(
        finetune, *base, "--model", "vgg16"
    )
    assert "unknown --strategy 'half'" in error_of(finetune, *base, "--strategy", "half")
    for bad in ["partial:0", "partial:6", "partial:x"]:
        assert "N must be 1 to 5, the backbone blocks (stem, layer1" in error_of(finetune, *base, "--strategy", bad)
    assert "N must be 1 to 13" in error_of(finetune, *base, "--model", "mobilenet_v3_small", "--strategy", "partial:14")
    assert "--epochs" in error_of(finetune, *base, "--epochs", "0")


def test_default_weights_without_network_say_what_to_do(digits: Path, tmp_path: Path) -> None:
    proxy = "http://127.0.0.1:9"  # nothing listens there: the download fails at once, as without a network
    done = run_script(
        "--data",
        str(digits),
        "--weights",
        "DEFAULT",
        "--out",
        str(tmp_path / "out"),
        env={
            "TORCH_HOME": str(tmp_path / "home"),
            "https_proxy": proxy,
            "HTTPS_PROXY": proxy,
            "no_proxy": "",
            "NO_PROXY": "",
        },
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: could not download the resnet18 ImageNet weights")
    assert "use --weights none" in lines[0] and "--weights /path/to/resnet18-f37072fd.pth" in lines[0]
    assert not any((tmp_path / "home").rglob("*.pth"))  # no half-written file left in the cache


def test_help_lists_every_option(finetune: ModuleType, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        finetune.parse_args(["--help"])
    text = capsys.readouterr().out
    for option in [
        "--data",
        "--model",
        "--weights",
        "--strategy",
        "--epochs",
        "--lr",
        "--batch-size",
        "--out",
        "--image-size",
        "--workers",
        "--seed",
        "--balance",
        "--resume",
        "--amp",
        "predict",
        "partial:N",
        "gradual",
        "torchrun",
    ]:
        assert option in text


def test_the_script_and_the_course_share_one_definition_of_a_resnet_block() -> None:
    """The script stands alone (torch, torchvision, tqdm), so it writes its blocks out; they must be the course's."""
    from torchvision.models import resnet18

    from course_utils.layers import blocks

    model = resnet18(weights=None)
    script_blocks = examples_module("finetune_model").blocks_of(model)
    assert list(script_blocks.values()) == list(blocks(model).values())
    assert script_blocks["stem"] == blocks(model)["stem"] == ["conv1", "bn1"]
