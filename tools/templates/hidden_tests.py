"""Hidden tests of the nbgrader assignments (`make assignments`), one section per exercise: `# %% NN.k` is
exercise k of notebook NN. Each section runs in the notebook's kernel right after the exercise cell, so it
uses the notebook's names; students never see it. tools.assignments reads this file (hidden_tests()).
"""
# ruff: noqa: E402, F811, F821  (sections are separate cells: imports follow code, repeat, and use notebook names)

# %% 01.1
from torch import nn

assert count_parameters(nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))) == 12
_frozen = nn.Conv2d(3, 5, 3)
_frozen.bias.requires_grad_(False)
assert count_parameters(_frozen) == 135
_shared = nn.Linear(2, 2)
assert count_parameters(nn.Sequential(_shared, _shared)) == 6

# %% 01.2
assert sorted(not_parameters) == sorted(name for name, _ in resnet.named_buffers())

# %% 01.3
assert tuple(int(v) for v in block2_shape) == (8, 32, 8, 8)

# %% 02.1
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

_layer = nn.Linear(2, 1)
_layer.weight.grad = torch.ones(1, 2)
_layer.bias.requires_grad_(False)
_w, _b = _layer.weight.detach().clone(), _layer.bias.detach().clone()
_steps = []
_hook = register_optimizer_step_pre_hook(lambda *_: _steps.append(1))
sgd_step(_layer, 0.25, 0.5)
_hook.remove()
assert not _steps, "sgd_step used a torch.optim optimizer"
assert torch.allclose(_layer.weight, _w - 0.25 * (1 + 0.5 * _w)) and torch.equal(_layer.bias, _b)

# %% 02.2
assert float(accumulation_factor) == 2.0

# %% 02.3
from course_utils.models import CourseCNN

assert set(changed_in_eval_step) == {name for name, _ in CourseCNN().named_parameters()}

# %% 03.1
from course_utils.freezing import helpers_applied

_frozen = [n for n, p in exercise_model.named_parameters() if not p.requires_grad]
assert _frozen == [n for n, _ in exercise_model.named_parameters() if n.startswith(("block2.", "block3."))]
assert len(_frozen) == 6 and not helpers_applied(exercise_model)

# %% 03.2
assert type(optimizer).__name__ == "SGD"
assert all(p.requires_grad for p in opt_model.parameters())
_lr = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
assert {i: _lr.get(i) for i in map(id, opt_model.block1.parameters())} == {
    i: 0.001 for i in map(id, opt_model.block1.parameters())
}
_rest = [p for n, p in opt_model.named_parameters() if not n.startswith("block1.")]
assert all(_lr.get(id(p)) == 0.01 and "momentum_buffer" in optimizer.state[p] for p in _rest)

# %% 03.3
from torch import nn
from torchvision.models import resnet18

_r = resnet18(weights=None)
fc_and_bn_only(_r)
assert _r.layer3[1].bn2.bias.requires_grad and _r.fc.weight.requires_grad
assert not _r.conv1.weight.requires_grad and not _r.layer4[0].downsample[0].weight.requires_grad
_m = nn.Module()
_m.conv = nn.Conv2d(1, 2, 3)
_m.bn = nn.BatchNorm2d(2)
_m.fc = nn.Linear(2, 2)
fc_and_bn_only(_m)
assert [n for n, p in _m.named_parameters() if p.requires_grad] == ["bn.weight", "bn.bias", "fc.weight", "fc.bias"]

# %% 04.1
import torch

assert [n for n, p in exercise_model.named_parameters() if p.requires_grad] == [
    n for n, _ in exercise_model.named_parameters() if n.startswith("head.")
]
_device = next(exercise_model.parameters()).device
assert tuple(exercise_model.eval()(torch.rand(2, 1, 28, 28, device=_device)).shape) == (2, 5)

# %% 04.2
import copy

import torch

_model = copy.deepcopy(pretrained).train()
_x = exercise_x[:10]
_x = _x.to(next(_model.parameters()).device)
_grad_on = []
_h = _model.block1.register_forward_hook(lambda *_: _grad_on.append(torch.is_grad_enabled()))
_f = cache_features(_model, _x)
_h.remove()
_reference = copy.deepcopy(pretrained).eval()
with torch.no_grad():
    _expected = _reference.features(_x)
