"""The live freeze panel: tick a block to freeze it, train a few steps, see what moved.

Everything is an ipywidget, so it works headless in tests: set a checkbox's ``.value``,
call ``train_button.click()``, then read ``last_changes``, ``losses`` or the labels.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import nn

from ..changes import snapshot, weight_change_by_block
from ..freezing import freeze, trainable_summary, unfreeze
from ..layers import block_names
from ..optim_groups import NothingTrainableError
from ..plots import GUIDE_COLOR, STATE_COLORS, state_bars
from ..training import evaluate, make_optimizer, train_mode, train_step
from ._base import CourseWidget

ALL_FROZEN_MESSAGE = "Everything is frozen — unfreeze at least one block to train."


class FreezePanel(CourseWidget):
    """Freeze/unfreeze the top-level blocks of a model with checkboxes and train it live.

    One checkbox per block (ticked = frozen) calls ``freeze``/``unfreeze`` on that block the
    moment it is toggled. "Train" runs ``steps_per_click`` steps of plain SGD (no momentum,
    no weight decay, rebuilt from the trainable parameters on every click, so a frozen
    block cannot move), with frozen BatchNorm layers kept in eval mode (notebook 07 shows
    why). "Reset" restores the weights the panel started with.

    >>> panel = FreezePanel(model, x, y)
    >>> panel.checkboxes["block1"].value = True; panel.train_button.click()
    >>> panel.last_changes["block1"]
    0.0
    """

    def plain_text(self) -> str:
        """What a viewer that cannot run widgets shows."""
        return "Freeze panel: run the cell to use it."

    def __init__(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        steps_per_click: int = 20,
        lr: float = 0.05,
        batch_size: int = 64,
        seed: int = 0,
        x_test: torch.Tensor | None = None,
        y_test: torch.Tensor | None = None,
    ) -> None:
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} rows but y has {len(y)}.")
        if steps_per_click < 1:
            raise ValueError(f"steps_per_click must be >= 1, got {steps_per_click}.")
        self.model, self.lr, self.batch_size = model, lr, batch_size
        self.steps_per_click = steps_per_click
        self.device = next(model.parameters()).device
        self.x, self.y = x.to(self.device), y.to(self.device)
        self.x_test, self.y_test = x_test, y_test
        self.blocks: list[str] = block_names(model)
        self._generator = torch.Generator().manual_seed(seed)
        self._initial = snapshot(model)
        self._busy = False
        self.losses: list[float] = []
        self.click_ends: list[int] = []  # step count after each click, to mark clicks on the curve
        self.last_changes: dict[str, float] = {name: 0.0 for name in self.blocks}
        self.test_accuracy: float | None = None

        self.checkboxes: dict[str, widgets.Checkbox] = {}
        frozen_now = self.frozen_blocks()
        for name in self.blocks:
            box = widgets.Checkbox(
                value=name in frozen_now,
                description=name,
                indent=False,
                layout={"width": "max-content", "margin": "0 16px 0 0"},
            )
            box.add_class("freeze-panel-checkbox")
            box.observe(self._toggle_handler(name), names="value")
            self.checkboxes[name] = box
        self.train_button = widgets.Button(
            description=f"Train {steps_per_click} steps", button_style="primary", icon="play"
        )
        self.train_button.add_class("freeze-panel-train")
        self.reset_button = widgets.Button(description="Reset", icon="undo")
        self.reset_button.add_class("freeze-panel-reset")
        self.trainable_label = widgets.HTML()
        self.trainable_label.add_class("freeze-panel-trainable")
        self.changes_label = widgets.HTML()
        self.changes_label.add_class("freeze-panel-changes")
        self.message = widgets.HTML()
        self.message.add_class("freeze-panel-message")
        self.plot = widgets.Image(format="png", layout={"width": "640px"})
        self.plot.add_class("freeze-panel-plot")
        self.train_button.on_click(self._on_train)
        self.reset_button.on_click(self._on_reset)

        self.widget = widgets.VBox(
            [
                widgets.HTML("<b>Freeze</b> (ticked = frozen, <code>requires_grad=False</code>):"),
                widgets.HBox(list(self.checkboxes.values())),
                self.trainable_label,
                widgets.HBox([self.train_button, self.reset_button]),
                self.message,
                self.changes_label,
                self.plot,
            ]
        )
        self.widget.add_class("freeze-panel")
        self._update_trainable_label()
        self._update_changes_label()
        self._render()
        self.message.value = "Tick blocks to freeze them, then click <b>Train</b>."

    # ---- state -------------------------------------------------------------------------
    def frozen_blocks(self) -> list[str]:
        """Names of the blocks whose parameters are all frozen right now."""
        return [name for name in trainable_summary(self.model).frozen_blocks if name in self.blocks]

    def trainable_counts(self) -> tuple[int, int]:
        """(trainable, total) parameter counts of the whole model."""
        summary = trainable_summary(self.model)
        return summary.trainable, summary.total

    # ---- handlers ----------------------------------------------------------------------
    def _toggle_handler(self, name: str) -> Callable[[dict[str, Any]], None]:
        def handler(change: dict[str, Any]) -> None:
            frozen = bool(change["new"])
            (freeze if frozen else unfreeze)(self.model, name)
            self._update_trainable_label()
            self._update_changes_label()
            self.message.value = f"{name} is now {'frozen' if frozen else 'trainable'}."

        return handler

    def _on_train(self, _button: widgets.Button | None = None) -> None:
        if self._busy:  # a click that arrives while training runs is ignored
            return
        try:  # plain SGD, no momentum: nothing frozen can move
            optimizer = make_optimizer(self.model, "sgd", lr=self.lr)
        except NothingTrainableError:
            self.message.value = f"<b>{ALL_FROZEN_MESSAGE}</b>"
            return
        self._busy = True
        self.train_button.disabled = True
        self.message.value = f"Training {self.steps_per_click} steps…"
        try:
            self._train(optimizer)
            self.last_changes = weight_change_by_block(self.model, self._initial)
            if self.x_test is not None and self.y_test is not None:
                self.test_accuracy = evaluate(self.model, self.x_test, self.y_test)
            self._render()  # the picture first, so every text read-out below already matches it
            self._update_changes_label()
            acc = "" if self.test_accuracy is None else f", test accuracy {self.test_accuracy:.0f}%"
            self.message.value = (
                f"Trained {self.steps_per_click} steps (total {len(self.losses)}): "
                f"last loss {self.losses[-1]:.3f}{acc}."
            )
        except Exception as error:  # a widget callback must never surface a traceback
            self.message.value = f"<b>Training failed:</b> {type(error).__name__}: {error}"
        finally:
            self._busy = False
            self.train_button.disabled = False

    def _on_reset(self, _button: widgets.Button | None = None) -> None:
        if self._busy:
            return
        self.model.load_state_dict(self._initial)
        self.losses.clear()
        self.click_ends.clear()
        self.last_changes = {name: 0.0 for name in self.blocks}
        self.test_accuracy = None
        self._render()
        self._update_changes_label()
        self.message.value = "Weights restored to where the panel started; history cleared."

    # ---- training ----------------------------------------------------------------------
    def _train(self, optimizer: torch.optim.Optimizer) -> None:
        """``steps_per_click`` steps on random batches; frozen BatchNorm keeps its running statistics."""
        with train_mode(self.model):
            for _ in range(self.steps_per_click):
                idx = torch.randint(len(self.x), (min(self.batch_size, len(self.x)),), generator=self._generator)
                idx = idx.to(self.device)
                self.losses.append(train_step(self.model, optimizer, self.x[idx], self.y[idx]))
        self.click_ends.append(len(self.losses))

    # ---- read-outs ---------------------------------------------------------------------
    def _update_trainable_label(self) -> None:
        trainable, total = self.trainable_counts()
        share = 100 * trainable / total if total else 0.0
        self.trainable_label.value = f"Trainable: {trainable:,} / {total:,} parameters ({share:.1f}%)"

    def changes_text(self) -> str:
        """Per-block relative weight change since the last reset, as one line of text."""
        frozen = set(self.frozen_blocks())
        parts = []
        for name in self.blocks:
            value = self.last_changes.get(name, 0.0)
            shown = "0" if value == 0 else f"{value:.4f}"
            parts.append(f"{name}: {shown}{' (frozen)' if name in frozen else ''}")
        return " · ".join(parts)

    def _update_changes_label(self) -> None:
        self.changes_label.value = "<b>Weight change since reset</b> (‖w − w₀‖ / ‖w₀‖): " + self.changes_text()

    def _render(self) -> None:
        """Draw the per-block change bars and the loss curve to PNG (Agg, no display needed)."""
        fig = Figure(figsize=(8, 2.8), dpi=80)
        FigureCanvasAgg(fig)
        bars_ax, loss_ax = fig.subplots(1, 2)
        changes = {name: self.last_changes.get(name, 0.0) for name in self.blocks}
        state_bars(bars_ax, changes, self.frozen_blocks(), legend=True)
        bars_ax.set_yscale("symlog", linthresh=1e-3)  # a new head moves ~100x more than a block
        bars_ax.set_ylim(0, max([1.0, *changes.values()]) * 3)
        bars_ax.set_ylabel("relative weight change\n(symlog scale)")
        bars_ax.set_title("What moved since reset", fontsize=10)
        if self.losses:
            loss_ax.plot(range(1, len(self.losses) + 1), self.losses, color=STATE_COLORS["trainable"], lw=1)
            for end in self.click_ends[:-1]:
                loss_ax.axvline(end + 0.5, color=GUIDE_COLOR, lw=0.8, ls="--")
        else:
            loss_ax.text(0.5, 0.5, "click Train to start", ha="center", va="center", transform=loss_ax.transAxes)
        loss_ax.set_xlabel("training step")
        loss_ax.set_ylabel("cross-entropy loss")
        loss_ax.set_title("Training loss (dashed = one click)", fontsize=10)
        fig.subplots_adjust(left=0.11, right=0.98, bottom=0.17, top=0.89, wspace=0.3)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        self.plot.value = buffer.getvalue()

    def __repr__(self) -> str:
        trainable, total = self.trainable_counts()
        return f"FreezePanel(blocks={list(self.blocks)}, trainable={trainable:,}/{total:,})"
