"""Fine-tune a torchvision model on your own images, freezing what you choose: the course in one script.

Your images, one folder per class, split into train/ and val/ (and, held out, test/; any file names):

    DIR/train/cat/001.jpg  DIR/train/dog/002.jpg  ...  DIR/val/cat/101.jpg  ...  DIR/test/cat/201.jpg

    python examples/finetune.py --data DIR --weights none --strategy frozen       # offline, random backbone
    python examples/finetune.py --data DIR --weights DEFAULT --strategy partial:1  # ImageNet weights
    torchrun --standalone --nproc-per-node=2 examples/finetune.py --data DIR ...   # DDP: one process per GPU
    python examples/finetune.py --data DIR --out OUT --resume                      # go on after an interruption
    python examples/finetune.py predict --checkpoint OUT/best.pt IMAGE_OR_FOLDER... [--top-k 3] [--csv FILE]

Strategies (the new head always trains; backbone blocks unfreeze from the top and learn at lr x 0.1):
frozen = the head only; partial:N = also the last N backbone blocks; full = everything;
gradual = the head only in epoch 1, then one more block every epoch.
The epoch is chosen on val/; test/, when present, is scored once, for that epoch (a score on val/ is
optimistic: the epoch was picked on it). Normalisation: ImageNet's mean and std with pretrained weights,
the training images' own with --weights none. Unreadable images are skipped with a warning.
Writes OUT/best.pt (the blocks trained at the best epoch, parameters and buffers, and all predict needs),
OUT/last.pt (for --resume), OUT/summary.json (with per-class accuracy and confusion matrices) and
OUT/confusion_val.png (and _test). Needs torch, torchvision and tqdm; matplotlib for the PNGs only.
`finetune.py train ...` is the same as `finetune.py ...`; `finetune.py predict --help` for predictions.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from finetune_data import (
    EpochSampler,
    ImageData,
    ImageFiles,
    Preprocessing,
    channel_stats,
    check_data,
    class_weights,
    imbalance_note,
)
from finetune_errors import UsageError
from finetune_evaluate import confusion_matrix, predicted_labels, save_confusion_png, scores_table, split_scores
from finetune_model import (
    MODELS,
    amp_dtype,
    autocast,
    blocks_of,
    build_model,
    load_checkpoint,
    param_group,
    parse_strategy,
    pretrained_preprocessing,
    resolve_weights,
    set_train_modes,
    set_trainable,
    trained_state,
)
from finetune_predict import parse_predict_args, predict_images
from finetune_resume import load_last, restore_rng, save_last
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader
from tqdm import tqdm

OPTIMISTIC = (
    "no test/ folder: the val accuracy is optimistic, because the epoch was chosen on val/; "
    "keep a test/ folder aside (same classes) for an honest score"
)


# ---- before training --------------------------------------------------------------------------------
def check_options(args: argparse.Namespace) -> None:
    if args.model not in MODELS:
        raise UsageError(f"unknown --model {args.model!r}: choose {', '.join(MODELS)}")
    if min(args.epochs, args.batch_size, args.image_size) < 1 or args.lr <= 0 or min(args.workers, args.seed) < 0:
        raise UsageError(
            "--epochs, --batch-size, --image-size must be at least 1, --lr above 0, --workers and --seed 0 or more"
        )


def check_writable(out: Path) -> None:
    """Create --out and write a file into it now, so a bad folder stops the run before any training."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder; choose a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out):
            pass
    except OSError as error:
        raise UsageError(
            f"--out {out}: cannot write there ({error.strerror or error}); choose another folder"
        ) from None


