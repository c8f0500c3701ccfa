"""The course CNN and its shipped, checksum-verified pretrained weights."""

from __future__ import annotations

import torch
from torch import nn

from .paths import verified_path

CHECKPOINT_FILE = "course_cnn_digits0-4.pt"
COURSE_CNN_BLOCKS: tuple[str, ...] = ("block1", "block2", "block3", "head")
COURSE_CNN_BACKBONE: tuple[str, ...] = COURSE_CNN_BLOCKS[:-1]  # everything but the head
IMAGE_SHAPE: tuple[int, int, int] = (1, 28, 28)
FEATURE_DIM = 256  # 64 channels x 2 x 2 pooled positions
_REGENERATE_HINT = "Restore it with `git checkout data/` or regenerate it with `python -m tools.pretrain`."


def build_head(num_classes: int, dropout: float = 0.2) -> nn.Sequential:
    """The course CNN's classifier: flatten -> dropout -> linear on the 256 backbone features."""
    return nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(FEATURE_DIM, num_classes))


def conv_block(in_channels: int, out_channels: int, kernel_size: int = 3) -> nn.Sequential:
    """Conv with stride 2 (halves height and width) -> BatchNorm -> ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=2, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class CourseCNN(nn.Module):
    """A small CNN for 28x28 digits with four named blocks: block1..block3 and head.

    block1: 5x5 conv, 1->16 channels, 28->14 px; block2: 16->32, 14->7 px; block3: 32->64, 7->4 px,
    then average pooling to 2x2; head: flatten + dropout + linear classifier on the 256 features.
    """

    def __init__(self, num_classes: int = 5, dropout: float = 0.2) -> None:
        super().__init__()
        self.block1 = conv_block(1, 16, kernel_size=5)
        self.block2 = conv_block(16, 32)
        self.block3 = conv_block(32, 64)
        self.block3.append(nn.AdaptiveAvgPool2d(2))
        self.head = build_head(num_classes, dropout)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's output: one 256-dimensional feature vector per image."""
        check_input(x)
        return self.block3(self.block2(self.block1(x))).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def check_input(x: torch.Tensor) -> None:
    """Raise a clear error unless ``x`` is a float batch of shape (N, 1, 28, 28)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"CourseCNN expects a torch.Tensor, got {type(x).__name__}.")
    if x.dim() != 4 or tuple(x.shape[1:]) != IMAGE_SHAPE:
        hint = " Add the batch dimension with x.unsqueeze(0)." if tuple(x.shape) == IMAGE_SHAPE else ""
        raise ValueError(f"CourseCNN expects a batch of shape (N, 1, 28, 28), got {tuple(x.shape)}.{hint}")
    if not x.is_floating_point():
        raise TypeError(f"CourseCNN expects float images in [0, 1], got dtype {x.dtype}.")


def load_pretrained(device: str | torch.device = "cpu") -> CourseCNN:
    """The course CNN pretrained on digits 0-4, after verifying the checkpoint's SHA-256."""
    path = verified_path(CHECKPOINT_FILE, _REGENERATE_HINT)
    state = torch.load(path, map_location=device, weights_only=True)
    model = CourseCNN(num_classes=5)
    model.load_state_dict(state)
    return model.to(device).eval()


def replace_head(model: CourseCNN, num_classes: int, dropout: float = 0.2) -> nn.Sequential:
    """Replace ``model.head`` with a freshly initialised classifier and return it."""
    device = next(model.parameters()).device
    model.head = build_head(num_classes, dropout).to(device)
    return model.head


def pretrained_with_new_head(num_classes: int = 5, device: str | torch.device = "cpu") -> CourseCNN:
    """The pretrained course CNN with a fresh, random head for a new task (in train mode).

    The same as ``model = load_pretrained(device); replace_head(model, num_classes); model.train()``.
    Seed first (``seed_everything``) to get the same head every time.
    """
    model = load_pretrained(device)
    replace_head(model, num_classes)
    return model.train()
