"""Regenerate the shipped checkpoint: the course CNN trained on digits 0-4.

    python -m tools.pretrain           # writes data/course_cnn_digits0-4.pt + SHA256SUMS
    python -m tools.pretrain --check   # retrains in memory and compares with the shipped file

Deterministic on a given machine and PyTorch version (fixed seed, single thread). Different
CPUs may round differently, so the bytes can differ elsewhere; the accuracy does not.
"""

from __future__ import annotations

import argparse
import io
import sys
import time

import torch

from course_utils.data import SOURCE_CLASSES, make_task
from course_utils.models import CHECKPOINT_FILE, CourseCNN
from course_utils.paths import data_dir, record_checksum, sha256_of
from course_utils.training import evaluate, seed_everything, train

SEED = 0
EPOCHS = 10
LR = 3e-3
BATCH_SIZE = 32


def pretrain(epochs: int = EPOCHS, k_per_class: int | None = None, seed: int = SEED) -> tuple[CourseCNN, float]:
    """Train the course CNN on digits 0-4; returns (model in eval mode, source test accuracy)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same reduction order on every run
    try:
        seed_everything(seed)
        task = make_task(SOURCE_CLASSES, k_per_class=k_per_class, seed=seed)
        model = CourseCNN(num_classes=len(SOURCE_CLASSES))
        optimizer = torch.optim.Adam(model.parameters(), lr=LR)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
        train(
            model,
            task.x_train,
            task.y_train,
            epochs=epochs,
            batch_size=BATCH_SIZE,
            seed=seed,
            optimizer=optimizer,
            on_epoch_end=lambda *_: schedule.step(),
        )
        model.eval()
        return model, evaluate(model, task.x_test, task.y_test)
    finally:
        torch.set_num_threads(threads)


def checkpoint_bytes(model: CourseCNN) -> bytes:
    """The serialized state dict, exactly as it is written to disk."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare with the shipped file, write nothing")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    model, accuracy = pretrain()
    blob = checkpoint_bytes(model)
    print(f"source-task (digits 0-4) test accuracy: {accuracy:.2f}%  [{time.perf_counter() - start:.1f} s]")
    target = data_dir() / CHECKPOINT_FILE
    if args.check:
        same = target.exists() and target.read_bytes() == blob
        print("identical to the shipped checkpoint" if same else "differs from the shipped checkpoint")
        return 0 if same else 1
    target.write_bytes(blob)
    record_checksum(target.name, sha256_of(target))
    print(f"wrote data/{target.name} and updated data/SHA256SUMS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
