"""The fair-comparison recipe: lr chosen on validation, same steps for every arm, paired verdicts."""

from __future__ import annotations

import copy
import math
from collections import Counter
from collections.abc import Callable

import pytest
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from course_utils import freeze, make_task
from course_utils.data import Task
from course_utils.experiment import (
    NO_CLEAR_DIFFERENCE,
    Arm,
    Budget,
    Comparison,
    Paired,
    Run,
    compare,
    compare_each,
    extended_grid_search,
    merge,
)
from course_utils.training import train


def blobs(n: int, flip: bool = False, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two well-separated 2-D clusters; ``flip`` swaps the labels (a test set that disagrees)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randn(n, 2, generator=g) * 0.3 + (y.float() * 4 - 2).unsqueeze(1)
    return x, (1 - y) if flip else y


def blob_task(flip_test: bool = False, n_train: int = 30) -> Task:
    x_train, y_train = blobs(n_train, seed=1)
    x_val, y_val = blobs(40, seed=2)
    x_test, y_test = blobs(40, flip=flip_test, seed=3)
    return Task(x_train, y_train, x_test, y_test, (0, 1), x_val, y_val)


def mlp(task: Task) -> nn.Module:
    return nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, task.n_classes))


# --- the recipe -------------------------------------------------------------------------------


def test_lr_is_chosen_on_validation_not_on_test() -> None:
    """Validation rewards learning, the (label-flipped) test set punishes it: the recipe must follow validation."""
    budget = Budget(steps=30, batch_size=10, lr_grid=(1e-7, 0.1))
    result = compare([Arm("mlp", build=mlp)], lambda seed: blob_task(flip_test=True), budget, seeds=[0, 1, 2])
    for seed in result.seeds:
        run = result.run("mlp", seed)
        assert run.val_by_lr[0.1] > run.val_by_lr[1e-7], "the test task is built so that lr 0.1 wins on validation"
        assert run.lr == 0.1 and run.val_acc >= 95
        assert run.test_acc <= 5, "the reported number is the chosen run's test accuracy, not the best test score"


def test_every_arm_and_lr_runs_exactly_the_budget_steps() -> None:
    steps_per_optimizer: Counter[object] = Counter()  # keys keep the optimizers alive: no id reuse
    handle = register_optimizer_step_post_hook(lambda opt, args, kwargs: steps_per_optimizer.update([opt]))
    try:  # 30 images in batches of 8: steps do not divide into whole epochs
        budget = Budget(steps=11, batch_size=8, lr_grid=(1e-3, 1e-2, 1e-1), max_extensions=0)
        arms = [Arm("all", build=mlp), Arm("last layer", build=mlp, setup=lambda m: freeze(m, "0"), cache_blocks=2)]
        # workers=1: the hook counts steps in this process; steps taken in worker processes are not seen here
        result = compare(arms, lambda seed: blob_task(n_train=30), budget, seeds=[0, 1], workers=1)
    finally:
        handle.remove()
    assert len(steps_per_optimizer) == 2 * 2 * 3, "one optimizer per arm, seed and lr"
    assert set(steps_per_optimizer.values()) == {11}
    assert {r.steps for r in result.runs} == {11}


def test_train_steps_is_exact_and_checked() -> None:
    x, y = blobs(30)
    net = nn.Linear(2, 2)
    assert len(train(net, x, y, steps=7, batch_size=8, epochs=50).loss) == 7
    assert len(train(net, x, y, steps=9, batch_size=4).loss) == 9
    with pytest.raises(ValueError, match="steps must be at least 1"):
        train(net, x, y, steps=0)


def test_runs_are_deterministic_and_reuse_one_start_for_every_lr() -> None:
    budget = Budget(steps=5, batch_size=10, lr_grid=(1e-2, 1e-1))
    a = compare([Arm("mlp", build=mlp)], lambda s: blob_task(), budget, seeds=[0, 1])
    b = compare([Arm("mlp", build=mlp)], lambda s: blob_task(), budget, seeds=[0, 1])
    assert [(r.lr, r.val_acc, r.test_acc) for r in a.runs] == [(r.lr, r.val_acc, r.test_acc) for r in b.runs]
    w0, w1 = (a.run("mlp", s).model[0].weight for s in (0, 1))
    assert not torch.equal(w0, w1), "different seeds must start from different initialisations"


