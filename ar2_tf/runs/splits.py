"""A repair run's three splits, resolved once: what it trains on, what chooses its kept phase, what it reports.

The validation images come from held-out images wherever the data has them (`ar2_tf.data.holdout`): the user's
`val_data_dir`, else a fixed part of the test split (of `eval_data_dir` when given, the split that is
reported), whose rest is then the test split. Only data without a held-out split validates on a seeded part of
the training split.
"""

import dataclasses

import tensorflow as tf

from ar2_tf.data import holdout
from ar2_tf.data.sources import DatasetSource, check_test_split, load_dataset
from ar2_tf.errors import UserError
from ar2_tf.evaluation.validation import split_validation
from ar2_tf.runs import methods


@dataclasses.dataclass(frozen=True)
class RunData:
    """The splits of one run (unbatched (uint8 image, int64 label) pairs).

    Attributes:
        source: the training data's source (class names, image shape, sizes).
        train: what the method trains on; test: what before/after are measured on.
        validation: what the kept phase is chosen on, or None (no selection).
        plan: where each came from and how many images each holds (recorded in report.json).
    """

    source: DatasetSource
    train: tf.data.Dataset
    test: tf.data.Dataset
    validation: tf.data.Dataset
    plan: holdout.ValidationPlan


def load_run_data(config, selects_phase: bool = None, given=None) -> RunData:
    """The run's splits from its config (`ar2_tf.runs.config.TrainConfig`); see the module docstring.
    `selects_phase`: whether the run's method selects a phase (`ar2_tf.runs.methods.Method`, as the run's plan
    holds it); None: looked up in the registry. `given`: data handed over as datasets, read in place of the
    config's data paths (`ar2_tf.data.given_datasets.GivenDatasets`)."""
    request = holdout.requested(config.val_size, config.val_data_dir)
    load = dict(image_size=config.image_size, seed=config.seed, strict=config.strict_images)
    read = load_dataset if given is None else given.load
    source = read(config.dataset, config.data_dir, config.train_size, config.test_size,
                          validation=0 if config.eval_data_dir else request, **load)
    if config.eval_data_dir:  # checked before any model is loaded or trained
        tested = check_test_split(read(config.dataset, config.eval_data_dir, None, config.test_size,
                                               validation=request, **load),
                                  config.eval_data_dir, "pass another `eval_data_dir`")
    else:
        tested = check_test_split(source, config.data_dir, "pass `eval_data_dir` with test images")
    train, train_size = source.train, source.train_size
    selects = methods.get_method(config.method).selects_phase if selects_phase is None else selects_phase
    if config.val_data_dir:
        held = read(config.dataset, config.val_data_dir, None, config.val_size, **load)
        if held.test_size == 0:
            raise UserError(f"`val_data_dir` {config.val_data_dir!r} holds no test/validation images; pass a "
                            "source whose test split holds them (an .npz with x_test/y_test, a tree with val/).")
        # report.json's record of where they came from, as every version has written it
        validation, origin, kind = held.test, f"--val-data-dir {config.val_data_dir}", holdout.HELD_OUT
        val_size = held.test_size
    elif tested.validation is not None:
        validation, val_size, origin, kind = tested.validation, tested.validation_size, "the test split", \
            holdout.HELD_OUT
    else:
        val_size = holdout.default_val_size(train_size, holdout.TRAINING) if config.val_size is None \
            else config.val_size
        validation, origin, kind = None, "the training split", holdout.TRAINING
        if val_size and selects:
            train, validation = split_validation(train, train_size, val_size, config.seed)
            train_size -= val_size
    if not selects or validation is None:
        validation, kind, val_size = None, None, 0
    plan = holdout.ValidationPlan(kind, origin, val_size, tested.test_size, train_size)
    return RunData(source, train, tested.test, validation, plan)
