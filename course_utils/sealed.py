"""Sealed files: how the learner copy ships quiz answers and exercise checkers without spoiling them.

The learner copy (``make student``) replaces the readable question bank and checker modules
by one sealed file each: the text, zlib-compressed, XOR-ed with a fixed key and base64-encoded.
That is not security (anyone can run ``unseal``), only a way to keep the answers out of sight:
``grep`` or a glance at the file finds no answer, no explanation and no solution.
"""

from __future__ import annotations

import base64
import importlib.abc
import importlib.machinery
import importlib.util
import json
import sys
import types
import zlib
from pathlib import Path
from typing import Any

_KEY = b"freezing-layers-course"
_HEADER = "course-utils-sealed-v1\n"


def _xor(data: bytes) -> bytes:
    return bytes(b ^ _KEY[i % len(_KEY)] for i, b in enumerate(data))


def seal(obj: Any) -> str:
    """``obj`` (JSON-serialisable) as sealed text."""
    raw = json.dumps(obj, ensure_ascii=False, sort_keys=True).encode("utf-8")
    body = base64.b64encode(_xor(zlib.compress(raw, 9))).decode("ascii")
    return _HEADER + "\n".join(body[i : i + 76] for i in range(0, len(body), 76)) + "\n"


def unseal(text: str) -> Any:
    """The object sealed in ``text``; raises ValueError when the text is not a sealed file."""
    if not text.startswith(_HEADER):
        raise ValueError("not a sealed course file (it should start with the line 'course-utils-sealed-v1')")
    body = base64.b64decode("".join(text[len(_HEADER) :].split()))
    return json.loads(zlib.decompress(_xor(body)).decode("utf-8"))


class _SealedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports ``package.name`` from the sealed {name: source} of a package's ``checkers.sealed``."""

    def __init__(self, package: str, sources: dict[str, str], origin: Path) -> None:
        self.package, self.sources, self.origin = package, sources, origin

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        package, _, name = fullname.rpartition(".")
        if package != self.package or name not in self.sources:
            return None
        return importlib.util.spec_from_loader(fullname, self, origin=f"{self.origin}:{name}")

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        name = module.__name__.rpartition(".")[2]
        exec(compile(self.sources[name], f"<sealed {self.package}.{name}>", "exec"), module.__dict__)


def install_sealed_modules(package: str, path: Path) -> bool:
    """Make ``import package.x`` find modules sealed in ``path`` (if it exists); True when it does."""
    if not path.exists():
        return False
    if not any(isinstance(f, _SealedModules) and f.package == package for f in sys.meta_path):
        sys.meta_path.append(_SealedModules(package, unseal(path.read_text(encoding="utf-8")), path))
    return True
