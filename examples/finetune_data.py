"""The images of examples/finetune.py: class folders, readable files only, upright, normalised, sampled.

Unreadable files (a truncated JPEG, a text file renamed .jpg) are found up front, when the folders are
scanned, and skipped with a warning; they never stop an epoch half-way.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from finetune_errors import UsageError
from PIL import Image, ImageOps
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision import transforms
from torchvision.datasets.folder import IMG_EXTENSIONS

SPLITS = ("train", "val", "test")  # test/ is optional: held out, never used to choose the epoch
SHOWN_SKIPPED = 5  # a warning names this many unreadable files, then counts the rest
STATS_IMAGES = 1000  # the per-channel mean and std come from at most this many training images
IMBALANCE_RATIO = 3.0  # largest / smallest class above this is reported
Sample = tuple[Path, int]  # (image file, class index)


# ---- folders and files -------------------------------------------------------------------------------
def class_folders(folder: Path) -> list[str]:
    """Sub-folder names, sorted; hidden ones (.ipynb_checkpoints) are not classes."""
    return sorted(entry.name for entry in os.scandir(folder) if entry.is_dir() and not entry.name.startswith("."))


def image_files(folder: Path) -> list[Path]:
    """Files under ``folder`` with an image suffix, sorted; hidden files and folders are left out."""
    found = (path for path in folder.rglob("*") if path.suffix.lower() in IMG_EXTENSIONS and path.is_file())
    return sorted(p for p in found if not any(part.startswith(".") for part in p.relative_to(folder).parts))


def unreadable_reason(path: Path) -> str | None:
    """Why PIL cannot read ``path`` (not an image, corrupt, truncated), or None when it reads."""
    try:
        with Image.open(path) as image:
            image.verify()  # the file's structure (and PNG checksums), without decoding
        with Image.open(path) as image:
            image.draft("RGB", (64, 64))  # a JPEG decodes at a reduced scale, yet every byte is read ...
            image.load()  # ... so a truncated file fails here
    except Exception as error:  # PIL raises many types for broken files; every one means "skip it"
        reason = " ".join(str(error).replace(f"'{path}'", "").split())  # PIL repeats the file name
        return reason or type(error).__name__
    return None


def split_readable(files: list[Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """(readable files, [(unreadable file, why)]), checked on a few threads (decoding releases the GIL)."""
    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        reasons = list(pool.map(unreadable_reason, files))
    readable = [path for path, reason in zip(files, reasons) if reason is None]
    return readable, [(path, reason) for path, reason in zip(files, reasons) if reason is not None]


def skipped_warning(folder: Path, skipped: list[tuple[Path, str]], total: int) -> str:
    """One warning line: how many files of ``folder`` are skipped, the first few by name and why."""
    named = "; ".join(f"{path.relative_to(folder)} ({why})" for path, why in skipped[:SHOWN_SKIPPED])
    more = f"; and {len(skipped) - SHOWN_SKIPPED} more" if len(skipped) > SHOWN_SKIPPED else ""
    return f"warning: skipped {len(skipped)} unreadable of {total} images in {folder}: {named}{more}"


@dataclass
class ImageData:
    """The checked folders: class names, readable (file, class) samples per split, warnings for the rest."""

    classes: list[str]
    splits: dict[str, list[Sample]]  # "train", "val", and "test" when DIR/test/ exists
    warnings: list[str]

    def class_counts(self, split: str = "train") -> list[int]:
        labels = torch.tensor([label for _, label in self.splits[split]])
        return torch.bincount(labels, minlength=len(self.classes)).tolist()


def check_data(root: Path) -> ImageData:
    """Check DIR/train, DIR/val (and DIR/test when present): the same classes, each with readable images."""
    if not root.is_dir():
        raise UsageError(f"--data {root}: no such folder")
    present = [split for split in SPLITS if (root / split).is_dir()]
    for split in ("train", "val"):
        if split not in present:
            raise UsageError(f"--data {root} has no {split}/ folder; expected DIR/train/<class>/ and DIR/val/<class>/")
    classes = {split: class_folders(root / split) for split in present}
    for split in present:
        if not classes[split]:
            raise UsageError(f"{root / split} has no class folders; expected {root / split}/<class>/<image>")
        if classes[split] != classes["train"]:
            only_train = sorted(set(classes["train"]) - set(classes[split])) or "none"
            only_other = sorted(set(classes[split]) - set(classes["train"])) or "none"
            raise UsageError(
                f"train/ and {split}/ have different classes (only in train: {only_train}; "
                f"only in {split}: {only_other})"
            )
    splits, warnings = {}, []
    for split in present:
        splits[split], warning = scan_split(root / split, classes["train"])
        warnings += [warning] if warning else []
    return ImageData(classes["train"], splits, warnings)


def scan_split(folder: Path, classes: list[str]) -> tuple[list[Sample], str | None]:
    """The readable images of one split as (file, class index), and a warning if some are skipped."""
    files = {name: image_files(folder / name) for name in classes}
    for name, found in files.items():
        if not found:
            raise UsageError(f"class folder {folder / name} has no images; add images or remove the folder")
    readable, skipped = split_readable([path for found in files.values() for path in found])
    kept = set(readable)
    for name, found in files.items():
        if not kept.intersection(found):
            raise UsageError(f"class folder {folder / name} has no readable images ({len(found)} unreadable)")
    samples = [(path, index) for index, name in enumerate(classes) for path in files[name] if path in kept]
    return samples, skipped_warning(folder, skipped, len(kept) + len(skipped)) if skipped else None


def imbalance_note(classes: list[str], counts: list[int], balance: str) -> str | None:
    """A note when the largest training class has over IMBALANCE_RATIO times the images of the smallest."""
    largest, smallest = max(range(len(counts)), key=counts.__getitem__), min(range(len(counts)), key=counts.__getitem__)
    ratio = counts[largest] / counts[smallest]
    if ratio <= IMBALANCE_RATIO:
        return None
    sizes = f"{classes[largest]!r} has {counts[largest]} images, {classes[smallest]!r} {counts[smallest]}"
    remedy = f"balanced with --balance {balance}" if balance != "none" else "--balance sampler or weights evens it out"
    return f"note: train/ is imbalanced: {sizes} ({ratio:.1f}x); {remedy}"


def class_weights(counts: list[int]) -> torch.Tensor:
    """Loss weight per class, images / (classes x class size): every class weighs the same in the loss."""
    sizes = torch.tensor(counts, dtype=torch.float)
    return sizes.sum() / (len(counts) * sizes)


# ---- images as tensors ---------------------------------------------------------------------------------
def load_rgb(path: Path) -> Image.Image:
    """The image as RGB, turned upright as its EXIF orientation says (photos from phones and cameras)."""
    with Image.open(path) as image:
        return ImageOps.exif_transpose(image).convert("RGB")


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes the model's input; stored in every checkpoint, so predict needs nothing else."""

    resize: int  # the shorter side is resized to this ...
    crop: int  # ... then the centre crop x crop is the input
    mean: tuple[float, float, float]  # per channel, of images in [0, 1]
    std: tuple[float, float, float]
    interpolation: str = "bilinear"

    def as_dict(self) -> dict:
        return {**asdict(self), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, values: dict) -> Preprocessing:
        return cls(**{**values, "mean": tuple(values["mean"]), "std": tuple(values["std"])})

    def _to_tensor(self) -> list:
        return [
            transforms.PILToTensor(),
            transforms.ConvertImageDtype(torch.float),
            transforms.Normalize(self.mean, self.std),
        ]

    def eval_transform(self) -> transforms.Compose:
        mode = transforms.InterpolationMode(self.interpolation)
        return transforms.Compose(
            [transforms.Resize(self.resize, mode), transforms.CenterCrop(self.crop), *self._to_tensor()]
        )

    def train_transform(self) -> transforms.Compose:
        """Augmentation for training only; drop the flip if mirroring changes the class (digits, text)."""
        mode = transforms.InterpolationMode(self.interpolation)
        augment = [
            transforms.RandomResizedCrop(self.crop, scale=(0.5, 1.0), interpolation=mode),
            transforms.RandomHorizontalFlip(),
        ]
        return transforms.Compose([*augment, *self._to_tensor()])


