"""The model of examples/finetune.py: starting weights, the torchvision model and its blocks, freezing, checkpoints."""

from __future__ import annotations

import hashlib
import pickle
import urllib.error
from dataclasses import dataclass
from pathlib import Path

import torch
from finetune_data import Preprocessing
from finetune_errors import UsageError
from torch import nn
from torchvision import models

MODELS = ("resnet18", "mobilenet_v3_small", "efficientnet_b0")
BACKBONE_LR_FACTOR = 0.1  # unfrozen backbone blocks learn 10x slower than the new head
Blocks = dict[str, list[str]]  # block name -> names of its modules, input to output; the last block is "head"
CHECKPOINT_KEYS = ("model", "weights", "seed", "classes", "trained_blocks", "state_dict")


# ---- starting weights ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Weights:
    """Where the backbone's starting weights come from, named the way a checkpoint records it."""

    id: str  # "none", torchvision's full name ("ResNet18_Weights.IMAGENET1K_V1") or "sha256:<hex>" of a file
    file: Path | None = None  # the weights file, for a sha256 id

    @property
    def torchvision(self) -> models.WeightsEnum | None:
        return None if self.id == "none" or self.file else models.get_weight(self.id)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_weights(model_name: str, text: str) -> Weights:
    """--weights resolved: none; DEFAULT or a torchvision name to its full name; a file to its SHA-256."""
    if text == "none":
        return Weights("none")
    if Path(text).is_file():
        return Weights(f"sha256:{sha256_of(Path(text))}", Path(text).resolve())
    family = models.get_model_weights(model_name)
    try:
        chosen = models.get_weight(text) if "." in text else family[text]
    except (KeyError, ValueError):
        chosen = None
    if not isinstance(chosen, family):
        names = ", ".join(family.__members__)
        raise UsageError(f"--weights {text}: expected none, a {model_name} weights name ({names}) or a weights file")
    return Weights(f"{family.__name__}.{chosen.name}")  # DEFAULT is an alias: .name is the weights it stands for


def load_state(model_name: str, weights: Weights) -> dict[str, torch.Tensor]:
    """The weights file's state dict, or torchvision's, downloaded once into torch's cache."""
    if weights.file:
        try:
            return torch.load(weights.file, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, EOFError, RuntimeError) as error:
            raise UsageError(f"--weights {weights.file}: not a PyTorch weights file ({type(error).__name__})") from None
    url = weights.torchvision.url
    cached = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[1]
    if not cached.exists():
        print(f"downloading {url} to {cached.parent} (once)")
        cached.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(url, str(cached), progress=False)
        except (urllib.error.URLError, OSError) as error:
            reason = " ".join(str(getattr(error, "reason", error)).split())
            where = f"could not download the {model_name} ImageNet weights ({reason}) and {cached.parent} has no copy"
            hint = f"use --weights none, or fetch {url} elsewhere and pass --weights /path/to/{cached.name}"
            raise UsageError(f"{where}: {hint}") from None
    return torch.load(cached, map_location="cpu", weights_only=True)


def pretrained_preprocessing(model_name: str, weights: Weights) -> Preprocessing:
    """Resize, crop and ImageNet's mean and std, as the pretrained weights were trained with.

    A weights file is taken for the model's ImageNet weights (torchvision's DEFAULT numbers).
    """
    chosen = weights.torchvision or models.get_model_weights(model_name).DEFAULT
    numbers = chosen.transforms()  # torchvision's ImageClassification: numbers only, no download
    mean, std = tuple(numbers.mean), tuple(numbers.std)
    return Preprocessing(numbers.resize_size[0], numbers.crop_size[0], mean, std, numbers.interpolation.value)


# ---- the model and its blocks ---------------------------------------------------------------------------
def build_model(name: str, weights: Weights, num_classes: int, seed: int) -> nn.Module:
    """The torchvision model with a new head; the same arguments always give the same numbers."""
    torch.manual_seed(seed)
    model = models.get_model(name, weights=None)
    if weights.id != "none":
        try:
            model.load_state_dict(load_state(name, weights))
        except RuntimeError as error:  # a state dict, but of another model
            first_words = " ".join(str(error).split())[:160]
            raise UsageError(
                f"--weights {weights.file or weights.id} is not a {name} state dict: {first_words}"
            ) from None
    if isinstance(model, models.ResNet):
        model.fc = nn.Linear(model.fc.in_features, num_classes)
    else:
        model.classifier[-1] = nn.Linear(model.classifier[-1].in_features, num_classes)
    return model


def blocks_of(model: nn.Module) -> Blocks:
    """The blocks that freeze together, input to output; a ResNet's stem (conv1 + bn1) is one block."""
    if isinstance(model, models.ResNet):
        return {"stem": ["conv1", "bn1"], **{f"layer{i}": [f"layer{i}"] for i in range(1, 5)}, "head": ["fc"]}
    return {**{f"features.{i}": [f"features.{i}"] for i in range(len(model.features))}, "head": ["classifier"]}


