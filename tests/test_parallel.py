"""course_utils.parallel: jobs in forked worker processes give the results of one process, in order."""

from __future__ import annotations

import io
import os
import random
import sys
import threading

import numpy as np
import pytest
import torch

from course_utils import parallel
from course_utils.parallel import default_workers, random_state_kept, run_jobs


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
