"""Execute notebooks top to bottom in a fresh kernel, in place, and report how long each took.

    python -m tools.run_notebooks notebooks/01_layers.ipynb [...]

This is how the committed notebooks are produced: one clean run, in order, from the
notebooks folder, so execution counts go 1..n and relative paths work.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tools.kernels import LocalKernelManager

KERNEL = "python3"
CELL_TIMEOUT_S = 300


def execute(path: Path, write: bool = True) -> tuple[nbformat.NotebookNode, float]:
    """Run every cell of ``path`` in a new kernel; returns (notebook, seconds). Raises on a cell error."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_manager_class=LocalKernelManager,
        timeout=CELL_TIMEOUT_S,
        kernel_name=KERNEL,
        shutdown_kernel="immediate",  # the run is over; no need to wait for a graceful exit
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    notebook.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3 (ipykernel)", "language": "python"}
    if write:
        nbformat.write(notebook, path)
    return notebook, seconds


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.run_notebooks",
        description=__doc__.split("\n")[0],
        epilog="Writes each notebook in place.",
    )
    parser.add_argument("notebooks", nargs="+", type=Path, help="the .ipynb files to execute, in this order")
    args = parser.parse_args(argv)
    missing = [str(path) for path in args.notebooks if path.suffix != ".ipynb" or not path.is_file()]
    if missing:
        parser.error(f"not a notebook file: {', '.join(missing)} (give paths such as notebooks/01_layers.ipynb)")
    total = 0.0
    for path in args.notebooks:
        _, seconds = execute(path)
        total += seconds
        print(f"{path}: {seconds:.1f} s")
    print(f"total: {total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
