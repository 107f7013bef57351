"""Several seeds per method: cells as mean ± standard deviation, and two rows compared as a paired interval.

A benchmark with `seeds` 0, 1, 2 trains every run once per seed (data order, training
noise, validation split) and evaluates every model on the same corrupted test sets.

- Each cell of Table 1 becomes mean ± sample standard deviation over the seeds (n given).
- AR2 against fine-tuning with the same epochs, per repaired-for corruption: the
  seed-paired differences d_s = CE_AR2(s) − CE_fine-tune(s) (the same seed means the
  same data order, noise and validation images for both), their mean and a two-sided
  95 % Student-t interval, mean ± t_{0.975, n−1} · sd / √n. The verdict is "tie" when
  the interval contains 0. With n = 3, t = 4.30: only differences that are large
  against their seed-to-seed spread are called.
- The same rule for any two rows (`Comparison`): the TENT comparisons of
  `ar2_tf.benchmarking.adapted` pair AR2 + TENT with AR2, with TENT on the
  pretrained model (evaluated once: the same value against every seed) and
  with fine-tuning + TENT.
"""

import dataclasses
import math

from scipy import stats

CONFIDENCE = 0.95


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One seed-paired comparison of two table rows: CE of `first` − CE of `second`, per repaired-for corruption."""

    first: str  # the row key (benchmark entry) the difference starts from
    second: str  # the row key subtracted
    title: str  # the difference in words, for tables and sentences
    names: tuple  # (first, second) as the verdict names them: "AR2 lower"


AR2_VS_FINETUNE = Comparison("ar2", "finetune_epochs", "AR2 − fine-tuning (same epochs)", ("AR2", "fine-tuning"))


def mean_std(values) -> tuple:
    """(mean, sample standard deviation or None for one value, n) of the values that are not None."""
    values = [v for v in values if v is not None]
    if not values:
        return None, None, 0
    mean = sum(values) / len(values)
    if len(values) == 1:
        return mean, None, 1
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)), len(values)


def paired_interval(differences, confidence=CONFIDENCE, names=AR2_VS_FINETUNE.names) -> dict:
    """Mean of paired differences with its two-sided Student-t interval; None bounds below two pairs.
    `names`: the two compared rows, as the verdict calls them."""
    mean, std, n = mean_std(differences)
    if n < 2:
        return {"mean": mean, "low": None, "high": None, "n": n, "verdict": "one seed: no interval"}
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * std / math.sqrt(n)
    low, high = mean - half, mean + half
    return {"mean": mean, "low": low, "high": high, "n": n, "verdict": verdict(low, high, names)}


def paired_rows(cells, repaired_for, comparison) -> list:
    """One dict per repaired-for corruption where both rows have a value per seed: the corruption and the
    `paired_interval` of `comparison`'s seed-paired differences.

    Args:
        cells: {row key: {column: [value per seed]}}, the seeds in the same order in every row.
        comparison: a `Comparison`.
    """
    rows = []
    for corruption in repaired_for:
        first, second = (cells.get(m, {}).get(corruption) for m in (comparison.first, comparison.second))
        if first and second and len(first) == len(second):
            differences = [a - b for a, b in zip(first, second) if a is not None and b is not None]
            rows.append({"corruption": corruption, **paired_interval(differences, names=comparison.names)})
    return rows


def verdict(low, high, names=AR2_VS_FINETUNE.names) -> str:
    """'tie' when the interval of first − second contains 0, else who has the lower error ('AR2 lower')."""
    if low <= 0 <= high:
        return "tie"
    return f"{names[0] if high < 0 else names[1]} lower"


def format_cell(mean, std, n) -> str:
    """'16.5 ± 0.4' (or '16.5' for one seed, '–' for none)."""
    if mean is None:
        return "–"
    return f"{mean:.1f}" if std is None else f"{mean:.1f} ± {std:.1f}"
