"""The course's pytest plugin (loaded by the root conftest.py; ``-p tools.pytest_plugin`` elsewhere).

- nbval's kernels use ``tools.kernels.LocalKernelManager``: IPC sockets with unique paths, so two
  kernels starting at once cannot race for a TCP port.
- Under CI (any non-empty ``CI``), a skipped test fails the run: a CI that skips the browser or
  the nbgrader test has not tested them. The skipped tests are listed with their reasons.
- The longest files run first (the browser run, nbgrader, the notebooks; then the quick unit tests), so
  that with several processes none is left alone with a long file at the end. Each file's tests keep
  their order (nbval runs a notebook's cells in order). pytest-xdist hands the files out in this order
  (its ``--loadscope-reorder``, which puts the files with the most tests first, is turned off).
- In each of several pytest processes (pytest-xdist, as ``make test`` runs them), torch and the
  kernels it starts use one CPU thread and ``compare`` no worker processes (``COURSE_WORKERS=1``):
  the processes then share the cores instead of fighting over them.
"""

from __future__ import annotations

import os
import sys

import nbval.kernel
import pytest

from tools.kernels import LocalKernelManager

nbval.kernel.KernelManager = LocalKernelManager  # type: ignore[misc]  # nbval builds its kernels from this name

_skipped: list[str] = []
ONE_CORE_EACH = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "COURSE_WORKERS": "1"}


# Files by how long they run, longest first; every other file after them, in collection order.
LONGEST_FIRST = ("tests/test_browser.py", "tests/test_nbgrader.py", "notebooks/", "tests/test_site.py")


def run_order(nodeid: str) -> int:
    """Where a test's file comes in the run: the index of the first ``LONGEST_FIRST`` prefix it has."""
    return next((i for i, prefix in enumerate(LONGEST_FIRST) if nodeid.startswith(prefix)), len(LONGEST_FIRST))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: run_order(item.nodeid))  # stable: each file keeps its tests' order


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config.option, "loadscopereorder"):  # pytest-xdist: hand out files in the order above, not
        config.option.loadscopereorder = False  # by how many tests each holds (a one-test file would come last)
    if os.environ.get("PYTEST_XDIST_WORKER"):  # one of several pytest processes: one core each
        for name, value in ONE_CORE_EACH.items():
            os.environ.setdefault(name, value)  # inherited by every kernel and subprocess started from here
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def under_ci() -> bool:
    """True on a CI service: they set ``CI`` (to "true", "1", "woodpecker", ...)."""
    return bool(os.environ.get("CI", "").strip())


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _skipped.append(f"{report.nodeid}: {reason}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _skipped and under_ci():
        terminalreporter.section("skipped under CI (a failure)", red=True)
        for line in _skipped:
            terminalreporter.write_line(line)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped and under_ci() and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
