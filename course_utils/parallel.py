"""Independent jobs on several CPU cores at once, with the results of running them one by one.

``experiment.compare`` hands over one job per (arm, seed); each job seeds itself, so the order and
the process it runs in change nothing. Workers are *forked* copies of this process: the jobs
(closures, lambdas defined in a notebook) are inherited, never pickled; only results travel back.
Where forking is not safe (not Linux, CUDA in use, already inside a worker) the jobs run here.
Set ``COURSE_WORKERS=1`` to run everything in this process (e.g. to debug a job).
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import random
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.pool import MaybeEncodingError  # type: ignore[attr-defined]  # missing from typeshed
from typing import Any

import numpy as np
import torch

MAX_WORKERS = 4
WORKERS_VARIABLE = "COURSE_WORKERS"

_jobs: Sequence[Callable[[], Any]] = ()  # the jobs of the running ``run_jobs`` call; forked workers inherit them


def can_fork() -> bool:
    """True where worker processes may be forked from this one."""
    return (
        sys.platform == "linux"
        and not multiprocessing.current_process().daemon  # a worker cannot start workers of its own
        and not torch.cuda.is_initialized()  # a forked child cannot use its parent's CUDA context
    )


def default_workers() -> int:
    """``$COURSE_WORKERS`` if set, else one worker per CPU core this process may use (at most 4); 1 where
    forking is not safe."""
    if not can_fork():
        return 1
    value = os.environ.get(WORKERS_VARIABLE)
    if value is not None:
        if not value.strip().isdigit() or int(value) < 1:
            raise ValueError(f"{WORKERS_VARIABLE} must be a whole number of at least 1, got {value!r}.")
        return int(value)
    return max(1, min(MAX_WORKERS, len(os.sched_getaffinity(0))))


def _start_worker() -> None:
    """In a new worker: print to the process's own stdout/stderr. A notebook kernel's streams are sent by a
    thread of the parent, which a forked child does not have; writing to them could block the worker."""
    if sys.__stdout__ is not None and sys.__stderr__ is not None:
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__


def _run_job(index: int) -> tuple[int, Any]:
    return index, _jobs[index]()


def run_jobs(
    jobs: Sequence[Callable[[], Any]], workers: int | None = None, on_done: Callable[[Any], object] | None = None
) -> list[Any]:
    """The results of ``jobs`` (callables without arguments), in the jobs' order.

    Up to ``workers`` jobs run at once, each in its own process (default: ``default_workers()``);
    ``on_done(result)`` is called here as each one finishes. An error in a job is raised here.
    """
    global _jobs
    workers = default_workers() if workers is None else workers
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers must be a whole number of at least 1, got {workers!r}.")
    done = on_done or (lambda result: None)
    if workers == 1 or len(jobs) < 2 or not can_fork():
        results = []
        for job in jobs:
            results.append(job())
            done(results[-1])
        return results
    # PyTorch imports torch._dynamo lazily, when the first optimizer is built (seconds). Imported here
    # once, it is inherited by every worker; otherwise each worker of each call would import it again.
    importlib.import_module("torch._dynamo")
    _jobs = jobs
    ordered: dict[int, Any] = {}
    try:
        with multiprocessing.get_context("fork").Pool(min(workers, len(jobs)), initializer=_start_worker) as pool:
            for index, result in pool.imap_unordered(_run_job, range(len(jobs))):
                ordered[index] = result
                done(result)
    except MaybeEncodingError as error:
        raise RuntimeError(
            f"A job's result could not be sent back from its worker process: {error}. "
            "Run it in this process instead (workers=1)."
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
