"""The few plots the notebooks share, with one colour per strategy and per state across the course."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

__all__ = [
    "GUIDE_COLOR",
    "STATE_COLORS",
    "STRATEGY_COLORS",
    "plot_block_bars",
    "plot_heatmap",
    "plot_learning_curve",
    "show_images",
    "state_bars",
]  # what a notebook imports from here

STRATEGY_COLORS: dict[str, str] = {
    "scratch": "#7f7f7f",  # grey: no pretrained knowledge
    "frozen": "#1f77b4",  # blue: frozen backbone + new head
    "full": "#d62728",  # red: full fine-tuning
    "partial": "#17becf",
    "gradual": "#bcbd22",
}
# What a block is right now, in every plot and widget: frozen has the frozen strategy's blue,
# trainable the red of full fine-tuning (where everything trains).
STATE_COLORS: dict[str, str] = {
    "frozen": STRATEGY_COLORS["frozen"],
    "trainable": STRATEGY_COLORS["full"],
}
GUIDE_COLOR = "#b0b0b0"  # light grey for guide lines (e.g. where a click ended); no meaning of its own


def state_bars(ax: Axes, values: Mapping[str, float], frozen: Collection[str] = (), legend: bool = False) -> None:
    """One bar per block, coloured by state (``STATE_COLORS``), its value written on top.

    A frozen block's bar is often exactly 0 and so invisible: its name on the x axis is drawn in
    the frozen colour too. ``legend=True`` adds a small frozen/trainable legend.
    """
    names, heights = list(values), [float(v) for v in values.values()]
    unknown = set(frozen) - set(names)
    if unknown:
        raise ValueError(f"frozen names {sorted(unknown)} are not among the blocks {names}.")
    states = ["frozen" if name in frozen else "trainable" for name in names]
    bars = ax.bar(names, heights, color=[STATE_COLORS[state] for state in states])
    ax.bar_label(bars, labels=[f"{h:.3g}" for h in heights], fontsize=8)
    for label, state in zip(ax.get_xticklabels(), states):
        label.set_color(STATE_COLORS[state] if state == "frozen" else "black")
    if legend:
        handles = [Patch(color=color, label=state) for state, color in STATE_COLORS.items()]
        ax.legend(handles=handles, fontsize=8, loc="best")


def plot_block_bars(
    values: Mapping[str, float],
    title: str,
    ylabel: str,
    ax: Axes | None = None,
    frozen: Collection[str] = (),
) -> Axes:
    """One bar per block (e.g. parameter count or weight change), values written on the bars.

    Blocks named in ``frozen`` are drawn in ``STATE_COLORS["frozen"]`` (with a legend), the others
    in the trainable colour.
    """
    ax = ax or plt.subplots(figsize=(6, 3))[1]
    state_bars(ax, values, frozen, legend=bool(frozen))
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.margins(y=0.15)
    return ax


def plot_learning_curve(
    x: Sequence[float],
    results: Mapping[str, np.ndarray],
    title: str,
    xlabel: str = "labelled images per class",
    ylabel: str = "target test accuracy (%)",
    ax: Axes | None = None,
) -> Axes:
    """Mean ± min/max band over seeds for each strategy; ``results[name]`` has shape (len(x), seeds)."""
    ax = ax or plt.subplots(figsize=(6, 3.5))[1]
    for name, runs in results.items():
        runs = np.asarray(runs, dtype=float)
        color = STRATEGY_COLORS.get(name)
        ax.plot(x, runs.mean(1), "o-", label=name, color=color)
        ax.fill_between(x, runs.min(1), runs.max(1), alpha=0.2, color=color)
    ax.set_xscale("log")
    ax.set_xticks(list(x), [str(v) for v in x])
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    ax.grid(alpha=0.3)
    return ax


def show_images(
    images: torch.Tensor, title: str, ncols: int = 8, cmap: str = "gray", symmetric: bool = False
) -> Figure:
    """A grid of single-channel images (digits, filters or feature maps)."""
    images = images.detach().cpu().reshape(-1, *images.shape[-2:])
    nrows = -(-len(images) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * 0.9, nrows * 0.9 + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img in zip(axes.flat, images):
        limit = float(img.abs().max()) or 1.0
        kwargs = {"vmin": -limit, "vmax": limit} if symmetric else {}
        ax.imshow(img.numpy(), cmap=cmap, **kwargs)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_heatmap(
    values: np.ndarray,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    title: str,
    cbar_label: str = "accuracy (%)",
    ax: Axes | None = None,
    fmt: str = "{:.1f}",
    cmap: str = "viridis",
) -> Axes:
    """A table as a heat map, each cell annotated with its value (NaN cells left blank)."""
    values = np.asarray(values, dtype=float)
    if values.shape != (len(row_labels), len(col_labels)):
        raise ValueError(f"values has shape {values.shape}, labels say {(len(row_labels), len(col_labels))}.")
    ax = ax or plt.subplots(figsize=(1.1 * len(col_labels) + 2, 0.6 * len(row_labels) + 1.5))[1]
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, aspect="auto")
    ax.figure.colorbar(image, ax=ax, label=cbar_label)
    ax.set_xticks(range(len(col_labels)), list(col_labels))
    ax.set_yticks(range(len(row_labels)), list(row_labels))
    finite = values[np.isfinite(values)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    for (i, j), v in np.ndenumerate(values):
        if np.isfinite(v):
            ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=9, color="black" if v > middle else "white")
    ax.set_title(title)
    return ax
