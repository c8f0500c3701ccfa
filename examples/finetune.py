"""Fine-tune a torchvision model on your own images, freezing what you choose: the course in one script.

Your images, one folder per class, split into train/ and val/ (any file names):

    DIR/train/cat/001.jpg  DIR/train/dog/002.jpg  ...  DIR/val/cat/101.jpg  DIR/val/dog/102.jpg

    python examples/finetune.py --data DIR --weights none --strategy frozen       # offline, random backbone
    python examples/finetune.py --data DIR --weights DEFAULT --strategy partial:1  # ImageNet weights
    torchrun --standalone --nproc-per-node=2 examples/finetune.py --data DIR ...   # DDP: one process per GPU

Strategies (the new head always trains; backbone blocks unfreeze from the top and learn at lr x 0.1):
frozen = the head only; partial:N = also the last N backbone blocks; full = everything;
gradual = the head only in epoch 1, then one more block every epoch.
Writes OUT/best.pt (parameters and buffers of the blocks trained at the best epoch on val/) and
OUT/summary.json. Needs only torch, torchvision and tqdm.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import time
import urllib.error
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler
from torchvision import datasets, models, transforms
from torchvision.datasets.folder import IMG_EXTENSIONS
from tqdm import tqdm

MODELS = ("resnet18", "mobilenet_v3_small", "efficientnet_b0")
BACKBONE_LR_FACTOR = 0.1  # unfrozen backbone blocks learn 10x slower than the new head
SEED = 0  # fixes the random initialisation, so a --weights none checkpoint reloads exactly
Blocks = dict[str, list[str]]  # block name -> names of its modules, input to output; the last block is "head"


class UsageError(Exception):
    """Bad input: main() prints it as one line and exits with status 1."""


# ---- data ------------------------------------------------------------------------------------------
def class_folders(folder: Path) -> list[str]:
    """Sub-folder names, sorted; hidden ones (.ipynb_checkpoints) are not classes."""
    return sorted(entry.name for entry in os.scandir(folder) if entry.is_dir() and not entry.name.startswith("."))


class ImageFolder(datasets.ImageFolder):
    def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
        classes = class_folders(Path(directory))
        return classes, {name: index for index, name in enumerate(classes)}


def check_data(root: Path) -> list[str]:
    """The class names, after checking that train/ and val/ hold the same classes, none of them empty."""
    if not root.is_dir():
        raise UsageError(f"--data {root}: no such folder")
    classes = {}
    for split in ("train", "val"):
        folder = root / split
        if not folder.is_dir():
            raise UsageError(f"--data {root} has no {split}/ folder; expected DIR/train/<class>/ and DIR/val/<class>/")
        classes[split] = class_folders(folder)
        if not classes[split]:
            raise UsageError(f"{folder} has no class folders; expected {folder}/<class>/<image>")
        for name in classes[split]:
            if not any(f.suffix.lower() in IMG_EXTENSIONS for f in (folder / name).rglob("*") if f.is_file()):
                raise UsageError(f"class folder {folder / name} has no images; add images or remove the folder")
    if classes["train"] != classes["val"]:
        only_train = sorted(set(classes["train"]) - set(classes["val"])) or "none"
        only_val = sorted(set(classes["val"]) - set(classes["train"])) or "none"
        raise UsageError(
            f"train/ and val/ have different classes (only in train: {only_train}; only in val: {only_val})"
        )
    return classes["train"]


def make_transforms(model_name: str, weights: str, image_size: int) -> tuple[transforms.Compose, nn.Module]:
    """(train, val) transforms. Pretrained weights bring their own; augmentation is for train only."""
    if weights == "none":
        mean, std, size = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), image_size
    else:
        val = models.get_model_weights(model_name).DEFAULT.transforms()  # resize, crop, normalise as pretrained
        mean, std, size = val.mean, val.std, val.crop_size[0]
    to_tensor = [transforms.PILToTensor(), transforms.ConvertImageDtype(torch.float), transforms.Normalize(mean, std)]
    if weights == "none":
        val = transforms.Compose([transforms.Resize(size), transforms.CenterCrop(size), *to_tensor])
    augment = [transforms.RandomResizedCrop(size, scale=(0.5, 1.0)), transforms.RandomHorizontalFlip()]
    return transforms.Compose([*augment, *to_tensor]), val  # no flips if mirroring changes the class (digits, text)


def make_loaders(args: argparse.Namespace, distributed: bool, world: int) -> tuple[DataLoader, DataLoader]:
    train_tf, val_tf = make_transforms(args.model, args.weights, args.image_size)
    train_set, val_set = ImageFolder(args.data / "train", train_tf), ImageFolder(args.data / "val", val_tf)
    sampler = DistributedSampler(train_set, seed=SEED) if distributed else None  # each process its own share
    drop_last = len(train_set) // world > args.batch_size  # a last batch of 1 image would break BatchNorm
    loader = dict(batch_size=args.batch_size, num_workers=args.workers)
    train = DataLoader(train_set, sampler=sampler, shuffle=sampler is None, drop_last=drop_last, **loader)
    return train, DataLoader(val_set, **loader)


# ---- model -----------------------------------------------------------------------------------------
def load_weights(name: str, weights: str) -> dict[str, torch.Tensor]:
    """ImageNet weights: downloaded once into torch's cache (DEFAULT), or read from a local file."""
    if weights != "DEFAULT":
        if not Path(weights).is_file():
            raise UsageError(f"--weights {weights}: expected DEFAULT, none, or an existing weights file (.pth)")
        try:
            return torch.load(weights, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, EOFError, RuntimeError) as error:
            raise UsageError(f"--weights {weights}: not a PyTorch weights file ({type(error).__name__})") from None
    url = models.get_model_weights(name).DEFAULT.url
    cached = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[1]
    if not cached.exists():
        print(f"downloading {url} to {cached.parent} (once)")
        cached.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(url, str(cached), progress=False)
        except (urllib.error.URLError, OSError) as error:
            reason = " ".join(str(getattr(error, "reason", error)).split())
            where = f"could not download the {name} ImageNet weights ({reason}) and {cached.parent} has no copy"
            hint = f"use --weights none, or fetch {url} elsewhere and pass --weights /path/to/{cached.name}"
            raise UsageError(f"{where}: {hint}") from None
    return torch.load(cached, map_location="cpu", weights_only=True)


