"""`make bench`: time every notebook and measure the headline ratios in one run.

Prints a Markdown report and writes it to bench/results.md. Notebooks are executed in a
fresh kernel but not rewritten.
"""
from __future__ import annotations

import platform
import sys
from pathlib import Path

import torch

from .freezing import freeze
from .measure import speedups, time_calls, training_step
from .models import CourseCNN
from .paths import REPO_ROOT
from .run_notebooks import execute

NOTEBOOK_BUDGET_S = 30.0
COURSE_BUDGET_S = 120.0


def step_time_ratio(batch_size: int = 64, repeats: int = 20) -> float:
    """Full fine-tuning step time / frozen-backbone step time on the course CNN (CPU)."""
    torch.manual_seed(0)
    x, y = torch.rand(batch_size, 1, 28, 28), torch.randint(0, 5, (batch_size,))
    full, frozen = CourseCNN(), CourseCNN()
    freeze(frozen, "block1", "block2", "block3")
    steps = {
        name: training_step(model, torch.optim.Adam([p for p in model.parameters() if p.requires_grad]), x, y)
        for name, model in {"full": full, "frozen": frozen}.items()
    }
    return speedups(time_calls(steps, repeats=repeats), baseline="full")["frozen"]


def notebook_times(paths: list[Path]) -> dict[str, float]:
    """Seconds to execute each notebook in a fresh kernel (outputs discarded)."""
    return {path.name: execute(path, write=False)[1] for path in paths}


def report(times: dict[str, float], ratio: float) -> str:
    """The Markdown report."""
    total = sum(times.values())
    lines = [
        "# Benchmark",
        "",
        f"Machine: {platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
        "",
        "| notebook | seconds | within budget |",
        "| --- | ---: | --- |",
    ]
    lines += [f"| {name} | {s:.1f} | {'yes' if s <= NOTEBOOK_BUDGET_S else 'NO'} |" for name, s in times.items()]
    lines += [
        f"| **total** | **{total:.1f}** | {'yes' if total <= COURSE_BUDGET_S else 'NO'} (budget {COURSE_BUDGET_S:.0f} s) |",
        "",
        "| headline ratio | measured |",
        "| --- | ---: |",
        f"| course CNN: frozen-backbone step vs full fine-tuning step (speed-up) | {ratio:.2f}× |",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    paths = sorted((REPO_ROOT / "notebooks").glob("[0-9]*.ipynb"))
    text = report(notebook_times(paths), step_time_ratio())
    out = REPO_ROOT / "bench" / "results.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)
    print(text)
    print(f"written to {out.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
