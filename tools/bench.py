"""`make bench`: time every notebook and measure the headline ratios in one run.

    python -m tools.bench                 # notebooks + headline ratios
    python -m tools.bench --no-notebooks  # headline ratios only (one to two minutes)

Prints a Markdown report and writes it to bench/results.md. Notebooks are executed in a
fresh kernel but not rewritten. Speed claims are ratios of interleaved medians
(`measure.time_calls`), so background load hits both candidates alike.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import torch
from torch import nn

from course_utils.data import TARGET_CLASSES, batches, make_task
from course_utils.freezing import freeze
from course_utils.measure import speedups, time_calls, training_step
from course_utils.models import CourseCNN, load_pretrained, new_head
from course_utils.paths import REPO_ROOT
from course_utils.training import evaluate, seed_everything, train
from tools.run_notebooks import execute

NOTEBOOK_BUDGET_S = 30.0
COURSE_BUDGET_S = 120.0
LABELS_PER_CLASS: tuple[int, ...] = (1, 3, 10)
SEEDS: tuple[int, ...] = (0, 1, 2)
# Few-label training recipe (the one the foundation measured): Adam, lr 3e-3, batch 32, >= 60 steps.
FEW_LABEL_LR, FEW_LABEL_BATCH, FEW_LABEL_MIN_STEPS = 3e-3, 32, 60


@dataclass(frozen=True)
class Target:
    """A performance target from the course design: ``measured >= minimum`` is met."""

    what: str
    minimum: float
    unit: str = "×"

    def met(self, measured: float) -> bool:
        return measured >= self.minimum


TARGETS: dict[str, Target] = {
    "cnn_step": Target("course CNN: frozen-backbone step vs full fine-tuning step (speed-up)", 1.3),
    "resnet_step": Target("resnet18 (weights=None), 64 px, batch 16: frozen-backbone step vs full step (speed-up)", 1.5),
    "cached_epoch": Target("cached-feature head epoch vs running the frozen backbone every epoch (speed-up)", 20.0),
    "transfer_gap": Target("frozen transfer minus scratch accuracy at 1 and 3 labels/class (smaller of the two)", 5.0, " points"),
}


@dataclass
class Headlines:
    """The headline measurements of one run."""

    cnn_step: float
    resnet_step: float
    cached_epoch: float
    accuracy: dict[int, dict[str, list[float]]] = field(default_factory=dict)  # k -> strategy -> per-seed %

    def transfer_gap(self, ks: Sequence[int] = (1, 3)) -> float:
        """The smallest (frozen − scratch) mean accuracy gap, in points, over ``ks``."""
        return min(mean(self.accuracy[k]["frozen"]) - mean(self.accuracy[k]["scratch"]) for k in ks)

    def values(self) -> dict[str, float]:
        return {
            "cnn_step": self.cnn_step,
            "resnet_step": self.resnet_step,
            "cached_epoch": self.cached_epoch,
            "transfer_gap": self.transfer_gap(),
        }


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values)


# ---- step time: frozen backbone vs full fine-tuning ------------------------------------
def frozen_step_speedup(
    make_model: Callable[[], nn.Module],
    freeze_backbone: Callable[[nn.Module], None],
    x: torch.Tensor,
    y: torch.Tensor,
    repeats: int = 20,
    warmup: int = 3,
) -> float:
    """Full fine-tuning step time / frozen-backbone step time (Adam over trainable params)."""
    torch.manual_seed(0)
    full, frozen = make_model(), make_model()
    freeze_backbone(frozen)
    steps = {
        name: training_step(model, torch.optim.Adam([p for p in model.parameters() if p.requires_grad]), x, y)
        for name, model in {"full": full, "frozen": frozen}.items()
    }
    return speedups(time_calls(steps, repeats=repeats, warmup=warmup), baseline="full")["frozen"]


def step_time_ratio(batch_size: int = 64, repeats: int = 20) -> float:
    """Full fine-tuning step time / frozen-backbone step time on the course CNN (CPU)."""
    torch.manual_seed(0)
    x, y = torch.rand(batch_size, 1, 28, 28), torch.randint(0, 5, (batch_size,))
    return frozen_step_speedup(CourseCNN, lambda m: freeze(m, "block1", "block2", "block3"), x, y, repeats)


def resnet18_step_time_ratio(image_size: int = 64, batch_size: int = 16, repeats: int = 5) -> float:
    """The same ratio on torchvision's resnet18 architecture (random weights, no download)."""
    from torchvision.models import resnet18

    def freeze_all_but_fc(model: nn.Module) -> None:
        for name, param in model.named_parameters():
            param.requires_grad_(name.startswith("fc."))

    torch.manual_seed(0)
    x, y = torch.rand(batch_size, 3, image_size, image_size), torch.randint(0, 5, (batch_size,))
    return frozen_step_speedup(lambda: resnet18(weights=None, num_classes=5), freeze_all_but_fc, x, y, repeats, warmup=2)


