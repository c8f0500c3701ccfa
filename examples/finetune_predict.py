"""``finetune.py predict``: the top-k classes of new images, from OUT/best.pt alone.

The checkpoint holds everything needed: the class names, the model, its starting weights by full name (or a
weights file's SHA-256), the seed, the resize, crop and normalisation, and the trained blocks.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import torch
from finetune_data import ImageFiles, Preprocessing, image_files, skipped_warning, split_readable
from finetune_errors import UsageError
from finetune_evaluate import class_probabilities
from finetune_model import load_checkpoint
from torch.utils.data import DataLoader


def parse_predict_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="finetune.py predict", description=__doc__.partition("\n\n")[0])
    arg = parser.add_argument
    arg("--checkpoint", type=Path, required=True, metavar="FILE", help="a checkpoint written by training (OUT/best.pt)")
    arg("images", type=Path, nargs="+", metavar="IMAGE_OR_FOLDER", help="image files, or folders searched for images")
    arg("--top-k", type=int, default=3, metavar="K", help="classes shown per image, most probable first (default 3)")
    arg("--csv", type=Path, metavar="FILE", help="also write the predictions to this CSV file")
    arg("--batch-size", type=int, default=32, metavar="N", help="(default 32)")
    arg("--workers", type=int, default=0, metavar="N", help="DataLoader worker processes (default 0)")
    arg("--weights-file", type=Path, metavar="FILE", help="the weights file trained from, if it has moved")
    return parser.parse_args(argv)


def images_to_predict(inputs: list[Path]) -> tuple[list[Path], list[str]]:
    """The readable images among the files and folders given (folders searched recursively), and warnings."""
    files, warnings = [], []
    for path in inputs:
        if not path.exists():
            raise UsageError(f"{path}: no such file or folder")
        found = image_files(path) if path.is_dir() else [path]
        readable, skipped = split_readable(found)
        files += readable
        if skipped:
            warnings.append(skipped_warning(path if path.is_dir() else path.parent, skipped, len(found)))
    if not files:
        raise UsageError(f"no readable images in {', '.join(map(str, inputs))}")
    return files, warnings


def top_k(probabilities: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(probabilities, class indices) of the k most probable classes per image, most probable first."""
    return probabilities.topk(min(k, probabilities.shape[1]), dim=1)


def write_csv(path: Path, files: list[Path], classes: list[str], values: torch.Tensor, indices: torch.Tensor) -> None:
    """One row per image: image, class_1, probability_1, ..., class_k, probability_k."""
    header = ["image"] + [
        f"{column}_{rank}" for rank in range(1, values.shape[1] + 1) for column in ("class", "probability")
    ]
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        for image, row_values, row_indices in zip(files, values.tolist(), indices.tolist()):
            cells = [item for p, i in zip(row_values, row_indices) for item in (classes[i], f"{p:.6f}")]
            writer.writerow([str(image), *cells])


def predict_images(args: argparse.Namespace) -> list[tuple[Path, list[tuple[str, float]]]]:
    """Print one line per image, ``IMAGE: class p, class p, ...``; write --csv; return the same as a list."""
    if args.top_k < 1 or args.batch_size < 1 or args.workers < 0:
        raise UsageError("--top-k and --batch-size must be at least 1, --workers 0 or more")
    model, checkpoint = load_checkpoint(args.checkpoint, args.weights_file)
    if "preprocessing" not in checkpoint:
        raise UsageError(
            f"--checkpoint {args.checkpoint} has no preprocessing numbers (an older checkpoint); train again"
        )
    files, warnings = images_to_predict(args.images)
    for warning in warnings:
        print(warning, file=sys.stderr)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    transform = Preprocessing.from_dict(checkpoint["preprocessing"]).eval_transform()
    loader = DataLoader(
        ImageFiles([(path, -1) for path in files], transform),
        batch_size=args.batch_size,
        num_workers=args.workers,
        pin_memory=device.type == "cuda",
    )
    amp = checkpoint.get("amp") if checkpoint.get("device_type") == device.type else None  # as in training
    probabilities, _ = class_probabilities(model.to(device), loader, amp)
    values, indices = top_k(probabilities, args.top_k)
    classes = checkpoint["classes"]
    results = []
    for image, row_values, row_indices in zip(files, values.tolist(), indices.tolist()):
        results.append((image, [(classes[i], p) for p, i in zip(row_values, row_indices)]))
        print(f"{image}: " + ", ".join(f"{classes[i]} {p:.3f}" for p, i in zip(row_values, row_indices)))
    if args.csv:
        try:
            write_csv(args.csv, files, classes, values, indices)
        except OSError as error:
            raise UsageError(f"--csv {args.csv}: cannot write it ({error.strerror or error})") from None
        print(f"wrote {len(files)} predictions to {args.csv}")
    return results
