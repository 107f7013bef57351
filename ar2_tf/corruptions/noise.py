"""Noise corruptions: gaussian, shot (Poisson), impulse (salt and pepper) and speckle.

Every function maps x, float32 [B,H,W,3] in [0, 1], to the corrupted batch in
the same scale (clipping and quantisation happen once, in `native.corrupt_native`).
Noise is drawn independently per value (per channel), as in the reference.
"""

import functools

import numpy as np
import tensorflow as tf

from ar2_tf.corruptions import filters
from ar2_tf.corruptions.filters import pick
from ar2_tf.corruptions.params import table

_GUIDE = 1024  # guide-table cells per pixel level for Poisson inversion


def gaussian_noise(x, severity, seed, params):
    std = pick(table("gaussian_noise", params), severity)
    return x + std * tf.random.stateless_normal(tf.shape(x), seed)


@functools.lru_cache(maxsize=None)
def poisson_tables(params: str):
    """For each severity and pixel level v (0..255): the CDF of Poisson(v / 255 * c) over k = 0..K-1
    (last entry 1) and a guide table: the smallest k whose CDF reaches j / _GUIDE.
    Returns (cdf [5, 256, K] float32, guide [5, 256, _GUIDE] int32)."""
    photons = table("shot_noise", params)
    size = int(max(photons) + 12 * np.sqrt(max(photons)) + 20)
    k = np.arange(size)
    log_factorial = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, size)))])
    cdfs, guides = [], []
    for c in photons:
        lam = np.arange(256)[:, None] / 255.0 * c
        log_pmf = k * np.log(np.maximum(lam, 1e-300)) - lam - log_factorial
        pmf = np.where(lam > 0, np.exp(log_pmf), (k == 0).astype(float))  # Poisson(0) is always 0
        cdf = np.minimum(np.cumsum(pmf, axis=1).astype(np.float32), 1.0)
        cdf[:, -1] = 1.0
        guide = np.stack([np.searchsorted(row, np.arange(_GUIDE) / _GUIDE, side="left") for row in cdf])
        cdfs.append(cdf)
        guides.append(guide)
    return np.stack(cdfs), np.stack(guides).astype(np.int32)


def shot_noise(x, severity, seed, params):
    # Exact Poisson(x * c) by inversion: u ~ U[0, 1), k = min{k : CDF(k) > u}, started from a guide
    # table and stepped up until it holds (almost always 0-2 steps). The rate takes 256 values (one
    # per pixel level; float inputs are rounded to whole levels, as the reference takes uint8), so
    # the CDFs are tabulated once. tf.random.stateless_poisson is exact too but ~10x slower here.
    cdf, guide = poisson_tables(params)
    size = cdf.shape[-1]
    level = tf.cast(tf.clip_by_value(tf.round(x * 255), 0, 255), tf.int32)
    sev = tf.reshape(filters.batch_severity(severity, tf.shape(x)[0]) - 1, [-1, 1, 1, 1])
    row = tf.reshape(sev * 256 + level, [-1])
    u = tf.reshape(tf.random.stateless_uniform(tf.shape(x), seed), [-1])
    flat_cdf = tf.constant(cdf.reshape(-1))
    count = tf.gather(tf.constant(guide.reshape(-1)), row * _GUIDE + tf.cast(u * _GUIDE, tf.int32))
    # One step for all values, then more steps only for the few that still need them.
    below = tf.gather(flat_cdf, row * size + count) <= u
    todo = tf.where(below)[:, 0]
    sub_u, sub_row = tf.gather(u, todo), tf.gather(row, todo)

    def step(sub_count, _):
        more = tf.gather(flat_cdf, sub_row * size + sub_count) <= sub_u
        return sub_count + tf.cast(more, tf.int32), tf.reduce_any(more)

    sub_count, _ = tf.while_loop(lambda _, more: more, step, (tf.gather(count, todo) + 1, tf.constant(True)))
    count = tf.tensor_scatter_nd_update(count, todo[:, None], sub_count)
    count = tf.reshape(count, tf.shape(x))
    photons = pick(table("shot_noise", params), severity)
    return tf.cast(count, tf.float32) / photons


def impulse_noise(x, severity, seed, params):
    # skimage.util.random_noise(mode="s&p", salt_vs_pepper=0.5): a value is replaced with
    # probability `amount`, by 1 or 0 with equal odds. One uniform draw decides both.
    amount = pick(table("impulse_noise", params), severity)
    u = tf.random.stateless_uniform(tf.shape(x), seed)
    return tf.where(u < amount / 2, 1.0, tf.where(u < amount, 0.0, x))


def speckle_noise(x, severity, seed, params):
    std = pick(table("speckle_noise", params), severity)
    return x + x * std * tf.random.stateless_normal(tf.shape(x), seed)
