"""One repair run's data split: the validation images come from the training split and nowhere else."""

import dataclasses

import pytest

from ar2_tf.data.sources import load_dataset
from ar2_tf.errors import UserError
from ar2_tf.runs.config import TrainConfig
from ar2_tf.runs.repair_run import carve_validation


def pixels(split):
    return [image.tobytes() for image, _ in split.as_numpy_iterator()]


def test_validation_never_overlaps_the_training_or_test_images():
    source = load_dataset("demo", train_size=200, test_size=60, seed=0)
    config = TrainConfig(dataset="demo", train_size=200, test_size=60)
    train, train_size, validation = carve_validation(source, config)
    train_pixels, validation_pixels, test_pixels = pixels(train), pixels(validation), pixels(source.test)
    assert (train_size, len(train_pixels), len(validation_pixels)) == (180, 180, 20)  # the default: 10%
    assert not set(validation_pixels) & set(train_pixels) and not set(validation_pixels) & set(test_pixels)
    assert sorted(train_pixels + validation_pixels) == sorted(pixels(source.train))
    again = carve_validation(source, config)[2]
    assert pixels(again) == validation_pixels  # seeded
    assert pixels(carve_validation(source, dataclasses.replace(config, seed=1))[2]) != validation_pixels


def test_val_size_zero_trains_on_everything_and_too_large_is_a_user_error():
    source = load_dataset("demo", train_size=50, test_size=10, seed=0)
    train, train_size, validation = carve_validation(source, TrainConfig(val_size=0))
    assert validation is None and train_size == 50
    with pytest.raises(UserError, match="--val-size must be between 1 and 49"):
        carve_validation(source, TrainConfig(val_size=50))
