"""Where the course's shipped files live (override with ``COURSE_DATA_DIR``)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

DATA_DIR_VARIABLE = "COURSE_DATA_DIR"
_CHECKOUT_DATA = Path(__file__).resolve().parents[1] / "data"  # data/ beside the package in a checkout


def data_dir() -> Path:
    """The folder holding the shipped data set and checkpoint.

    ``COURSE_DATA_DIR`` when it is set; otherwise the ``data/`` folder of the course checkout that
    the package runs from (``make setup`` installs it in editable mode). A copy installed elsewhere
    has no data of its own: then it asks for ``COURSE_DATA_DIR``.
    """
    override = os.environ.get(DATA_DIR_VARIABLE)
    if override:
        return Path(override)
    if (_CHECKOUT_DATA / "SHA256SUMS").exists():
        return _CHECKOUT_DATA
    raise FileNotFoundError(
        f"Cannot find the course data: course_utils is not running from a checkout of the course, "
        f"so there is no data/ folder beside it. Set {DATA_DIR_VARIABLE} to the course's data/ folder, "
        f"e.g. `export {DATA_DIR_VARIABLE}=path/to/the/course/data`."
    )


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def expected_sha256(filename: str) -> str:
    """The checksum recorded for ``filename`` in ``data/SHA256SUMS``."""
    sums = data_dir() / "SHA256SUMS"
    if not sums.exists():
        raise FileNotFoundError(f"{sums} is missing; it lists the checksums of the shipped files.")
    for line in sums.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == filename:
            return parts[0]
    raise KeyError(f"{filename!r} has no entry in {sums}.")


def record_checksum(filename: str, digest: str) -> None:
    """Add or replace ``filename``'s line in ``data/SHA256SUMS``."""
    sums = data_dir() / "SHA256SUMS"
    old = sums.read_text().splitlines() if sums.exists() else []
    lines = [line for line in old if line.split()[1:] != [filename]]
    lines.append(f"{digest}  {filename}")
    sums.write_text("\n".join(sorted(lines, key=lambda line: line.split()[1])) + "\n")


class ChecksumError(RuntimeError):
    """A shipped file is missing or its bytes differ from the recorded SHA-256."""


def verified_path(filename: str, regenerate_hint: str) -> Path:
    """Return the path of a shipped file after checking it exists and matches its SHA-256."""
    path = data_dir() / filename
    if not path.exists():
        raise ChecksumError(f"{path} is missing. {regenerate_hint}")
    actual, expected = sha256_of(path), expected_sha256(filename)
    if actual != expected:
        raise ChecksumError(
            f"{path} is corrupted or was changed: SHA-256 is {actual[:16]}…, "
            f"expected {expected[:16]}… (data/SHA256SUMS). {regenerate_hint}"
        )
    return path
