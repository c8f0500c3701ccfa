"""The shared machinery of exercise checkers: collect verdicts, print them, never raise."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Feedback:
    """The outcome of checking one exercise: ``passed`` plus the messages that were printed."""

    passed: bool = True
    messages: list[str] = field(default_factory=list)

    def add(self, ok: bool, success: str, hint: str) -> bool:
        self.passed = self.passed and ok
        self.messages.append(f"✅ {success}" if ok else f"❌ {hint}")
        return ok

    def __str__(self) -> str:
        verdict = "All checks passed — well done!" if self.passed else "Not there yet — read the hints above and try again."
        return "\n".join([*self.messages, verdict])

    def __bool__(self) -> bool:
        return self.passed


def is_function(answer: object, signature: str) -> Callable[[Feedback], object]:
    """A test that ``answer`` is callable; ``signature`` like ``"sgd_step(model, lr)"`` shapes the hint."""
    name = signature.split("(")[0]
    return lambda fb: fb.add(callable(answer), f"{name} is a function.", f"Define a function: def {signature}: ...")


def check(name: str, *tests: Callable[[Feedback], object], verbose: bool = True) -> Feedback:
    """Run ``tests`` (each adds verdicts to a Feedback) and print the result.

    A test that raises (an unfinished answer, ``None``, a wrong type) becomes a failed check
    with the error in its hint, so a checker never crashes the learner's notebook.
    """
    feedback = Feedback()
    for test in tests:
        try:
            test(feedback)
        except Exception as error:  # the learner's answer may be anything: report, never raise
            feedback.add(False, "", f"Could not check your answer yet ({type(error).__name__}: {error}).")
    if verbose:
        print(f"Exercise: {name}\n{feedback}")
    return feedback