def setup_distributed() -> tuple[bool, int, int, torch.device]:
    """(distributed?, rank, world size, device): DDP when started by torchrun, one process otherwise."""
    distributed = "RANK" in os.environ
    if distributed:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    device = torch.device(f"cuda:{os.environ.get('LOCAL_RANK', 0)}" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return distributed, dist.get_rank() if distributed else 0, dist.get_world_size() if distributed else 1, device


def make_loaders(
    args: argparse.Namespace, data: ImageData, preprocessing: Preprocessing, rank: int, world: int, device: torch.device
) -> tuple[DataLoader, dict[str, DataLoader]]:
    """The training loader (augmented, this process's share) and one plain loader per evaluated split."""
    train_set = ImageFiles(data.splits["train"], preprocessing.train_transform())
    counts = data.class_counts()
    balanced = torch.tensor([1 / counts[label] for label in train_set.targets]) if args.balance == "sampler" else None
    sampler = EpochSampler(len(train_set), args.seed, rank, world, balanced)
    loading = dict(
        batch_size=args.batch_size,
        num_workers=args.workers,
        pin_memory=device.type == "cuda",
        persistent_workers=args.workers > 0,
    )
    drop_last = len(train_set) // world > args.batch_size  # a last batch of 1 image would break BatchNorm
    train = DataLoader(train_set, sampler=sampler, drop_last=drop_last, **loading)
    evaluate = {
        split: DataLoader(ImageFiles(samples, preprocessing.eval_transform()), **loading)
        for split, samples in data.splits.items()
        if split != "train"
    }
    return train, evaluate


# ---- training --------------------------------------------------------------------------------------
def replica_difference(model: nn.Module) -> float:
    """Largest |w(process 0) - w(other process)| over all parameters: 0.0 means identical replicas."""
    gathered: list = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, [p.detach().cpu() for p in model.parameters()])
    return max(float((a - b).abs().max()) for other in gathered[1:] for a, b in zip(gathered[0], other))


def train_epoch(
    net: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    amp: str | None,
    loss_weights: torch.Tensor | None,
    bar: str | None,
) -> float:
    """One pass over the training images (with a progress bar unless ``bar`` is None); returns the mean loss."""
    device, losses = next(net.parameters()).device, []
    for x, y in tqdm(loader, desc=bar, disable=bar is None, leave=False):
        optimizer.zero_grad()
        with autocast(device, amp):
            loss = F.cross_entropy(net(x.to(device, non_blocking=True)), y.to(device), weight=loss_weights)
        scaler.scale(loss).backward()  # scaling only with float16 (it underflows); otherwise a no-op
        scaler.step(optimizer)
        scaler.update()
        losses.append(loss.item())
    return sum(losses) / len(losses)


