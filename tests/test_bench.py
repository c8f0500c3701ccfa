"""`make bench`: the pure parts (ratios on tiny models, targets, the report), no notebooks run."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from torch import nn

from course_utils.experiment import Budget
from course_utils.measure import Timing
from course_utils.setups import transfer_task
from tools import bench
from tools.bench import (
    TARGETS,
    Headlines,
    Target,
    cached_epoch_speedup,
    frozen_step_speedup,
    head_epoch,
    report,
)

ACCURACY = {
    1: {"scratch": [30.0, 40.0, 50.0], "frozen": [60.0, 65.0, 70.0], "full": [50.0, 55.0, 60.0]},
    3: {"scratch": [55.0, 60.0, 65.0], "frozen": [62.0, 63.0, 64.0], "full": [62.5, 63.0, 63.5]},
    10: {"scratch": [80.0, 80.0, 80.0], "frozen": [90.0, 90.0, 90.0], "full": [92.0, 93.0, 94.0]},
}


@contextmanager
def fake_clock(monkeypatch: pytest.MonkeyPatch, **seconds: float) -> Iterator[list[str]]:
    """Replace bench's clock: each candidate runs once (it must work) and takes ``seconds[name]``.

    Yields the names timed, in order. The ratios then follow from their definition alone."""
    timed: list[str] = []

    def time_calls(fns, repeats: int, warmup: int, device=None) -> dict[str, Timing]:
        for name, fn in fns.items():
            fn()
            timed.append(name)
        return {name: Timing(seconds[name], (seconds[name],) * repeats) for name in fns}

    with monkeypatch.context() as patched:
        patched.setattr(bench, "time_calls", time_calls)
        yield timed


ABOUT = {"CPU": "Test CPU (x86_64), 2 cores", "date": "2030-01-02 03:04 UTC"}


def headlines(cached: float = 25.0, accuracy: dict | None = None) -> Headlines:
    return Headlines(
        cnn_step=1.9,
        resnet_step=2.75,
        cached_epoch=cached,
        accuracy=accuracy or ACCURACY,
        recipe="24 adam steps of 50 images",
    )


def test_transfer_gap_is_the_smaller_mean_paired_gap_at_one_and_three_labels() -> None:
    assert headlines().transfer_gap() == pytest.approx(3.0)  # k=1: +25, k=3: +3
    assert headlines().transfer_gap(ks=(10,)) == pytest.approx(10.0)
    pair = headlines().paired(3)  # seed by seed: 62-55, 63-60, 64-65
    assert pair.diffs == (7.0, 3.0, -1.0) and not pair.same_sign


def test_targets() -> None:
    assert Target("x", 20.0).met(20.0) and not Target("x", 20.0).met(19.9)
    assert set(headlines().values()) == set(TARGETS)


def test_report_with_notebooks() -> None:
    text = report({"01_layers.ipynb": 12.34, "06_training_dynamics.ipynb": 31.0}, headlines(), ABOUT)
    assert "- **CPU:** Test CPU (x86_64), 2 cores" in text and "- **date:** 2030-01-02 03:04 UTC" in text
    assert "| 01_layers.ipynb | 12.3 s | yes (≤ 30 s) |" in text
    assert "| 06_training_dynamics.ipynb | 31.0 s | **NO** (≤ 30 s) |" in text
    assert "| **total** | **43.3 s** | yes (≤ 120 s) |" in text
    assert "| 1.90× | ≥ 1.3× | yes |" in text and "| 25.00× | ≥ 4× | yes |" in text
    assert "| +3.0 points | ≥ 5 points | **NO** |" in text  # the k=3 gap is too small
    header = "| labels per class | scratch | frozen | full | frozen − scratch | verdict | full − frozen | verdict |"
    assert header in text
    assert (
        "| 1 | 40.0 (30.0–50.0) | 65.0 (60.0–70.0) | 55.0 (50.0–60.0) | +25.0 (+20.0 to +30.0) | "
        "frozen beats scratch | -10.0 (-10.0 to -10.0) | frozen beats full |"
    ) in text
    assert "| +3.0 (-1.0 to +7.0) | no clear difference at this budget |" in text  # signs differ across seeds
    assert "| +0.0 (-0.5 to +0.5) | no clear difference at this budget |" in text  # k=3, full vs frozen
    assert "| +3.0 (+2.0 to +4.0) | full beats frozen |" in text
    assert "3 seeds: mean (min–max)" in text and "Budget per arm: 24 adam steps of 50 images." in text
    assert "saves less than the course design expects" not in text
    assert text.rstrip().endswith("**5 of 7 targets met.**")


def test_report_without_notebooks_explains_a_missed_caching_target() -> None:
    text = report({}, headlines(cached=3.2), ABOUT)
    assert "| notebook |" not in text and "| 3.20× | ≥ 4× | **NO** |" in text
    assert "saves less than the course design expects" in text and text.rstrip().endswith("**2 of 4 targets met.**")


def test_frozen_step_speedup_on_a_tiny_model(monkeypatch) -> None:
    def make() -> nn.Module:
        return nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 3))

    def freeze_backbone(model: nn.Module) -> None:
        for param in model[:4].parameters():
            param.requires_grad_(False)

    x, y = torch.rand(16, 8), torch.randint(0, 3, (16,))
    with fake_clock(monkeypatch, full=3.0, frozen=1.5) as timed:
        ratio = frozen_step_speedup(make, freeze_backbone, x, y, repeats=3, warmup=1)
    assert ratio == pytest.approx(2.0), "the speed-up is full time / frozen time, not the inverse"
    assert timed == ["full", "frozen"]


def test_head_epoch_trains_the_head_and_leaves_the_backbone_alone(monkeypatch) -> None:
    torch.manual_seed(0)
    backbone, head = nn.Linear(4, 6).requires_grad_(False), nn.Linear(6, 2)
    x, y = torch.rand(20, 4), torch.randint(0, 2, (20,))
    before_backbone, before_head = backbone.weight.clone(), head.weight.clone()
    head_epoch(head, x, y, torch.optim.SGD(head.parameters(), lr=0.1), batch_size=8, backbone=backbone)
    assert torch.equal(backbone.weight, before_backbone) and not torch.equal(head.weight, before_head)
    with fake_clock(monkeypatch, **{"backbone every epoch": 4.0, "cached features": 0.5}) as timed:
        ratio = cached_epoch_speedup(backbone, head, x, y, batch_size=8, repeats=2)
    assert ratio == pytest.approx(8.0), "the speed-up is backbone-every-epoch time / cached time"
    assert sorted(timed) == ["backbone every epoch", "cached features"]


def test_verdicts_need_every_seed_to_agree_a_margin_and_three_seeds() -> None:
    worse = {
        1: {"scratch": [70.0, 71.0, 72.0], "frozen": [60.0, 61.0, 70.0]},
        3: {"scratch": [1.0, 2.0, 3.0], "frozen": [1.5, 2.5, 3.5]},
    }
    text = report({}, headlines(accuracy=worse), ABOUT)
    assert "| scratch beats frozen |" in text and "full − frozen" not in text  # only the arms that ran
    assert "| +0.5 (+0.5 to +0.5) | no clear difference at this budget |" in text  # same sign, within 1 point
    far = {"scratch": [0.0, 0.0, 0.0], "frozen": [10.0, 10.0, 10.0]}
    close = {1: {"scratch": [1.0, 2.0, 3.0], "frozen": [3.0, 4.0, 5.5]}, 3: far}  # +2.2: a win near the margin
    text = report({}, headlines(accuracy=close), ABOUT)
    assert (
        "| +2.2 (+2.0 to +2.5) | frozen beats scratch, near the margin: with no real difference 3 seeds agree in sign "
        "1 time in 4 (notebook 04 adds seeds) |"
    ) in text
    assert "| +10.0 (+10.0 to +10.0) | frozen beats scratch |" in text  # far from the margin: no note
    five = {k: {arm: [*runs, runs[-1] + 1, runs[-1] + 2] for arm, runs in close[k].items()} for k in close}
    assert "| +2.3 (+2.0 to +2.5) | frozen beats scratch |\n" in report({}, headlines(accuracy=five), ABOUT)  # 5 seeds
    two_seeds = {k: {a: v[:2] for a, v in runs.items()} for k, runs in ACCURACY.items()}
    assert "too few seeds for a verdict (< 3)" in report({}, headlines(accuracy=two_seeds), ABOUT)


def test_machine_names_cpu_cores_torch_and_date() -> None:
    about = bench.machine()
    assert bench.cpu_model().strip() and f"{__import__('os').cpu_count()} cores" in about["CPU"]
    assert f"torch {torch.__version__}" in about["software"] and about["date"].endswith("UTC")


def _fake_run(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(bench, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(bench, "measure_headlines", headlines)
    monkeypatch.setattr(bench, "machine", lambda: ABOUT)
    monkeypatch.setattr(bench, "notebook_times", lambda paths: {p.name: 5.0 for p in paths})
    (tmp_path / "notebooks").mkdir()
    for name in ("01_layers.ipynb", "02_gradients.ipynb"):
        (tmp_path / "notebooks" / name).write_text("{}")


README = """The course runs in <!-- bench:total -->104 s<!-- /bench:total -->.

