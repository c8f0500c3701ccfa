"""The nbgrader autograde cells meet wrong answers: each cell is built exactly as ``tools.assignments`` builds
it (the course's checker, then the hidden tests) and run in-process in a namespace that holds what the
notebook defines above the exercise plus one answer. The reference solution must pass; every wrong
solution of the exercise's catalogue must make the cell raise. No nbgrader install needed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
import torch
from torch import nn

from course_utils import freeze, freeze_to, load_pretrained, replace_head, set_bn_eval
from course_utils.exercises import dynamics, freezing_basics, gradients, layers, partial, pitfalls, transfer
from course_utils.experiment import Paired
from course_utils.models import CourseCNN
from tools import assignments
from tools.assignments import exercises

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CHECKERS = {"01": layers, "02": gradients, "03": freezing_basics, "04": transfer, "05": partial, "06": dynamics}
CHECKERS["07"] = pitfalls
Namespace = dict[str, Any]
Answer = Callable[[Namespace], None]


def autograde_cell(notebook: str, number: int) -> str:
    path = next(NOTEBOOKS.glob(f"{notebook}_*.ipynb"))
    found = exercises(nbformat.read(path, as_version=4), path.name)
    return assignments.test_cell_text(found[number - 1], notebook, f"{path.name}, exercise {number}")


# ---------------------------------------------------------------- what each notebook defines above its exercises


def _pretrained() -> nn.Module:
    return load_pretrained(torch.device("cpu"))


def context_01(ns: Namespace) -> None:
    from torchvision.models import resnet18

    ns.update(model=CourseCNN(), resnet=resnet18(weights=None))


def context_02(ns: Namespace) -> None:
    ns.update(model=CourseCNN())


def context_03(ns: Namespace) -> None:
    opt_model = CourseCNN()
    opt_model.block1.requires_grad_(False)
    optimizer = torch.optim.SGD([p for p in opt_model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    nn.functional.cross_entropy(opt_model(torch.rand(8, 1, 28, 28)), torch.arange(8) % 5).backward()
    optimizer.step()  # the exercise's set-up: one step with block1 frozen
    ns.update(exercise_model=CourseCNN(), opt_model=opt_model, optimizer=optimizer)


class _Curve:
    """Stands for notebook 04's ``curve[k]``: only ``paired("full", "frozen")``, with the committed numbers."""

    DIFFS = {1: (-14.4, -5.8, -3.2), 3: (-8.4, -3.9, -3.0), 10: (-2.4, -2.1, -1.2), 100: (-1.6, -0.1, 2.6)}

    def __init__(self, k: int) -> None:
        self.k = k

    def paired(self, a: str, b: str) -> Paired:
        assert (a, b) == ("full", "frozen")
        return Paired(a, b, self.DIFFS[self.k])


def context_04(ns: Namespace) -> None:
    pretrained = _pretrained()
    ns.update(
        copy=copy,
        nn=nn,
        pretrained=pretrained,
        exercise_model=copy.deepcopy(pretrained),
        exercise_x=torch.rand(20, 1, 28, 28, generator=torch.Generator().manual_seed(0)),
        LABELS=[1, 3, 10, 100],
        curve={k: _Curve(k) for k in (1, 3, 10, 100)},
    )
    ns["full_vs_frozen"] = [ns["curve"][k].paired("full", "frozen") for k in ns["LABELS"]]


def context_05(ns: Namespace) -> None:
    pretrained = _pretrained()
    lr_model = copy.deepcopy(pretrained)
    freeze_to(lr_model, 1)
    ns.update(
        pretrained=pretrained,
        exercise_model=copy.deepcopy(pretrained),
        lr_model=lr_model,
    )


def context_06(ns: Namespace) -> None:
    ns.update(ex_model=CourseCNN())


def context_07(ns: Namespace) -> None:
    model = _pretrained()
    replace_head(model, num_classes=5)
    freeze(model, "block1", "block2", "block3")
    ns.update(ex_model=model)


CONTEXTS = {"01": context_01, "02": context_02, "03": context_03, "04": context_04}
CONTEXTS.update({"05": context_05, "06": context_06, "07": context_07})


