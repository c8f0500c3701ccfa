"""FineTuneExplorer: pick how many blocks to freeze and a learning rate, watch a short fine-tune.

Headless use (tests, scripts): set ``.frozen.value``, ``.lr.value`` or ``.target.value`` and read
``.result``; every change re-runs the fine-tune synchronously.
"""

from __future__ import annotations

import copy
import io
import time
from dataclasses import dataclass

import ipywidgets as widgets
import torch
from matplotlib.figure import Figure
from torch import nn

from ..changes import snapshot, weight_change_by_block
from ..data import TARGET_CLASSES, Task, make_task
from ..freezing import freeze_to, trainable_summary
from ..models import COURSE_CNN_BLOCKS, CourseCNN, load_pretrained, replace_head
from ..plots import STATE_COLORS, state_bars
from ..training import evaluate, extract_features, train
from ._base import CourseWidget

TARGETS = {"near": ("near: digits 5-9", None), "far": ("far: pixel-permuted 5-9", "permute")}
LEARNING_RATES = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)


@dataclass(frozen=True)
class RunResult:
    """What one short fine-tune produced."""

    frozen_blocks: int
    lr: float
    target: str
    test_acc: float
    trainable_params: int
    total_params: int
    losses: tuple[float, ...]
    weight_change: dict[str, float]
    seconds: float