class ImageFiles(Dataset):
    """(image tensor, class index) for each sample. Index with (i, seed) to draw the augmentation from ``seed``."""

    def __init__(self, samples: list[Sample], transform: transforms.Compose) -> None:
        self.samples, self.transform = samples, transform
        self.targets = [label for _, label in samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[torch.Tensor, int]:
        index, seed = item if isinstance(item, tuple) else (item, None)
        path, label = self.samples[index]
        image = load_rgb(path)
        if seed is None:
            return self.transform(image), label
        state = torch.get_rng_state()  # the same seed, the same crop and flip: in any worker, after a resume
        torch.default_generator.manual_seed(seed)
        try:
            return self.transform(image), label
        finally:
            torch.set_rng_state(state)


def channel_stats(samples: list[Sample], size: int, workers: int) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of training images as the model sees them (resized, cropped, in [0, 1]).

    At most STATS_IMAGES images, evenly spread over the (class-sorted) list; a constant channel gets std 1.
    """
    chosen = samples[:: max(1, math.ceil(len(samples) / STATS_IMAGES))]
    plain = Preprocessing(size, size, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    total, squares, pixels = torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64), 0
    for x, _ in DataLoader(ImageFiles(chosen, plain.eval_transform()), batch_size=64, num_workers=workers):
        x = x.double()
        total, squares, pixels = total + x.sum((0, 2, 3)), squares + (x**2).sum((0, 2, 3)), pixels + x[:, 0].numel()
    mean = total / pixels
    std = (squares / pixels - mean**2).clamp_min(0).sqrt()
    std = torch.where(std < 1e-6, torch.ones_like(std), std)
    return mean.tolist(), std.tolist()


class EpochSampler(Sampler):
    """This process's share of an epoch as (image index, augmentation seed) pairs: a function of seed and epoch.

    Shuffled, or with ``weights`` drawn with replacement in proportion to them (1 / class size: a class-
    balanced sampler). Every process draws the same order and takes every ``world``-th pair, so under
    torchrun the shares are disjoint; the order is padded by repetition to a multiple of ``world``.
    """

    def __init__(
        self, size: int, seed: int, rank: int = 0, world: int = 1, weights: torch.Tensor | None = None
    ) -> None:
        self.size, self.seed, self.rank, self.world, self.weights, self.epoch = size, seed, rank, world, weights, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(self.size / self.world)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        total = len(self) * self.world
        if self.weights is None:
            order = torch.randperm(self.size, generator=generator)
            order = torch.cat([order, order[: total - self.size]])
        else:
            order = torch.multinomial(self.weights, total, replacement=True, generator=generator)
        seeds = torch.randint(2**62, (total,), generator=generator)
        return zip(order[self.rank :: self.world].tolist(), seeds[self.rank :: self.world].tolist())
