"""Which images validate and which test (`ar2_tf.data.holdout`): the pure rules, without a run."""

import numpy as np
import pytest

from ar2_tf.data import holdout
from ar2_tf.errors import UserError


def test_default_sizes_half_of_a_held_out_split_a_tenth_of_training_at_most_1000():
    assert holdout.default_val_size(1017, holdout.HELD_OUT) == 508
    assert holdout.default_val_size(10_000, holdout.HELD_OUT) == 1000
    assert holdout.default_val_size(5000, holdout.TRAINING) == 500
    assert holdout.default_val_size(9, holdout.TRAINING) == 0


def test_the_validation_part_is_fixed_and_the_test_subset_follows_the_seed():
    validation, test = holdout.carve_masks(100, 30, test_size=20, seed=0)
    assert validation.sum() == 30 and test.sum() == 20 and not (validation & test).any()
    again, other_test = holdout.carve_masks(100, 30, test_size=20, seed=1)
    assert np.array_equal(again, validation)  # the same validation images for every run seed
    assert not np.array_equal(other_test, test) and not (again & other_test).any()
    assert holdout.carve_masks(100, 30)[1].sum() == 70  # no test_size: all the rest tests
    with pytest.raises(UserError, match="has 10 images, too few to set 10 aside"):
        holdout.carve_masks(10, 10)


def test_what_a_run_and_its_evaluation_set_aside():
    assert holdout.requested(None, None) == holdout.AUTO
    assert holdout.requested(300, None) == 300
    assert holdout.requested(None, "val.npz") == 0 and holdout.requested(0, None) == 0
    run = {"dataset": "cifar10", "data_dir": "train.npz", "eval_data_dir": "exact.npz", "val_size": None}
    assert holdout.requested_by_run(run, "cifar10", "exact.npz") == holdout.AUTO  # the split the run tested on
    assert holdout.requested_by_run(run, "cifar10", "train.npz") == 0  # another split: the run never saw it
    assert holdout.requested_by_run(run, "cifar100", "exact.npz") == 0
    assert holdout.requested_by_run({}, "demo", None) == 0  # model files alone


def test_a_run_s_data_is_recognised_however_its_path_is_written(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "exact.npz").write_bytes(b"")
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    run = {"dataset": "cifar10", "data_dir": str(tmp_path / "work" / ".." / "data" / "exact.npz"), "val_size": 300}
    assert holdout.requested_by_run(run, "cifar10", "../data/exact.npz") == 300
    assert holdout.requested_by_run(run, "cifar10", str(tmp_path / "data" / "exact.npz")) == 300
    assert holdout.requested_by_run(run, "cifar10", "../data/other.npz") == 0


def test_the_summary_line_calls_a_training_split_guard_lenient():
    plan = holdout.ValidationPlan(holdout.HELD_OUT, "the test split", 508, 509, 2000)
    assert holdout.describe(plan.record()).startswith("validation: 508 images from the test split; 509 other test")
    assert "lenient" not in holdout.describe(plan.record())
    lenient = holdout.ValidationPlan(holdout.TRAINING, "the training split", 200, 400, 1800)
    assert "lenient" in holdout.describe(lenient.record())
    assert holdout.describe(holdout.ValidationPlan(None, "", 0, 50, 100).record()) == "validation: none; 50 test images"
