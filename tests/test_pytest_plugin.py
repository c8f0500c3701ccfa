"""The suite's own pytest plugin: a skip fails a CI run; nbval's kernels use IPC; many kernels start at once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbval.kernel
import pytest

from tools import REPO_ROOT
from tools.kernels import LocalKernelManager

SKIPPING_TESTS = """
import pytest

def test_passes():
    assert 1 + 1 == 2

def test_needs_a_browser():
    pytest.skip("chromium not found")
"""


def run_pytest(folder: Path, ci: str | None, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    if ci is not None:
        env["CI"] = ci
    env["PYTHONPATH"] = str(REPO_ROOT)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tools.pytest_plugin",
            "-p",
            "no:cacheprovider",
            "-q",
            "-o",
            "addopts=",
            *extra,
        ],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def skipping_suite(tmp_path: Path) -> Path:
    (tmp_path / "test_demo.py").write_text(SKIPPING_TESTS)
    return tmp_path


@pytest.mark.parametrize("ci", ["true", "woodpecker", "1"])
def test_a_skip_fails_under_any_ci(skipping_suite: Path, ci: str) -> None:
    result = run_pytest(skipping_suite, ci)
    assert result.returncode == 1, result.stdout
    assert "skipped under CI (a failure)" in result.stdout
    assert "test_demo.py::test_needs_a_browser: Skipped: chromium not found" in result.stdout


def test_a_skip_fails_under_ci_in_two_processes_too(skipping_suite: Path) -> None:
    """`make test` runs pytest-xdist: the skip happens in a worker, the verdict is the controller's."""
    result = run_pytest(skipping_suite, "true", "-n", "2")
    assert result.returncode == 1, result.stdout
    assert "test_demo.py::test_needs_a_browser: Skipped: chromium not found" in result.stdout


def test_make_test_keeps_each_notebook_in_one_process() -> None:
    """nbval runs a notebook's cells in order in one kernel: under xdist, a file must never be split."""
    makefile = (REPO_ROOT / "Makefile").read_text()
    recipe = makefile.split("\ntest: setup", 1)[1].split("\n\n", 1)[0]
    assert "-m pytest -n $(TEST_PROCESSES) --dist loadfile" in recipe, recipe
    test_torch = (REPO_ROOT / "scripts" / "test_torch.sh").read_text()
    assert "-m pytest -n 2 --dist loadfile" in test_torch


@pytest.mark.parametrize("ci", [None, ""])
def test_a_skip_is_only_a_skip_outside_ci(skipping_suite: Path, ci: str | None) -> None:
    result = run_pytest(skipping_suite, ci)
    assert result.returncode == 0, result.stdout
    assert "1 passed, 1 skipped" in result.stdout and "under CI" not in result.stdout


def test_a_real_failure_keeps_its_exit_code(skipping_suite: Path) -> None:
    (skipping_suite / "test_fails.py").write_text("def test_fails():\n    assert False\n")
    result = run_pytest(skipping_suite, "true")
    assert result.returncode == 1 and "1 failed" in result.stdout


def test_nbval_starts_ipc_kernels() -> None:
    assert nbval.kernel.KernelManager is LocalKernelManager


def test_each_kernel_gets_its_own_absolute_socket_path() -> None:
    first, second = LocalKernelManager(), LocalKernelManager()
    assert first.transport == second.transport == "ipc"
    assert Path(first.ip).is_absolute() and first.ip != second.ip


@pytest.mark.slow
def test_eight_kernels_start_at_once_and_all_reply(tmp_path: Path) -> None:
    def start_and_ask(_: int) -> dict:
        manager = LocalKernelManager(kernel_name="python3")
        manager.start_kernel(cwd=str(tmp_path))  # the same folder for all: the old TCP race's set-up
        client = manager.client()
        try:
            client.start_channels()
            client.wait_for_ready(timeout=120)
            return client.kernel_info(reply=True, timeout=60)["content"]
        finally:
            client.stop_channels()
            manager.shutdown_kernel(now=True)

    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(start_and_ask, range(8)))
    assert [reply["status"] for reply in replies] == ["ok"] * 8
    assert all(reply["implementation"] == "ipython" for reply in replies)