def test_worker_processes_give_exactly_the_results_of_one_process() -> None:
    budget = Budget(steps=5, batch_size=10, lr_grid=(1e-2, 1e-1))
    arms = [Arm("all", build=mlp), Arm("last layer", build=mlp, setup=lambda m: freeze(m, "0"), cache_blocks=2)]
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    one, two = (compare(arms, lambda s: blob_task(), budget, seeds=[0, 1, 2], workers=w) for w in (1, 2))
    assert torch.equal(torch.random.get_rng_state(), before), "compare must leave the caller's random state alone"
    assert [(r.arm, r.seed, r.lr, r.val_by_lr, r.test_acc) for r in one.runs] == [
        (r.arm, r.seed, r.lr, r.val_by_lr, r.test_acc) for r in two.runs
    ]
    for a, b in zip(one.runs, two.runs):
        assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters()))
        assert [p.requires_grad for p in a.model.parameters()] == [p.requires_grad for p in b.model.parameters()]


def test_an_error_in_a_worker_reaches_the_caller() -> None:
    budget = Budget(steps=2, batch_size=10, lr_grid=(1e-2,))
    bad = Arm("bad", build=mlp, cache_blocks=5)  # more blocks than the model has
    with pytest.raises(ValueError, match="cache_blocks=5"):
        compare([Arm("ok", build=mlp), bad], lambda s: blob_task(), budget, seeds=[0, 1], workers=2)


def test_cached_prefix_gives_the_same_result_as_training_the_whole_model() -> None:
    def frozen(model: nn.Module) -> None:
        freeze(model, "block1", "block2", "block3")

    budget = Budget(steps=6, batch_size=10, lr_grid=(3e-3,))

    def task(seed: int) -> Task:
        return make_task(k_per_class=3, seed=seed, val_per_class=5)

    cached = compare([Arm("frozen", setup=frozen, cache_blocks=3)], task, budget, seeds=[0])
    direct = compare([Arm("frozen", setup=frozen)], task, budget, seeds=[0])
    w_cached, w_direct = (c.run("frozen", 0).model.head[-1].weight for c in (cached, direct))
    assert torch.allclose(w_cached, w_direct, atol=1e-5)
    assert cached.test_acc("frozen")[0] == pytest.approx(direct.test_acc("frozen")[0], abs=0.21)


# --- paired statistics and verdicts -------------------------------------------------------------


def comparison(a: list[float], b: list[float]) -> Comparison:
    budget = Budget(steps=1, batch_size=1, lr_grid=(1e-3,))
    runs = [
        Run(arm, seed, 1e-3, 50.0, acc, {1e-3: 50.0}, 1, nn.Identity())
        for arm, accs in (("A", a), ("B", b))
        for seed, acc in enumerate(accs)
    ]
    return Comparison(tuple(runs), budget)


def test_paired_difference_is_seed_by_seed() -> None:
    pair = comparison([90.0, 80.0, 70.0], [85.0, 81.0, 60.0]).paired("A", "B")
    assert pair.diffs == (5.0, -1.0, 10.0)
    assert pair.mean == pytest.approx(14 / 3) and (pair.low, pair.high) == (-1.0, 10.0)
    assert "+4.7 points (min -1.0, max +10.0, 3 seeds)" in str(pair)


def test_verdict_needs_the_same_sign_on_every_seed() -> None:
    assert comparison([90, 80, 70], [85, 81, 60]).verdict("A", "B") == NO_CLEAR_DIFFERENCE  # mean +4.7, mixed signs
    assert comparison([90, 82, 71], [85, 81, 60]).verdict("A", "B") == "A beats B"
    assert comparison([90, 82, 71], [85, 81, 60]).verdict("B", "A") == "A beats B"
    assert comparison([80, 70, 60], [81, 75, 65]).verdict("A", "B") == "B beats A"
    assert comparison([90, 81, 70], [85, 81, 60]).verdict("A", "B") == NO_CLEAR_DIFFERENCE  # a tie on one seed


