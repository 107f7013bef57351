"""Small corrupted-set files in the official layouts, for the loaders' tests."""

import os

import numpy as np


def write_cifar_c(folder, per_severity=6, size=8, corruption_names=("fog",), labels_per_severity=False):
    """`<corruption>.npy` stacks of 5 severities and `labels.npy` (once, or per severity), as CIFAR-10-C
    lays them out; returns the stacks and the labels."""
    rng = np.random.default_rng(0)
    os.makedirs(folder, exist_ok=True)
    stacks = {}
    for name in corruption_names:
        stacks[name] = rng.integers(0, 256, (5 * per_severity, size, size, 3), dtype=np.uint8)
        np.save(os.path.join(folder, f"{name}.npy"), stacks[name])
    labels = rng.integers(0, 10, per_severity).astype(np.uint8)
    np.save(os.path.join(folder, "labels.npy"), labels if labels_per_severity else np.tile(labels, 5))
    return stacks, labels