class FineTuneExplorer(CourseWidget):
    """Slider (frozen blocks 0-3), learning-rate dropdown and target toggle over a short fine-tune.

    Each run: the pretrained CNN gets a new 5-class head, ``freeze_to(model, frozen)``, and the
    trainable blocks are trained for ``steps`` full-batch Adam steps on ``k_per_class`` labels per
    class. The frozen prefix's outputs are cached, so a run takes about a second on a CPU.
    """

    def plain_text(self) -> str:
        """What a viewer that cannot run widgets shows."""
        return "Fine-tune explorer: run the cell to use it."

    def __init__(
        self,
        pretrained: CourseCNN | None = None,
        steps: int = 20,
        k_per_class: int = 10,
        seed: int = 0,
        frozen: int = 3,
        lr: float = 1e-3,
        target: str = "near",
    ) -> None:
        if target not in TARGETS:
            raise ValueError(f"target must be one of {sorted(TARGETS)}, got {target!r}.")
        if lr not in LEARNING_RATES:
            raise ValueError(f"lr must be one of {LEARNING_RATES}, got {lr}.")
        self.pretrained = copy.deepcopy(pretrained or load_pretrained()).eval()  # the caller's model is left alone
        self.steps, self.k_per_class, self.seed = steps, k_per_class, seed
        self._tasks: dict[str, Task] = {}
        self._cache: dict[tuple[str, int], tuple[torch.Tensor, torch.Tensor]] = {}
        self.history: list[RunResult] = []
        self.result: RunResult | None = None
        self.frozen = widgets.IntSlider(
            value=frozen,
            min=0,
            max=len(COURSE_CNN_BLOCKS) - 1,
            description="frozen blocks",
            style={"description_width": "initial"},
            continuous_update=False,
        )
        self.lr = widgets.Dropdown(
            options=[(f"{v:g}", v) for v in LEARNING_RATES],
            value=lr,
            description="learning rate",
            style={"description_width": "initial"},
        )
        self.target = widgets.ToggleButtons(options=[(label, key) for key, (label, _) in TARGETS.items()], value=target)
        self.image = widgets.Image(format="png", layout={"width": "640px"})
        self.readout = widgets.HTML()
        for control in (self.frozen, self.lr, self.target):
            control.observe(self._on_change, names="value")
        self.widget = widgets.VBox([widgets.HBox([self.frozen, self.lr]), self.target, self.image, self.readout])
        self.update()

    # ------------------------------------------------------------------ data
    def _task(self, target: str) -> Task:
        if target not in self._tasks:
            self._tasks[target] = make_task(
                TARGET_CLASSES, k_per_class=self.k_per_class, seed=self.seed, shift=TARGETS[target][1]
            )
        return self._tasks[target]

    def _prefix_outputs(self, model: nn.Module, target: str, depth: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Outputs of the frozen prefix for train and test images (cached: the prefix never changes)."""
        key = (target, depth)
        if key not in self._cache:
            task = self._task(target)
            self._cache[key] = (
                extract_features(model, task.x_train, n_blocks=depth),
                extract_features(model, task.x_test, n_blocks=depth),
            )
        return self._cache[key]

    # ------------------------------------------------------------------ running
    def run(self) -> RunResult:
        """Fine-tune with the current settings and return the result (also stored in ``.result``)."""
        depth, lr, target = int(self.frozen.value), float(self.lr.value), str(self.target.value)
        task = self._task(target)
        start = time.perf_counter()
        torch.manual_seed(self.seed)
        model = copy.deepcopy(self.pretrained)
        replace_head(model, len(task.classes))
        freeze_to(model, depth)
        before = snapshot(model)
        x_train, x_test = self._prefix_outputs(model, target, depth)
        trainable_part = nn.Sequential(*list(model.children())[depth:])
        history = train(
            trainable_part,
            x_train,
            task.y_train,
            epochs=1,
            lr=lr,
            batch_size=len(x_train),
            min_steps=self.steps,
            seed=self.seed,
        )
        acc = evaluate(trainable_part, x_test, task.y_test)
        summary = trainable_summary(model)
        result = RunResult(
            frozen_blocks=depth,
            lr=lr,
            target=target,
            test_acc=acc,
            trainable_params=summary.trainable,
            total_params=summary.total,
            losses=tuple(history.loss),
            weight_change=weight_change_by_block(model, before),
            seconds=time.perf_counter() - start,
        )
        self.result = result
        self.history.append(result)
        return result

    def update(self) -> RunResult:
        """Re-run and refresh the plot and the read-out."""
        result = self.run()
        self.image.value = self._render(result)
        self.readout.value = self._describe(result)
        return result

    def _on_change(self, _change: dict[str, object]) -> None:
        self.update()

    # ------------------------------------------------------------------ display
    def _render(self, r: RunResult) -> bytes:
        fig = Figure(figsize=(8, 2.8))  # no pyplot: nothing leaks into the notebook's figures
        ax_loss, ax_change = fig.subplots(1, 2)
        ax_loss.plot(range(1, len(r.losses) + 1), r.losses, color=STATE_COLORS["trainable"])
        ax_loss.set_xlabel("optimizer step")
        ax_loss.set_ylabel("training loss (cross-entropy)")
        ax_loss.set_title(f"test accuracy {r.test_acc:.1f}%")
        ax_loss.grid(alpha=0.3)
        state_bars(ax_change, r.weight_change, list(r.weight_change)[: r.frozen_blocks], legend=True)
        ax_change.margins(y=0.15)
        ax_change.set_ylabel("relative weight change")
        ax_change.set_title("frozen blocks move exactly 0")
        fig.suptitle(f"{r.frozen_blocks} frozen block(s), lr {r.lr:g}, {TARGETS[r.target][0]}")
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80)
        return buffer.getvalue()

    def _describe(self, r: RunResult) -> str:
        share = 100 * r.trainable_params / r.total_params
        rows = "".join(
            f"<tr><td>{h.frozen_blocks}</td><td>{h.lr:g}</td><td>{h.target}</td><td>{h.test_acc:.1f}%</td></tr>"
            for h in self.history[-6:][::-1]
        )
        return (
            f"<b>{r.test_acc:.1f}%</b> test accuracy after {len(r.losses)} steps, training "
            f"{r.trainable_params:,} of {r.total_params:,} parameters ({share:.1f}%), in {r.seconds:.1f} s."
            f"<br><small>Latest runs (frozen blocks, lr, target, accuracy):</small>"
            f"<table style='font-size:small'>{rows}</table>"
        )

    def __repr__(self) -> str:
        acc = "not run" if self.result is None else f"{self.result.test_acc:.1f}%"
        return (
            f"FineTuneExplorer(frozen={self.frozen.value}, lr={self.lr.value:g}, "
            f"target={self.target.value!r}, acc={acc})"
        )