def build_model(name: str, weights: str, num_classes: int) -> nn.Module:
    """The torchvision model with a new head; the same arguments always give the same numbers."""
    torch.manual_seed(SEED)
    model = models.get_model(name, weights=None)
    if weights != "none":
        try:
            model.load_state_dict(load_weights(name, weights))
        except RuntimeError as error:  # a state dict, but of another model
            first_words = " ".join(str(error).split())[:160]
            raise UsageError(f"--weights {weights} is not a {name} state dict: {first_words}") from None
    if isinstance(model, models.ResNet):
        model.fc = nn.Linear(model.fc.in_features, num_classes)
    else:
        model.classifier[-1] = nn.Linear(model.classifier[-1].in_features, num_classes)
    return model


def blocks_of(model: nn.Module) -> Blocks:
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


def train_mode(model: nn.Module, blocks: Blocks, trained: list[str]) -> None:
    """model.train(), then every frozen block back to eval, so its BatchNorm statistics stay as loaded."""
    model.train()
    for name, modules in blocks.items():
        if name not in trained:
            for module in modules:
                model.get_submodule(module).eval()


def param_group(model: nn.Module, blocks: Blocks, name: str, lr: float) -> dict:
    params = [p for module in blocks[name] for p in model.get_submodule(module).parameters()]
    return {"params": params, "lr": lr if name == "head" else lr * BACKBONE_LR_FACTOR, "block": name}


def trained_state(model: nn.Module, blocks: Blocks, trained: list[str]) -> dict[str, torch.Tensor]:
    """Parameters AND buffers (BatchNorm statistics) of the trained blocks; frozen ones come from --weights."""
    keep = tuple(module + "." for name in trained for module in blocks[name])
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items() if k.startswith(keep)}


