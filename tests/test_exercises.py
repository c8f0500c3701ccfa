from __future__ import annotations

from course_utils.exercises import Feedback, check


def test_check_passes_and_prints(capsys) -> None:
    result = check("demo", lambda fb: fb.add(True, "good", "bad"))
    assert result.passed and bool(result)
    assert "✅ good" in capsys.readouterr().out


def test_check_fails_with_hint() -> None:
    result = check("demo", lambda fb: fb.add(1 + 1 == 3, "good", "add again"), verbose=False)
    assert not result.passed and "❌ add again" in str(result)


def test_check_never_raises_on_unfinished_answer() -> None:
    answer = None
    result = check("demo", lambda fb: fb.add(answer.shape == (3,), "ok", "x"), verbose=False)
    assert not result.passed and "AttributeError" in str(result)


def test_feedback_accumulates() -> None:
    fb = Feedback()
    fb.add(True, "a", "b")
    fb.add(False, "c", "d")
    assert not fb.passed and len(fb.messages) == 2


def test_is_function_passes_callables_and_hints_otherwise() -> None:
    from course_utils.exercises import is_function

    assert check("demo", is_function(len, "sgd_step(model, lr)"), verbose=False).passed
    result = check("demo", is_function(None, "sgd_step(model, lr)"), verbose=False)
    assert not result.passed and "Define a function: def sgd_step(model, lr): ..." in str(result)


# ---------------------------------------------------------------- every checker, whatever it is given

import inspect  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from course_utils.exercises import dynamics, freezing_basics, gradients, layers, partial, pitfalls, transfer  # noqa: E402

MODULES = {
    "01": layers,
    "02": gradients,
    "03": freezing_basics,
    "04": transfer,
    "05": partial,
    "06": dynamics,
    "07": pitfalls,
}
CHECKERS = {
    f"{module.__name__.rsplit('.', 1)[1]}.{name}": function
    for module in MODULES.values()
    for name, function in vars(module).items()
    if name.startswith("check_")
    and inspect.isfunction(function)
    and function.__module__ == module.__name__
    and "Feedback" in str(inspect.signature(function).return_annotation)
}
JUNK = [None, {}, "model", 3, [], torch.zeros(2), object()]
NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def required_arity(function) -> int:
    return sum(
        1
        for p in inspect.signature(function).parameters.values()
        if p.default is inspect.Parameter.empty and p.kind == p.POSITIONAL_OR_KEYWORD
    )


@pytest.mark.parametrize("name", sorted(CHECKERS))
def test_checker_never_raises_on_junk(name: str, capsys) -> None:
    function = CHECKERS[name]
    arity = max(required_arity(function), 1)
    for junk in JUNK:
        for position in range(arity):
            args = [junk if i == position else None for i in range(arity)]
            result = function(*args)
            assert not result.passed, f"{name}{tuple(args)} passed"
    output = capsys.readouterr().out
    assert "Not there yet" in output and "Traceback" not in output


def checker_calls(notebook: Path) -> list[tuple[str, str]]:
    """(checker name, the call's source) for every `ex.check_...(...)` in the notebook's code cells."""
    cells = json.loads(notebook.read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    return re.findall(r"\bex\.(check_\w+)\(([^\n]*)\)", code)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_call_checkers_that_exist_with_fitting_arguments(notebook: Path) -> None:
    module = MODULES[notebook.name[:2]]
    calls = checker_calls(notebook)
    assert calls, f"{notebook.name} calls no checker"
    for name, arguments in calls:
        function = getattr(module, name, None)
        assert inspect.isfunction(function), f"{notebook.name} calls ex.{name}, which {module.__name__} lacks"
        positional = [a for a in re.split(r",\s*(?![^\[\(]*[\]\)])", arguments) if a and "=" not in a.split("[")[0]]
        keywords = re.findall(r"(\w+)=", arguments)
        try:
            inspect.signature(function).bind(*positional, **{k: None for k in keywords})
        except TypeError as error:
            pytest.fail(
                f"{notebook.name}: ex.{name}({arguments}) does not fit {name}{inspect.signature(function)}: {error}"
            )
