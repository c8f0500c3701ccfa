"""`make bench`: time every notebook and measure the headline ratios in one run.

    python -m tools.bench                 # notebooks + headline ratios -> docs/benchmark.md
    python -m tools.bench --no-notebooks  # headline ratios only, printed (one to two minutes)

Prints a Markdown report (machine, date, seconds per notebook, total, headline ratios) and
writes it to docs/benchmark.md, the committed report that README.md and docs/INSTRUCTOR.md
quote (tests/test_doc_numbers.py checks that they quote it faithfully). A full run also
refreshes the timings those two files quote, so they never disagree with the report: in a
Markdown table row that names one notebook (e.g. `01_layers`), the first cell holding seconds,
and the total between `<!-- bench:total -->` and `<!-- /bench:total -->`. A run without the
notebooks writes a file only when --output names one, so it cannot replace the committed
report with a partial one. Notebooks are executed in a fresh kernel but not rewritten.
Speed claims are ratios of interleaved medians (`measure.time_calls`, in CPU time on one thread), so
background load hits both candidates alike and the time given to other programs does not count.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import os
import platform
import re
import statistics
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from course_utils.data import TARGET_CLASSES, batches, make_task
from course_utils.experiment import (
    MIN_EFFECT,
    MIN_SEEDS_FOR_VERDICT,
    NO_CLEAR_DIFFERENCE,
    Budget,
    Comparison,
    Paired,
    compare_each,
)
from course_utils.freezing import freeze
from course_utils.measure import speedups, step_to_time, time_calls
from course_utils.models import COURSE_CNN_BACKBONE, CourseCNN, load_pretrained, replace_head
from course_utils.optim_groups import trainable_parameters
from course_utils.parallel import default_workers
from course_utils.setups import (
    CLOSE_CALL_SEEDS,
    LONG_TRANSFER_ARMS,
    LONG_TRANSFER_BUDGET,
    LONG_TRANSFER_LABELS,
    TRANSFER_BUDGET,
    TRANSFER_LABELS,
    TRANSFER_SEEDS,
    VAL_PER_CLASS,
    transfer_arms,
    transfer_task,
)
from course_utils.training import seed_everything, train_step
from tools import REPO_ROOT
from tools.run_notebooks import execute

REPORT = Path("docs") / "benchmark.md"  # relative to the repository root
DOCS_WITH_TIMINGS: tuple[Path, ...] = (Path("README.md"), Path("docs") / "INSTRUCTOR.md")
TOTAL_MARK = re.compile(r"(<!-- bench:total -->)[^<]*(<!-- /bench:total -->)")
SECONDS_CELL = re.compile(r"^\s*\d+(?:\.\d+)?\s?s\s*$")
NOTEBOOK_BUDGET_S = 30.0
CLOSE_CALL_POINTS = 2.0  # a "beats" verdict this close to the margin, on fewer seeds than CLOSE_CALL_SEEDS, says so
COURSE_BUDGET_S = 120.0
# Scratch vs frozen backbone vs full fine-tuning with few labels: notebook 04's comparison, imported from
# course_utils.experiment (same arms, budget, seeds and tasks), so the report prints 04's numbers; and 04's
# second budget (8x the steps, frozen vs scratch, 5 seeds), since a verdict holds for the budget it was measured at.


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
    "resnet_step": Target(
        "resnet18 (weights=None), 64 px, batch 16: frozen-backbone step vs full step (speed-up)", 1.5
    ),
    # The course design expects about 5-8x on the tiny course CNN (the head's fixed per-step cost dominates).
    "cached_epoch": Target("cached-feature head epoch vs running the frozen backbone every epoch (speed-up)", 4.0),
    "transfer_gap": Target(
        "frozen transfer minus scratch test accuracy, mean paired difference at 1 and 3 labels/class (the smaller)",
        5.0,
        " points",
    ),
}


@dataclass
class Headlines:
    """The headline measurements of one run."""

    cnn_step: float
    resnet_step: float
    cached_epoch: float
    accuracy: dict[int, dict[str, list[float]]] = field(default_factory=dict)  # k -> arm -> per-seed %, seed order
    recipe: str = ""  # how the accuracies were trained (the budget), for the report
    long_accuracy: dict[int, dict[str, list[float]]] = field(default_factory=dict)  # the same at the longer budget
    long_recipe: str = ""
    capped: list[str] = field(default_factory=list)  # runs whose chosen lr is still on the edge of the lrs tried

    def paired(self, k: int, a: str = "frozen", b: str = "scratch", long: bool = False) -> Paired:
        """Test accuracy of arm ``a`` minus arm ``b`` at ``k`` labels per class, seed by seed (points);
        ``long=True``: at the longer budget."""
        runs = (self.long_accuracy if long else self.accuracy)[k]
        return Paired(a, b, tuple(x - y for x, y in zip(runs[a], runs[b])))

    def transfer_gap(self, ks: Sequence[int] = (1, 3)) -> float:
        """The smallest mean paired (frozen − scratch) accuracy gap, in points, over ``ks``."""
        return min(self.paired(k).mean for k in ks)

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
        name: step_to_time(model, torch.optim.Adam(trainable_parameters(model)), x, y)
        for name, model in {"full": full, "frozen": frozen}.items()
    }
    return speedups(time_calls(steps, repeats=repeats, warmup=warmup), baseline="full")["frozen"]


def step_time_ratio(batch_size: int = 64, repeats: int = 20) -> float:
    """Full fine-tuning step time / frozen-backbone step time on the course CNN (CPU)."""
    torch.manual_seed(0)
    x, y = torch.rand(batch_size, 1, 28, 28), torch.randint(0, 5, (batch_size,))
    return frozen_step_speedup(CourseCNN, lambda m: freeze(m, *COURSE_CNN_BACKBONE), x, y, repeats)


def resnet18_step_time_ratio(image_size: int = 64, batch_size: int = 16, repeats: int = 5) -> float:
    """The same ratio on torchvision's resnet18 architecture (random weights, no download)."""
    from torchvision.models import resnet18

    def freeze_all_but_fc(model: nn.Module) -> None:
        for name, param in model.named_parameters():
            param.requires_grad_(name.startswith("fc."))

    torch.manual_seed(0)
    x, y = torch.rand(batch_size, 3, image_size, image_size), torch.randint(0, 5, (batch_size,))
    return frozen_step_speedup(
        lambda: resnet18(weights=None, num_classes=5), freeze_all_but_fc, x, y, repeats, warmup=2
    )


