"""tools.venvs: side venvs are rebuilt exactly when their requirements change, and say what is missing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tools import venvs


@pytest.fixture
def installs(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Record every command instead of running it; `venv` creates bin/, `pip install` the tool's marker."""
    calls: list[list[str]] = []

    def fake_run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        calls.append([str(part) for part in command])
        if command[1:3] == ["-m", "venv"]:
            (Path(command[-1]) / "bin").mkdir(parents=True, exist_ok=True)
        if "install" in command:
            (Path(command[0]).parent / "tool").touch()
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(venvs.subprocess, "run", fake_run)
    return calls


def test_rebuilt_only_when_the_requirements_change(tmp_path: Path, installs: list[list[str]]) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("sphinx==1.0\n")
    venv = tmp_path / "venv"
    assert venvs.ensure_venv(venv, requirements, "tool", "site") == venv / "bin"
    assert [c[1:3] for c in installs] == [["-m", "venv"], ["-m", "pip"]] and "--clear" in installs[0]
    venvs.ensure_venv(venv, requirements, "tool", "site")
    assert len(installs) == 2, "same requirements, tool present: nothing to do"
    requirements.write_text("sphinx==2.0\n")
    venvs.ensure_venv(venv, requirements, "tool", "site")
    assert len(installs) == 4, "changed requirements: rebuilt"
    venvs.ensure_venv(venv, requirements, "tool", "site", key=b"another python")
    assert len(installs) == 6, "a different key (e.g. the venv it sits on) is a change too"
    (venv / "bin" / "tool").unlink()
    venvs.ensure_venv(venv, requirements, "tool", "site", key=b"another python")
    assert len(installs) == 8, "the tool went missing: rebuilt"


def test_missing_requirements_say_which_file(tmp_path: Path, installs: list[list[str]]) -> None:
    with pytest.raises(FileNotFoundError, match="requirements-site.txt not found: the site venv is built from it"):
        venvs.ensure_venv(tmp_path / "venv", tmp_path / "requirements-site.txt", "tool", "site")
    assert installs == []


def test_a_layered_venv_sees_the_other_venv(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "seen_module.py").write_text("VALUE = 42\n")
    python = venvs.layered_venv(tmp_path / "venv", f"{other}\n", with_pip=False)
    result = subprocess.run([str(python), "-c", "import seen_module; print(seen_module.VALUE)"], capture_output=True)
    assert result.stdout.strip() == b"42", result.stderr
