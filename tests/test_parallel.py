"""course_utils.parallel: jobs in forked worker processes give the results of one process, in order;
a dead worker is an error within seconds, never a hang; the worker count follows the CPUs really available."""

from __future__ import annotations

import io
import os
import random
import signal
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from course_utils import parallel
from course_utils.parallel import available_cpus, cgroup_cpu_quota, default_workers, random_state_kept, run_jobs


def square(n: int) -> int:
    return n * n


def test_results_come_back_in_the_jobs_order_from_other_processes() -> None:
    jobs = [lambda n=n: (square(n), os.getpid()) for n in range(6)]  # lambdas: inherited by the fork, not pickled
    finished: list[int] = []
    results = run_jobs(jobs, workers=2, on_done=lambda result: finished.append(result[0]))
    assert [value for value, _ in results] == [n * n for n in range(6)]
    assert sorted(finished) == [n * n for n in range(6)], "on_done once per job"
    assert os.getpid() not in {pid for _, pid in results}, "with 2 workers the jobs run in other processes"
    assert run_jobs(jobs, workers=1)[0][1] == os.getpid(), "workers=1 runs the jobs here"


def test_a_worker_prints_to_its_own_streams_not_to_the_callers(monkeypatch: pytest.MonkeyPatch) -> None:
    def streams() -> bool:
        print("a line from a worker")  # must not block or fail
        return sys.stdout is sys.__stdout__ and sys.stderr is sys.__stderr__

    notebook_stream = io.StringIO()  # stands in for a kernel's stream, which a forked child cannot use
    monkeypatch.setattr(sys, "stdout", notebook_stream)
    monkeypatch.setattr(sys, "stderr", notebook_stream)
    assert run_jobs([streams, streams], workers=2) == [True, True]
    assert notebook_stream.getvalue() == ""


def test_a_job_error_is_raised_in_the_caller() -> None:
    def fails() -> None:
        raise ValueError("job 2 went wrong")

    with pytest.raises(ValueError, match="job 2 went wrong"):
        run_jobs([lambda: 1, fails, lambda: 3], workers=2)
    assert parallel._jobs == (), "the jobs are released after a failure"


def test_a_result_that_cannot_travel_back_says_what_to_do() -> None:
    with pytest.raises(RuntimeError, match=r"workers=1"):
        run_jobs([lambda: 1, lambda: threading.Lock()], workers=2)  # a lock cannot be pickled
    assert run_jobs([lambda: 1, lambda: threading.Lock()], workers=1)[0] == 1


def test_a_worker_does_not_start_workers_of_its_own() -> None:
    assert run_jobs([default_workers, default_workers], workers=2) == [1, 1]


def test_a_worker_killed_mid_job_is_an_error_within_seconds_not_a_hang() -> None:
    def killed() -> None:
        os.kill(os.getpid(), signal.SIGKILL)  # what the out-of-memory killer does

    start = time.monotonic()
    with pytest.raises(RuntimeError, match=r"worker process died.*COURSE_WORKERS=1"):
        run_jobs([lambda: time.sleep(0.2) or 1, killed, lambda: 3], workers=2)
    assert time.monotonic() - start < 20
    assert parallel._jobs == ()
    assert run_jobs([lambda: 1, lambda: 2], workers=2) == [1, 2], "the next call starts fresh workers"


def test_every_job_runs_on_one_thread_in_a_worker_and_here() -> None:
    threads_before = torch.get_num_threads()
    assert run_jobs([torch.get_num_threads] * 2, workers=2) == [1, 1]
    assert run_jobs([torch.get_num_threads] * 2, workers=1) == [1, 1]
    assert torch.get_num_threads() == threads_before, "the caller's thread count is put back"


def test_no_fork_warning_reaches_the_caller() -> None:
    keep_busy = threading.Event()
    thread = threading.Thread(target=keep_busy.wait)  # a threaded caller, like a notebook kernel
    thread.start()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert run_jobs([lambda: 1, lambda: 2], workers=2) == [1, 2]
    finally:
        keep_busy.set()
        thread.join()
    assert not [w for w in caught if "fork" in str(w.message)], [str(w.message) for w in caught]


@pytest.mark.parametrize(
    ("text", "quota"),
    [("max 100000", None), ("100000 100000", 1), ("150000 100000", 1), ("400000 100000", 4), ("50000 100000", 1)],
)
def test_the_cgroup_quota_is_read_in_whole_cpus(tmp_path: Path, text: str, quota: int | None) -> None:
    (tmp_path / "cpu.max").write_text(text + "\n")
    assert cgroup_cpu_quota(tmp_path / "cpu.max") == quota


def test_no_quota_file_or_a_broken_one_means_no_quota(tmp_path: Path) -> None:
    assert cgroup_cpu_quota(tmp_path / "missing") is None
    (tmp_path / "cpu.max").write_text("garbage here\n")
    assert cgroup_cpu_quota(tmp_path / "cpu.max") is None


def test_a_quota_of_one_cpu_gives_one_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    quota = tmp_path / "cpu.max"
    quota.write_text("100000 100000\n")
    monkeypatch.setattr(parallel, "CGROUP_CPU_MAX", quota)
    monkeypatch.delenv("COURSE_WORKERS", raising=False)
    assert available_cpus(quota) == 1
    assert default_workers() == 1
    quota.write_text("max 100000\n")
    expected = os.process_cpu_count() if hasattr(os, "process_cpu_count") else len(os.sched_getaffinity(0))
    assert available_cpus(quota) == expected


@pytest.mark.parametrize("workers", [0, -1, 1.5, "2", True])
def test_bad_worker_counts_are_refused(workers: object) -> None:
    with pytest.raises(ValueError, match="workers must be a whole number"):
        run_jobs([lambda: 1], workers=workers)  # type: ignore[arg-type]


def test_the_environment_variable_sets_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_WORKERS", "1")
    assert default_workers() == 1
    monkeypatch.setenv("COURSE_WORKERS", "3")
    assert default_workers() == 3
    for bad in ("0", "two", ""):
        monkeypatch.setenv("COURSE_WORKERS", bad)
        with pytest.raises(ValueError, match="COURSE_WORKERS must be a whole number"):
            default_workers()
    monkeypatch.delenv("COURSE_WORKERS")
    assert 1 <= default_workers() <= parallel.MAX_WORKERS


def test_random_state_is_put_back() -> None:
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    with random_state_kept():
        random.random(), np.random.rand(), torch.rand(3)
    after = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    assert after == (random.random(), np.random.rand(), torch.rand(1).item())


def test_tensors_come_back_from_workers_call_after_call() -> None:
    def tensor_job(n: int) -> torch.Tensor:
        return torch.arange(1000.0) * n  # a result holding tensor storage (once blocked a forked worker)

    for _ in range(3):  # later calls too: the parent then has threads left from earlier pools
        results = run_jobs([lambda n=n: tensor_job(n) for n in range(4)], workers=2)
        assert [float(r[1]) for r in results] == [0.0, 1.0, 2.0, 3.0]
