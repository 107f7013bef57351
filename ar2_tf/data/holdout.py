"""Where a repair run's validation images come from, and which test images it reports on.

A pretrained model has fitted its own training images far better than images it never saw (clean error
0-2.5 % against 6-8 % on test images for CIFAR ResNets), and a repair's clean-error cost shows on unseen
images only. So the images that decide the kept phase (`ar2_tf.runs.selection`) come, in order of preference,
from:

- `held_out`: the user's own validation split (`val_data_dir`), or a fixed part of the data's test split
  (CIFAR, `.npz` files with `x_test`, image trees with `val/`, TFDS folders) — the rest of that split is the
  test split every number is reported on, so the two never share an image;
- `training`: a seeded part of the training split, where no held-out split exists (a flat image folder, an
  `.npz` of `x`/`y` alone). The guard is then lenient: the model may have memorised those images.

The part of the test split set aside is drawn with `HOLDOUT_SEED`, not the run's `seed`, so runs of every
seed, and the evaluation of all of them (`ar2_tf.evaluation.suite`), report on the same test images.
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf

from ar2_tf.errors import UserError

HOLDOUT_SEED = 20_250_706  # fixed: the same validation part of a test split for every run
MAX_DEFAULT_VAL_SIZE = 1000  # default validation images, at most
HELD_OUT = "held_out"  # validation images the model has not trained on
TRAINING = "training"  # validation images carved from the training split


def default_val_size(count: int, source: str) -> int:
    """Validation images taken from a split of `count` images by default: half of a held-out split, a tenth of
    a training split, at most `MAX_DEFAULT_VAL_SIZE` (0 below 10 training images or 2 held-out ones)."""
    return min(MAX_DEFAULT_VAL_SIZE, count // 2 if source == HELD_OUT else count // 10)


def masked(split, mask: np.ndarray):
    """The unbatched examples of `split` at the positions where `mask` is True (order kept, size known)."""
    selected = tf.constant(mask)
    chosen = split.enumerate().filter(lambda index, _: tf.gather(selected, index))
    # filter() hides the size; the training pipeline and the evaluation's batching need it.
    return chosen.map(lambda _, example: example).apply(tf.data.experimental.assert_cardinality(int(mask.sum())))


def carve_masks(count: int, val_size: int, test_size=None, seed=0):
    """(validation mask, test mask) over a held-out split of `count` images: `val_size` positions drawn with
    `HOLDOUT_SEED`, then a `seed`-ed subset of `test_size` of the others (all of them when None)."""
    if not 0 < val_size < count:
        raise UserError(f"the held-out split has {count} images, too few to set {val_size} aside for validation and "
                        "keep some to test on; pass `val_size` below it, or `val_data_dir` with validation images.")
    validation = np.zeros(count, bool)
    validation[np.random.default_rng(HOLDOUT_SEED).choice(count, val_size, replace=False)] = True
    rest = np.flatnonzero(~validation)
    test = np.zeros(count, bool)
    if test_size is None or test_size >= len(rest):
        test[rest] = True
    else:
        test[np.random.default_rng(seed).choice(rest, test_size, replace=False)] = True
    return validation, test


AUTO = "auto"  # `load_dataset(validation=AUTO)`: the default part of a held-out test split (`default_val_size`)


def requested(val_size, val_data_dir) -> "int | str":
    """What a run with these config fields sets aside of its test split (`load_dataset`'s `validation`): nothing
    when its validation images come from `val_data_dir` or it has none (`val_size` 0)."""
    if val_data_dir or val_size == 0:
        return 0
    return AUTO if val_size is None else int(val_size)


def requested_by_run(run: dict, dataset: str, data_dir) -> "int | str":
    """What an evaluation of `dataset` at `data_dir` leaves out of its test split for a run folder's `run` config:
    the run's request (`requested`) when the run was tested on that data (the same file or folder, however its
    path is written), else nothing."""
    if run.get("dataset") != dataset or not _same_path(data_dir, run.get("eval_data_dir") or run.get("data_dir")):
        return 0
    return requested(run.get("val_size"), run.get("val_data_dir"))


def _same_path(a, b) -> bool:
    """True when both are unset, or name the same file or folder (`../data/x.npz` and `/work/data/x.npz`)."""
    if a is None or b is None:
        return a is b
    return os.path.realpath(os.path.expanduser(a)) == os.path.realpath(os.path.expanduser(b))


def carve(split, count: int, validation, test_size=None, seed=0):
    """(validation split, its size, test split, its size): `validation` (a count or `AUTO`) images of the held-out
    `split` of `count` images set aside (`carve_masks`), the test split a `test_size` subset of the rest."""
    val_size = default_val_size(count, HELD_OUT) if validation == AUTO else int(validation)
    if val_size == 0:
        raise UserError(f"the held-out split has {count} image(s), too few to set any aside for validation; pass "
                        "`val_data_dir` with validation images, or `val_size` 0 to keep the last phase.")
    validation_mask, test_mask = carve_masks(count, val_size, test_size, seed)
    return masked(split, validation_mask), val_size, masked(split, test_mask), int(test_mask.sum())


@dataclasses.dataclass(frozen=True)
class ValidationPlan:
    """Which images validate a run and which test it (what the report records as `validation_source`).

    Attributes:
        source: `HELD_OUT` or `TRAINING`; None when the run has no validation images.
        origin: where they come from, for people ("the test split", "--val-data-dir PATH": report.json's
            record, "the training split").
        val_size, test_size, train_size: images on each side.
    """

    source: str
    origin: str
    val_size: int
    test_size: int
    train_size: int

    def record(self) -> dict:
        return dataclasses.asdict(self)


def describe(record: dict) -> str:
    """One line for a run's summary from its report's `validation_source` (`ValidationPlan.record`)."""
    if record["source"] is None:
        return f"validation: none; {record['test_size']} test images"
    line = (f"validation: {record['val_size']} images from {record['origin']}; {record['test_size']} other test "
            f"images report the errors above; {record['train_size']} training images")
    if record["source"] == TRAINING:
        line += (". The clean-error guard is lenient here: the model may have memorised these training images, and "
                 "a repair's clean-error cost shows on unseen ones (pass held-out images as `val_data_dir`)")
    return line
