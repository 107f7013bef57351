"""`ar2_tf.data.given_datasets`: datasets handed to a run give the splits that the same pixels as an `.npz` file
give (`ar2_tf.data.sources.load_dataset`), whatever their batching, pixel type and label form."""

import numpy as np
import pytest
import tensorflow as tf

from ar2_tf.data import holdout
from ar2_tf.data.given_datasets import TRAIN, VAL, given_datasets
from ar2_tf.data.sources import load_dataset
from ar2_tf.errors import UserError


def _data(count, seed, classes=3):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, 8, 8, 3), dtype=np.uint8), rng.integers(0, classes, count)


def _split(split):
    pairs = list(split.as_numpy_iterator())
    return np.stack([image for image, _ in pairs]), np.array([label for _, label in pairs])


def _assert_same(mine, theirs):
    assert (mine.train_size, mine.test_size, mine.validation_size, mine.test_held_out) == (
        theirs.train_size, theirs.test_size, theirs.validation_size, theirs.test_held_out)
    for name in ("train", "test", "validation"):
        if getattr(theirs, name) is None:
            assert getattr(mine, name) is None
            continue
        for a, b in zip(_split(getattr(mine, name)), _split(getattr(theirs, name))):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("sizes", [dict(train_size=None, test_size=None, validation=0),
                                   dict(train_size=20, test_size=5, validation=0),
                                   dict(train_size=25, test_size=None, validation=holdout.AUTO),
                                   dict(train_size=None, test_size=4, validation=6)])
def test_train_alone_holds_out_the_fifth_an_npz_of_x_and_y_holds_out(tmp_path, sizes):
    images, labels = _data(40, 0)
    np.savez(tmp_path / "data.npz", x=images, y=labels)
    as_floats = tf.data.Dataset.from_tensor_slices((images.astype(np.float32), tf.one_hot(labels, 3))).batch(7)
    given = given_datasets(as_floats, train_subset=sizes["train_size"] is not None)
    args = (sizes["train_size"], sizes["test_size"])
    _assert_same(given.load("npz", TRAIN, *args, seed=3, validation=sizes["validation"]),
                 load_dataset("npz", str(tmp_path / "data.npz"), *args, seed=3, validation=sizes["validation"]))


@pytest.mark.parametrize("validation", [0, holdout.AUTO])
def test_train_and_test_are_split_as_x_train_and_x_test_are(tmp_path, validation):
    (x_train, y_train), (x_test, y_test) = _data(30, 1), _data(16, 2)
    np.savez(tmp_path / "data.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    single = tf.data.Dataset.from_tensor_slices((x_train, y_train))  # single images: batched when read
    given = given_datasets(single, tf.data.Dataset.from_tensor_slices((x_test, y_test)).batch(5), train_subset=True)
    assert given.class_names == ("class_0", "class_1", "class_2")
    _assert_same(given.load("npz", TRAIN, 12, 6, seed=1, validation=validation),
                 load_dataset("npz", str(tmp_path / "data.npz"), 12, 6, seed=1, validation=validation))


def test_val_is_the_test_split_of_its_own_source():
    (x, y), (x_val, y_val) = _data(20, 3), _data(6, 4)
    given = given_datasets(tf.data.Dataset.from_tensor_slices((x, y)).batch(4),
                           tf.data.Dataset.from_tensor_slices((x, y)).batch(4),
                           tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(4))
    source = given.load("npz", VAL, None, None)
    assert (source.train_size, source.test_size) == (0, 6)
    images, labels = _split(source.test)
    np.testing.assert_array_equal(images, x_val)
    np.testing.assert_array_equal(labels, y_val)


def test_image_size_resizes_single_images_of_any_size():
    images = [np.full((height, 10, 3), 50 * index, np.uint8) for index, height in enumerate((6, 12, 9))]
    varying = tf.data.Dataset.from_generator(lambda: ((image, index) for index, image in enumerate(images)),
                                             output_signature=(tf.TensorSpec((None, None, 3), tf.uint8),
                                                               tf.TensorSpec((), tf.int64)))
    given = given_datasets(varying, varying, image_size=8)
    assert given.train.image_shape == (8, 8) and given.class_names == ("class_0", "class_1", "class_2")
    resized, labels = _split(given.train.pairs())
    assert resized.shape == (3, 8, 8, 3) and list(labels) == [0, 1, 2]
    assert [int(image.mean()) for image in resized] == [0, 50, 100]  # flat images stay flat
    with pytest.raises(UserError, match=r"^`train` yields images of 3 sizes; pass image_size=N"):
        given_datasets(varying, varying)