| # | notebook | you will learn | runs in |
| --- | --- | --- | ---: |
| 01 | `01_layers` | what a layer is: 3 s of fun | 7 s |
| 02 | `02_gradients` | one step | 7.25 s |
| 03 | `03_freezing` | not timed in this run | 9 s |
| 01 | `01_layers` vs `02_gradients` | a row naming two notebooks | 1 s |
`01_layers` outside a table: 7 s
"""
INSTRUCTOR = "| notebook | working time | executes in | what |\n| 01_layers | 20 min | 7 s | layers |\n"


def test_refresh_timings_rewrites_the_seconds_of_each_notebook_row_and_the_total() -> None:
    times = {"01_layers.ipynb": 9.51, "02_gradients.ipynb": 12.0}
    text = bench.refresh_timings(README, times)
    assert "<!-- bench:total -->21.5 s<!-- /bench:total -->" in text
    assert "| 01 | `01_layers` | what a layer is: 3 s of fun | 9.5 s |" in text  # only a cell that is just seconds
    assert "| 02 | `02_gradients` | one step | 12.0 s |" in text
    assert "| 03 | `03_freezing` | not timed in this run | 9 s |" in text  # not in this run: untouched
    assert "| a row naming two notebooks | 1 s |" in text and "`01_layers` outside a table: 7 s" in text
    assert bench.refresh_timings(INSTRUCTOR, times) == INSTRUCTOR.replace("| 7 s |", "| 9.5 s |")
    assert bench.refresh_timings(text, times) == text  # idempotent


def test_a_full_run_writes_the_committed_report_and_refreshes_the_docs(tmp_path: Path, monkeypatch, capsys) -> None:
    _fake_run(tmp_path, monkeypatch)
    (tmp_path / "README.md").write_text(README)
    assert bench.main([]) == 0
    written = (tmp_path / "docs" / "benchmark.md").read_text()
    assert written == report({"01_layers.ipynb": 5.0, "02_gradients.ipynb": 5.0}, headlines(), ABOUT)
    out = capsys.readouterr().out
    assert "| **total** | **10.0 s** |" in written and "written to docs/benchmark.md" in out
    assert "| 5.0 s |" in (tmp_path / "README.md").read_text() and "timings refreshed in README.md" in out
    (tmp_path / "README.md").write_text(README)
    assert bench.main(["--keep-docs"]) == 0 and (tmp_path / "README.md").read_text() == README


def test_a_run_without_notebooks_does_not_replace_the_report(tmp_path: Path, monkeypatch, capsys) -> None:
    _fake_run(tmp_path, monkeypatch)
    assert bench.main(["--no-notebooks"]) == 0
    assert not (tmp_path / "docs").exists() and "written to" not in capsys.readouterr().out
    out = tmp_path / "ratios.md"
    assert bench.main(["--no-notebooks", "--output", str(out)]) == 0
    assert out.read_text() == report({}, headlines(), ABOUT)


def test_measured_ratios_run_on_tiny_settings(monkeypatch) -> None:
    with fake_clock(monkeypatch, full=2.5, frozen=1.0) as timed:
        assert bench.step_time_ratio(batch_size=8, repeats=2) == pytest.approx(2.5)
        assert bench.resnet18_step_time_ratio(image_size=32, batch_size=2, repeats=1) == pytest.approx(2.5)
    assert timed == ["full", "frozen"] * 2, "each ratio times one full and one frozen training step"
    with fake_clock(monkeypatch, **{"backbone every epoch": 6.0, "cached features": 1.5}):
        assert bench.course_cached_epoch_speedup(repeats=1) == pytest.approx(4.0)


def test_transfer_comparison_is_notebook_04s() -> None:
    from course_utils import setups

    assert bench.transfer_vs_scratch.__defaults__ == (
        setups.TRANSFER_LABELS,
        setups.TRANSFER_SEEDS,
        setups.TRANSFER_BUDGET,
        None,
    ), "make bench must run notebook 04's comparison, so both print the same numbers"
    assert bench.transfer_comparisons.__defaults__ == bench.transfer_vs_scratch.__defaults__
    assert bench.longer_budget.__defaults__ == (
        setups.LONG_TRANSFER_LABELS,
        setups.CLOSE_CALL_SEEDS,
        setups.LONG_TRANSFER_BUDGET,
        setups.LONG_TRANSFER_ARMS,
    ), "make bench must run notebook 04's second, longer budget too"
    assert 30 in setups.TRANSFER_LABELS and set(setups.LONG_TRANSFER_LABELS) <= set(setups.TRANSFER_LABELS)
    assert setups.LONG_TRANSFER_BUDGET.steps > setups.TRANSFER_BUDGET.steps
    assert setups.LONG_TRANSFER_BUDGET.batch_size == setups.TRANSFER_BUDGET.batch_size
    assert setups.TRANSFER_SEEDS == setups.CLOSE_CALL_SEEDS[: len(setups.TRANSFER_SEEDS)]


def test_recipe_names_each_arms_own_grid() -> None:
    from course_utils.setups import LONG_TRANSFER_ARMS, LONG_TRANSFER_BUDGET, TRANSFER_BUDGET

    assert bench.recipe(TRANSFER_BUDGET) == (
        "16 adam steps of 25 images; lr chosen on validation (20 images per class): scratch and full from "
        "{0.001, 0.003, 0.01}; frozen from {0.003, 0.01, 0.03}, extended past an edge that wins (up to 2 more)"
    )
    assert bench.recipe(LONG_TRANSFER_BUDGET, LONG_TRANSFER_ARMS) == (
        "128 adam steps of 25 images; lr chosen on validation (20 images per class): scratch and frozen from "
        "{0.003, 0.01, 0.03}, extended past an edge that wins (up to 2 more)"
    )
    no_extension = Budget(steps=4, batch_size=5, lr_grid=(0.1, 0.2, 0.3), max_extensions=0)
    assert bench.recipe(no_extension, ("full",)).endswith("full from {0.1, 0.2, 0.3}")


def test_report_shows_the_longer_budget_and_any_capped_run() -> None:
    long = {k: {a: runs[a] for a in ("scratch", "frozen")} for k, runs in ACCURACY.items() if k in (3, 10)}
    plain = report({}, headlines(), ABOUT)
    assert "longer budget" not in plain and "Warning" not in plain
    text = report(
        {},
        Headlines(
            1.9, 2.75, 25.0, ACCURACY, "short", long, "128 adam steps", ["10 labels/class, 128 steps: scratch seed 2"]
        ),
        ABOUT,
    )
    assert "The same comparison with a longer budget, 3 seeds" in text and "Budget per arm: 128 adam steps." in text
    table = text.split("longer budget")[1]
    assert "| labels per class | scratch | frozen | frozen − scratch | verdict |" in table and "full −" not in table
    assert "| 10 | 80.0 (80.0–80.0) | 90.0 (90.0–90.0) | +10.0 (+10.0 to +10.0) | frozen beats scratch |" in table
    assert "| 1 |" not in table
    warning = "**Warning:** the chosen lr is still on the edge of the lrs tried for 10 labels/class, 128 steps: scratch"
    assert f"{warning} seed 2" in text


def test_transfer_vs_scratch_uses_the_recipe_on_a_tiny_budget() -> None:
    tiny = Budget(steps=2, batch_size=5, lr_grid=(1e-3, 3e-3, 1e-2))  # as many lrs as the frozen arm's own grid
    result = bench.transfer_vs_scratch(ks=(1,), seeds=(0, 1), budget=tiny)
    assert set(result) == {1} and set(result[1]) == {"scratch", "frozen", "full"}
    n_test = len(transfer_task(1, 0).y_test)
    correct = [a * n_test / 100 for acc in result[1].values() for a in acc]
    assert all(len(acc) == 2 for acc in result[1].values())
    assert all(c == pytest.approx(round(c), abs=1e-6) and 0 <= round(c) <= n_test for c in correct), (
        "each accuracy is a percentage of the test images answered right"
    )
    assert result == bench.transfer_vs_scratch(ks=(1,), seeds=(0, 1), budget=tiny), "training must be deterministic"
    two = bench.transfer_vs_scratch(ks=(1,), seeds=(0, 1), budget=tiny, arms=("scratch", "frozen"))
    assert two == {1: {arm: result[1][arm] for arm in ("scratch", "frozen")}}, "the same runs, fewer arms"


def test_capped_runs_name_label_count_steps_arm_and_seed() -> None:
    from course_utils.experiment import Comparison, Run

    tiny = Budget(steps=2, batch_size=5, lr_grid=(1e-3, 3e-3, 1e-2))

    def run(arm: str, seed: int, at_edge: bool) -> Run:
        return Run(arm, seed, 1e-2, 50.0, 50.0, {1e-2: 50.0}, 2, nn.Identity(), at_edge)

    comparison = Comparison((run("scratch", 0, False), run("scratch", 1, True), run("frozen", 0, True)), tiny)
    assert bench.capped_runs({3: comparison}) == [
        "3 labels/class, 2 steps: scratch seed 1",
        "3 labels/class, 2 steps: frozen seed 0",
    ]
    assert bench.capped_runs({3: Comparison((run("full", 0, False),), tiny)}) == []


def test_notebook_times_executes_without_writing(tmp_path: Path) -> None:
    import nbformat

    path = tmp_path / "tiny.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1 + 1")]), path)
    before = path.read_text()
    times = bench.notebook_times([path])
    assert list(times) == ["tiny.ipynb"] and times["tiny.ipynb"] > 0
    assert path.read_text() == before
