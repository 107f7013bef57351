"""`ar2_tf.corrupted_pairs`: the seed rule batch by batch and epoch by epoch, eagerly and under Keras' `fit`."""

import numpy as np
import pytest
import tensorflow as tf

from ar2_tf.data import stateless_seeds as seeds
from ar2_tf.data.pairs import corrupted_pairs, pixel_split
from ar2_tf.data.pipelines import corrupt_views
from ar2_tf.data.preprocessing import get_preprocessor
from ar2_tf.errors import UserError


def _images(count=20, size=8):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (count, size, size, 3)).astype(np.uint8), (np.arange(count) % 3).astype(np.int32)


def _batches(x, y, batch_size=8, dtype=np.float32):
    return tf.data.Dataset.from_tensor_slices((x.astype(dtype), y)).batch(batch_size)


def _epoch(pairs):
    return [(clean.numpy(), corrupted.numpy(), labels.numpy()) for (clean, corrupted), labels in pairs]


def test_every_batch_follows_the_training_seed_rule_and_each_pass_is_a_new_data_epoch():
    x, y = _images()
    pairs = corrupted_pairs(_batches(x, y), "gaussian_noise", 3, preprocessing="unit", seed=5)
    unit = get_preprocessor("unit")
    for epoch in range(2):
        for index, (clean, corrupted, labels) in enumerate(_epoch(pairs)):
            images = x[index * 8:(index + 1) * 8]
            expected = corrupt_views(tf.constant(images), "gaussian_noise", 3,
                                     seeds.training_noise_seed(5, epoch, index), params="cifar", backend="native")
            np.testing.assert_array_equal(corrupted, unit(expected).numpy())
            np.testing.assert_array_equal(clean, unit(images).numpy())
            np.testing.assert_array_equal(labels, y[index * 8:(index + 1) * 8])


def test_the_noise_is_the_seeds_and_differs_between_batches_and_epochs():
    x, y = _images(16)
    x[8:] = x[:8]  # the two batches hold the same images
    make = lambda seed: corrupted_pairs(_batches(x, y), "shot_noise", 3, preprocessing="none", seed=seed)  # noqa: E731
    pairs = make(0)
    first, second = _epoch(pairs), _epoch(pairs)
    assert not np.array_equal(first[0][1], first[1][1])  # same pixels, another batch: other noise
    assert not np.array_equal(first[0][1], second[0][1])  # another epoch: other noise
    again = make(0)
    for got, want in zip(_epoch(again) + _epoch(again), first + second):  # a new dataset: the same two epochs
        np.testing.assert_array_equal(got[1], want[1])
    assert not np.array_equal(_epoch(make(1))[0][1], first[0][1])


def test_validation_pairs_keep_the_first_epochs_noise():
    x, y = _images()
    pairs = corrupted_pairs(_batches(x, y), "gaussian_noise", 3, preprocessing="none", new_noise_each_epoch=False)
    for got, want in zip(_epoch(pairs), _epoch(pairs)):
        np.testing.assert_array_equal(got[1], want[1])


def test_float_images_are_their_pixels():
    x, y = _images()
    as_float = _epoch(corrupted_pairs(_batches(x, y, dtype=np.float32), "fog", 2, preprocessing="tf"))
    as_uint8 = _epoch(corrupted_pairs(_batches(x, y, dtype=np.uint8), "fog", 2, preprocessing="tf"))
    for got, want in zip(as_float, as_uint8):
        np.testing.assert_array_equal(got[1], want[1])


def test_keras_fit_gets_new_noise_every_epoch_and_the_same_noise_for_the_same_seed():
    import keras

    class Probe(keras.Model):
        """Reports the sum of the corrupted view of its one batch per epoch."""

        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(1)

        def call(self, inputs):
            return self.dense(inputs)

        def train_step(self, data):
            (_, corrupted), _ = data
            return {"corrupted_sum": tf.reduce_sum(corrupted)}

    x, y = _images(8)

    def sums(seed):
        model = Probe()
        model.compile(optimizer="sgd")
        pairs = corrupted_pairs(_batches(x, y), "gaussian_noise", 3, preprocessing="unit", seed=seed)
        return model.fit(pairs, epochs=3, verbose=0, shuffle=False).history["corrupted_sum"]

    first = sums(0)
    assert len(set(first)) == 3
    assert sums(0) == first


@pytest.mark.parametrize("dataset, problem", [
    (tf.data.Dataset.from_tensor_slices((np.zeros((4, 8, 8, 3), np.uint8), np.zeros(4, np.int64))), "batches"),
    (tf.data.Dataset.from_tensor_slices((np.zeros((4, 8, 8, 3), np.uint8), np.eye(4, 3))).batch(2), "labels"),
    (tf.data.Dataset.from_tensor_slices(np.zeros((4, 8, 8, 3), np.uint8)).batch(2), "pairs, got"),
])
def test_data_that_is_not_labelled_batches_is_refused_by_name(dataset, problem):
    with pytest.raises(UserError, match=problem):
        corrupted_pairs(dataset, "fog", 3, preprocessing="unit")


@pytest.mark.parametrize("corruption, severity, problem", [("nope", 3, "corruption"), ("fog", 9, "severity")])
def test_a_bad_corruption_is_refused_before_any_trace(corruption, severity, problem):
    x, y = _images(4)
    with pytest.raises(UserError, match=problem) as refused:
        corrupted_pairs(_batches(x, y), corruption, severity, preprocessing="unit")
    assert "user code" not in str(refused.value)


def test_pixel_split_reads_batches_single_pairs_and_arrays_alike():
    x, y = _images()
    expected = (x, y.astype(np.int64))
    for data in (_batches(x, y), tf.data.Dataset.from_tensor_slices((x, y)), (x.astype(np.float32), y)):
        got = [np.stack(parts) for parts in zip(*pixel_split(data).as_numpy_iterator())]
        assert got[0].dtype == np.uint8 and got[1].dtype == np.int64
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])
    with pytest.raises(UserError, match="tf.data.Dataset"):
        pixel_split([x])
