"""Prepared TFDS datasets as `--dataset folder` data (ar2_tf.data.tfds_folder): read from the files alone,
offline, gray images as RGB, the newest version of a dataset folder, a held-out part when there is no test
split, and a run trained and exported on one."""

import json

import numpy as np
import pytest

from ar2_tf.data.sources import load_dataset
from ar2_tf.errors import UserError
from tests.data.tfds_prepared import prepare
from tests.helpers import tiny_classifier


def _pairs(split):
    return [(x, int(y)) for x, y in split.as_numpy_iterator()]


def test_a_version_folder_loads_with_its_class_names_and_test_split(tmp_path):
    import tensorflow_datasets as tfds

    folder = prepare(tmp_path, splits={"train": 12, "validation": 5, "test": 6})
    source = load_dataset("folder", folder, image_size=32)
    assert source.class_names == ("rose", "tulip", "daisy") and source.image_shape == (32, 32)
    assert (source.train_size, source.test_size) == (12, 5)  # validation before test, as image folders' val/
    test = _pairs(source.test)
    assert sorted(label for _, label in test) == [0, 0, 1, 1, 2]
    assert all(x.shape == (32, 32, 3) and x.dtype == np.uint8 for x, _ in test)
    raw = tfds.builder_from_directory(folder).as_dataset(split="validation", shuffle_files=False)
    labels = [int(example["label"]) for example in raw.as_numpy_iterator()]
    assert labels == [label for _, label in test]  # tfds' own order (shuffled when prepared) and labels
    subset = load_dataset("folder", folder, train_size=4, test_size=2, image_size=32)
    assert (subset.train_size, subset.test_size) == (4, 2) and len(_pairs(subset.train)) == 4


def test_the_dataset_folder_reads_its_newest_version_and_gray_images_become_rgb(tmp_path):
    prepare(tmp_path, version="1.0.0", splits={"train": 6, "test": 3})
    prepare(tmp_path, version="1.10.0", splits={"train": 9, "test": 3}, channels=1)  # 1.10 > 1.9 > 1.0
    prepare(tmp_path, version="1.9.0", splits={"train": 7, "test": 3})
    source = load_dataset("folder", str(tmp_path / "tiny_flowers"), image_size=24)
    assert source.train_size == 9
    for image, _ in _pairs(source.train):
        assert image.shape == (24, 24, 3)
        np.testing.assert_array_equal(image[..., 0], image[..., 2])  # gray in all three channels


def test_without_a_test_split_the_last_fifth_of_train_tests(tmp_path):
    import tensorflow_datasets as tfds

    folder = prepare(tmp_path, splits={"train": 20})
    source = load_dataset("folder", folder)  # at 224 px, centre-cropped
    assert (source.train_size, source.test_size) == (16, 4)
    whole = tfds.builder_from_directory(folder).as_dataset(split="train", shuffle_files=False)
    labels = [int(example["label"]) for example in whole.as_numpy_iterator()]
    assert [label for _, label in _pairs(source.test)] == labels[16:]
    assert [label for _, label in _pairs(source.train)] == labels[:16]


@pytest.mark.parametrize("kwargs, message", [
    ({"label": False, "supervised": False}, "not one Image and one ClassLabel"),
    ({"label": False}, "is not a ClassLabel"),
    ({"splits": {"test": 4}}, "has no train split"),
])
def test_datasets_without_class_labels_or_train_split_are_one_line(tmp_path, kwargs, message):
    folder = prepare(tmp_path, **kwargs)
    with pytest.raises(UserError, match=message):
        load_dataset("folder", folder)


def test_train_and_export_a_run_on_a_prepared_dataset(tmp_path):
    """The commands as a user runs them (the export verifies on the dataset's own test images); evaluating such a
    run folder at the size it trained at: tests/test_choices.py."""
    from ar2_tf import train
    from ar2_tf.cli import run_main
    from export import __main__ as export

    folder = prepare(tmp_path / "tfds", splits={"train": 30, "test": 9})
    run, serving, model = str(tmp_path / "run"), str(tmp_path / "serving"), str(tmp_path / "model.keras")
    tiny_classifier(num_classes=3, input_shape=(32, 32, 3)).save(model)
    assert run_main(train.main, ["--dataset", "folder", "--data-dir", str(tmp_path / "tfds" / "tiny_flowers"),
                                 "--image-size", "32", "--model", model, "--preset", "tiny", "--batch-size", "8",
                                 "--verbose", "0", "--out", run]) == 0
    assert run_main(export.main, ["--run", run, "--out", serving]) == 0
    with open(tmp_path / "run" / "report.json") as file:
        report = json.load(file)
    assert report["class_names"] == ["rose", "tulip", "daisy"] and report["input_shape"] == [32, 32, 3]
    assert report["train_size"] == 30 and report["validation_source"]["source"] == "held_out"  # its test split
    assert folder.startswith(str(tmp_path / "tfds" / "tiny_flowers"))
    assert (tmp_path / "serving" / "ar2_folder_gaussian_noise" / "1" / "saved_model.pb").exists()
