"""Small, seeded inputs the checkers try a learner's code on, and checks shared by several checkers."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..freezing import helpers_applied
from ..models import COURSE_CNN_BLOCKS, CourseCNN
from ._feedback import Feedback, describe


def model_and_batch(seed: int = 0) -> tuple[CourseCNN, torch.Tensor, torch.Tensor]:
    """A freshly initialised course CNN and a random batch of 8 images with labels."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = CourseCNN()
    x = torch.rand(8, 1, 28, 28, generator=generator)
    y = torch.randint(0, 5, (8,), generator=generator)
    return model, x, y


def parameter_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {name: tuple(p.shape) for name, p in model.named_parameters()}


def require_module(fb: Feedback, model: Any, what: str = "model") -> None:
    """Stop with a hint unless ``model`` is an nn.Module."""
    fb.require(
        isinstance(model, nn.Module),
        f"`{what}` is a model (an nn.Module).",
        f"`{what}` should be a model (an nn.Module), got {type(model).__name__}.",
    )


def require_optimizer(fb: Feedback, optimizer: Any, success: str, build: str) -> None:
    """Stop unless ``optimizer`` is a torch.optim optimizer; ``build`` says what to build, the hint adds what it got."""
    fb.require(isinstance(optimizer, torch.optim.Optimizer), success, f"{build}, got {describe(optimizer)}.")


def holds_exactly_trainable(fb: Feedback, optimizer: torch.optim.Optimizer, model: nn.Module) -> None:
    """Add verdicts: no frozen parameter, no foreign parameter, every trainable parameter, once."""
    held = [p for group in optimizer.param_groups for p in group["params"]]
    names = {id(p): n for n, p in model.named_parameters()}
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    if not trainable:
        fb.fail("Nothing in the model is trainable: freeze only part of it.")
    foreign = [p for p in held if id(p) not in names]
    fb.add(
        not foreign,
        "Every parameter it holds belongs to this model.",
        f"It holds {len(foreign)} tensor(s) that are not parameters of this model: build it from "
        "this model's parameters (another model, or a copy, trains something else).",
    )
    frozen_held = sorted({names[id(p)] for p in held if id(p) in names and id(p) not in trainable})
    fb.add(
        not frozen_held,
        "It holds no frozen parameter.",
        f"It holds {len(frozen_held)} frozen parameter(s), e.g. {frozen_held[:1]}: pass only "
        "[p for p in model.parameters() if p.requires_grad].",
    )
    missing = sorted(names[i] for i in trainable - {id(p) for p in held})
    fb.add(
        not missing,
        "It holds every trainable parameter.",
        f"{len(missing)} trainable parameter(s) are missing, e.g. {missing[:1]}: they would never train.",
    )


def require_same_layers(fb: Feedback, model: nn.Module, reference: nn.Module, ignore: tuple[str, ...] = ()) -> None:
    """Stop with a hint unless ``model`` still has every parameter of ``reference`` (same names, same shapes).

    Freezing keeps every layer and every weight; deleting a block or swapping it for
    ``nn.Identity()`` also stops its weights from training, but changes what the model computes.
    """
    have, want = parameter_shapes(model), parameter_shapes(reference)
    kept = lambda name: not name.startswith(ignore) if ignore else True  # noqa: E731
    missing = sorted(n for n in want if kept(n) and n not in have)
    reshaped = sorted(n for n in want if kept(n) and n in have and have[n] != want[n])
    gone_blocks = sorted({n.split(".")[0] for n in missing})
    if missing:
        fb.fail(
            f"The model lost parameters {missing[:3]} (block(s) {gone_blocks}): freezing keeps every layer "
            "and only stops its weights from changing. Do not delete or replace blocks "
            "(e.g. with nn.Identity()): set requires_grad = False on their parameters."
        )
    fb.require(
        not reshaped,
        "Every layer is still there, with its weights.",
        f"Parameters {reshaped[:3]} changed shape: keep the layers, freeze them instead.",
    )


def require_course_cnn(fb: Feedback, model: Any, what: str = "model", ignore: tuple[str, ...] = ()) -> None:
    """Stop unless ``model`` is a course CNN with all four blocks and all their parameters.

    ``ignore``: parameter-name prefixes not compared (e.g. a replaced head).
    """
    require_module(fb, model, what)
    missing = [name for name in COURSE_CNN_BLOCKS if not isinstance(getattr(model, name, None), nn.Module)]
    if missing:
        fb.fail(
            f"`{what}` has no {missing}: frozen is not removed. Keep every block of the CourseCNN "
            "and set requires_grad = False on the parameters of the ones to freeze."
        )
    with torch.device("meta"):  # shapes only: no memory, no random numbers
        reference = CourseCNN()
    require_same_layers(fb, model, reference, ignore=ignore)


def frozen_state(module: nn.Module) -> tuple[int, int]:
    """(frozen, total) parameter tensors of ``module``."""
    flags = [p.requires_grad for p in module.parameters()]
    return len(flags) - sum(flags), len(flags)


def attribute_tricks(model: nn.Module) -> list[str]:
    """Modules that got a plain Python attribute ``requires_grad`` (which freezes nothing)."""
    return [name or "model" for name, module in model.named_modules() if "requires_grad" in vars(module)]


def no_helpers(fb: Feedback, model: nn.Module, by_hand: str) -> None:
    """Add a verdict: no course freezing helper (freeze_to, freeze, set_bn_eval, …) was applied to ``model``.

    ``by_hand`` says what to write instead. The helpers record the models they touch
    (``course_utils.freezing.helpers_applied``).
    """
    used = helpers_applied(model)
    fb.add(
        not used,
        "Done by hand, without the course's helpers.",
        f"You used {', '.join(used)} from course_utils: this exercise asks for the lines it hides. {by_hand}",
    )