# ---------------------------------------------------------------- answers: the reference, then the wrong ones


def define(name: str, value: Callable[[Namespace], Any]) -> Answer:
    return lambda ns: ns.__setitem__(name, value(ns))


def run(code: Callable[[Namespace], None]) -> Answer:
    return code


def _sgd(decay: bool = True, guard: bool = True, sign: float = 1.0) -> Callable[[nn.Module, float, float], None]:
    def sgd_step(model: nn.Module, lr: float, weight_decay: float) -> None:
        with torch.no_grad():
            for p in model.parameters():
                if guard and p.grad is None:
                    continue
                p -= sign * lr * (p.grad + (weight_decay * p if decay else 0))

    return sgd_step


def _add_block1_group(lr: float | None, unfreeze: bool = True) -> Callable[[Namespace], None]:
    def answer(ns: Namespace) -> None:
        if unfreeze:
            ns["opt_model"].block1.requires_grad_(True)
        group: dict[str, Any] = {"params": list(ns["opt_model"].block1.parameters())}
        if lr is not None:
            group["lr"] = lr
        ns["optimizer"].add_param_group(group)

    return answer


def _rebuild_with_groups(ns: Namespace) -> None:
    model = ns["opt_model"].requires_grad_(True)
    rest = [p for n, p in model.named_parameters() if not n.startswith("block1.")]
    groups = [{"params": rest}, {"params": list(model.block1.parameters()), "lr": 0.001}]
    ns["optimizer"] = torch.optim.SGD(groups, lr=0.01, momentum=0.9)


def _lower_every_group(ns: Namespace) -> None:
    _add_block1_group(lr=0.001)(ns)
    for group in ns["optimizer"].param_groups:
        group["lr"] = 0.001


def _freeze_blocks(*names: str) -> Answer:
    def answer(ns: Namespace) -> None:
        for name in names:
            for p in getattr(ns["exercise_model"], name).parameters():
                p.requires_grad = False

    return answer


def _fc_and_bn(rule: Callable[[str, nn.Parameter, nn.Module], bool]) -> Callable[[nn.Module], None]:
    def fc_and_bn_only(model: nn.Module) -> None:
        for module_name, module in model.named_modules():
            for name, p in module.named_parameters(recurse=False):
                p.requires_grad = rule(f"{module_name}.{name}", p, module)

    return fc_and_bn_only


def _head(model: nn.Module, width: int = 256, out: int = 5) -> None:
    model.head = nn.Sequential(nn.Flatten(), nn.Linear(width, out))


def _features(eval_mode: bool = True, no_grad: bool = True, detach: bool = False) -> Callable[..., torch.Tensor]:
    def cache_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if eval_mode:
            model.eval()
        with torch.set_grad_enabled(not no_grad):
            features = model.features(x)
        return features.detach() if detach else features

    return cache_features


def _load_checked(check_first: bool, refuse: bool = True) -> Callable[[nn.Module, dict[str, Any]], None]:
    def load_checked(model: nn.Module, state: dict[str, Any]) -> None:
        unexpected = sorted(set(state) - set(model.state_dict()))
        if check_first and unexpected and refuse:
            raise KeyError(unexpected)
        model.load_state_dict(state, strict=False)
        if not check_first and unexpected and refuse:
            raise KeyError(unexpected)

    return load_checked


def _train_mode(
    use_helper: bool = False, by_name: bool = False, everything: bool = False
) -> Callable[[nn.Module], None]:
    def train_mode(model: nn.Module) -> None:
        model.train()
        if use_helper:
            set_bn_eval(model)
            return
        for name, module in model.named_modules():
            frozen = not any(p.requires_grad for p in module.parameters(recurse=False))
            if isinstance(module, nn.BatchNorm2d) and (
                everything or (name.startswith("block1") if by_name else frozen)
            ):
                module.eval()

    return train_mode


