"""Freezing with several processes, measured: DDP and FSDP2 on two CPU processes.

Launch (CPU, gloo, one thread per process, a few seconds):

    torchrun --standalone --nproc-per-node=2 examples/distributed_freezing.py --out dist.json

(``torchrun`` is ``python -m torch.distributed.run``.) Every rank trains the pretrained course
CNN with a new head on its own batches of digits 5-9; rank 0 writes what was measured as JSON:

a. freeze before wrapping in DDP           -> replicas bitwise identical
b. freeze after wrapping                   -> RuntimeError (its text is recorded)
c. unfreeze after wrapping (gradual)       -> no error, but the unfrozen block diverges
d. unfreeze, then re-create the DDP wrapper -> replicas identical again
e. FSDP2 ``fully_shard`` with a frozen backbone -> trains; optimizer state sharded per rank
plus the error FSDP1 (``FullyShardedDataParallel``) gives on a CPU-only machine.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from course_utils.batchnorm import set_bn_eval
from course_utils.data import TARGET_CLASSES, make_task
from course_utils.freezing import freeze as freeze_layers
from course_utils.freezing import unfreeze as unfreeze_layers
from course_utils.models import load_pretrained, replace_head
from course_utils.optim_groups import trainable_parameters

BACKBONE = ("block1", "block2", "block3")
BLOCKS = (*BACKBONE, "head")
STEPS = 5
BATCH = 32


def build_model() -> nn.Module:
    """The pretrained course CNN with a fresh 5-class head: identical on every rank (same seed)."""
    torch.manual_seed(0)
    model = load_pretrained()
    replace_head(model, 5)
    return model.train()


def freeze(model: nn.Module, *names: str) -> None:
    """Freeze whole blocks; their BatchNorm layers go to eval so their statistics stay put too."""
    freeze_layers(model, *names)
    set_bn_eval(model)


def unfreeze(model: nn.Module, name: str) -> None:
    """Make a block trainable again, BatchNorm statistics included."""
    unfreeze_layers(model, name)
    model.get_submodule(name).train()


def batches(rank: int, world: int, steps: int):
    """Each rank's own batches, like a DistributedSampler: one shared shuffle, a different slice per rank."""
    task = make_task(TARGET_CLASSES, k_per_class=100, seed=0)
    order = torch.randperm(len(task.y_train), generator=torch.Generator().manual_seed(0))
    for step in range(steps):
        start = (step * world + rank) * BATCH
        idx = order[start : start + BATCH]
        yield task.x_train[idx], task.y_train[idx]


