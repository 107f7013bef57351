"""A repair run's splits (`ar2_tf.runs.splits`): validation on held-out images wherever the data has them,
never one image shared between training, validation and test."""

import dataclasses

import numpy as np
import pytest

from ar2_tf.data import holdout
from ar2_tf.data.sources import load_dataset
from ar2_tf.errors import UserError
from ar2_tf.runs.config import TrainConfig
from ar2_tf.runs.splits import load_run_data


def pixels(split):
    return [image.tobytes() for image, _ in split.as_numpy_iterator()]


def arrays_file(tmp_path, train=200, test=120):
    rng = np.random.default_rng(0)
    path = str(tmp_path / "data.npz")
    np.savez(path, x_train=rng.integers(0, 256, (train, 8, 8, 3), np.uint8), y_train=np.arange(train) % 4,
             x_test=rng.integers(0, 256, (test, 8, 8, 3), np.uint8), y_test=np.arange(test) % 4)
    return path


def test_validation_is_a_fixed_part_of_the_test_split_and_the_rest_tests(tmp_path):
    path = arrays_file(tmp_path)
    config = TrainConfig(dataset="npz", data_dir=path, test_size=40)
    data = load_run_data(config)
    whole_test = [image.tobytes() for image in np.load(path)["x_test"]]
    validation, test, train = pixels(data.validation), pixels(data.test), pixels(data.train)
    assert (len(validation), len(test), len(train)) == (60, 40, 200)  # half of the 120 test images; 40 of the rest
    assert data.plan == holdout.ValidationPlan(holdout.HELD_OUT, "the test split", 60, 40, 200)
    assert set(validation) <= set(whole_test) and set(test) <= set(whole_test)
    assert not set(validation) & set(test) and not set(validation) & set(train)
    other_seed = load_run_data(dataclasses.replace(config, seed=1))
    assert pixels(other_seed.validation) == validation  # the same images for every seed: one test set for all runs
    assert pixels(other_seed.test) != test and not set(pixels(other_seed.test)) & set(validation)


def test_without_a_held_out_split_validation_is_carved_from_training_and_called_lenient(tmp_path):
    rng = np.random.default_rng(0)
    path = str(tmp_path / "xy.npz")
    np.savez(path, x=rng.integers(0, 256, (100, 8, 8, 3), np.uint8), y=np.repeat(np.arange(4), 25))
    data = load_run_data(TrainConfig(dataset="npz", data_dir=path, batch_size=8))
    assert data.plan.source == holdout.TRAINING and data.plan.val_size == 8  # a tenth of the 80 training images
    assert (len(pixels(data.train)), len(pixels(data.test))) == (72, 20)
    assert not set(pixels(data.validation)) & set(pixels(data.train))
    assert "lenient" in holdout.describe(data.plan.record())
    other_seed = load_run_data(TrainConfig(dataset="npz", data_dir=path, batch_size=8, seed=1))
    assert pixels(other_seed.validation) != pixels(data.validation)  # seeded like the training order


def test_val_data_dir_validates_and_the_whole_test_split_tests(tmp_path):
    rng = np.random.default_rng(1)
    path = str(tmp_path / "val.npz")
    np.savez(path, x_test=rng.integers(0, 256, (30, 8, 8, 3), np.uint8), y_test=np.arange(30) % 4)
    data_dir = arrays_file(tmp_path)
    data = load_run_data(TrainConfig(dataset="npz", data_dir=data_dir, val_data_dir=path))
    assert data.plan == holdout.ValidationPlan(holdout.HELD_OUT, f"--val-data-dir {path}", 30, 120, 200)
    assert sorted(pixels(data.validation)) == sorted(image.tobytes() for image in np.load(path)["x_test"])
    assert pixels(data.test) == pixels(load_dataset("npz", data_dir).test)


def test_val_size_zero_and_methods_without_selection_validate_on_nothing(tmp_path):
    config = TrainConfig(dataset="npz", data_dir=arrays_file(tmp_path), test_size=10)
    data = load_run_data(dataclasses.replace(config, val_size=0))
    assert data.validation is None and data.plan.train_size == 200
    assert pixels(data.test) == pixels(load_dataset("npz", config.data_dir, test_size=10).test)
    bn_adapt = load_run_data(dataclasses.replace(config, method="bn-adapt"))
    assert bn_adapt.validation is None and bn_adapt.plan.train_size == 200
    # Its test images are those of the AR2 run on the same data: one benchmark evaluates both on one test set.
    assert pixels(bn_adapt.test) == pixels(load_run_data(config).test)


def test_eval_data_dir_is_the_split_carved(tmp_path):
    rng = np.random.default_rng(2)
    path = str(tmp_path / "tests.npz")
    np.savez(path, x_test=rng.integers(0, 256, (40, 8, 8, 3), np.uint8), y_test=np.arange(40) % 4)
    data = load_run_data(TrainConfig(dataset="npz", data_dir=arrays_file(tmp_path), eval_data_dir=path))
    assert (data.plan.val_size, data.plan.test_size) == (20, 20)
    assert sorted(pixels(data.validation) + pixels(data.test)) == sorted(x.tobytes() for x in np.load(path)["x_test"])


def test_a_val_size_that_leaves_no_test_image_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="has 120 images, too few to set 120 aside"):
        load_run_data(TrainConfig(dataset="npz", data_dir=arrays_file(tmp_path), val_size=120))
