"""Tests of the cheaper random draws (ar2_tf.corruptions.draws) and of the exact inversions built on them."""

import numpy as np
import tensorflow as tf

from ar2_tf.corruptions import draws, noise
from ar2_tf.corruptions.params import table

SEED = tf.constant([3, 5], tf.int64)


def test_halves_are_uniform_16_bit_levels_and_stateless():
    k = draws.halves(200_001, SEED).numpy()  # odd: the last word's second half is dropped
    assert k.dtype == np.uint16 and k.shape == (200_001,)
    np.testing.assert_array_equal(k, draws.halves(200_001, SEED).numpy())
    assert (k != draws.halves(200_001, tf.constant([3, 6], tf.int64)).numpy()).mean() > 0.99
    counts = np.bincount(k.astype(int) >> 12, minlength=16)  # 16 bins of 4096 levels
    assert np.abs(counts / k.size - 1 / 16).max() < 0.003
    low, high = k[0:-1:2].astype(float), k[1::2].astype(float)  # the two halves of each word
    assert abs(np.corrcoef(low, high)[0, 1]) < 0.01


def test_normal_has_the_moments_and_tails_of_a_standard_normal():
    z = draws.normal([1000, 1001], SEED).numpy()
    assert z.shape == (1000, 1001) and z.dtype == np.float32
    assert abs(z.mean()) < 0.005 and abs(z.std() - 1) < 0.005
    assert abs(np.mean(z ** 4) - 3) < 0.05                     # kurtosis
    assert abs(np.mean(np.abs(z) > 2) - 0.0455) < 0.002        # two-sided tail beyond 2 sigma
    assert np.abs(z).max() < 4.86                              # the largest Box-Muller radius


def test_shot_noise_is_the_exact_inverse_cdf_of_its_16_bit_uniforms():
    cdf, _ = noise.poisson_tables("imagenet")
    x = tf.constant(np.random.default_rng(0).integers(0, 256, (4, 40, 40, 3)), tf.float32) / 255
    levels = np.round(x.numpy() * 255).astype(int).reshape(-1)
    k = draws.halves(levels.size, SEED).numpy().astype(np.float32)
    u = (k + 0.5) / draws.LEVELS
    for severity in (1, 5):
        got = noise.shot_noise(x, tf.constant(severity), SEED, "imagenet").numpy().reshape(-1)
        rows = cdf[severity - 1][levels]
        expected = (rows <= u[:, None]).sum(axis=1)  # min{k : CDF(k) > u}
        photons = table("shot_noise", "imagenet")[severity - 1]
        np.testing.assert_array_equal(np.round(got * photons).astype(int), expected)