def test_a_consistent_but_tiny_difference_is_no_clear_difference() -> None:
    tiny = comparison([90.6, 80.4, 70.6], [90.0, 80.0, 70.0])  # +0.6, +0.4, +0.6: a few test images
    assert tiny.verdict("A", "B") == NO_CLEAR_DIFFERENCE
    assert tiny.verdict("A", "B", margin=0.0) == "A beats B"
    assert comparison([92, 81.5, 72], [90, 80, 70]).verdict("A", "B") == "A beats B"  # every seed ahead, mean 1.8


def test_table_and_chosen_lrs() -> None:
    result = comparison([90, 80, 70], [85, 81, 60])
    assert "| A | 80.0 | 70.0–90.0 |" in result.table()
    assert result.chosen_lr("B") == (1e-3, 1e-3, 1e-3)
    assert result.arms == ("A", "B") and result.seeds == (0, 1, 2)


def test_repr_is_one_short_line_not_every_run() -> None:
    result = comparison([90, 80, 70], [85, 81, 60])
    text = repr(result)
    assert "\n" not in text and "Run(" not in text and len(text) < 120, text
    assert "3 seeds" in text and "A 80.0%" in text and "B 75.3%" in text, text


# --- bad input gets clear errors ----------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"steps": 0, "batch_size": 8, "lr_grid": (1e-3,)}, "steps must be a positive int"),
        ({"steps": 5, "batch_size": 0, "lr_grid": (1e-3,)}, "batch_size must be a positive int"),
        ({"steps": 5, "batch_size": 8, "lr_grid": ()}, "distinct positive learning rates"),
        ({"steps": 5, "batch_size": 8, "lr_grid": (1e-3, 1e-3)}, "distinct positive learning rates"),
        ({"steps": 5, "batch_size": 8, "lr_grid": (-1e-3,)}, "distinct positive learning rates"),
        ({"steps": 5, "batch_size": 8, "lr_grid": (1e-3,), "optimizer": "lbfgs"}, "Unknown optimizer 'lbfgs'"),
    ],
)
def test_bad_budget_is_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Budget(**kwargs)


def test_bad_compare_input_is_refused() -> None:
    budget = Budget(steps=2, batch_size=8, lr_grid=(1e-2,))
    with pytest.raises(ValueError, match="without a validation split: build it with make_task"):
        compare([Arm("mlp", build=mlp)], lambda s: make_task((0, 1), k_per_class=2), budget, seeds=[0])
    with pytest.raises(ValueError, match="Arm names must be distinct"):
        compare([Arm("a", build=mlp), Arm("a", build=mlp)], lambda s: blob_task(), budget, seeds=[0])
    with pytest.raises(ValueError, match="distinct ints"):
        compare([Arm("a", build=mlp)], lambda s: blob_task(), budget, seeds=[0, 0])
    with pytest.raises(ValueError, match="needs the first 2 blocks frozen"):
        compare([Arm("a", build=mlp, cache_blocks=2)], lambda s: blob_task(), budget, seeds=[0])
    with pytest.raises(ValueError, match="non-empty name"):
        Arm("")


def test_bad_queries_are_refused() -> None:
    result = comparison([90, 80], [85, 81])
    with pytest.raises(KeyError, match=r"the arms are \['A', 'B'\]"):
        result.paired("A", "C")
    with pytest.raises(ValueError, match="at least 3 seeds"):
        result.verdict("A", "B")


# --- the validation split -------------------------------------------------------------------------


def as_set(x: torch.Tensor) -> set[bytes]:
    return {bytes(img.numpy()) for img in (x * 255).byte()}


def test_validation_is_fixed_and_disjoint_from_train_and_test() -> None:
    a = make_task(k_per_class=None, seed=0, val_per_class=20)
    b = make_task(k_per_class=5, seed=3, val_per_class=20)
    assert a.x_val.shape == (100, 1, 28, 28) and sorted(a.y_val.tolist()) == sorted(list(range(5)) * 20)
    assert torch.equal(a.x_val, b.x_val), "the validation split must not depend on the seed"
    assert not as_set(a.x_val) & as_set(a.x_train), "validation overlaps the training images"
    assert not as_set(a.x_val) & as_set(a.x_test), "validation overlaps the test set"
    assert len(a.x_train) == 5 * (400 - 20)


