"""OUT/last.pt for examples/finetune.py: everything an interrupted run needs to go on as if never stopped.

Written after every epoch (model, optimizer, loss scaler, epoch, trained blocks, the summary so far and the
random number generators); ``--resume`` loads it and refuses it when the settings that shape the numbers
differ. Augmentation is drawn from (seed, epoch) by the sampler, so worker processes need no saved state.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import torch
from finetune_errors import UsageError


def rng_states() -> dict:
    """The random number generators the training loop uses: torch's (CPU and CUDA) and Python's."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    return dict(torch=torch.get_rng_state(), cuda=cuda, python=random.getstate())


def restore_rng(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    random.setstate(states["python"])


def save_last(path: Path, **state: object) -> None:
    """torch.save to a temporary file, then rename: an interruption while saving leaves the old file whole."""
    partial = path.with_name(path.name + ".partial")
    torch.save({**state, "rng": rng_states()}, partial)
    os.replace(partial, path)


def load_last(path: Path, settings: dict) -> dict:
    """The state saved in ``path``, after checking it was trained with the same ``settings``."""
    if not path.is_file():
        raise UsageError(f"--resume: {path} does not exist; it is written after every epoch, so start without --resume")
    state = torch.load(path, map_location="cpu", weights_only=True)
    saved = state["settings"]
    differ = [f"{key} {saved.get(key)!r} (now {value!r})" for key, value in settings.items() if saved.get(key) != value]
    if differ:
        raise UsageError(f"--resume: {path} was trained with other settings: {'; '.join(differ)}; use the same options")
    return state
