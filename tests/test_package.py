"""The learners' package as a package: its public names, its one version, no maintainer commands in it."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import importlib.util
import json
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


# The library's own modules: a notebook imports their names from `course_utils` itself, one place per name.
LIBRARY_MODULES = {
    f"course_utils.{name}"
    for name in (
        "batchnorm",
        "changes",
        "data",
        "experiment",
        "freezing",
        "layers",
        "models",
        "optim_groups",
        "training",
    )
}


def notebook_imports() -> list[tuple[str, str, str]]:
    """(notebook, module, name) for every ``from course_utils... import name`` in the notebooks' code cells."""
    found = []
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            for node in ast.walk(ast.parse("".join(cell["source"]))):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("course_utils"):
                    found += [(path.name, node.module, alias.name) for alias in node.names]
    return found


def import_problem(module: str, name: str) -> str | None:
    """Why a notebook must not import ``name`` from ``module`` this way, or None."""
    if module in LIBRARY_MODULES:
        return f"import {name} from course_utils, not from {module}"
    parent = importlib.import_module(module)
    if hasattr(parent, "__path__") and importlib.util.find_spec(f"{module}.{name}") is not None:
        return None  # a module of a package, e.g. exercises.layers
    exported = getattr(parent, "__all__", None)
    if exported is None or name not in exported:
        return f"{module}.__all__ does not list {name}"
    return None


def test_notebooks_import_only_exported_names() -> None:
    imports = notebook_imports()
    assert len({nb for nb, _, _ in imports}) == 7 and ("03_freezing.ipynb", "course_utils", "freeze") in imports
    problems = [f"{nb}: {why}" for nb, module, name in imports if (why := import_problem(module, name))]
    assert problems == []


def test_an_unexported_or_roundabout_import_is_caught() -> None:
    assert import_problem("course_utils", "freeze") is None
    assert import_problem("course_utils", "record_helper") == "course_utils.__all__ does not list record_helper"
    assert (
        import_problem("course_utils.freezing", "freeze")
        == "import freeze from course_utils, not from course_utils.freezing"
    )
    assert import_problem("course_utils.setups", "TRANSFER_BUDGET") is None
    assert import_problem("course_utils.measure", "Timing") is None