# ---- feature caching -------------------------------------------------------------------
def head_epoch(
    head: nn.Module,
    inputs: torch.Tensor,
    y: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    batch_size: int,
    backbone: Callable[[torch.Tensor], torch.Tensor] | None = None,
    seed: int = 0,
) -> None:
    """One epoch of head training; the frozen ``backbone`` (if given) runs on every batch."""
    head.train()
    for xb, yb in batches(inputs, y, batch_size, torch.Generator().manual_seed(seed)):
        if backbone is not None:
            with torch.no_grad():
                xb = backbone(xb)
        train_step(head, optimizer, xb, yb)


def cached_epoch_speedup(
    backbone: Callable[[torch.Tensor], torch.Tensor],
    head: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int = 250,
    repeats: int = 3,
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
    freeze(model, *COURSE_CNN_BACKBONE)
    task = make_task(TARGET_CLASSES)
    torch.manual_seed(0)
    head = replace_head(model, task.n_classes)
    return cached_epoch_speedup(model.features, head, task.x_train, task.y_train, batch_size, repeats)


# ---- transfer vs scratch with few labels -----------------------------------------------
def transfer_comparisons(
    ks: Sequence[int] = TRANSFER_LABELS,
    seeds: Sequence[int] = TRANSFER_SEEDS,
    budget: Budget = TRANSFER_BUDGET,
    arms: Sequence[str] | None = None,
) -> dict[int, Comparison]:
    """04's comparison for each ``k``: its arms (those named in ``arms``, default all three), each with
    ``budget`` (the same steps) and its own lr, chosen on a validation split."""
    chosen = [arm for arm in transfer_arms() if arms is None or arm.name in arms]
    return compare_each(chosen, {k: functools.partial(transfer_task, k) for k in ks}, budget, seeds)


def accuracies_of(comparisons: Mapping[int, Comparison]) -> dict[int, dict[str, list[float]]]:
    """k -> arm -> test accuracy (%) per seed, in seed order."""
    return {k: {arm: [float(a) for a in c.test_acc(arm)] for arm in c.arms} for k, c in comparisons.items()}


def transfer_vs_scratch(
    ks: Sequence[int] = TRANSFER_LABELS,
    seeds: Sequence[int] = TRANSFER_SEEDS,
    budget: Budget = TRANSFER_BUDGET,
    arms: Sequence[str] | None = None,
) -> dict[int, dict[str, list[float]]]:
    """Test accuracy (%) on digits 5-9 of 04's arms (scratch, frozen, full), per seed, for each ``k``."""
    return accuracies_of(transfer_comparisons(ks, seeds, budget, arms))


def longer_budget(
    ks: Sequence[int] = LONG_TRANSFER_LABELS,
    seeds: Sequence[int] = CLOSE_CALL_SEEDS,
    budget: Budget = LONG_TRANSFER_BUDGET,
    arms: Sequence[str] = LONG_TRANSFER_ARMS,
) -> dict[int, Comparison]:
    """04's second budget: frozen backbone vs scratch with 8x the steps, 5 seeds."""
    return transfer_comparisons(ks, seeds, budget, arms)


def recipe(budget: Budget, arms: Sequence[str] | None = None) -> str:
    """The budget in words, with each arm's own learning-rate grid (as ``Arm.grid`` gives it)."""
    grids: dict[str, list[str]] = {}
    for arm in transfer_arms():
        if arms is None or arm.name in arms:
            grids.setdefault(", ".join(f"{lr:g}" for lr in arm.grid(budget)), []).append(arm.name)
    choices = "; ".join(f"{' and '.join(names)} from {{{grid}}}" for grid, names in grids.items())
    extended = f", extended past an edge that wins (up to {budget.max_extensions} more)" * bool(budget.max_extensions)
    return (
        f"{budget.steps} {budget.optimizer} steps of {budget.batch_size} images; lr chosen on validation "
        f"({VAL_PER_CLASS} images per class): {choices}{extended}"
    )


def capped_runs(comparisons: Mapping[int, Comparison]) -> list[str]:
    """Every run whose chosen lr is still on the edge of the lrs it tried, in words."""
    return [
        f"{k} labels/class, {c.budget.steps} steps: {arm} seed {seed}"
        for k, c in comparisons.items()
        for arm, seed in c.capped
    ]


def measure_headlines() -> Headlines:
    """Every headline ratio, measured in this run, with the course's own seeding and thread setting."""
    seed_everything(0)  # as every notebook's setup cell does (it also sets torch's CPU threads)
    cnn_step, resnet_step = step_time_ratio(repeats=10), resnet18_step_time_ratio()
    cached_epoch = course_cached_epoch_speedup()
    short, long = transfer_comparisons(), longer_budget()
    return Headlines(
        cnn_step=cnn_step,
        resnet_step=resnet_step,
        cached_epoch=cached_epoch,
        accuracy=accuracies_of(short),
        recipe=recipe(TRANSFER_BUDGET),
        long_accuracy=accuracies_of(long),
        long_recipe=recipe(LONG_TRANSFER_BUDGET, LONG_TRANSFER_ARMS),
        capped=capped_runs(short) + capped_runs(long),
    )


# ---- notebooks and report --------------------------------------------------------------
def notebook_times(paths: list[Path]) -> dict[str, float]:
    """Seconds to execute each notebook in a fresh kernel (outputs discarded)."""
    return {path.name: execute(path, write=False)[1] for path in paths}


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name") and ":" in line:
                return line.split(":", 1)[1].strip()
    except OSError:  # not Linux
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _load() -> str:
    """The 1-minute load average: timings from a busy machine are slower than from a quiet one."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except (AttributeError, OSError):  # not available on every OS
        return "not available"


def machine() -> dict[str, str]:
    """What the timings depend on: CPU, cores, torch and its thread count, load, date (UTC)."""
    return {
        "CPU": f"{cpu_model()} ({platform.machine()}), {os.cpu_count()} cores",
        "software": f"Python {platform.python_version()}, torch {torch.__version__} "
        f"using {torch.get_num_threads()} thread(s); `compare` in {default_workers()} worker process(es) "
        "(`COURSE_WORKERS`)",
        "load average (1 min) when written": _load(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _verdict(pair: Paired) -> str:
    """The course's verdict (`Paired.verdict`), given only with enough seeds."""
    seeds = len(pair.diffs)
    if seeds < MIN_SEEDS_FOR_VERDICT:
        return f"too few seeds for a verdict (< {MIN_SEEDS_FOR_VERDICT})"
    verdict = pair.verdict()
    if (
        verdict != NO_CLEAR_DIFFERENCE
        and abs(pair.mean) - MIN_EFFECT < CLOSE_CALL_POINTS
        and seeds < len(CLOSE_CALL_SEEDS)
    ):
        return (
            f"{verdict}, near the margin: with no real difference {seeds} seeds agree in sign 1 time in "
            f"{2 ** (seeds - 1)} (notebook 04 adds seeds)"
        )
    return verdict


def _seeds(accuracy: Mapping[int, Mapping[str, Sequence[float]]]) -> int:
    return len(next(iter(next(iter(accuracy.values())).values())))


def _accuracy_table(headlines: Headlines, long: bool) -> list[str]:
    """Per label count: each arm's accuracy, and the paired differences with their verdicts."""
    accuracy = headlines.long_accuracy if long else headlines.accuracy
    arms = list(next(iter(accuracy.values())))
    pairs = [(a, b) for a, b in (("frozen", "scratch"), ("full", "frozen")) if a in arms and b in arms]
    lines = [
        "| labels per class | " + " | ".join(arms) + "".join(f" | {a} − {b} | verdict" for a, b in pairs) + " |",
        "| ---: | " + " | ".join("---:" for _ in arms) + " | ---: | ---" * len(pairs) + " |",
    ]
    for k, runs in accuracy.items():
        cells = [f"{mean(runs[a]):.1f} ({min(runs[a]):.1f}–{max(runs[a]):.1f})" for a in arms]
        for a, b in pairs:
            pair = headlines.paired(k, a, b, long=long)
            cells += [f"{pair.mean:+.1f} ({pair.low:+.1f} to {pair.high:+.1f})", _verdict(pair)]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    return lines


def _yes(ok: bool) -> str:
    return "yes" if ok else "**NO**"


def report(times: Mapping[str, float], headlines: Headlines, about: Mapping[str, str] | None = None) -> str:
    """The Markdown report: the machine, notebook times against budgets, headline ratios against targets.

    ``about`` describes the machine and date (default: this machine, now).
    """
    about = machine() if about is None else about
    lines = [
        "# Benchmark",
        "",
        "Written by `make bench` (`python -m tools.bench`); README.md and docs/INSTRUCTOR.md quote",
        "their timings from this file. Re-run it on your own hardware: absolute times depend on the",
        "machine and on what else it is doing, the ratios much less.",
        "",
        *[f"- **{key}:** {value}" for key, value in about.items()],
        "",
    ]
    met: list[bool] = []
    if times:
        total = sum(times.values())
        lines += [
            "Seconds to execute each notebook top to bottom in a fresh kernel (kernel start-up included):",
            "",
            "| notebook | executes in | within budget |",
            "| --- | ---: | --- |",
        ]
        for name, seconds in times.items():
            met.append(seconds <= NOTEBOOK_BUDGET_S)
            lines.append(f"| {name} | {seconds:.1f} s | {_yes(met[-1])} (≤ {NOTEBOOK_BUDGET_S:.0f} s) |")
        met.append(total <= COURSE_BUDGET_S)
        lines += [f"| **total** | **{total:.1f} s** | {_yes(met[-1])} (≤ {COURSE_BUDGET_S:.0f} s) |", ""]
    lines += [
        "Headline ratios, measured in the same run (speed-ups are ratios of interleaved medians):",
        "",
        "| headline | measured | target | met |",
        "| --- | ---: | ---: | --- |",
    ]
    for key, value in headlines.values().items():
        target = TARGETS[key]
        met.append(target.met(value))
        number = f"{value:.2f}×" if target.unit == "×" else f"{value:+.1f}{target.unit}"
        lines.append(f"| {target.what} | {number} | ≥ {target.minimum:g}{target.unit} | {_yes(met[-1])} |")
    if headlines.accuracy:
        lines += [
            "",
            f"Test accuracy (%) on digits 5–9 (500 test images), {_seeds(headlines.accuracy)} seeds: mean (min–max). "
            "A − B is the",
            "paired difference in points (same seed, same labelled images): mean (min to max), with the course's",
            "verdict (every seed the same sign and the mean beyond 1 point). Notebook 04 runs the same comparison.",
            "Budget per arm: " + (headlines.recipe or "not recorded") + ".",
            "",
            *_accuracy_table(headlines, long=False),
        ]
    if headlines.long_accuracy:
        lines += [
            "",
            f"The same comparison with a longer budget, {_seeds(headlines.long_accuracy)} seeds (notebook 04 measures "
            "it too: a verdict holds for the",
            "budget it was measured at). Budget per arm: " + (headlines.long_recipe or "not recorded") + ".",
            "",
            *_accuracy_table(headlines, long=True),
        ]
    if headlines.capped:
        lines += [
            "",
            "**Warning:** the chosen lr is still on the edge of the lrs tried for " + "; ".join(headlines.capped),
        ]
    if not TARGETS["cached_epoch"].met(headlines.cached_epoch):
        lines += [
            "",
            "Feature caching saves less than the course design expects (about 5–8× on the course CNN). The",
            "backbone is tiny, so the head's fixed cost per step (dropout mask, Adam update) dominates an epoch",
            "on cached features, and that cost grows on a busy machine; re-run `make bench` on a quiet one.",
        ]
    lines += ["", f"**{sum(met)} of {len(met)} targets met.**"]
    return "\n".join(lines) + "\n"


def refresh_timings(text: str, times: Mapping[str, float]) -> str:
    """``text`` (a Markdown document) with the seconds of this run: in each table row that names exactly one
    notebook, its first cell holding seconds (``| 7 s |``); and the total between the bench:total markers."""
    seconds = {Path(name).stem: value for name, value in times.items()}
    lines = text.split("\n")
    for index, line in enumerate(lines):
        if not line.lstrip().startswith("|"):
            continue
        named = [stem for stem in seconds if re.search(rf"(?<!\w){re.escape(stem)}(?!\w)", line)]
        if len(named) != 1:
            continue
        cells = line.split("|")
        for position, cell in enumerate(cells):
            if SECONDS_CELL.match(cell):
                cells[position] = f" {seconds[named[0]]:.1f} s "
                lines[index] = "|".join(cells)
                break
    total = f"{sum(times.values()):.1f} s"
    return TOTAL_MARK.sub(lambda m: f"{m[1]}{total}{m[2]}", "\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-notebooks", action="store_true", help="measure the headline ratios only (prints them)")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"where to write the report (default: {REPORT} for a full run, nowhere with --no-notebooks)",
    )
    parser.add_argument("--keep-docs", action="store_true", help="do not refresh the timings in README/INSTRUCTOR")
    args = parser.parse_args(argv)
    paths = [] if args.no_notebooks else sorted((REPO_ROOT / "notebooks").glob("[0-9]*.ipynb"))
    times = {}
    for path in paths:
        times.update(notebook_times([path]))
        print(f"{path.name}: {times[path.name]:.1f} s", flush=True)
    text = report(times, measure_headlines())
    print(text)
    out = args.output if args.output is not None else (None if args.no_notebooks else REPO_ROOT / REPORT)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        shown = out.relative_to(REPO_ROOT) if out.is_relative_to(REPO_ROOT) else out
        print(f"written to {shown}")
    if times and args.output is None and not args.keep_docs:
        for doc in DOCS_WITH_TIMINGS:
            path = REPO_ROOT / doc
            if path.exists() and (new := refresh_timings(old := path.read_text(), times)) != old:
                path.write_text(new)
                print(f"timings refreshed in {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
