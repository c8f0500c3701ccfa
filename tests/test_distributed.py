"""examples/distributed_freezing.py, run for real: torchrun, two CPU processes, gloo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).resolve().parents[1] / "examples" / "distributed_freezing.py"
BLOCKS = ("block1", "block2", "block3", "head")

pytestmark = pytest.mark.slow  # two fresh PyTorch processes plus the launcher: about 10 s


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("distributed") / "results.json"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node=2",
        str(WORKER),
        "--out",
        str(out),
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=240, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert done.stdout.count("finished:") == 6, done.stdout  # rank 0 reports each set-up once
    return json.loads(out.read_text())


def test_two_processes(results: dict) -> None:
    assert results["world_size"] == 2


def test_a_freeze_before_wrap_keeps_replicas_identical(results: dict) -> None:
    a = results["a_freeze_before_wrap"]
    assert a["max_abs_diff"] == {block: 0.0 for block in BLOCKS}
    assert a["moved"] == {"block1": False, "block2": False, "block3": False, "head": True}
    assert a["losses"][-1] < a["losses"][0]


def test_b_freeze_after_wrap_raises(results: dict) -> None:
    b = results["b_freeze_after_wrap"]
    assert b["type"] == "RuntimeError"
    assert b["message"].startswith("Expected to have finished reduction in the prior iteration")
    assert "find_unused_parameters=True" in b["message"]
    assert b["iteration_after_freezing"] == 2


def test_c_unfreeze_after_wrap_diverges_on_exactly_that_block(results: dict) -> None:
    c = results["c_unfreeze_after_wrap"]
    assert c["max_abs_diff_before_unfreeze"] == {block: 0.0 for block in BLOCKS}
    assert c["max_abs_diff"]["block3"] > 1e-5
    assert {block: c["max_abs_diff"][block] for block in BLOCKS if block != "block3"} == {
        "block1": 0.0,
        "block2": 0.0,
        "head": 0.0,
    }


def test_d_rewrap_after_unfreezing_keeps_replicas_identical(results: dict) -> None:
    assert results["d_unfreeze_then_rewrap"]["max_abs_diff"] == {block: 0.0 for block in BLOCKS}


def test_e_fsdp2_trains_and_shards_optimizer_state(results: dict) -> None:
    e = results["e_fsdp2"]
    assert e["param_type"] == "DTensor"
    assert e["losses"][-1] < e["losses"][0]
    assert e["frozen_unchanged"]
    per_rank, unsharded = e["optimizer_state_bytes_per_rank"], e["optimizer_state_bytes_unsharded"]
    assert unsharded == 2 * 4 * e["trainable_params"]  # Adam: two float32 moments per trainable value
    assert all(0 < n < unsharded for n in per_rank) and sum(per_rank) == unsharded
    assert e["head_weight_rows_per_rank"] == [3, 2]  # 5 output rows split along dim 0


def test_fsdp1_facts_come_from_torch(results: dict) -> None:
    fsdp1 = results["fsdp1_on_cpu"]
    assert fsdp1["error"]["type"] == "RuntimeError" and "accelerator" in fsdp1["error"]["message"]
    assert "uniform `requires_grad`" in fsdp1["mixed_requires_grad_rule"]
    assert "use_orig_params=False" in fsdp1["mixed_requires_grad_rule"]