def run(args: argparse.Namespace) -> dict:
    check_options(args)
    check_writable(args.out)
    weights = resolve_weights(args.model, args.weights)
    data = check_data(args.data)
    first_process = int(os.environ.get("RANK", "0")) == 0
    for warning in data.warnings if first_process else []:
        print(warning, file=sys.stderr)
    classes, counts = data.classes, data.class_counts()
    distributed, rank, world, device = setup_distributed()
    amp = amp_dtype(device, args.amp)
    if weights.id == "none":  # a random backbone: normalise with the training images' own statistics
        preprocessing = Preprocessing(
            args.image_size, args.image_size, *channel_stats(data.splits["train"], args.image_size, args.workers)
        )
    else:  # pretrained: the statistics the weights were trained with (ImageNet's)
        preprocessing = pretrained_preprocessing(args.model, weights)
    model = build_model(args.model, weights, len(classes), args.seed)
    blocks = blocks_of(model)
    backbone = list(blocks)[:-1]
    trained = backbone[len(backbone) - parse_strategy(args.strategy, backbone) :] + ["head"]
    settings = dict(
        model=args.model,
        weights=weights.id,
        strategy=args.strategy,
        lr=args.lr,
        batch_size=args.batch_size,
        image_size=args.image_size,
        seed=args.seed,
        balance=args.balance,
        amp=amp,
        classes=classes,
        train_images=len(data.splits["train"]),
        world_size=world,
    )
    resumed = load_last(args.out / "last.pt", settings) if args.resume else None
    if resumed:
        if resumed["epoch"] >= args.epochs:
            raise UsageError(f"--resume: {args.out / 'last.pt'} already has {resumed['epoch']} epochs; ask for more")
        model.load_state_dict(resumed["model"])
        trained = resumed["trained_blocks"]
    model.to(device)
    set_trainable(model, blocks, trained)  # 1. freeze first ...
    net = DDP(model) if distributed else model  # 2. ... then wrap: DDP syncs what requires grad *now*
    group_blocks = resumed["optimizer_blocks"] if resumed else trained  # in the order they were added
    optimizer = torch.optim.AdamW([param_group(model, blocks, name, args.lr) for name in group_blocks])  # 3.
    scaler = torch.amp.GradScaler(device.type, enabled=amp == "float16")
    train_loader, eval_loaders = make_loaders(args, data, preprocessing, rank, world, device)
    loss_weights = class_weights(counts).to(device) if args.balance == "weights" else None
    meta = dict(  # what a checkpoint needs to be reloaded and to predict
        model=args.model,
        weights=weights.id,
        weights_file=str(weights.file) if weights.file else None,
        seed=args.seed,
        classes=classes,
        preprocessing=preprocessing.as_dict(),
        amp=amp,
        device_type=device.type,
    )
    total = sum(p.numel() for p in model.parameters())
    if resumed:
        optimizer.load_state_dict(resumed["optimizer"])
        scaler.load_state_dict(resumed["scaler"])
        summary, first_epoch = resumed["summary"], resumed["epoch"] + 1
        restore_rng(resumed["rng"])
    else:
        summary = dict(
            **meta,
            strategy=args.strategy,
            balance=args.balance,
            world_size=world,
            total_params=total,
            train_class_counts=dict(zip(classes, counts)),
            imbalance_ratio=max(counts) / min(counts),
            images={split: len(samples) for split, samples in data.splits.items()},
            skipped_images=data.warnings,
            epochs=[],
            best_val_acc=-1,
        )
        first_epoch = 1
    note = imbalance_note(classes, counts, args.balance)
    if rank == 0:
        if note:
            print(note)
        if not resumed:
            predicted, labels = predicted_labels(model, eval_loaders["val"], amp)
            summary["val_acc_before"] = (predicted == labels).float().mean().item()
    for epoch in range(first_epoch, args.epochs + 1):
        start = time.perf_counter()
        if args.strategy == "gradual" and epoch > 1 and len(trained) <= len(backbone):
            trained.insert(0, backbone[len(backbone) - len(trained)])  # the next block from the top
            set_trainable(model, blocks, trained)
            optimizer.add_param_group(param_group(model, blocks, trained[0], args.lr))
            if distributed:  # the old wrapper would never sync the new block: wrap again
                del net
                net = DDP(model)
        set_train_modes(model, blocks, trained)
        train_loader.sampler.set_epoch(epoch)
        bar = f"epoch {epoch}/{args.epochs}" if rank == 0 else None
        loss = train_epoch(net, train_loader, optimizer, scaler, amp, loss_weights, bar)
        if rank != 0:
            continue  # only process 0 evaluates and writes
        predicted, labels = predicted_labels(model, eval_loaders["val"], amp)
        accuracy = (predicted == labels).float().mean().item()
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        seconds = time.perf_counter() - start
        summary["epochs"].append(dict(epoch=epoch, trained_blocks=list(trained), trainable_params=trainable))
        summary["epochs"][-1].update(train_loss=loss, val_acc=accuracy, seconds=seconds)
        if accuracy > summary["best_val_acc"]:  # best on val/ so far: keep the trained blocks, nothing else
            summary.update(best_val_acc=accuracy, best_epoch=epoch, best_val_predictions=predicted.tolist())
            checkpoint = dict(**meta, epoch=epoch, trained_blocks=list(trained))
            torch.save({**checkpoint, "state_dict": trained_state(model, blocks, trained)}, args.out / "best.pt")
        save_last(
            args.out / "last.pt",
            settings=settings,
            epoch=epoch,
            model=model.state_dict(),
            trained_blocks=trained,
            optimizer=optimizer.state_dict(),
            optimizer_blocks=[g["block"] for g in optimizer.param_groups],
            scaler=scaler.state_dict(),
            summary=summary,
        )
        blocks_text = f"trainable {trainable / total:.2%} ({', '.join(trained)})"
        tqdm.write(f"epoch {epoch}: train loss {loss:.3f}, val accuracy {accuracy:.1%}, {blocks_text}")
    if distributed:
        summary["replicas_max_abs_diff"] = replica_difference(model)
        dist.destroy_process_group()
    if rank == 0:
        report(summary, args, device, eval_loaders)
    return summary


# ---- after training --------------------------------------------------------------------------------
def evaluate_best(
    summary: dict, args: argparse.Namespace, device: torch.device, loaders: dict
) -> tuple[dict[str, str], dict[str, Path]]:
    """A fresh model + best.pt on every evaluated split: the reload check, per-class scores and matrices into
    ``summary``; returns the printable tables and the PNGs written, per split."""
    fresh, _ = load_checkpoint(args.out / "best.pt")  # a new model + best.pt must predict as the best epoch did
    fresh.to(device)
    classes, tables, pictures = summary["classes"], {}, {}
    for split, loader in loaders.items():
        predicted, labels = predicted_labels(fresh, loader, summary["amp"])
        if split == "val":
            summary["reload_identical"] = predicted.tolist() == summary["best_val_predictions"]
        matrix = confusion_matrix(labels, predicted, len(classes))
        summary[split] = split_scores(matrix, classes)
        title = f"{split}/: accuracy {summary[split]['accuracy']:.1%} (epoch {summary['best_epoch']}, chosen on val/)"
        if save_confusion_png(matrix, classes, title, args.out / f"confusion_{split}.png"):
            pictures[split] = args.out / f"confusion_{split}.png"
        tables[split] = scores_table(matrix, classes)
    summary.setdefault("test", None)
    summary["held_out"] = "test/ scored once, for the epoch chosen on val/" if summary["test"] else OPTIMISTIC
    return tables, pictures


