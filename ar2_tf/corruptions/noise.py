"""Noise corruptions: gaussian, shot (Poisson), impulse (salt and pepper) and speckle.

Every function maps x, float32 [B,H,W,3] in [0, 1], to the corrupted batch in
the same scale (clipping and quantisation happen once, in `native.corrupt_native`).
Noise is drawn independently per value (per channel), as in the reference.
"""

import tensorflow as tf

from ar2_tf.corruptions.filters import pick
from ar2_tf.corruptions.params import table


def gaussian_noise(x, severity, seed, params):
    std = pick(table("gaussian_noise", params), severity)
    return x + std * tf.random.stateless_normal(tf.shape(x), seed)


def shot_noise(x, severity, seed, params):
    photons = pick(table("shot_noise", params), severity)
    return tf.random.stateless_poisson(tf.shape(x), seed, x * photons, dtype=tf.float32) / photons


def impulse_noise(x, severity, seed, params):
    # skimage.util.random_noise(mode="s&p", salt_vs_pepper=0.5): a value is replaced with
    # probability `amount`, by 1 or 0 with equal odds. One uniform draw decides both.
    amount = pick(table("impulse_noise", params), severity)
    u = tf.random.stateless_uniform(tf.shape(x), seed)
    return tf.where(u < amount / 2, 1.0, tf.where(u < amount, 0.0, x))


def speckle_noise(x, severity, seed, params):
    std = pick(table("speckle_noise", params), severity)
    return x + x * std * tf.random.stateless_normal(tf.shape(x), seed)