def parse_strategy(strategy: str, backbone: list[str]) -> int:
    """How many backbone blocks train from the start: frozen and gradual 0, partial:N N, full all."""
    if strategy in ("frozen", "gradual", "full"):
        return len(backbone) if strategy == "full" else 0
    if not strategy.startswith("partial:"):
        raise UsageError(f"unknown --strategy {strategy!r}: use frozen, partial:N, full or gradual")
    n = strategy.removeprefix("partial:")
    if not (n.isdigit() and 1 <= int(n) <= len(backbone)):
        raise UsageError(
            f"--strategy {strategy}: N must be 1 to {len(backbone)}, the backbone blocks ({', '.join(backbone)})"
        )
    return int(n)


def set_trainable(model: nn.Module, blocks: Blocks, trained: list[str]) -> None:
    for name, modules in blocks.items():
        for module in modules:
            model.get_submodule(module).requires_grad_(name in trained)


def set_train_modes(model: nn.Module, blocks: Blocks, trained: list[str]) -> None:
    """model.train(), then every frozen block back to eval, so its BatchNorm statistics stay as loaded."""
    model.train()
    for name, modules in blocks.items():
        if name not in trained:
            for module in modules:
                model.get_submodule(module).eval()


def param_group(model: nn.Module, blocks: Blocks, name: str, lr: float) -> dict:
    params = [p for module in blocks[name] for p in model.get_submodule(module).parameters()]
    return {"params": params, "lr": lr if name == "head" else lr * BACKBONE_LR_FACTOR, "block": name}


def amp_dtype(device: torch.device, wanted: bool | None) -> str | None:
    """Mixed precision: on CUDA bf16 (fp16 where bf16 is missing) unless --no-amp; on the CPU bf16 with --amp."""
    if wanted is False:
        return None
    if device.type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "bfloat16" if wanted else None


def autocast(device: torch.device, amp: str | None) -> torch.autocast:
    return torch.autocast(device.type, dtype=getattr(torch, amp) if amp else None, enabled=amp is not None)


# ---- checkpoints ----------------------------------------------------------------------------------------
def trained_state(model: nn.Module, blocks: Blocks, trained: list[str]) -> dict[str, torch.Tensor]:
    """Parameters AND buffers (BatchNorm statistics) of the trained blocks; frozen ones come from --weights."""
    keep = tuple(module + "." for name in trained for module in blocks[name])
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items() if k.startswith(keep)}


def checkpoint_weights(checkpoint: dict, weights_file: Path | None = None) -> Weights:
    """The starting weights a checkpoint names; a file (sha256 id) is looked for where it was, or ``weights_file``."""
    if not checkpoint["weights"].startswith("sha256:"):
        return Weights(checkpoint["weights"])
    file = weights_file or Path(checkpoint.get("weights_file") or "")
    if not file.is_file():
        raise UsageError(
            f"the checkpoint's frozen blocks come from a weights file ({checkpoint['weights'][:19]}...) "
            f"not found at {file}; pass it with --weights-file FILE"
        )
    if f"sha256:{sha256_of(file)}" != checkpoint["weights"]:
        raise UsageError(f"{file} is not the weights file the checkpoint was trained from (its SHA-256 differs)")
    return Weights(checkpoint["weights"], file)


def load_checkpoint(path: Path, weights_file: Path | None = None) -> tuple[nn.Module, dict]:
    """A fresh model with a checkpoint's trained blocks loaded; a missing or unknown key is an error."""
    if not path.is_file():
        raise UsageError(f"--checkpoint {path}: no such file (training writes OUT/best.pt)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, EOFError, RuntimeError) as error:
        raise UsageError(f"--checkpoint {path}: not a PyTorch checkpoint ({type(error).__name__})") from None
    missing = [key for key in CHECKPOINT_KEYS if key not in checkpoint]
    if missing:
        raise UsageError(f"--checkpoint {path}: not a finetune.py checkpoint (no {', '.join(missing)}); train again")
    weights = checkpoint_weights(checkpoint, weights_file)
    model = build_model(checkpoint["model"], weights, len(checkpoint["classes"]), checkpoint["seed"])
    result = model.load_state_dict(checkpoint["state_dict"], strict=False)  # frozen blocks are not in the file
    trained = trained_state(model, blocks_of(model), checkpoint["trained_blocks"])
    wrong = result.unexpected_keys + [k for k in result.missing_keys if k in trained]
    if wrong:
        raise RuntimeError(f"{path} does not fit {checkpoint['model']}: missing or unknown keys {wrong[:5]}")
    return model.eval(), checkpoint