def load_checkpoint(path: Path) -> tuple[nn.Module, dict]:
    """A fresh model with a checkpoint's trained blocks loaded; a missing or unknown key is an error."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    model = build_model(checkpoint["model"], checkpoint["weights"], len(checkpoint["classes"]))
    result = model.load_state_dict(checkpoint["state_dict"], strict=False)  # frozen blocks are not in the file
    trained = trained_state(model, blocks_of(model), checkpoint["trained_blocks"])
    wrong = result.unexpected_keys + [k for k in result.missing_keys if k in trained]
    if wrong:
        raise RuntimeError(f"{path} does not fit {checkpoint['model']}: missing or unknown keys {wrong[:5]}")
    return model.eval(), checkpoint


@torch.no_grad()
def predict(model: nn.Module, loader: DataLoader) -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted class, true class) for every image of ``loader``."""
    device = next(model.parameters()).device
    model.eval()
    pairs = [(model(x.to(device)).argmax(1).cpu(), y) for x, y in loader]
    return torch.cat([p for p, _ in pairs]), torch.cat([y for _, y in pairs])


# ---- training --------------------------------------------------------------------------------------
def setup_distributed() -> tuple[bool, int, int, torch.device]:
    """(distributed?, rank, world size, device): DDP when started by torchrun, one process otherwise."""
    distributed = "RANK" in os.environ
    if distributed:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    device = torch.device(f"cuda:{os.environ.get('LOCAL_RANK', 0)}" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return distributed, dist.get_rank() if distributed else 0, dist.get_world_size() if distributed else 1, device


def replica_difference(model: nn.Module) -> float:
    """Largest |w(process 0) - w(other process)| over all parameters: 0.0 means identical replicas."""
    gathered: list = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, [p.detach().cpu() for p in model.parameters()])
    return max(float((a - b).abs().max()) for other in gathered[1:] for a, b in zip(gathered[0], other))


def train_epoch(net: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer, bar: str | None) -> float:
    """One pass over the training images (with a progress bar unless ``bar`` is None); returns the mean loss."""
    device, losses = next(net.parameters()).device, []
    for x, y in tqdm(loader, desc=bar, disable=bar is None, leave=False):
        optimizer.zero_grad()
        loss = F.cross_entropy(net(x.to(device)), y.to(device))
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)


def run(args: argparse.Namespace) -> dict:
    if args.model not in MODELS:
        raise UsageError(f"unknown --model {args.model!r}: choose {', '.join(MODELS)}")
    if min(args.epochs, args.batch_size, args.image_size) < 1 or args.lr <= 0 or args.workers < 0:
        raise UsageError("--epochs, --batch-size, --image-size must be at least 1, --lr above 0, --workers 0 or more")
    classes = check_data(args.data)
    distributed, rank, world, device = setup_distributed()
    model = build_model(args.model, args.weights, len(classes)).to(device)
    blocks = blocks_of(model)
    backbone = list(blocks)[:-1]
    trained = backbone[len(backbone) - parse_strategy(args.strategy, backbone) :] + ["head"]
    set_trainable(model, blocks, trained)  # 1. freeze first ...
    net = DDP(model) if distributed else model  # 2. ... then wrap: DDP syncs what requires grad *now*
    optimizer = torch.optim.AdamW([param_group(model, blocks, name, args.lr) for name in trained])  # 3. trainable
    train_loader, val_loader = make_loaders(args, distributed, world)
    meta = dict(model=args.model, weights=args.weights, classes=classes)  # what a checkpoint needs to be reloaded
    total = sum(p.numel() for p in model.parameters())
    summary = dict(**meta, strategy=args.strategy, world_size=world, total_params=total, epochs=[], best_val_acc=-1)
    if rank == 0:
        args.out.mkdir(parents=True, exist_ok=True)
        predicted, labels = predict(model, val_loader)
        summary["val_acc_before"] = (predicted == labels).float().mean().item()
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        if args.strategy == "gradual" and epoch > 1 and len(trained) <= len(backbone):
            trained.insert(0, backbone[len(backbone) - len(trained)])  # the next block from the top
            set_trainable(model, blocks, trained)
            optimizer.add_param_group(param_group(model, blocks, trained[0], args.lr))
            if distributed:  # the old wrapper would never sync the new block: wrap again
                del net
                net = DDP(model)
        train_mode(model, blocks, trained)
        if distributed:
            train_loader.sampler.set_epoch(epoch)
        loss = train_epoch(net, train_loader, optimizer, f"epoch {epoch}/{args.epochs}" if rank == 0 else None)
        if rank != 0:
            continue  # only process 0 evaluates and writes
        predicted, labels = predict(model, val_loader)
        accuracy = (predicted == labels).float().mean().item()
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        seconds = time.perf_counter() - start
        summary["epochs"].append(dict(epoch=epoch, trained_blocks=list(trained), trainable_params=trainable))
        summary["epochs"][-1].update(train_loss=loss, val_acc=accuracy, seconds=seconds)
        if accuracy > summary["best_val_acc"]:  # best on val/ so far: keep the trained blocks, nothing else
            summary.update(best_val_acc=accuracy, best_epoch=epoch, best_val_predictions=predicted.tolist())
            checkpoint = dict(**meta, epoch=epoch, trained_blocks=list(trained))
            torch.save({**checkpoint, "state_dict": trained_state(model, blocks, trained)}, args.out / "best.pt")
        blocks_text = f"trainable {trainable / total:.2%} ({', '.join(trained)})"
        tqdm.write(f"epoch {epoch}: train loss {loss:.3f}, val accuracy {accuracy:.1%}, {blocks_text}")
    if distributed:
        summary["replicas_max_abs_diff"] = replica_difference(model)
        dist.destroy_process_group()
    if rank == 0:
        report(summary, args, device, val_loader)
    return summary


