"""Kernels the course starts itself talk over IPC sockets with unique paths: they cannot race for a port.

Over TCP a kernel manager picks a free port, releases it and the kernel binds it later: two kernels
starting at the same moment can pick the same port, and one of them dies ("Kernel died before
replying to kernel_info"). Every TCP kernel also warns "Kernel is running over TCP without
encryption". Plain ``transport="ipc"`` is not enough either: its default socket prefix is the
relative path ``kernel-ipc``, shared by every kernel started in the same folder. So each kernel
gets its own absolute prefix in Jupyter's runtime folder (or, when that folder is too deep for a socket path, in a
private folder under the system's temporary directory).

Used by ``tools.run_notebooks``, nbval (``tests/conftest.py``), nbgrader's autograde
(``tools.assignments``' config) and the learners' copy's own tests (its source is copied there).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

from jupyter_client.manager import KernelManager
from jupyter_core.paths import jupyter_runtime_dir
from traitlets import default

SOCKET_PATH_MAX = 100  # a Unix socket's path must fit in 108 bytes (Linux; 104 on macOS), port suffix included


class LocalKernelManager(KernelManager):
    """A kernel on this machine that talks over IPC sockets with a path of its own, never over TCP ports."""

    @default("transport")
    def _default_transport(self) -> str:
        return "ipc"

    @default("ip")
    def _default_ip(self) -> str:
        runtime = Path(jupyter_runtime_dir())
        name = f"kernel-{uuid.uuid4().hex[:12]}-ipc"
        if len(str(runtime / name)) + len("-65535") > SOCKET_PATH_MAX:  # a deep runtime folder: a short one instead
            runtime = Path(tempfile.gettempdir()) / f"course-kernels-{os.getuid()}"
        runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
        return str(runtime / name)
