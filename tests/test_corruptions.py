"""Tests of ar2_tf.corruptions: registry, validation, both backends eagerly, in Dataset.map and tf.function."""

import numpy as np
import pytest
import tensorflow as tf

from ar2_tf.corruptions import ALL_CORRUPTIONS, BENCHMARK_CORRUPTIONS, EXTRA_CORRUPTIONS, check_corruption, corrupt
from ar2_tf.errors import UserError

SEED = tf.constant([7, 11])


def _images(size=32, batch=2):
    rng = np.random.default_rng(0)
    # Smooth random images: closer to natural images than white noise.
    coarse = rng.integers(0, 256, (batch, size // 8, size // 8, 3)).astype(np.float32)
    return tf.cast(tf.image.resize(coarse, (size, size), "bilinear"), tf.uint8)


def test_names():
    assert len(BENCHMARK_CORRUPTIONS) == 15 and len(EXTRA_CORRUPTIONS) == 4
    assert ALL_CORRUPTIONS[:3] == ("gaussian_noise", "shot_noise", "impulse_noise")
    assert check_corruption("fog") == "fog"
    with pytest.raises(UserError, match="unknown corruption 'fogg'"):
        check_corruption("fogg")


@pytest.mark.parametrize("kwargs, match", [
    (dict(name="nope"), "unknown corruption"),
    (dict(severity=0), "severity"),
    (dict(severity=6), "severity"),
    (dict(severity=2.5), "severity"),
    (dict(severity=tf.constant([1, 9])), "severity"),
    (dict(params="svhn"), "unknown params"),
    (dict(backend="magick"), "unknown backend"),
    (dict(images=np.zeros((2, 32, 32, 3), np.int32)), "uint8 or float32"),
    (dict(images=np.zeros((32, 32, 3), np.uint8)), r"\[B, H, W, 3\]"),
    (dict(seed=None), "seed"),
    (dict(params="cifar", backend="reference"), "ImageNet parameters"),
])
def test_bad_arguments_raise_user_error(kwargs, match):
    args = dict(images=_images(), name="fog", severity=1, seed=SEED, params="imagenet", backend="reference")
    args.update(kwargs)
    with pytest.raises(UserError, match=match):
        corrupt(**args)


@pytest.mark.parametrize("name", ALL_CORRUPTIONS)
def test_reference_backend(name):
    x = _images()
    a = corrupt(x, name, 3, SEED, params="imagenet", backend="reference")
    b = corrupt(x, name, 3, SEED, params="imagenet", backend="reference")
    assert a.dtype == tf.uint8 and a.shape == x.shape
    np.testing.assert_array_equal(a, b)  # deterministic given the seed
    f = corrupt(tf.cast(x, tf.float32), name, tf.constant([1, 5]), SEED, params="imagenet", backend="reference")
    assert f.dtype == tf.float32 and f.shape == x.shape


def test_reference_in_dataset_map_and_tf_function():
    x = _images(batch=4)
    ds = tf.data.Dataset.from_tensor_slices(x).batch(2).map(
        lambda im: corrupt(im, "gaussian_noise", 2, SEED, params="imagenet", backend="reference"))
    out = np.concatenate([b.numpy() for b in ds])
    assert out.shape == (4, 32, 32, 3)
    fn = tf.function(lambda im, s: corrupt(im, "contrast", s, SEED, params="imagenet", backend="reference"))
    np.testing.assert_array_equal(fn(x, tf.constant(4)), corrupt(x, "contrast", 4, SEED, params="imagenet",
                                                                  backend="reference"))
