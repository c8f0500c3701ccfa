"""The shared machinery of exercise checkers: collect verdicts, print them, never raise."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


class Stop(Exception):
    """Raised inside a test to end the checking early; the verdicts so far stand."""


@dataclass
class Feedback:
    """The outcome of checking one exercise: ``passed`` plus the messages that were printed."""

    passed: bool = True
    messages: list[str] = field(default_factory=list)

    def add(self, ok: bool, success: str, hint: str) -> bool:
        self.passed = self.passed and ok
        if ok and success:
            self.messages.append(f"✅ {success}")
        elif not ok:
            self.messages.append(f"❌ {hint}")
        return ok

    def fail(self, hint: str) -> None:
        """Record a failed check and stop checking (later checks would only repeat it)."""
        self.add(False, "", hint)
        raise Stop

    def require(self, ok: bool, success: str, hint: str) -> None:
        """Like ``add``, but a failure stops the checking: the next checks need this one to hold."""
        if not self.add(ok, success, hint):
            raise Stop

    def __str__(self) -> str:
        verdict = (
            "All checks passed — well done!" if self.passed else "Not there yet — read the hints above and try again."
        )
        return "\n".join([*self.messages, verdict])

    def __bool__(self) -> bool:
        return self.passed


def is_function(answer: object, signature: str) -> Callable[[Feedback], object]:
    """A test that ``answer`` is callable; ``signature`` like ``"sgd_step(model, lr)"`` shapes the hint."""
    name = signature.split("(")[0]

    def test(fb: Feedback) -> None:
        fb.require(
            callable(answer) and not isinstance(answer, (nn.Module, type)),
            f"{name} is a function.",
            f"Define a function: def {signature}: ...",
        )

    return test


def is_names(answer: object, hint: str) -> Callable[[Feedback], object]:
    """A test that ``answer`` is a collection of names (see ``as_names``); ``hint`` may say ``{got}``."""

    def test(fb: Feedback) -> None:
        fb.require(as_names(answer) is not None, "A collection of names.", hint.format(got=describe(answer)))

    return test


def call(fb: Feedback, function: Any, *args: Any, setup: str = "") -> Any:
    """Call the learner's ``function``; an exception becomes a failed check that names the set-up."""
    try:
        return function(*args)
    except Exception as error:  # the learner's code may raise anything: report it, never raise
        where = f" on {setup}" if setup else ""
        hint = ""
        if "leaf Variable that requires grad" in str(error):
            hint = " Update parameters inside `with torch.no_grad():`."
        elif isinstance(error, (AttributeError, TypeError)) and "NoneType" in str(error):
            hint = " A frozen parameter has .grad None: skip parameters whose .grad is None."
        fb.fail(f"Your function raised {type(error).__name__}{where}: {error}.{hint}")


def is_number(value: object) -> bool:
    """A real number (int, float, numpy scalar or 0-d tensor), not a bool, not NaN."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1 or value.dtype == torch.bool:
            return False
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    return value == value  # NaN is not equal to itself


def as_names(value: object) -> set[str] | None:
    """The names in a list/tuple/set/keys view of strings, or None for anything else."""
    if isinstance(value, (str, bytes, Mapping, torch.Tensor, nn.Module)) or not isinstance(value, Iterable):
        return None
    items = list(value)
    if not all(isinstance(item, str) for item in items):
        return None
    return set(items)


def describe(value: object) -> str:
    """A short description of a learner's answer for a hint."""
    text = repr(value)
    return text if len(text) <= 60 else f"a {type(value).__name__}"


def check(name: str, *tests: Callable[[Feedback], object], verbose: bool = True) -> Feedback:
    """Run ``tests`` (each adds verdicts to a Feedback) and print the result.

    A test that raises (an unfinished answer, ``None``, a wrong type) becomes a failed check
    with the error in its hint, so a checker never crashes the learner's notebook. A test may
    raise ``Stop`` (``fb.fail`` / ``fb.require``) to end the checking after a failure.
    """
    feedback = Feedback()
    with torch.random.fork_rng(devices=[]):  # checking must not change the notebook's random numbers
        for test in tests:
            try:
                test(feedback)
            except Stop:
                break
            except Exception as error:  # the learner's answer may be anything: report, never raise
                feedback.add(False, "", f"Could not check your answer yet ({type(error).__name__}: {error}).")
                break
    if verbose:
        print(f"Exercise: {name}\n{feedback}")
    return feedback
