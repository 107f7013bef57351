"""Tests of ar2_tf.corruptions: registry, validation, both backends eagerly, in Dataset.map and tf.function."""

import numpy as np
import pytest
import tensorflow as tf

from ar2_tf.corruptions import (
    ALL_CORRUPTIONS,
    BENCHMARK_CORRUPTIONS,
    EXTRA_CORRUPTIONS,
    PARAM_SETS,
    check_corruption,
    corrupt,
)
from ar2_tf.corruptions.native import NATIVE
from ar2_tf.errors import UserError

SEED = tf.constant([7, 11])
SEVERITIES = tf.constant([1, 2, 3, 4, 5])
# Corruptions whose output depends on the seed.
RANDOM = {"gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "glass_blur", "motion_blur",
          "snow", "frost", "fog", "elastic_transform", "spatter"}


def _images(size=32, batch=5):
    rng = np.random.default_rng(0)
    # Smooth random images with some flat areas: closer to natural images than white noise.
    coarse = rng.integers(0, 256, (batch, size // 8, size // 8, 3)).astype(np.float32)
    return tf.cast(tf.image.resize(coarse, (size, size), "bilinear"), tf.uint8)


def test_names_and_registry():
    assert len(BENCHMARK_CORRUPTIONS) == 15 and len(EXTRA_CORRUPTIONS) == 4
    assert ALL_CORRUPTIONS[:3] == ("gaussian_noise", "shot_noise", "impulse_noise")
    assert tuple(NATIVE) == ALL_CORRUPTIONS
    assert check_corruption("fog") == "fog"
    with pytest.raises(UserError, match="unknown corruption 'fogg'"):
        check_corruption("fogg")


@pytest.mark.parametrize("kwargs, match", [
    (dict(name="nope"), "unknown corruption"),
    (dict(severity=0), "severity"),
    (dict(severity=6), "severity"),
    (dict(severity=2.5), "severity"),
    (dict(severity="3"), "severity"),
    (dict(severity=True), "severity"),
    (dict(severity=np.float64(3.0)), "severity"),
    (dict(severity=tf.constant([1, 9])), "severity"),
    (dict(severity=tf.constant(2.0)), "severity"),
    (dict(params="svhn"), "unknown params"),
    (dict(backend="magick"), "unknown backend"),
    (dict(images=np.zeros((2, 32, 32, 3), np.int32)), "uint8 or float32"),
    (dict(images=tf.zeros((2, 32, 32, 3), tf.float64)), "uint8 or float32"),
    (dict(images=np.zeros((32, 32, 3), np.uint8)), r"\[B, H, W, 3\]"),
    (dict(images=np.zeros((2, 32, 32, 1), np.uint8)), r"\[B, H, W, 3\]"),
    (dict(seed=None), "seed"),
    (dict(seed=tf.constant([1.0, 2.0])), "seed"),
    (dict(params="cifar", backend="reference"), "ImageNet parameters"),
    (dict(images=np.zeros((2, 16, 16, 3), np.uint8)), "at least 32x32"),
])
def test_bad_arguments_raise_user_error(kwargs, match):
    args = dict(images=_images(batch=2), name="fog", severity=1, seed=SEED, params="imagenet", backend="reference")
    args.update(kwargs)
    with pytest.raises(UserError, match=match):
        corrupt(**args)


def test_numpy_integer_severity_is_accepted():
    x = _images(batch=2)
    np.testing.assert_array_equal(corrupt(x, "contrast", np.int64(2), SEED), corrupt(x, "contrast", 2, SEED))


def test_native_needs_static_image_size():
    fn = tf.function(lambda x: corrupt(x, "contrast", 1, SEED),
                     input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])
    with pytest.raises(UserError, match="static image size"):
        fn.get_concrete_function()


def test_runtime_severity_is_checked_in_graph():
    fn = tf.function(lambda x, s: corrupt(x, "contrast", s, SEED))
    with pytest.raises(tf.errors.InvalidArgumentError, match="severity must be an integer from 1 to 5"):
        fn(_images(), tf.constant(7))


@pytest.mark.parametrize("params", PARAM_SETS)
@pytest.mark.parametrize("name", ALL_CORRUPTIONS)
def test_native_eager_map_and_function(name, params):
    x = _images()
    # Eager, one severity per batch (the static path), for every severity.
    static = [corrupt(x, name, s, SEED, params=params).numpy() for s in range(1, 6)]
    for out in static:
        assert out.dtype == np.uint8 and out.shape == tuple(x.shape)
    np.testing.assert_array_equal(static[2], corrupt(x, name, 3, SEED, params=params))  # deterministic
    if name in RANDOM:
        assert (static[2] != corrupt(x, name, 3, tf.constant([8, 11]), params=params).numpy()).any()
    else:
        assert (static[2] != x.numpy()).any()

    # tf.function with a run-time severity per image: image i at severity i + 1 must match the
    # static result for that severity (the draws do not depend on the severity).
    fn = tf.function(lambda images, severity: corrupt(images, name, severity, SEED, params=params))
    dynamic = fn(x, SEVERITIES).numpy()
    for i in range(5):
        diff = np.abs(dynamic[i].astype(int) - static[i][i])
        assert diff.max() <= 1 and diff.mean() < 0.01, (i + 1, diff.max(), diff.mean())

    # Inside Dataset.map after batch, with a per-batch seed.
    ds = tf.data.Dataset.from_tensor_slices(x).batch(5).map(
        lambda images: corrupt(images, name, 3, SEED, params=params))
    np.testing.assert_array_equal(next(iter(ds)).numpy(), static[2])


@pytest.mark.parametrize("name", ALL_CORRUPTIONS)
def test_float_input_gives_float_output(name):
    x = _images(batch=2)
    out = corrupt(tf.cast(x, tf.float32), name, 4, SEED)
    assert out.dtype == tf.float32 and out.shape == x.shape
    assert 0.0 <= float(tf.reduce_min(out)) and float(tf.reduce_max(out)) <= 255.0
    # Truncating the float result gives the uint8 result.
    as_uint8 = corrupt(x, name, 4, SEED).numpy().astype(int)
    assert np.abs(np.floor(out.numpy() + 1e-3).astype(int) - as_uint8).max() <= 1


@pytest.mark.parametrize("params", PARAM_SETS)
def test_non_square_and_small_images(params):
    x = _images(size=48, batch=2)[:, :20, :, :]  # 20 x 48
    for name in ALL_CORRUPTIONS:
        out = corrupt(x, name, tf.constant([2, 5]), SEED, params=params)
        assert out.shape == x.shape and out.dtype == tf.uint8, name


def test_first_use_inside_a_graph():
    # Cached tables (frost pictures, Poisson CDFs, Pillow plans) must not capture graph tensors.
    from ar2_tf.corruptions import digital, noise, weather

    for cached in (weather.frost_bank, weather._frost_constant, noise.poisson_tables, digital.pixelate_plan):
        cached.cache_clear()
    x = _images(batch=2)
    for name in ("frost", "shot_noise", "pixelate"):
        out = tf.function(lambda im: corrupt(im, name, 2, SEED))(x)
        np.testing.assert_array_equal(out, corrupt(x, name, 2, SEED))


def test_native_is_default_and_batch_size_can_be_unknown():
    x = _images()
    ds = tf.data.Dataset.from_tensor_slices(x).batch(3).map(lambda im: corrupt(im, "zoom_blur", 2, SEED))
    sizes = [b.shape[0] for b in ds]
    assert sizes == [3, 2]


@pytest.mark.parametrize("name", ALL_CORRUPTIONS)
def test_reference_backend(name):
    x = _images(batch=2)
    a = corrupt(x, name, 3, SEED, params="imagenet", backend="reference")
    b = corrupt(x, name, 3, SEED, params="imagenet", backend="reference")
    assert a.dtype == tf.uint8 and a.shape == x.shape
    np.testing.assert_array_equal(a, b)  # deterministic given the seed
    f = corrupt(tf.cast(x, tf.float32), name, tf.constant([1, 5]), SEED, params="imagenet", backend="reference")
    assert f.dtype == tf.float32 and f.shape == x.shape


def test_reference_in_dataset_map_and_tf_function():
    x = _images(batch=4)
    ds = tf.data.Dataset.from_tensor_slices(x).batch(2).map(
        lambda im: corrupt(im, "gaussian_noise", 2, SEED, params="imagenet", backend="reference"),
        num_parallel_calls=2)
    out = np.concatenate([b.numpy() for b in ds])
    assert out.shape == (4, 32, 32, 3)
    fn = tf.function(lambda im, s: corrupt(im, "contrast", s, SEED, params="imagenet", backend="reference"))
    np.testing.assert_array_equal(fn(x, tf.constant(4)), corrupt(x, "contrast", 4, SEED, params="imagenet",
                                                                  backend="reference"))
