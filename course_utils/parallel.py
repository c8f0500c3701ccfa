"""Independent jobs on several CPU cores at once, with the results of running them one by one.

``experiment.compare`` hands over one job per (arm, seed); each job seeds itself and runs on one
CPU thread wherever it runs, so neither the order, the process nor the machine's core count
changes a result. Workers are *forked* copies of this process: the jobs (closures, lambdas
defined in a notebook) are inherited, never pickled; only results travel back.

Why forking is safe here, although a notebook kernel has threads (Python 3.12+ warns about any fork
from a threaded process; that warning is silenced for this fork alone):

- the workers are forked once per ``run_jobs`` call, up front, before any job runs; the child never
  touches what the parent's threads own: the kernel's sockets (a worker prints to its own process's
  streams), tqdm's lock (jobs build no progress bar), the CUDA context (no fork once CUDA is in use);
- PyTorch resets its CPU thread pool in a forked child, and a worker runs on one thread;
- a worker that dies (killed for memory, a crash) ends the call at once with an error that says
  ``COURSE_WORKERS=1``, never a hang.

Where forking is not possible (not Linux, CUDA in use, already inside a worker) the jobs run here.
Set ``COURSE_WORKERS=1`` to run everything in this process (e.g. to debug a job).
"""

from __future__ import annotations

import importlib
import math
import multiprocessing
import os
import pickle
import random
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["default_workers", "one_thread", "random_state_kept", "run_jobs"]  # what a notebook imports from here

MAX_WORKERS = 4
WORKERS_VARIABLE = "COURSE_WORKERS"
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # a container's CPU quota (cgroup v2)

_jobs: Sequence[Callable[[], Any]] = ()  # the jobs of the running ``run_jobs`` call; forked workers inherit them
_in_worker = False  # True inside a worker process


class UnsendableResult(RuntimeError):
    """A job's result cannot be pickled, so it cannot travel back from a worker process."""


def can_fork() -> bool:
    """True where worker processes may be forked from this one."""
    return (
        sys.platform == "linux"
        and not _in_worker  # a worker does not start workers of its own
        and not torch.cuda.is_initialized()  # a forked child cannot use its parent's CUDA context
    )


def cgroup_cpu_quota(path: Path | None = None) -> int | None:
    """Whole CPUs this container may use by its cgroup quota (at least 1), or None where no quota is set."""
    try:
        fields = (path or CGROUP_CPU_MAX).read_text().split()
    except OSError:
        return None
    if not fields or fields[0] == "max":
        return None
    try:
        quota, period = int(fields[0]), int(fields[1]) if len(fields) > 1 else 100_000
    except ValueError:
        return None
    return max(1, math.floor(quota / period)) if period > 0 else None


def available_cpus(quota_file: Path | None = None) -> int:
    """CPU cores this process may use: its affinity (``os.process_cpu_count``), capped by a cgroup quota."""
    if hasattr(os, "process_cpu_count"):  # Python 3.13+
        count = os.process_cpu_count() or 1
    elif hasattr(os, "sched_getaffinity"):
        count = len(os.sched_getaffinity(0))
    else:
        count = os.cpu_count() or 1
    quota = cgroup_cpu_quota(quota_file)
    return max(1, min(count, quota) if quota is not None else count)


def default_workers() -> int:
    """``$COURSE_WORKERS`` if set, else one worker per CPU this process may use (at most 4); 1 where
    forking is not possible."""
    if not can_fork():
        return 1
    value = os.environ.get(WORKERS_VARIABLE)
    if value is not None:
        if not value.strip().isdigit() or int(value) < 1:
            raise ValueError(f"{WORKERS_VARIABLE} must be a whole number of at least 1, got {value!r}.")
        return int(value)
    return min(MAX_WORKERS, available_cpus())


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the block on one PyTorch CPU thread: a job gives the same bits in any process, on any machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _start_worker() -> None:
    """In a new worker: print to the process's own stdout/stderr (a notebook kernel's streams are sent by a
    thread of the parent, which a forked child does not have), and start no workers of its own."""
    global _in_worker
    _in_worker = True
    if sys.__stdout__ is not None and sys.__stderr__ is not None:
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__


def _run_job(index: int) -> bytes:
    """Run job ``index`` in a worker; its result travels back as plain pickle bytes (tensors copied, never
    handed over as shared-memory file descriptors, which can block a forked worker)."""
    with one_thread():
        result = _jobs[index]()
    try:
        return pickle.dumps(result)
    except Exception as error:
        raise UnsendableResult(
            f"Job {index}'s result could not be sent back from its worker process ({error}). "
            "Run the jobs in this process instead (workers=1)."
        ) from None


def _forked_pool(workers: int) -> ProcessPoolExecutor:
    with warnings.catch_warnings():
        # Python 3.12+ warns on any fork from a threaded process; why this one is safe: the module docstring.
        warnings.filterwarnings(
            "ignore", message=r".*use of fork\(\) may lead to deadlocks", category=DeprecationWarning
        )
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"), initializer=_start_worker)
        pool.submit(int).result()  # a fork pool starts all its workers at the first submit: here, inside the filter
    return pool


def run_jobs(
    jobs: Sequence[Callable[[], Any]], workers: int | None = None, on_done: Callable[[Any], object] | None = None
) -> list[Any]:
    """The results of ``jobs`` (callables without arguments), in the jobs' order.

    Up to ``workers`` jobs run at once, each in its own process (default: ``default_workers()``),
    each on one CPU thread; ``on_done(result)`` is called here as each one finishes. An error in a
    job is raised here; a worker that dies raises a RuntimeError that says what to do.
    """
    global _jobs
    workers = default_workers() if workers is None else workers
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers must be a whole number of at least 1, got {workers!r}.")
    done = on_done or (lambda result: None)
    if workers == 1 or len(jobs) < 2 or not can_fork():
        results = []
        for job in jobs:
            with one_thread():
                results.append(job())
            done(results[-1])
        return results
    # PyTorch imports torch._dynamo lazily, when the first optimizer is built (seconds). Imported here
    # once, it is inherited by every worker; otherwise each worker of each call would import it again.
    importlib.import_module("torch._dynamo")
    _jobs = jobs
    try:
        pool = _forked_pool(min(workers, len(jobs)))
        try:
            futures: dict[Future[Any], int] = {pool.submit(_run_job, index): index for index in range(len(jobs))}
            ordered: dict[int, Any] = {}
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for future in finished:
                    ordered[futures[future]] = pickle.loads(future.result())  # a job's error is raised here
                    done(ordered[futures[future]])
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # after an error: the jobs not started yet never start
    except BrokenProcessPool as error:
        raise RuntimeError(
            "A worker process died before its job finished (killed by the system, for example when memory ran "
            f"out). Set {WORKERS_VARIABLE}=1 (or pass workers=1) to run the jobs one by one in this process."
        ) from error
    finally:
        _jobs = ()
    return [ordered[index] for index in range(len(jobs))]


@contextmanager
def random_state_kept() -> Iterator[None]:
    """Run the block, then put Python's, NumPy's and PyTorch's random generators back as they were."""
    python, numpy_state, torch_state = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy_state)
        torch.random.set_rng_state(torch_state)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