# ---- feature caching -------------------------------------------------------------------
def head_epoch(
    head: nn.Module, inputs: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer,
    batch_size: int, backbone: Callable[[torch.Tensor], torch.Tensor] | None = None, seed: int = 0,
) -> None:
    """One epoch of head training; the frozen ``backbone`` (if given) runs on every batch."""
    loss_fn = nn.CrossEntropyLoss()
    head.train()
    for xb, yb in batches(inputs, y, batch_size, torch.Generator().manual_seed(seed)):
        if backbone is not None:
            with torch.no_grad():
                xb = backbone(xb)
        loss = loss_fn(head(xb), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def cached_epoch_speedup(
    backbone: Callable[[torch.Tensor], torch.Tensor], head: nn.Module, x: torch.Tensor, y: torch.Tensor,
    batch_size: int = 250, repeats: int = 3,
) -> float:
    """Epoch time running the frozen backbone every batch / epoch time on cached features.

    The cost of computing the cache once is not included: it is paid once, not per epoch.
    ``backbone`` must be frozen and in eval mode (else caching would change the results).
    """
    with torch.no_grad():
        cached = backbone(x)
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-3)
    epochs = {
        "backbone every epoch": lambda: head_epoch(head, x, y, optimizer, batch_size, backbone=backbone),
        "cached features": lambda: head_epoch(head, cached, y, optimizer, batch_size),
    }
    timings = time_calls(epochs, repeats=repeats, warmup=1)
    return speedups(timings, baseline="backbone every epoch")["cached features"]


def course_cached_epoch_speedup(batch_size: int = 250, repeats: int = 3) -> float:
    """Feature caching on the pretrained course CNN, digits 5-9, all 2,000 training images
    (batch 250, as in notebook 04)."""
    model = load_pretrained().eval()
    freeze(model, "block1", "block2", "block3")
    task = make_task(TARGET_CLASSES)
    torch.manual_seed(0)
    head = new_head(model, task.n_classes)
    return cached_epoch_speedup(model.features, head, task.x_train, task.y_train, batch_size, repeats)


# ---- transfer vs scratch with few labels -----------------------------------------------
def few_label_accuracy(strategy: str, k: int, seed: int) -> float:
    """Test accuracy (%) on digits 5-9 with ``k`` labels per class: "scratch" or "frozen"."""
    task = make_task(TARGET_CLASSES, k_per_class=k, seed=seed)
    seed_everything(seed)
    if strategy == "scratch":
        model = CourseCNN(num_classes=task.n_classes)
    elif strategy == "frozen":
        model = load_pretrained()
        new_head(model, task.n_classes)
        freeze(model, "block1", "block2", "block3")
    else:
        raise ValueError(f"strategy must be 'scratch' or 'frozen', got {strategy!r}.")
    train(
        model, task.x_train, task.y_train, epochs=1, lr=FEW_LABEL_LR,
        batch_size=FEW_LABEL_BATCH, min_steps=FEW_LABEL_MIN_STEPS, seed=seed,
    )
    return 100.0 * evaluate(model, task.x_test, task.y_test)


def transfer_vs_scratch(
    ks: Sequence[int] = LABELS_PER_CLASS, seeds: Sequence[int] = SEEDS
) -> dict[int, dict[str, list[float]]]:
    """Per-seed accuracies (%) of scratch and frozen transfer for each labels-per-class ``k``."""
    return {
        k: {s: [few_label_accuracy(s, k, seed) for seed in seeds] for s in ("scratch", "frozen")} for k in ks
    }


