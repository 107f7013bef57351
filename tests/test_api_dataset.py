"""`ar2_tf.repair` fed `tf.data.Dataset`s: the run is the one the same pixels as arrays make, a run already in
`out` is refused unless `force` (a dataset cannot be told unchanged), and a bad dataset is one line naming its
argument."""

import os

import numpy as np
import pytest
import tensorflow as tf

import ar2_tf
from ar2_tf.errors import UserError
from tests.helpers import tiny_classifier

CLASSES = ("cat", "dog", "fox")
OPTIONS = dict(corruption="gaussian_noise", preset="tiny", batch_size=8, verbose=0, max_clean_drop=100.0)


def _png_folder(root, per_class, seed):
    """`root/<class>/*.png`: 16x16 RGB images whose class sets their mean brightness, so the model learns some."""
    rng = np.random.default_rng(seed)
    for label, name in enumerate(CLASSES):
        os.makedirs(root / name)
        for index in range(per_class):
            image = np.clip(rng.normal(60 + 70 * label, 40, (16, 16, 3)), 0, 255).astype(np.uint8)
            tf.io.write_file(str(root / name / f"{index}.png"), tf.io.encode_png(image))
    return str(root)


def _from_folder(folder, **keywords):
    import keras

    return keras.utils.image_dataset_from_directory(folder, image_size=(16, 16), batch_size=8, shuffle=False,
                                                    **keywords)


def _arrays(dataset):
    batches = list(dataset.as_numpy_iterator())
    return (np.concatenate([images for images, _ in batches]).astype(np.uint8),
            np.concatenate([labels for _, labels in batches]))


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    return _png_folder(root / "train", 16, 0), _png_folder(root / "test", 8, 1)


def test_a_dataset_run_reports_what_the_same_pixels_as_arrays_report(folders, tmp_path):
    train, test = (_from_folder(folder) for folder in folders)
    model = tiny_classifier(num_classes=3)
    fed = ar2_tf.repair(model, train, test=test, out=str(tmp_path / "fed"), **OPTIONS)
    given = ar2_tf.repair(model, _arrays(train), test=_arrays(test), out=str(tmp_path / "arrays"), **OPTIONS)

    for key in ("before", "after", "validation", "validation_source", "train_size", "val_size", "phases_run",
                "preprocessing", "input_shape"):
        assert fed.report[key] == given.report[key], key
    assert fed.report["validation_source"]["test_size"] == 12  # half of the 24 test images validate
    assert isinstance(fed.report["validation"]["kept"], int)
    assert fed.report["class_names"] == list(CLASSES)  # image_dataset_from_directory's class_names
    config = fed.report["config"]
    assert config["data_dir"] == "<the train tf.data.Dataset>" and config["dataset"] == "npz"
    assert sorted(os.listdir(tmp_path / "fed" / "inputs")) == [os.path.basename(config["model"])]  # no data copy
    for mine, theirs in zip(fed.model.get_weights(), given.model.get_weights()):
        np.testing.assert_array_equal(mine, theirs)


def test_a_run_in_out_is_refused_without_force_and_started_over_with_it(folders, tmp_path):
    train, test = (_from_folder(folder) for folder in folders)
    train = train.unbatch().map(lambda image, label: (image, tf.one_hot(label, 3)))  # single images, one-hot
    out = str(tmp_path / "run")
    first = ar2_tf.repair(tiny_classifier(num_classes=3), train, test=test, val=test.take(1), out=out,
                          **OPTIONS)
    assert first.report["class_names"] == ["cat", "dog", "fox"]  # from `test`, which has them
    assert first.report["validation_source"]["val_size"] == 8 and first.report["validation_source"]["test_size"] == 24
    assert first.report["config"]["val_data_dir"] == "<the val tf.data.Dataset>"

    with pytest.raises(UserError, match=r"already holds a run.*never resumed nor reused.*force=True") as refused:
        ar2_tf.repair(tiny_classifier(num_classes=3), train, test=test, out=out, **OPTIONS)
    assert "\n" not in str(refused.value)
    os.remove(os.path.join(out, "report.json"))  # a run stopped before its end: refused too
    with pytest.raises(UserError, match="already holds a run"):
        ar2_tf.repair(tiny_classifier(num_classes=3), train, test=test, out=out, **OPTIONS)

    again = ar2_tf.repair(tiny_classifier(num_classes=3), train, test=test, out=out, force=True, val_size=0,
                          **OPTIONS)  # no validation: the model's input scale is checked on training images
    assert again.report["phases_run"] == first.report["phases_run"]  # from the start, not resumed
    assert again.report["config"]["val_data_dir"] is None and again.report["validation_source"]["val_size"] == 0
    assert again.report["validation_source"]["test_size"] == 24
    assert os.path.isfile(os.path.join(out, "report.json"))


def _images_only(count=8):
    return tf.data.Dataset.from_tensor_slices(np.zeros((count, 16, 16, 3), np.uint8)).batch(4)


def _pairs(images, labels):
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)


GOOD = _pairs(np.full((12, 16, 16, 3), 100, np.uint8), np.arange(12) % 3)


@pytest.mark.parametrize("arguments, message", [
    (dict(train=_images_only()), r"^`train` must yield \(images, labels\) pairs, but yields .*map it to pairs"),
    (dict(train=_pairs(np.zeros((8, 10), np.float32), np.zeros(8, np.int64))),
     r"^`train` yields images of shape \(None, 10\); expected RGB images"),
    (dict(train=_pairs(np.full((8, 16, 16, 3), 0.5, np.float32), np.zeros(8, np.int64))),
     r"^`train` yields float pixels from 0.5 to 0.5, scaled to \[0, 1\]; pass them as 0-255"),
    (dict(train=GOOD.take(0)), r"^`train` yields no images; pass a dataset that holds some"),
    (dict(train=GOOD.repeat()), r"^`train` repeats forever; pass it without .repeat\(\)"),
    (dict(train=GOOD, test=_images_only()), r"^`test` must yield \(images, labels\) pairs"),
    (dict(train=GOOD, test=GOOD, val=GOOD.take(0)), r"^`val` yields no images"),
    (dict(train=GOOD, test=GOOD.unbatch().shuffle(12).batch(4)), r"^`test` gives its images in another order.*"
                                                                  r"shuffle=False"),
    (dict(train=GOOD, test=_pairs(np.zeros((4, 8, 8, 3), np.uint8), np.zeros(4, np.int64))),
     r"^`test` images are 8x8 but `train` images 16x16"),
    (dict(train=GOOD, val="val.npz"), r"^`val` is a path, but the other data is a tf.data.Dataset"),
    (dict(train="data.npz", val=GOOD), r"^a `val` tf.data.Dataset goes with a `train` dataset or arrays"),
])
def test_a_bad_dataset_is_one_line_naming_its_argument(tmp_path, arguments, message):
    out = tmp_path / "run"
    with pytest.raises(UserError, match=message) as refused:
        ar2_tf.repair(tiny_classifier(num_classes=3), out=str(out), **arguments, **OPTIONS)
    assert "\n" not in str(refused.value) and "<the " not in str(refused.value)
    assert not out.exists()  # refused before the run folder holds anything
