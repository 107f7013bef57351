"""The clean-error rise of a repaired model over the pretrained one, paired over the same images.

Both models classify the same n images, so the rise is estimated from the images whose verdict changed:
b images the pretrained model got right and the repaired one wrong, c the reverse. In points,

    rise = 100 (b - c) / n,    SE = (100 / n) sqrt(b + c - (b - c)^2 / n),

the standard error of a mean of per-image differences in {-1, 0, +1} (the paired, McNemar-style estimate:
images both models get right or wrong cost no uncertainty). `bound` is the one-sided 95 % upper bound
rise + 1.645 SE: the rise the data cannot rule out.
"""

import math

import numpy as np

Z_ONE_SIDED_95 = 1.645  # one-sided 95 % normal quantile
Z_TWO_SIDED_95 = 1.96  # two-sided 95 % normal quantile


def paired_rise(before_correct, after_correct) -> dict:
    """{"rise", "se", "bound", "images"} of the clean-error rise in points (module docstring).

    Args:
        before_correct, after_correct: bool [n], whether each model classified each image correctly.
    """
    before, after = np.asarray(before_correct, bool), np.asarray(after_correct, bool)
    if before.shape != after.shape or before.ndim != 1 or before.size == 0:
        raise ValueError(f"need two equal, non-empty 1-D verdict arrays, got {before.shape} and {after.shape}")
    n = before.size
    broke, fixed = int(np.sum(before & ~after)), int(np.sum(~before & after))
    rise = 100.0 * (broke - fixed) / n
    se = 100.0 / n * math.sqrt(max(broke + fixed - (broke - fixed) ** 2 / n, 0.0))
    return {"rise": rise, "se": se, "bound": rise + Z_ONE_SIDED_95 * se, "images": n}


def sampling_margin(validation_se: float, test_se: float) -> float:
    """Points by which a test-set rise may exceed the validation estimate from sampling error alone, 95 % of the
    time: 1.96 sqrt(SE_val^2 + SE_test^2), the two estimates being independent (disjoint images)."""
    return Z_TWO_SIDED_95 * math.sqrt(validation_se ** 2 + test_se ** 2)


def encode(correct) -> str:
    """A verdict array as a '0'/'1' string (JSON-friendly, for the run's selection state)."""
    return "".join("1" if value else "0" for value in np.asarray(correct, bool))


def decode(text: str) -> np.ndarray:
    return np.frombuffer(text.encode(), np.uint8) == ord("1")