def measure_headlines() -> Headlines:
    """Every headline ratio, measured in this run, with the course's own seeding and thread setting."""
    seed_everything(0)  # as every notebook's setup cell does (it also sets torch's CPU threads)
    return Headlines(
        cnn_step=step_time_ratio(repeats=10),
        resnet_step=resnet18_step_time_ratio(),
        cached_epoch=course_cached_epoch_speedup(),
        accuracy=transfer_vs_scratch(),
    )


# ---- notebooks and report --------------------------------------------------------------
def notebook_times(paths: list[Path]) -> dict[str, float]:
    """Seconds to execute each notebook in a fresh kernel (outputs discarded)."""
    return {path.name: execute(path, write=False)[1] for path in paths}


def _load() -> str:
    """The 1-minute load average: timings from a busy machine are slower than from a quiet one."""
    try:
        return f"; load average {os.getloadavg()[0]:.1f} when the report was written"
    except (AttributeError, OSError):  # not available on every OS
        return ""


def _yes(ok: bool) -> str:
    return "yes" if ok else "**NO**"


def report(times: Mapping[str, float], headlines: Headlines) -> str:
    """The Markdown report: notebook times against budgets, headline ratios against targets."""
    lines = [
        "# Benchmark",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__} using "
        f"{torch.get_num_threads()} thread(s){_load()}",
        "",
    ]
    met: list[bool] = []
    if times:
        total = sum(times.values())
        lines += ["| notebook | seconds | within budget |", "| --- | ---: | --- |"]
        for name, seconds in times.items():
            met.append(seconds <= NOTEBOOK_BUDGET_S)
            lines.append(f"| {name} | {seconds:.1f} | {_yes(met[-1])} (≤ {NOTEBOOK_BUDGET_S:.0f} s) |")
        met.append(total <= COURSE_BUDGET_S)
        lines += [f"| **total** | **{total:.1f}** | {_yes(met[-1])} (≤ {COURSE_BUDGET_S:.0f} s) |", ""]
    lines += ["| headline | measured | target | met |", "| --- | ---: | ---: | --- |"]
    for key, value in headlines.values().items():
        target = TARGETS[key]
        met.append(target.met(value))
        number = f"{value:.2f}×" if target.unit == "×" else f"{value:+.1f}{target.unit}"
        lines.append(f"| {target.what} | {number} | ≥ {target.minimum:g}{target.unit} | {_yes(met[-1])} |")
    if headlines.accuracy:
        seeds = len(next(iter(headlines.accuracy.values()))["scratch"])
        lines += [
            "",
            f"Test accuracy on digits 5–9 (500 images), mean of {seeds} seeds (min–max):",
            "",
            "| labels per class | scratch | frozen backbone + new head | gap (points) |",
            "| ---: | ---: | ---: | ---: |",
        ]
        for k, runs in headlines.accuracy.items():
            cells = [f"{mean(runs[s]):.1f} % ({min(runs[s]):.0f}–{max(runs[s]):.0f})" for s in ("scratch", "frozen")]
            gap = mean(runs["frozen"]) - mean(runs["scratch"])
            lines.append(f"| {k} | {cells[0]} | {cells[1]} | {gap:+.1f} |")
    if not TARGETS["cached_epoch"].met(headlines.cached_epoch):
        lines += [
            "",
            "Feature caching misses the design's 20× on the course CNN: its backbone is tiny, so the",
            "head's fixed cost per step (dropout mask, Adam update) dominates an epoch on cached features.",
            "Notebook 04 explains this; the saving grows with the backbone (ResNet-sized models).",
        ]
    lines += ["", f"**{sum(met)} of {len(met)} targets met.**"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-notebooks", action="store_true", help="measure the headline ratios only")
    args = parser.parse_args(argv)
    paths = [] if args.no_notebooks else sorted((REPO_ROOT / "notebooks").glob("[0-9]*.ipynb"))
    times = {}
    for path in paths:
        times.update(notebook_times([path]))
        print(f"{path.name}: {times[path.name]:.1f} s", flush=True)
    text = report(times, measure_headlines())
    out = REPO_ROOT / "bench" / "results.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)
    print(text)
    print(f"written to {out.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