CATALOGUE: dict[tuple[str, int], dict[str, Answer]] = {
    ("01", 1): {
        "reference": define(
            "count_parameters", lambda ns: lambda m: sum(p.numel() for p in m.parameters() if p.requires_grad)
        ),
        "every parameter, frozen ones too": define(
            "count_parameters", lambda ns: lambda m: sum(p.numel() for p in m.parameters())
        ),
        "state_dict entries ending in weight/bias": define(
            "count_parameters",
            lambda ns: lambda m: sum(v.numel() for k, v in m.state_dict().items() if k.endswith(("weight", "bias"))),
        ),
        "the whole state_dict": define(
            "count_parameters", lambda ns: lambda m: sum(v.numel() for v in m.state_dict().values())
        ),
        "tensors, not values": define(
            "count_parameters", lambda ns: lambda m: sum(1 for p in m.parameters() if p.requires_grad)
        ),
        "forgot the return": define("count_parameters", lambda ns: lambda m: None),
    },
    ("01", 2): {
        "reference": define("not_parameters", lambda ns: [n for n, _ in ns["resnet"].named_buffers()]),
        "buffer_names of the course CNN, from above": define(
            "not_parameters", lambda ns: sorted(n for n, _ in ns["model"].named_buffers())
        ),
        "every state_dict key": define("not_parameters", lambda ns: list(ns["resnet"].state_dict())),
        "without num_batches_tracked": define(
            "not_parameters",
            lambda ns: [n for n, _ in ns["resnet"].named_buffers() if not n.endswith("num_batches_tracked")],
        ),
        "unanswered": define("not_parameters", lambda ns: None),
    },
    ("01", 3): {
        "reference": define("block2_shape", lambda ns: (8, 32, 8, 8)),
        "the 28x28 shape printed above": define("block2_shape", lambda ns: (8, 32, 7, 7)),
        "batch of 1": define("block2_shape", lambda ns: (1, 32, 8, 8)),
        "block1's channels": define("block2_shape", lambda ns: (8, 16, 8, 8)),
        "no stride": define("block2_shape", lambda ns: (8, 32, 32, 32)),
    },
    ("02", 1): {
        "reference": define("sgd_step", lambda ns: _sgd()),
        "torch.optim.SGD(...).step() inside": define(
            "sgd_step",
            lambda ns: lambda m, lr, wd: torch.optim.SGD(m.parameters(), lr=lr, weight_decay=wd).step(),
        ),
        "no p.grad is None guard (crashes on a frozen block)": define("sgd_step", lambda ns: _sgd(guard=False)),
        "weight decay left out": define("sgd_step", lambda ns: _sgd(decay=False)),
        "plus instead of minus": define("sgd_step", lambda ns: _sgd(sign=-1.0)),
        "does nothing": define("sgd_step", lambda ns: lambda m, lr, wd: None),
    },
    ("02", 2): {
        "reference": define("accumulation_factor", lambda ns: 2.0),
        "overwritten, not accumulated": define("accumulation_factor", lambda ns: 1.0),
        "squared": define("accumulation_factor", lambda ns: 4.0),
    },
    ("02", 3): {
        "reference": define("changed_in_eval_step", lambda ns: [n for n, _ in ns["model"].named_parameters()]),
        "the BatchNorm buffers (train mode's answer)": define(
            "changed_in_eval_step", lambda ns: [n for n, _ in ns["model"].named_buffers()]
        ),
        "parameters and buffers": define("changed_in_eval_step", lambda ns: list(ns["model"].state_dict())),
        "nothing: eval mode freezes": define("changed_in_eval_step", lambda ns: []),
        "only the head": define(
            "changed_in_eval_step", lambda ns: [n for n, _ in ns["model"].named_parameters() if n.startswith("head")]
        ),
    },
    ("03", 1): {
        "reference": _freeze_blocks("block2", "block3"),
        "freeze(exercise_model, 'block2', 'block3') (a helper)": run(
            lambda ns: freeze(ns["exercise_model"], "block2", "block3")
        ),
        "freeze_to(exercise_model, 2) (a helper, and the wrong blocks)": run(
            lambda ns: freeze_to(ns["exercise_model"], 2)
        ),
        "block1 and block2, as in section 1": _freeze_blocks("block1", "block2"),
        "module attribute instead of parameters": run(
            lambda ns: [setattr(getattr(ns["exercise_model"], b), "requires_grad", False) for b in ("block2", "block3")]
        ),
        "blocks replaced by nn.Identity()": run(
            lambda ns: [setattr(ns["exercise_model"], b, nn.Identity()) for b in ("block2", "block3")]
        ),
        "only the conv weights": run(
            lambda ns: [getattr(ns["exercise_model"], b)[0].weight.requires_grad_(False) for b in ("block2", "block3")]
        ),
    },
    ("03", 2): {
        "reference": run(_add_block1_group(lr=0.001)),
        "added at the first group's lr": run(_add_block1_group(lr=None)),
        "added but still frozen": run(_add_block1_group(lr=0.001, unfreeze=False)),
        "unfrozen, not added": run(lambda ns: ns["opt_model"].block1.requires_grad_(True)),
        "a new optimizer with the right groups": run(_rebuild_with_groups),
        "every group lowered to 0.001": run(_lower_every_group),
    },
    ("03", 3): {
        "reference": define(
            "fc_and_bn_only",
            lambda ns: _fc_and_bn(lambda n, p, m: isinstance(m, nn.BatchNorm2d) or n.startswith("fc.")),
        ),
        "p.ndim == 1 or fc (conv biases train too)": define(
            "fc_and_bn_only", lambda ns: _fc_and_bn(lambda n, p, m: p.ndim == 1 or n.startswith("fc."))
        ),
        "only fc": define("fc_and_bn_only", lambda ns: _fc_and_bn(lambda n, p, m: n.startswith("fc."))),
        "names containing bn (downsample BatchNorm frozen)": define(
            "fc_and_bn_only", lambda ns: _fc_and_bn(lambda n, p, m: ".bn" in f".{n}" or n.startswith("fc."))
        ),
        "does nothing": define("fc_and_bn_only", lambda ns: lambda m: None),
    },
    ("04", 1): {
        "reference": run(
            lambda ns: (ns["exercise_model"].requires_grad_(False), _head(ns["exercise_model"]))  # type: ignore[func-returns-value]
        ),
        "a head for 64 features (crashes on the first forward pass)": run(
            lambda ns: (ns["exercise_model"].requires_grad_(False), _head(ns["exercise_model"], width=64))  # type: ignore[func-returns-value]
        ),
        "the new head frozen too": run(
            lambda ns: (_head(ns["exercise_model"]), ns["exercise_model"].requires_grad_(False))  # type: ignore[func-returns-value]
        ),
        "backbone not frozen": run(lambda ns: _head(ns["exercise_model"])),
        "the old head kept": run(lambda ns: freeze(ns["exercise_model"], "block1", "block2", "block3")),
        "10 classes": run(
            lambda ns: (ns["exercise_model"].requires_grad_(False), _head(ns["exercise_model"], out=10))  # type: ignore[func-returns-value]
        ),
    },
    ("04", 2): {
        "reference": define("cache_features", lambda ns: _features()),
        "no .eval() (the model handed over is in train mode)": define(
            "cache_features", lambda ns: _features(eval_mode=False)
        ),
        ".detach() instead of no_grad()": define("cache_features", lambda ns: _features(no_grad=False, detach=True)),
        "graph kept": define("cache_features", lambda ns: _features(no_grad=False)),
        "the model's scores, not its features": define("cache_features", lambda ns: lambda m, x: m.eval()(x).detach()),
    },
    ("04", 3): {
        "reference": define("my_crossover", lambda ns: None),
        "100 (ahead on average and on one seed)": define("my_crossover", lambda ns: 100),
        "1": define("my_crossover", lambda ns: 1),
        "unanswered (-1)": define("my_crossover", lambda ns: -1),
    },
    ("05", 1): {
        "reference": _freeze_blocks("block1", "block3"),
        "freeze_to(exercise_model, 2)": run(lambda ns: freeze_to(ns["exercise_model"], 2)),
        "freeze(exercise_model, 'block1', 'block3') (a helper)": run(
            lambda ns: freeze(ns["exercise_model"], "block1", "block3")
        ),
        "a prefix: block1 and block2": _freeze_blocks("block1", "block2"),
        "block1 to block3": _freeze_blocks("block1", "block2", "block3"),
        "module attribute": run(
            lambda ns: [setattr(getattr(ns["exercise_model"], b), "requires_grad", False) for b in ("block1", "block3")]
        ),
    },
    ("05", 2): {
        "reference": define(
            "my_groups",
            lambda ns: [
                {"params": list(ns["lr_model"].block2.parameters()), "lr": 0.25e-3},
                {"params": list(ns["lr_model"].block3.parameters()), "lr": 0.5e-3},
                {"params": list(ns["lr_model"].head.parameters()), "lr": 1e-3},
            ],
        ),
        "frozen block1 included": define(
            "my_groups",
            lambda ns: [
                {"params": list(getattr(ns["lr_model"], b).parameters()), "lr": 1e-3 * 0.5 ** (3 - i)}
                for i, b in enumerate(("block1", "block2", "block3", "head"))
            ],
        ),
        "decay the wrong way": define(
            "my_groups",
            lambda ns: [
                {"params": list(ns["lr_model"].block2.parameters()), "lr": 4e-3},
                {"params": list(ns["lr_model"].block3.parameters()), "lr": 2e-3},
                {"params": list(ns["lr_model"].head.parameters()), "lr": 1e-3},
            ],
        ),
        "one group": define("my_groups", lambda ns: [{"params": list(ns["lr_model"].parameters()), "lr": 1e-3}]),
    },
    ("05", 3): {
        "reference": define("pick_block", lambda ns: lambda r, c: max(c, key=lambda n: r.val_acc(n).mean())),
        "picked by test accuracy": define(
            "pick_block", lambda ns: lambda r, c: max(c, key=lambda n: r.test_acc(n).mean())
        ),
        "every arm, 'all' included": define(
            "pick_block", lambda ns: lambda r, c: max(r.arms, key=lambda n: r.val_acc(n).mean())
        ),
        "the first seed only": define("pick_block", lambda ns: lambda r, c: max(c, key=lambda n: r.val_acc(n)[0])),
        "a fixed name": define("pick_block", lambda ns: lambda r, c: "block2"),
    },
    ("06", 1): {
        "reference": define("forward_stopping_after_block2", lambda ns: _no_grad_first_blocks),
        "flags frozen instead": define("forward_stopping_after_block2", lambda ns: _frozen_then_forward),
        "plain forward": define("forward_stopping_after_block2", lambda ns: lambda m, x: m(x)),
        "all without grad": define("forward_stopping_after_block2", lambda ns: _all_without_grad),
        "head left out": define(
            "forward_stopping_after_block2", lambda ns: lambda m, x: m.block3(m.block2(m.block1(x)).detach())
        ),
    },
    ("06", 2): {
        "reference": define(
            "adam_state_bytes",
            lambda ns: lambda m: 2 * sum(p.numel() * p.element_size() for p in m.parameters() if p.requires_grad),
        ),
        "one moment": define(
            "adam_state_bytes",
            lambda ns: lambda m: sum(p.numel() * p.element_size() for p in m.parameters() if p.requires_grad),
        ),
        "frozen parameters too": define(
            "adam_state_bytes", lambda ns: lambda m: 2 * sum(p.numel() * p.element_size() for p in m.parameters())
        ),
        "4 bytes assumed": define(
            "adam_state_bytes", lambda ns: lambda m: 8 * sum(p.numel() for p in m.parameters() if p.requires_grad)
        ),
    },
    ("06", 3): {
        "reference": define(
            "grad_norms",
            lambda ns: lambda m: {n: p.grad.norm().item() for n, p in m.named_parameters() if p.requires_grad},
        ),
        "weight norms": define(
            "grad_norms", lambda ns: lambda m: {n: p.norm().item() for n, p in m.named_parameters() if p.requires_grad}
        ),
        "frozen ones as 0": define(
            "grad_norms",
            lambda ns: (
                lambda m: {n: (p.grad.norm().item() if p.grad is not None else 0.0) for n, p in m.named_parameters()}
            ),
        ),
    },
    ("07", 1): {
        "reference": define(
            "ex_optimizer",
            lambda ns: torch.optim.SGD(
                [p for p in ns["ex_model"].parameters() if p.requires_grad], lr=0.01, momentum=0.9
            ),
        ),
        "every parameter": define(
            "ex_optimizer", lambda ns: torch.optim.SGD(ns["ex_model"].parameters(), lr=0.01, momentum=0.9)
        ),
        "no momentum": define(
            "ex_optimizer",
            lambda ns: torch.optim.SGD([p for p in ns["ex_model"].parameters() if p.requires_grad], lr=0.01),
        ),
    },
    ("07", 2): {
        "reference": define("train_mode", lambda ns: _train_mode()),
        "model.train(); set_bn_eval(model) (a helper)": define("train_mode", lambda ns: _train_mode(use_helper=True)),
        "by name (block1 only)": define("train_mode", lambda ns: _train_mode(by_name=True)),
        "every BatchNorm to eval": define("train_mode", lambda ns: _train_mode(everything=True)),
        "model.eval()": define("train_mode", lambda ns: lambda m: m.eval()),
    },
    ("07", 3): {
        "reference": define("load_checked", lambda ns: _load_checked(check_first=True)),
        "load, then raise (a refused checkpoint has already changed the model)": define(
            "load_checked", lambda ns: _load_checked(check_first=False)
        ),
        "never refuses": define("load_checked", lambda ns: _load_checked(check_first=True, refuse=False)),
        "strict=True": define("load_checked", lambda ns: lambda m, s: m.load_state_dict(s)),
    },
}