def train(wrapped: nn.Module, optimizer: torch.optim.Optimizer, steps: int, offset: int = 0) -> list[float]:
    rank, world = dist.get_rank(), dist.get_world_size()
    losses = []
    for step, (x, y) in enumerate(batches(rank, world, offset + steps)):
        if step < offset:
            continue
        optimizer.zero_grad()
        loss = F.cross_entropy(wrapped(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def replica_difference(model: nn.Module) -> dict[str, float]:
    """Per block: max |w_rank0 - w_rank1| over its parameters (0.0 means bitwise identical)."""
    params = {name: p.detach().clone() for name, p in model.named_parameters()}
    gathered: list[dict[str, torch.Tensor]] = [{} for _ in range(dist.get_world_size())]
    dist.all_gather_object(gathered, params)
    diff = {block: 0.0 for block in BLOCKS}
    for name, tensor in gathered[0].items():
        block = name.split(".")[0]
        for other in gathered[1:]:
            diff[block] = max(diff[block], float((tensor - other[name]).abs().max()))
    return diff


def case_freeze_before_wrap() -> dict:
    model = build_model()
    freeze(model, *BACKBONE)  # 1. freeze ...
    ddp = DDP(model)  # 2. ... then wrap
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    losses = train(ddp, torch.optim.SGD(trainable_parameters(model), lr=0.05, momentum=0.9), STEPS)
    moved = {
        b: any(not torch.equal(p, before[n]) for n, p in model.named_parameters() if n.startswith(b + "."))
        for b in BLOCKS
    }
    return {"max_abs_diff": replica_difference(model), "moved": moved, "losses": losses}


def case_freeze_after_wrap() -> dict:
    model = build_model()
    ddp = DDP(model)  # wrapped with every parameter trainable
    optimizer = torch.optim.SGD(trainable_parameters(model), lr=0.05)
    train(ddp, optimizer, 1)
    freeze(model, "block1")  # too late: DDP still expects block1's gradients
    for iteration in range(1, 4):
        try:
            train(ddp, optimizer, 1, offset=iteration)
        except RuntimeError as exc:
            return {"iteration_after_freezing": iteration, "type": type(exc).__name__, "message": str(exc)}
    return {"iteration_after_freezing": None, "type": None, "message": None}


def case_unfreeze_after_wrap(rewrap: bool) -> dict:
    model = build_model()
    freeze(model, *BACKBONE)
    ddp = DDP(model)
    optimizer = torch.optim.SGD(trainable_parameters(model), lr=0.05, momentum=0.9)
    train(ddp, optimizer, STEPS)
    before_unfreeze = replica_difference(model)
    unfreeze(model, "block3")  # gradual unfreezing: block3 joins the training ...
    optimizer.add_param_group({"params": list(model.block3.parameters()), "lr": 0.01})
    if rewrap:
        del ddp
        ddp = DDP(model)  # ... and the fix: a new wrapper registers hooks for block3 too
    train(ddp, optimizer, STEPS, offset=STEPS)
    return {"max_abs_diff_before_unfreeze": before_unfreeze, "max_abs_diff": replica_difference(model)}


def local_bytes(tensor: torch.Tensor) -> int:
    local = tensor.to_local() if hasattr(tensor, "to_local") else tensor  # DTensor -> this rank's shard
    return local.numel() * local.element_size()


def adam_moment_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes of Adam's exp_avg and exp_avg_sq held by this rank."""
    return sum(local_bytes(state[key]) for state in optimizer.state.values() for key in ("exp_avg", "exp_avg_sq"))


def case_fsdp2() -> dict:
    from torch.distributed.fsdp import fully_shard

    world = dist.get_world_size()
    reference = build_model()  # unsharded: what one process would hold
    freeze(reference, *BACKBONE)
    ref_optimizer = torch.optim.Adam(trainable_parameters(reference), lr=1e-3)
    train_plain(reference, ref_optimizer)

    model = build_model()
    freeze(model, *BACKBONE)  # frozen and trainable parameters in one fully_shard unit
    fully_shard(model)  # every parameter becomes a DTensor: each rank keeps one shard (dim 0)
    frozen_before = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    optimizer = torch.optim.Adam(trainable_parameters(model), lr=1e-3)
    losses = train(model, optimizer, STEPS)
    frozen_unchanged = all(
        torch.equal(p.to_local(), frozen_before[n].to_local())
        for n, p in model.named_parameters()
        if not p.requires_grad
    )
    per_rank = [0] * world
    dist.all_gather_object(per_rank, adam_moment_bytes(optimizer))
    param_type = type(next(model.parameters())).__name__
    head_rows = [0] * world
    dist.all_gather_object(head_rows, model.head[2].weight.to_local().shape[0])
    return {
        "losses": losses,
        "frozen_unchanged": frozen_unchanged,
        "param_type": param_type,
        "trainable_params": sum(p.numel() for p in trainable_parameters(reference)),
        "optimizer_state_bytes_per_rank": per_rank,
        "optimizer_state_bytes_unsharded": adam_moment_bytes(ref_optimizer),
        "head_weight_rows_per_rank": head_rows,
    }


def train_plain(model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """One step on one batch, only to create the optimizer state a single unsharded model holds."""
    x, y = next(batches(0, 1, 1))
    optimizer.zero_grad()
    F.cross_entropy(model(x), y).backward()
    optimizer.step()


def fsdp1_on_cpu() -> dict:
    """What FSDP1 says on a machine without an accelerator, and its rule for mixed requires_grad."""
    from torch.distributed.fsdp import FullyShardedDataParallel, _flat_param

    model = build_model()
    freeze(model, *BACKBONE)
    try:
        FullyShardedDataParallel(model)
        error = None
    except Exception as exc:  # noqa: BLE001 - we record whatever FSDP1 raises
        error = {"type": type(exc).__name__, "message": str(exc)}
    # FSDP1's rule for mixing frozen and trainable parameters, as the error it raises in its source
    tree = ast.parse(inspect.getsource(_flat_param))
    rule = next(
        (
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and "uniform `requires_grad`" in node.value
        ),
        None,
    )
    return {"error": error, "mixed_requires_grad_rule": rule, "rule_source": "torch/distributed/fsdp/_flat_param.py"}


CASES = {
    "a_freeze_before_wrap": case_freeze_before_wrap,
    "c_unfreeze_after_wrap": lambda: case_unfreeze_after_wrap(rewrap=False),
    "d_unfreeze_then_rewrap": lambda: case_unfreeze_after_wrap(rewrap=True),
    "e_fsdp2": case_fsdp2,
    "fsdp1_on_cpu": fsdp1_on_cpu,
    "b_freeze_after_wrap": case_freeze_after_wrap,  # last: the failed DDP leaves its reduction unfinished
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="JSON file rank 0 writes the results to")
    args = parser.parse_args()
    if "RANK" not in os.environ:
        sys.exit(
            "Start this script with torchrun, e.g. "
            "torchrun --standalone --nproc-per-node=2 examples/distributed_freezing.py --out results.json"
        )
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    start = time.perf_counter()
    results: dict = {"world_size": dist.get_world_size(), "torch": torch.__version__}
    for name, case in CASES.items():
        results[name] = case()
        if rank == 0:
            print("finished:", name, flush=True)  # progress for whoever launched us
    results["seconds"] = time.perf_counter() - start
    if rank == 0:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