def report(summary: dict, args: argparse.Namespace, device: torch.device, val_loader: DataLoader) -> None:
    """The reload check, OUT/summary.json and the final summary lines."""
    fresh, _ = load_checkpoint(args.out / "best.pt")  # a new model + best.pt must predict as the best epoch did
    reloaded = predict(fresh.to(device), val_loader)[0].tolist()
    summary["reload_identical"] = reloaded == summary["best_val_predictions"]
    summary["seconds_per_epoch"] = sum(e["seconds"] for e in summary["epochs"]) / len(summary["epochs"])
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    s, trainable, total = summary, summary["epochs"][-1]["trainable_params"], summary["total_params"]
    run_name, per_epoch = f"{args.model} ({args.weights} weights), {args.strategy}", f"{s['seconds_per_epoch']:.1f} s"
    share = f"trainable {trainable:,} of {total:,} parameters ({trainable / total:.2%})"
    accuracy = f"val accuracy {s['val_acc_before']:.1%} before training, best {s['best_val_acc']:.1%}"
    print(f"{run_name}: {share}; {accuracy} (epoch {s['best_epoch']}); {per_epoch} per epoch")
    if s["world_size"] > 1:
        print(f"{s['world_size']} processes (DDP); replicas identical at the end: {s['replicas_max_abs_diff'] == 0.0}")
    check = "reload check (fresh model + checkpoint, same predictions)"
    print(f"saved {args.out / 'best.pt'}; {check}: {s['reload_identical']}")
    if not s["reload_identical"]:
        raise SystemExit("error: the reloaded checkpoint predicts differently from the trained model")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    first_line, _, rest = __doc__.partition("\n\n")
    layout = argparse.RawDescriptionHelpFormatter  # keeps the examples' line breaks
    parser = argparse.ArgumentParser(description=first_line, epilog=rest, formatter_class=layout)
    arg = parser.add_argument
    arg("--data", type=Path, required=True, metavar="DIR", help="folder with train/<class>/ and val/<class>/")
    arg("--model", default="resnet18", metavar="NAME", help=f"{', '.join(MODELS)} (default resnet18)")
    arg("--weights", default="DEFAULT", metavar="W", help="DEFAULT (ImageNet, the default), none, or a .pth file")
    arg("--strategy", default="frozen", metavar="S", help="frozen, partial:N, full or gradual (default frozen)")
    arg("--epochs", type=int, default=5, metavar="N", help="(default 5)")
    arg("--lr", type=float, default=1e-3, help="the head's learning rate; backbone blocks x 0.1 (default 1e-3)")
    arg("--batch-size", type=int, default=32, metavar="N", help="(default 32)")
    arg("--out", type=Path, default=Path("finetune_out"), metavar="DIR", help="(default finetune_out)")
    arg("--image-size", type=int, default=224, metavar="PX", help="input size with --weights none (default 224)")
    arg("--workers", type=int, default=2, metavar="N", help="DataLoader worker processes (default 2)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    try:
        run(parse_args(argv))
    except UsageError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