def _no_grad_first_blocks(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        features = model.block2(model.block1(x))
    return model.head(model.block3(features))


def _frozen_then_forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    freeze_to(model, 2)
    return model(x)


def _all_without_grad(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x)


def run_autograde(notebook: str, number: int, answer: Answer) -> None:
    """Run the autograde cell after ``answer``; raises whatever the cell raises."""
    ns: Namespace = {"ex": CHECKERS[notebook], "torch": torch, "nn": nn}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        CONTEXTS[notebook](ns)
        answer(ns)
        exec(autograde_cell(notebook, number), ns)  # noqa: S102 - the cell nbgrader would run


CASES = [(key, name) for key, answers in CATALOGUE.items() for name in answers if name != "reference"]


def test_every_exercise_has_a_catalogue() -> None:
    built = set()
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        built |= {(path.name[:2], e.number) for e in exercises(nbformat.read(path, as_version=4), path.name)}
    assert built == set(CATALOGUE)
    assert all(len(answers) >= 3 and "reference" in answers for answers in CATALOGUE.values())


@pytest.mark.parametrize("key", sorted(CATALOGUE), ids=lambda k: f"{k[0]}-ex{k[1]}")
def test_reference_solution_passes_the_autograde_cell(key: tuple[str, int]) -> None:
    run_autograde(*key, CATALOGUE[key]["reference"])


@pytest.mark.parametrize("key, name", CASES, ids=[f"{k[0]}-ex{k[1]}: {n}" for k, n in CASES])
def test_wrong_solution_fails_the_autograde_cell(key: tuple[str, int], name: str) -> None:
    with pytest.raises(Exception):  # noqa: B017, PT011 - the cell may fail in its checker or a hidden test
        run_autograde(*key, CATALOGUE[key][name])


def test_hidden_tests_come_from_one_real_file_one_section_per_exercise(tmp_path) -> None:
    from tools.assignments import HIDDEN_TESTS, hidden_tests

    assert len(HIDDEN_TESTS) == 21 and all(code and "# %%" not in code for code in HIDDEN_TESTS.values())
    twice = tmp_path / "twice.py"
    twice.write_text("# %% 01.1\nassert True\n# %% 01.1\nassert False\n")
    with pytest.raises(ValueError, match="two sections"):
        hidden_tests(twice)
    none = tmp_path / "none.py"
    none.write_text("assert True\n")
    with pytest.raises(ValueError, match="no section like"):
        hidden_tests(none)