assert tuple(_f.shape) == (10, 256) and _f.grad_fn is None and _grad_on == [False]
assert torch.allclose(_f, _expected, atol=1e-4)

# %% 04.3
assert my_crossover == next((k for k in LABELS if curve[k].paired("full", "frozen").low > 0), None)

# %% 05.1
from course_utils.freezing import helpers_applied

_frozen = [
    b
    for b in ("block1", "block2", "block3", "head")
    if not any(p.requires_grad for p in getattr(exercise_model, b).parameters())
]
assert _frozen == ["block1", "block3"] and not helpers_applied(exercise_model)
assert all(p.requires_grad for p in exercise_model.block2.parameters())

# %% 05.2
import torch

_optimizer = torch.optim.Adam(my_groups)
assert sum(len(g["params"]) for g in _optimizer.param_groups) == sum(
    1 for p in lr_model.parameters() if p.requires_grad
)
assert sorted(round(g["lr"], 12) for g in my_groups) == [2.5e-4, 5e-4, 1e-3]

# %% 05.3
from course_utils.experiment import Budget, Comparison, Run

_val = {
    "block1": (70, 72, 71),
    "block2": (80, 79, 81),
    "block3": (82, 84, 83),
    "head": (60, 61, 59),
    "all": (90, 91, 89),
}
_test = {
    "block1": (75, 74, 76),
    "block2": (86, 85, 84),
    "block3": (78, 79, 77),
    "head": (62, 60, 61),
    "all": (88, 89, 90),
}
_c = Comparison(
    tuple(Run(a, s, 1e-3, _val[a][s], _test[a][s], {1e-3: _val[a][s]}, 1, None) for a in _val for s in range(3)),
    Budget(1, 1, (1e-3,)),
)
assert pick_block(_c, ("block1", "block2", "block3", "head")) == "block3", "not chosen on validation"
assert pick_block(_c, ("head", "block1")) == "block1"

# %% 06.1
import torch

from course_utils.models import CourseCNN

_m = CourseCNN().eval()
_x = torch.rand(3, 1, 28, 28)
_out = forward_stopping_after_block2(_m, _x)
assert all(p.requires_grad for p in _m.parameters()) and not _m.training
assert torch.allclose(_out, _m(_x), atol=1e-5)
_out.sum().backward()
assert _m.block1[0].weight.grad is None and _m.block2[0].weight.grad is None
assert _m.block3[0].weight.grad is not None and _m.head[-1].weight.grad is not None

# %% 06.2
from torch import nn

_lin = nn.Linear(10, 10)
_lin.bias.requires_grad_(False)
assert adam_state_bytes(_lin) == 2 * 100 * 4

# %% 06.3
import torch

from course_utils.models import CourseCNN

_m = CourseCNN()
_m.head.requires_grad_(False)
_m(torch.rand(2, 1, 28, 28)).sum().backward()
_norms = grad_norms(_m)
assert set(_norms) == {n for n, p in _m.named_parameters() if p.requires_grad}
assert abs(float(_norms["block1.0.weight"]) - _m.block1[0].weight.grad.norm().item()) < 1e-5

# %% 07.1
import torch

assert isinstance(ex_optimizer, torch.optim.SGD)
assert {id(p) for g in ex_optimizer.param_groups for p in g["params"]} == {
    id(p) for p in ex_model.parameters() if p.requires_grad
}

# %% 07.2
from course_utils.freezing import helpers_applied
from course_utils.models import CourseCNN

_m = CourseCNN()
_m.block2.requires_grad_(False)
_m.eval()
train_mode(_m)
assert _m.head[1].training and _m.block1[1].training and not _m.block2[1].training
assert not helpers_applied(_m)

# %% 07.3
import torch

from course_utils.models import CourseCNN

_m = CourseCNN()
_before = {k: v.clone() for k, v in _m.state_dict().items()}
_state = {k: v + 1 for k, v in _m.state_dict().items() if k.startswith("head.")}
try:
    load_checked(_m, {**_state, "head.9.weight": torch.zeros(1)})
except Exception:
    pass
else:
    raise AssertionError("a checkpoint with an unknown key loaded silently")
assert all(torch.equal(v, _before[k]) for k, v in _m.state_dict().items()), "refused, but after loading"
