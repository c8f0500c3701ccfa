from __future__ import annotations

import time

import pytest
import torch

from course_utils.changes import changed_since, snapshot
from course_utils.data import TARGET_CLASSES, make_task
from course_utils.freezing import freeze
from course_utils.models import CourseCNN, replace_head
from course_utils.optim_groups import NothingTrainableError
from course_utils.training import (
    eval_mode,
    evaluate,
    get_device,
    make_optimizer,
    predict,
    seed_everything,
    train,
    train_mode,
    train_step,
)


@pytest.fixture(scope="module")
def task():
    return make_task(TARGET_CLASSES, k_per_class=10, seed=0)


def test_seed_everything_repeats_random_draws() -> None:
    seed_everything(3)
    a = torch.rand(3)
    seed_everything(3)
    assert torch.equal(a, torch.rand(3))


def test_seed_everything_pins_threads() -> None:
    before = torch.get_num_threads()
    try:
        seed_everything(0, threads=1)
        assert torch.get_num_threads() == 1
        torch.set_num_threads(2)
        seed_everything(0, threads=None)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_device_is_the_gpu_when_there_is_one(monkeypatch: pytest.MonkeyPatch) -> None:
    assert get_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert get_device() == torch.device("cpu")


def test_train_returns_history_and_learns(task) -> None:
    seed_everything(0)
    model = CourseCNN(5)
    start = time.perf_counter()
    history = train(model, task.x_train, task.y_train, epochs=2, min_steps=30, x_test=task.x_test, y_test=task.y_test)
    elapsed = time.perf_counter() - start
    assert len(history.loss) >= 30 and len(history.test_acc) == len(history.step_at_eval)
    assert history.step_at_eval[-1] == len(history.loss)
    assert history.final_acc > 40 and history.final_acc == pytest.approx(evaluate(model, task.x_test, task.y_test))
    assert 0 < history.seconds <= elapsed, "the training time is measured inside the call"


def test_train_is_deterministic(task) -> None:
    runs = []
    for _ in range(2):
        seed_everything(1)
        model = CourseCNN(5)
        runs.append(train(model, task.x_train, task.y_train, epochs=2, seed=1).loss)
    assert runs[0] == runs[1]


def test_frozen_block_and_its_bn_stats_stay_put(pretrained, task) -> None:
    replace_head(pretrained, 5)
    freeze(pretrained, "block1", "block2", "block3")
    before = snapshot(pretrained)
    train(pretrained, task.x_train, task.y_train, epochs=2)
    assert {name.split(".")[0] for name in changed_since(pretrained, before)} == {"head"}


def test_bn_drifts_when_asked(pretrained, task) -> None:
    freeze(pretrained, "block1", "block2", "block3")
    before = snapshot(pretrained)
    train(pretrained, task.x_train, task.y_train, epochs=1, frozen_bn_eval=False)
    assert "block1.1.running_mean" in changed_since(pretrained, before)


def test_history_without_eval_explains(task) -> None:
    history = train(CourseCNN(5), task.x_train[:8], task.y_train[:8], epochs=1)
    with pytest.raises(ValueError, match="pass x_test"):
        _ = history.final_acc


def test_mismatched_lengths_are_refused(task) -> None:
    with pytest.raises(ValueError, match="x_train has 50 rows but y_train has 49"):
        train(CourseCNN(5), task.x_train, task.y_train[:-1])


def test_everything_frozen_gives_clear_error(task) -> None:
    model = CourseCNN(5)
    freeze(model)
    with pytest.raises(NothingTrainableError, match="nothing to train"):
        train(model, task.x_train, task.y_train)


def test_make_optimizer_kinds() -> None:
    model = CourseCNN(5)
    freeze(model, "block1")
    optimizer = make_optimizer(model, "sgd", lr=0.1, momentum=0.9)
    assert isinstance(optimizer, torch.optim.SGD)
    assert sum(p.numel() for p in optimizer.param_groups[0]["params"]) == sum(
        p.numel() for p in model.parameters() if p.requires_grad
    )
    with pytest.raises(ValueError, match="Unknown optimizer 'lbfgs'"):
        make_optimizer(model, "lbfgs")


def test_eval_mode_restores_each_module(model) -> None:
    model.train()
    model.block1[1].eval()
    with eval_mode(model):
        assert not model.training and not model.block2[1].training
    assert model.training and not model.block1[1].training and model.block2[1].training


def test_predict_batches_and_keeps_mode(model, task) -> None:
    model.train()
    out = predict(model, task.x_test, batch_size=7)
    assert out.shape == (len(task.x_test), 5) and model.training


def test_train_step_is_one_plain_optimizer_step(batch) -> None:
    x, y = batch
    torch.manual_seed(0)
    by_hand, by_helper = CourseCNN(5), CourseCNN(5)
    by_helper.load_state_dict(by_hand.state_dict())
    freeze(by_hand, "block1")
    freeze(by_helper, "block1")
    opt_hand = torch.optim.SGD([p for p in by_hand.parameters() if p.requires_grad], lr=0.1)
    opt_helper = torch.optim.SGD([p for p in by_helper.parameters() if p.requires_grad], lr=0.1)
    torch.manual_seed(1)
    loss = torch.nn.functional.cross_entropy(by_hand(x), y)
    opt_hand.zero_grad()
    loss.backward()
    opt_hand.step()
    torch.manual_seed(1)  # the same dropout mask
    assert train_step(by_helper, opt_helper, x, y) == loss.item()
    assert all(torch.equal(a, b) for a, b in zip(by_hand.state_dict().values(), by_helper.state_dict().values()))
    assert all(p.grad is None for p in by_helper.block1.parameters())
    assert by_helper.head[-1].weight.grad is not None


def test_train_runs_every_step_through_train_step(monkeypatch, task) -> None:
    import course_utils.training as training

    calls = []
    real = training.train_step

    def counting(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(training, "train_step", counting)
    history = train(CourseCNN(5), task.x_train, task.y_train, epochs=1, batch_size=16)
    assert len(calls) == len(history.loss) == 4  # 50 images in batches of 16


def test_train_mode_keeps_frozen_bn_in_eval_and_restores(model) -> None:
    freeze(model, "block1")
    model.eval()
    with train_mode(model):
        assert model.training and model.block2[1].training
        assert not model.block1[1].training, "a frozen BatchNorm stays in eval mode"
    assert not any(m.training for m in model.modules())
    with train_mode(model, frozen_bn_eval=False):
        assert model.block1[1].training