def test_validation_split_keeps_old_callers_and_gets_the_shift() -> None:
    old = make_task(k_per_class=3, seed=1)
    assert old.x_val is None and old.y_val is None
    shifted = make_task((0, 1), k_per_class=2, val_per_class=4, shift="invert")
    plain = make_task((0, 1), k_per_class=2, val_per_class=4)
    assert torch.allclose(shifted.x_val, 1 - plain.x_val)
    with pytest.raises(ValueError, match="val_per_class must be between 0 and 100"):
        make_task(val_per_class=101)


# --- per-arm grids, finishing hooks, merging ------------------------------------------------------


def test_an_arm_grid_replaces_the_budget_grid_but_must_have_as_many_values() -> None:
    budget = Budget(steps=3, batch_size=10, lr_grid=(1e-3, 1e-2), max_extensions=0)
    arms = [Arm("a", build=mlp), Arm("b", build=mlp, lr_grid=(0.05, 0.5))]
    result = compare(arms, lambda s: blob_task(), budget, [0])
    assert result.lr_grid("a") == (1e-3, 1e-2) and result.lr_grid("b") == (0.05, 0.5)
    run = next(r for r in result.runs if r.arm == "b")
    assert set(run.val_by_lr) == {0.05, 0.5}, "b was tuned over its own grid"
    assert run.lr == max(run.val_by_lr, key=run.val_by_lr.__getitem__), "the lr with the best validation accuracy"
    with pytest.raises(ValueError, match="same number, so each gets the same tuning"):
        compare([Arm("c", build=mlp, lr_grid=(0.1,))], lambda s: blob_task(), budget, [0])


# --- grids that never cap an arm -----------------------------------------------------------------


def peaked_at(best_lr: float) -> tuple[Callable[[float], float], list[float]]:
    """A validation score that peaks at ``best_lr`` (in log space), and the list of lrs it was asked about."""
    asked: list[float] = []

    def score(lr: float) -> float:
        asked.append(lr)
        return -abs(math.log10(lr) - math.log10(best_lr))

    return score, asked


@pytest.mark.parametrize(
    ("best_lr", "chosen", "extra"),
    [
        (3e-3, 3e-3, []),  # inside the grid: nothing more to try
        (0.1, 0.111111, [0.0333333, 0.111111, 0.37037]),  # past the top: steps of 1e-2 / 3e-3 while each wins
        (1e-4, 1.11111e-4, [3.33333e-4, 1.11111e-4, 3.7037e-5]),  # past the bottom: steps of 1e-3 / 3e-3
    ],
)
def test_an_edge_that_wins_extends_the_grid_that_way(best_lr: float, chosen: float, extra: list[float]) -> None:
    score, asked = peaked_at(best_lr)
    lr, at_edge = extended_grid_search(score, (1e-3, 3e-3, 1e-2), max_extensions=3)
    assert asked[:3] == [1e-3, 3e-3, 1e-2] and asked[3:] == pytest.approx(extra, rel=1e-4)
    assert lr == pytest.approx(chosen, rel=1e-4) and at_edge is False


def test_an_edge_that_still_wins_after_every_extension_is_reported() -> None:
    score, asked = peaked_at(10.0)
    lr, at_edge = extended_grid_search(score, (1e-3, 1e-2), max_extensions=2)
    assert asked == pytest.approx([1e-3, 1e-2, 0.1, 1.0]) and lr == pytest.approx(1.0) and at_edge is True
    lr, at_edge = extended_grid_search(peaked_at(10.0)[0], (1e-3, 1e-2), max_extensions=0)
    assert lr == 1e-2 and at_edge is True, "with no extension allowed, an edge win is still reported"


