"""The learners' package as a package: its public names, its one version, no maintainer commands in it."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
import types
from pathlib import Path

import course_utils

ROOT = Path(__file__).resolve().parents[1]


def test_all_lists_exactly_the_public_names() -> None:
    assert [name for name in course_utils.__all__ if not hasattr(course_utils, name)] == []
    public = {
        name
        for name, value in vars(course_utils).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(course_utils.__all__)


def test_one_version_source() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"] and "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "course_utils.__version__"}
    assert importlib.metadata.version("course-utils") == course_utils.__version__


def test_requires_python_matches_the_readme() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    # the upper bound is checked by test_supported_versions
    minimum = re.match(r">=\s*(3\.\d+)(,|$)", pyproject["project"]["requires-python"]).group(1)
    assert f"Python {minimum}" in (ROOT / "README.md").read_text()


def test_no_maintainer_command_in_the_learners_package() -> None:
    package = Path(course_utils.__file__).parent
    commands = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if "__main__" in path.read_text() or "argparse" in path.read_text()
    ]
    assert commands == [], "maintainers' commands belong in tools/"


def test_the_api_table_names_exported_helpers() -> None:
    """docs/FREEZING_API.md's first column: every course_utils call it names exists and is exported."""
    rows = [line for line in (ROOT / "docs" / "FREEZING_API.md").read_text().splitlines() if line.startswith("| ")]
    course_column = [row.split("|")[2] for row in rows[2:]]
    named = {name for cell in course_column for name in re.findall(r"`([a-z_0-9]+)[(`]", cell)}
    assert named >= {"freeze", "unfreeze", "freeze_to", "param_groups", "unfreeze_next", "audit", "set_bn_eval"}
    assert sorted(named - set(course_utils.__all__)) == []