def test_a_deep_runtime_folder_still_gives_a_socket_path_that_fits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Unix socket path must fit in about 100 characters: a deep JUPYTER_RUNTIME_DIR gave "File name too long"."""
    deep = tmp_path / ("a-long-folder-name-" * 6)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(deep))
    manager = LocalKernelManager()
    assert len(manager.ip) + len("-65535") <= 100 and Path(manager.ip).parent.is_dir()
    manager.start_kernel()
    try:
        client = manager.client()
        client.start_channels()
        client.wait_for_ready(timeout=60)
        client.stop_channels()
    finally:
        manager.shutdown_kernel(now=True)
    short = Path(tempfile.mkdtemp(prefix="rt"))  # tmp_path itself can be too deep (pytest-xdist adds a level)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(short))
    assert Path(LocalKernelManager().ip).parent == short, "a short runtime folder is used as it is"
    shutil.rmtree(short)


def test_each_of_several_pytest_processes_uses_one_core(tmp_path: Path) -> None:
    """Two pytest processes on two cores, each torch on two threads and compare on two workers: oversubscribed."""
    (tmp_path / "test_cores.py").write_text(
        "import os\nimport torch\n\n"
        "def test_one_core():\n"
        "    assert torch.get_num_threads() == 1\n"
        "    assert os.environ['COURSE_WORKERS'] == '1' and os.environ['OMP_NUM_THREADS'] == '1'\n"
    )
    env_without = {
        k: v for k, v in os.environ.items() if k not in ("COURSE_WORKERS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tools.pytest_plugin", "-q", "-o", "addopts=", "-n", "2"],
        cwd=tmp_path,
        env={**env_without, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout


def test_several_processes_start_the_longest_files_first(tmp_path: Path) -> None:
    """pytest-xdist sorts files by how many tests they hold unless told not to: the one-test browser file came last."""
    tests = tmp_path / "tests"
    tests.mkdir()
    record = "def test_{0}():\n    with open('order.txt', 'a') as out:\n        out.write('{1}\\n')\n"
    (tests / "test_browser.py").write_text(record.format("drive", "browser"))
    (tests / "test_many.py").write_text("".join(record.format(f"quick_{i}", "many") for i in range(20)))
    result = run_pytest(tmp_path, None, "-n", "1", "--dist", "loadfile")
    assert result.returncode == 0, result.stdout
    assert (tmp_path / "order.txt").read_text().split()[0] == "browser", "the one-test file must go first"


def test_the_longest_files_run_first_and_each_file_keeps_its_order() -> None:
    from tools.pytest_plugin import pytest_collection_modifyitems

    class Item:
        def __init__(self, nodeid: str) -> None:
            self.nodeid = nodeid

    ids = [
        "tests/test_bench.py::a",
        "tests/test_browser.py::b",
        "tests/test_data.py::c",
        "notebooks/01_layers.ipynb::Cell 0",
        "notebooks/01_layers.ipynb::Cell 1",
        "tests/test_nbgrader.py::d",
        "tests/test_site.py::e",
        "tests/test_zzz.py::f",
    ]
    items = [Item(i) for i in ids]
    pytest_collection_modifyitems(items)
    assert [i.nodeid for i in items] == [
        "tests/test_browser.py::b",
        "tests/test_nbgrader.py::d",
        "notebooks/01_layers.ipynb::Cell 0",
        "notebooks/01_layers.ipynb::Cell 1",
        "tests/test_site.py::e",
        "tests/test_bench.py::a",
        "tests/test_data.py::c",
        "tests/test_zzz.py::f",
    ]