def test_a_tie_past_the_edge_keeps_the_lr_tried_first() -> None:
    lr, at_edge = extended_grid_search(lambda lr: 1.0 if lr >= 1e-2 else 0.0, (1e-3, 1e-2), max_extensions=2)
    assert lr == 1e-2 and at_edge is False, "the extension must win outright, not tie"
    lr, at_edge = extended_grid_search(lambda lr: 1.0, (0.5,), max_extensions=2)
    assert lr == 0.5 and at_edge is False, "a one-lr grid has no direction to extend"


def test_compare_extends_every_arm_by_the_same_rule_and_flags_a_capped_arm(monkeypatch: pytest.MonkeyPatch) -> None:
    """Validation accuracy peaks at lr 0.1 for every arm (a fake fit): each arm's grid bends towards it."""
    from course_utils import experiment

    def fake_fit(arm: Arm, start: nn.Module, *args: object) -> tuple[nn.Module, nn.Module]:
        model = copy.deepcopy(start)
        model.lr = args[-2]  # _fit(arm, start, x_train, y_train, budget, lr, seed)
        return model, model

    def fake_accuracy(part: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
        return 50.0 - abs(math.log10(part.lr) + 1)  # best at lr 0.1

    monkeypatch.setattr(experiment, "_fit", fake_fit)
    monkeypatch.setattr(experiment, "evaluate", fake_accuracy)
    budget = Budget(steps=3, batch_size=10, lr_grid=(1e-4, 1e-3, 1e-2), max_extensions=3)
    arms = [
        Arm("low", build=mlp),
        Arm("high", build=mlp, lr_grid=(1.0, 10.0, 100.0)),
        Arm("inside", build=mlp, lr_grid=(0.03, 0.1, 0.3)),
    ]
    result = compare(arms, lambda s: blob_task(), budget, [0, 1], workers=1)
    assert result.lr_grid("low") == pytest.approx((1e-4, 1e-3, 1e-2, 0.1, 1.0)), "up from the top edge until it loses"
    assert result.lr_grid("high") == pytest.approx((0.01, 0.1, 1.0, 10.0, 100.0)), "down from the bottom edge"
    assert result.lr_grid("inside") == (0.03, 0.1, 0.3), "an interior optimum needs no extension"
    assert result.chosen_lr("low") == pytest.approx((0.1, 0.1)) and result.chosen_lr("high") == pytest.approx(
        (0.1, 0.1)
    )
    assert result.capped == () and "edge!" not in result.table()
    capped = compare(arms[:1], lambda s: blob_task(), Budget(3, 10, (1e-3, 1e-2), max_extensions=0), [0], workers=1)
    assert capped.capped == (("low", 0),) and "0.01 (edge!)" in capped.table()
    with pytest.raises(ValueError, match="max_extensions must be an int >= 0"):
        Budget(steps=3, batch_size=10, lr_grid=(0.1,), max_extensions=-1)


def test_finish_runs_after_training_and_before_evaluation() -> None:
    def zero_last_layer(part: nn.Module, x_train: torch.Tensor) -> None:
        assert len(x_train) == 30
        with torch.no_grad():
            part[-1].weight.zero_()
            part[-1].bias.copy_(torch.tensor([1.0, 0.0]))  # always predicts class 0

    budget = Budget(steps=5, batch_size=10, lr_grid=(0.1,))
    result = compare([Arm("a", build=mlp, finish=zero_last_layer)], lambda s: blob_task(), budget, [0])
    assert result.val_acc("a")[0] == 50.0, "validation must see the finished model"


def test_merge_pairs_arms_from_separate_runs() -> None:
    budget = Budget(steps=3, batch_size=10, lr_grid=(1e-2,))
    a = compare([Arm("a", build=mlp)], lambda s: blob_task(), budget, [0, 1, 2])
    b = compare([Arm("b", build=mlp, lr_grid=(1e-1,))], lambda s: blob_task(), budget, [0, 1, 2])
    both = merge(a, b)
    assert both.arms == ("a", "b") and both.paired("a", "b").diffs == tuple(a.test_acc("a") - b.test_acc("b"))
    with pytest.raises(ValueError, match="same budget and seeds"):
        merge(a, compare([Arm("c", build=mlp)], lambda s: blob_task(), budget, [0, 1]))
    with pytest.raises(ValueError, match="distinct across the merged"):
        merge(a, a)


def test_a_paired_result_from_any_measurement_gets_the_same_verdict() -> None:
    assert Paired("A", "B", (24.8, -16.2, -7.0)).verdict() == NO_CLEAR_DIFFERENCE
    assert Paired("A", "B", (-2.0, -3.5, -1.5)).verdict() == "B beats A"
    assert Paired("A", "B", (2.0, 3.5, 1.5)).verdict(margin=5.0) == NO_CLEAR_DIFFERENCE


# --- the course's transfer comparison (notebook 04 and make bench) -----------------------------------


def test_transfer_arms_freeze_what_they_say_and_tasks_have_validation() -> None:
    from course_utils.setups import HEAD_LR_GRID, TRANSFER_BUDGET, transfer_arms, transfer_task

    task = transfer_task(3, seed=1)
    assert task.x_val is not None and len(task.x_val) == 100 and len(task.x_train) == 15
    arms = {arm.name: arm for arm in transfer_arms()}
    assert list(arms) == ["scratch", "frozen", "full"]
    trainable = {}
    for name, arm in arms.items():
        model = arm.fresh_model(task)
        trainable[name] = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {
        "scratch": {"block1", "block2", "block3", "head"},
        "frozen": {"head"},
        "full": {"block1", "block2", "block3", "head"},
    }
    assert arms["frozen"].grid(TRANSFER_BUDGET) == HEAD_LR_GRID
    assert arms["full"].grid(TRANSFER_BUDGET) == TRANSFER_BUDGET.lr_grid
    pretrained_block1 = arms["full"].fresh_model(task).block1[0].weight
    scratch_block1 = arms["scratch"].fresh_model(task).block1[0].weight
    assert not torch.equal(pretrained_block1, scratch_block1), "scratch must start from random weights"


def test_float_noise_cannot_decide_a_verdict() -> None:
    noisy = Paired("A", "B", (90.8 - 90.4, 91.4 - 89.8, 92.4 - 91.4))  # 0.4, 1.6, 1.0 up to float error: mean 1.0
    assert noisy.mean == 1.0 and noisy.verdict() == NO_CLEAR_DIFFERENCE, "a mean exactly at the margin is not a win"
    assert Paired("A", "B", (92.8 - 92.8, 0.4, 0.2)).same_sign is False
    with pytest.raises(ValueError, match="at least one difference"):
        Paired("A", "B", ())


def test_reported_accuracies_are_exact_fractions_of_the_test_set() -> None:
    budget = Budget(steps=3, batch_size=10, lr_grid=(1e-2,))
    result = compare([Arm("a", build=mlp)], lambda s: blob_task(), budget, [0, 1])
    for run in result.runs:
        assert run.test_acc * 40 / 100 == round(run.test_acc * 40 / 100), "40 test points: multiples of 2.5%"
        assert run.val_acc == round(run.val_acc, 10)


def test_compare_each_gives_exactly_the_runs_of_one_compare_per_task() -> None:
    budget = Budget(steps=4, batch_size=10, lr_grid=(1e-2, 1e-1))
    arms = [Arm("all", build=mlp), Arm("last layer", build=mlp, setup=lambda m: freeze(m, "0"), cache_blocks=2)]
    tasks = {"same": lambda s: blob_task(), "more data": lambda s: blob_task(n_train=40)}
    together = compare_each(arms, tasks, budget, seeds=[0, 1, 2], workers=2)
    assert list(together) == ["same", "more data"]
    for key, task_for_seed in tasks.items():
        alone = compare(arms, task_for_seed, budget, seeds=[0, 1, 2], workers=1)
        got = together[key]
        assert [(r.arm, r.seed, r.lr, r.val_by_lr, r.test_acc) for r in got.runs] == [
            (r.arm, r.seed, r.lr, r.val_by_lr, r.test_acc) for r in alone.runs
        ], key
    with pytest.raises(ValueError, match="at least one task"):
        compare_each(arms, {}, budget, seeds=[0])
