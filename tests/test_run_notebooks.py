"""`python -m tools.run_notebooks`: bad arguments get a usage error that says what to give, not a traceback."""

from __future__ import annotations

import pytest

from tools.run_notebooks import main


@pytest.mark.parametrize("argv", [[], ["notebooks/no_such_notebook.ipynb"], ["README.md"]])
def test_bad_arguments_are_a_usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "usage: python -m tools.run_notebooks" in error
    assert ("not a notebook file" in error and "notebooks/01_layers.ipynb" in error) or "required: notebooks" in error


def test_help_says_what_it_does(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0 and "in place" in capsys.readouterr().out
