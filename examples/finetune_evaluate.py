"""Evaluation for examples/finetune.py: predictions, per-class accuracy, the confusion matrix as numbers,
a table and a PNG (matplotlib is imported only to draw it, so training runs without it)."""

from __future__ import annotations

from pathlib import Path

import torch
from finetune_model import autocast
from torch import nn
from torch.utils.data import DataLoader

TABLE_MAX_CLASSES = 12  # more classes: the table lists per-class accuracy without the matrix


@torch.no_grad()
def class_probabilities(
    model: nn.Module, loader: DataLoader, amp: str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(softmax probabilities, one row per image, float32 on the CPU; the loader's labels)."""
    device = next(model.parameters()).device
    model.eval()
    rows, labels = [], []
    for x, y in loader:
        with autocast(device, amp):
            rows.append(model(x.to(device, non_blocking=True)).float().softmax(1).cpu())
        labels.append(torch.as_tensor(y))
    return torch.cat(rows), torch.cat(labels)


def predicted_labels(model: nn.Module, loader: DataLoader, amp: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted class, true class) for every image of ``loader``."""
    probabilities, labels = class_probabilities(model, loader, amp)
    return probabilities.argmax(1), labels


def confusion_matrix(labels: torch.Tensor, predicted: torch.Tensor, num_classes: int) -> torch.Tensor:
    """matrix[true, predicted] = how many images of class ``true`` were predicted as ``predicted``."""
    pairs = labels.long() * num_classes + predicted.long()
    return torch.bincount(pairs, minlength=num_classes**2).reshape(num_classes, num_classes)


def split_scores(matrix: torch.Tensor, classes: list[str]) -> dict:
    """Accuracy, per-class accuracy (the diagonal over each row: recall) and the matrix, for summary.json."""
    images = matrix.sum(1)
    per_class = (matrix.diag() / images.clamp_min(1)).tolist()
    return dict(
        images=int(images.sum()),
        accuracy=float(matrix.diag().sum() / images.sum()),
        per_class_accuracy={name: (acc if n else None) for name, acc, n in zip(classes, per_class, images.tolist())},
        confusion_matrix=matrix.tolist(),
    )


def scores_table(matrix: torch.Tensor, classes: list[str]) -> str:
    """Rows: true class; columns: predicted class (up to TABLE_MAX_CLASSES classes); then the class's accuracy."""
    names = [name[:12] for name in classes]
    width = max(len(name) for name in [*names, "true \\ predicted"])
    show_matrix = len(classes) <= TABLE_MAX_CLASSES
    cell = max(5, *(len(name) + 1 for name in names)) if show_matrix else 0
    header = "true \\ predicted" if show_matrix else "class"
    lines = [f"  {header:<{width}}" + "".join(f"{n:>{cell}}" for n in names if show_matrix) + "  accuracy"]
    for index, (name, row) in enumerate(zip(names, matrix.tolist())):
        counts = "".join(f"{count:>{cell}}" for count in row) if show_matrix else ""
        correct, total = row[index], sum(row)
        accuracy = f"{correct / total:8.1%}" if total else "       -"
        lines.append(f"  {name:<{width}}{counts}  {accuracy} ({correct} of {total})")
    return "\n".join(lines)


def save_confusion_png(matrix: torch.Tensor, classes: list[str], title: str, path: Path) -> bool:
    """Draw the matrix (rows true, columns predicted, counts in the cells); False when matplotlib is missing."""
    try:
        from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state
    except ImportError:
        return False
    side = min(12.0, 2.5 + 0.5 * len(classes))
    figure = Figure(figsize=(side + 1, side), layout="constrained")
    ax = figure.add_subplot()
    image = ax.imshow(matrix.numpy(), cmap="Blues")
    figure.colorbar(image, ax=ax, label="images")
    ax.set(xticks=range(len(classes)), yticks=range(len(classes)), xlabel="predicted class", ylabel="true class")
    ax.set_xticklabels(classes, rotation=45, ha="right")
    ax.set_yticklabels(classes)
    ax.set_title(title)
    if len(classes) <= 20:
        high = matrix.max().item() / 2
        for (i, j), count in zip(torch.cartesian_prod(*[torch.arange(len(classes))] * 2).tolist(), matrix.flatten()):
            ax.text(j, i, int(count), ha="center", va="center", color="white" if count > high else "black")
    figure.savefig(path, dpi=100)
    return True
