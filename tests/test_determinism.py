"""Executing a notebook twice gives identical output in every `# NBVAL_CHECK_OUTPUT` cell.

In `make test` this is nbval's own comparison: one fresh run of every notebook against the
committed outputs, which came from another run (on another day, often another machine). A checked
cell that depends on an unseeded draw, dict order or the clock fails there by luck. To hunt such a
cell down, a maintainer runs two fresh executions against each other, without the committed
outputs: `DETERMINISM_NOTEBOOKS=all` (or a comma-separated list of names) `make test`. By default
that costs nothing, so the teacher notebooks are executed once per `make test`.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from tools.run_notebooks import execute

TESTS = Path(__file__).resolve().parent
NOTEBOOKS = sorted((TESTS.parent / "notebooks").glob("[0-9]*.ipynb"))
MARKER = "# NBVAL_CHECK_OUTPUT"
COMPARED_MIME_TYPES = ("text/plain", "text/markdown", "text/html", "text/latex")


def sanitizers(config: Path = TESTS / "nbval_sanitize.cfg") -> list[tuple[re.Pattern, str]]:
    """The same (regex, replacement) pairs nbval applies before comparing."""
    parser = configparser.ConfigParser()
    parser.read(config, encoding="utf-8")
    return [(re.compile(parser[s]["regex"]), parser[s]["replace"]) for s in parser.sections()]


def checked_outputs(notebook: nbformat.NotebookNode, rules: list[tuple[re.Pattern, str]]) -> dict[int, list[str]]:
    """For every cell marked for nbval: its outputs as sanitized text, keyed by cell index."""

    def clean(text: str) -> str:
        for pattern, replacement in rules:
            text = pattern.sub(replacement, text)
        return text

    result = {}
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code" or MARKER not in (line.strip() for line in cell.source.splitlines()):
            continue
        texts = []
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                texts.append(f"{output.name}: {clean(output.text)}")
            elif output.output_type in ("execute_result", "display_data"):
                texts += [f"{m}: {clean(output.data[m])}" for m in COMPARED_MIME_TYPES if m in output.data]
            elif output.output_type == "error":
                texts.append(f"error: {output.ename}: {output.evalue}")
        result[index] = texts
    return result


def chosen_notebooks(paths: list[Path], choice: str) -> list[Path]:
    """The notebooks ``choice`` names: "all", or a comma-separated list of names; none when empty."""
    if choice.strip().lower() == "all":
        return list(paths)
    wanted = {name.strip().removesuffix(".ipynb") for name in choice.split(",") if name.strip()}
    unknown = wanted - {p.stem for p in paths}
    if unknown:
        raise ValueError(
            f"DETERMINISM_NOTEBOOKS names no notebook {sorted(unknown)}; use 'all' or names like 03_freezing"
        )
    return [p for p in paths if p.stem in wanted]


def differences(first: dict[int, list[str]], second: dict[int, list[str]]) -> list[str]:
    """Human-readable description of every checked cell whose outputs differ."""
    return [
        f"cell {index}:\n  run 1: {first[index]!r:.400}\n  run 2: {second.get(index)!r:.400}"
        for index in first
        if first[index] != second.get(index)
    ]


def test_notebooks_are_chosen_by_name_or_all_and_none_by_default() -> None:
    paths = [Path(f"0{i}_x.ipynb") for i in range(1, 8)]
    assert chosen_notebooks(paths, "") == [] and chosen_notebooks(paths, " ") == []
    assert chosen_notebooks(paths, "all") == paths
    assert chosen_notebooks(paths, "03_x, 05_x.ipynb") == [paths[2], paths[4]]
    with pytest.raises(ValueError, match="names no notebook"):
        chosen_notebooks(paths, "03_typo")


def test_checked_outputs_and_differences() -> None:
    cells = [
        nbformat.v4.new_code_cell(f"{MARKER}\nprint(1)"),
        nbformat.v4.new_code_cell("print(time.time())"),
    ]
    cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="took 3.2 s at 0x7f00\n")]
    cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="123.4\n")]
    notebook = nbformat.v4.new_notebook(cells=cells)
    outputs = checked_outputs(notebook, sanitizers())
    assert outputs == {0: ["stdout: took TIME at 0xADDRESS\n"]}  # unmarked cells are not compared
    assert differences(outputs, outputs) == []
    assert differences(outputs, {0: ["stdout: other\n"]})[0].startswith("cell 0:")


CHOSEN = chosen_notebooks(NOTEBOOKS, os.environ.get("DETERMINISM_NOTEBOOKS", ""))
if CHOSEN:  # defined only when asked for: an empty parametrisation would be a skip, and a skip fails CI

    @pytest.mark.slow
    @pytest.mark.parametrize("path", CHOSEN, ids=lambda p: p.name)
    def test_two_executions_agree(path: Path, tmp_path: Path) -> None:
        copy_dir = tmp_path / "notebooks"
        shutil.copytree(path.parent, copy_dir, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        copy = copy_dir / path.name
        before = copy.read_bytes()
        rules = sanitizers()
        first = checked_outputs(execute(copy, write=False)[0], rules)
        second = checked_outputs(execute(copy, write=False)[0], rules)
        assert first, f"{path.name} has no {MARKER} cell"
        diff = differences(first, second)
        assert not diff, f"{path.name}: checked outputs differ between two runs:\n" + "\n".join(diff)
        assert copy.read_bytes() == before, "execute(write=False) modified the notebook"