def report(summary: dict, args: argparse.Namespace, device: torch.device, loaders: dict) -> None:
    """The reload check, the held-out score, OUT/summary.json, the confusion PNGs and the final lines."""
    tables, pictures = evaluate_best(summary, args, device, loaders)
    summary["seconds_per_epoch"] = sum(e["seconds"] for e in summary["epochs"]) / len(summary["epochs"])
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    s, trainable, total = summary, summary["epochs"][-1]["trainable_params"], summary["total_params"]
    run_name, per_epoch = f"{args.model} ({s['weights']} weights), {args.strategy}", f"{s['seconds_per_epoch']:.1f} s"
    share = f"trainable {trainable:,} of {total:,} parameters ({trainable / total:.2%})"
    accuracy = f"val accuracy {s['val_acc_before']:.1%} before training, best {s['best_val_acc']:.1%}"
    print(f"{run_name}: {share}; {accuracy} (epoch {s['best_epoch']}); {per_epoch} per epoch")
    if s["world_size"] > 1:
        print(f"{s['world_size']} processes (DDP); replicas identical at the end: {s['replicas_max_abs_diff'] == 0.0}")
    check = "reload check (fresh model + checkpoint, same predictions)"
    print(f"saved {args.out / 'best.pt'}; {check}: {s['reload_identical']}")
    epoch, val, test = s["best_epoch"], s["val"], s["test"]
    print(f"val/, {val['images']} images, epoch {epoch} (chosen on val/): accuracy {val['accuracy']:.1%}")
    print(tables["val"])
    if test:
        print(f"test/ (held out), {test['images']} images, epoch {epoch}: accuracy {test['accuracy']:.1%}")
        print(tables["test"])
    else:
        print(OPTIMISTIC)
    where = ", ".join(map(str, pictures.values())) if pictures else "no PNG (matplotlib is not installed)"
    print(f"confusion matrices: {args.out / 'summary.json'}; {where}")
    if not s["reload_identical"]:
        raise SystemExit("error: the reloaded checkpoint predicts differently from the trained model")


# ---- command line ----------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The training options (``finetune.py [train] ...``)."""
    first_line, _, rest = __doc__.partition("\n\n")
    layout = argparse.RawDescriptionHelpFormatter  # keeps the examples' line breaks
    parser = argparse.ArgumentParser(prog="finetune.py", description=first_line, epilog=rest, formatter_class=layout)
    arg = parser.add_argument
    arg("--data", type=Path, required=True, metavar="DIR", help="folder with train/<class>/, val/<class>/ [, test/]")
    arg("--model", default="resnet18", metavar="NAME", help=f"{', '.join(MODELS)} (default resnet18)")
    arg("--weights", default="DEFAULT", metavar="W", help="DEFAULT (ImageNet, the default), none, a name, a .pth file")
    arg("--strategy", default="frozen", metavar="S", help="frozen, partial:N, full or gradual (default frozen)")
    arg("--epochs", type=int, default=5, metavar="N", help="(default 5)")
    arg("--lr", type=float, default=1e-3, help="the head's learning rate; backbone blocks x 0.1 (default 1e-3)")
    arg("--batch-size", type=int, default=32, metavar="N", help="(default 32)")
    arg("--out", type=Path, default=Path("finetune_out"), metavar="DIR", help="(default finetune_out)")
    arg("--image-size", type=int, default=224, metavar="PX", help="input size with --weights none (default 224)")
    arg("--workers", type=int, default=2, metavar="N", help="DataLoader worker processes (default 2)")
    arg("--seed", type=int, default=0, metavar="N", help="the new head, a random backbone, shuffling (default 0)")
    arg(
        "--balance",
        choices=("none", "sampler", "weights"),
        default="none",
        help="for imbalanced classes: a class-balanced sampler, or loss weights 1/class size (default none)",
    )
    arg("--resume", action="store_true", help="go on from OUT/last.pt (same options; a larger --epochs extends)")
    arg("--amp", action=argparse.BooleanOptionalAction, help="mixed precision: on CUDA on by default, CPU off")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] == ["predict"]:
            predict_images(parse_predict_args(argv[1:]))
        else:
            run(parse_args(argv[1:] if argv[:1] == ["train"] else argv))
    except UsageError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
