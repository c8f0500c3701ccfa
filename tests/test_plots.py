from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course_utils.plots import (  # noqa: E402
    STATE_COLORS,
    STRATEGY_COLORS,
    plot_block_bars,
    plot_learning_curve,
    show_images,
)


def test_block_bars_label_every_block() -> None:
    ax = plot_block_bars({"block1": 432, "head": 1285}, "Counts", "parameters (count)")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["block1", "head"]
    assert [t.get_text() for t in ax.texts] == ["432", "1.28e+03"]
    assert ax.get_title() == "Counts" and ax.get_ylabel() == "parameters (count)"
    plt.close("all")


def test_learning_curve_uses_strategy_colours_and_band() -> None:
    runs = {"scratch": np.array([[40, 50, 60], [80, 82, 84]]), "frozen": np.array([[60, 62, 64], [85, 86, 87]])}
    ax = plot_learning_curve([1, 10], runs, "Frozen wins with few labels")
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["scratch"].get_ydata()) == [50.0, 82.0]
    assert matplotlib.colors.to_hex(lines["frozen"].get_color()) == STRATEGY_COLORS["frozen"]
    assert len(ax.collections) == 2, "one min-max band per strategy"
    plt.close("all")


def test_show_images_grid() -> None:
    fig = show_images(torch.rand(10, 1, 5, 5), "ten images", ncols=4, symmetric=True)
    assert len(fig.axes) == 12 and sum(1 for ax in fig.axes if ax.images) == 10
    assert fig._suptitle.get_text() == "ten images"
    plt.close("all")


def test_one_frozen_colour_for_strategies_and_states() -> None:
    assert STATE_COLORS["frozen"] == STRATEGY_COLORS["frozen"]
    assert STATE_COLORS["trainable"] == STRATEGY_COLORS["full"]
    assert len(set(STATE_COLORS.values())) == len(STATE_COLORS)


def test_block_bars_colour_frozen_blocks_and_their_names() -> None:
    ax = plot_block_bars({"block1": 0.0, "block2": 0.2, "head": 1.0}, "moved", "change", frozen=["block1"])
    colours = [matplotlib.colors.to_hex(bar.get_facecolor()) for bar in ax.patches]
    assert colours == [STATE_COLORS["frozen"], STATE_COLORS["trainable"], STATE_COLORS["trainable"]]
    assert matplotlib.colors.to_hex(ax.get_xticklabels()[0].get_color()) == STATE_COLORS["frozen"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["frozen", "trainable"]
    plt.close("all")
    ax = plot_block_bars({"block1": 1.0}, "moved", "change")
    assert ax.get_legend() is None  # nothing frozen: no legend needed
    plt.close("all")


def test_block_bars_refuse_unknown_frozen_names() -> None:
    with pytest.raises(ValueError, match=r"\['blokc1'\] are not among the blocks"):
        plot_block_bars({"block1": 1.0}, "moved", "change", frozen=["blokc1"])
    plt.close("all")
