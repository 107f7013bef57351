"""Noise corruptions: gaussian, shot (Poisson), impulse (salt and pepper) and speckle.

Every function maps x, float32 [B,H,W,3] in [0, 1], to the corrupted batch in
the same scale (clipping and quantisation happen once, in `native.corrupt_native`).
Noise is drawn independently per value (per channel), as in the reference.
"""

import functools

import numpy as np
import tensorflow as tf

from ar2_tf.corruptions import draws, filters
from ar2_tf.corruptions.filters import pick, static_severity
from ar2_tf.corruptions.params import table

_CELL_BITS = 4  # a 16-bit draw k falls in cell k >> 4: 4096 cells per pixel level


def gaussian_noise(x, severity, seed, params):
    std = pick(table("gaussian_noise", params), severity)
    return x + std * draws.normal(tf.shape(x), seed)


@functools.lru_cache(maxsize=None)
def poisson_tables(params: str):
    """For each severity and pixel level v (0..255): the CDF of Poisson(v / 255 * c) over k = 0..K-1
    (float32, last entry 1), and the inverse CDF of the 16-bit uniforms u = (j + 0.5) / 2^16 per
    cell of 2^_CELL_BITS consecutive j: the count min{k : CDF(k) > u} when it is the same for the
    whole cell, else -1 - (the count at the cell's first j) (a CDF step inside the cell; under 3%
    of the cells). Returns (cdf [5, 256, K] float32, cells [5, 256, 2^16 >> _CELL_BITS] int16)."""
    photons = table("shot_noise", params)
    size = int(max(photons) + 12 * np.sqrt(max(photons)) + 20)
    k = np.arange(size)
    log_factorial = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, size)))])
    first = np.arange(0, draws.LEVELS, 1 << _CELL_BITS)
    u_first = ((first + 0.5) / draws.LEVELS).astype(np.float32)  # exact in float32, as at run time
    u_last = ((first + (1 << _CELL_BITS) - 0.5) / draws.LEVELS).astype(np.float32)
    cdfs, cells = [], []
    for c in photons:
        lam = np.arange(256)[:, None] / 255.0 * c
        log_pmf = k * np.log(np.maximum(lam, 1e-300)) - lam - log_factorial
        pmf = np.where(lam > 0, np.exp(log_pmf), (k == 0).astype(float))  # Poisson(0) is always 0
        cdf = np.minimum(np.cumsum(pmf, axis=1).astype(np.float32), 1.0)
        cdf[:, -1] = 1.0
        lo = np.stack([np.searchsorted(row, u_first, side="right") for row in cdf])
        hi = np.stack([np.searchsorted(row, u_last, side="right") for row in cdf])
        cdfs.append(cdf)
        cells.append(np.where(lo == hi, lo, -1 - lo))
    return np.stack(cdfs), np.stack(cells).astype(np.int16)


@functools.lru_cache(maxsize=None)
def _poisson_constants(params: str, severity):
    """poisson_tables as eager tensors (one severity's rows, or all when severity is None),
    captured by every graph instead of copied into it: (flat cdf, flat cells)."""
    cdf, cells = poisson_tables(params)
    if severity is not None:
        cdf, cells = cdf[severity - 1:severity], cells[severity - 1:severity]
    with tf.init_scope():
        return tf.constant(cdf.reshape(-1)), tf.constant(cells.reshape(-1))


def shot_noise(x, severity, seed, params):
    # Exact Poisson(x * c) for a 16-bit uniform u (draws.halves) by inversion: k = min{k : CDF(k) > u}.
    # The rate takes 256 values (one per pixel level; float inputs are rounded to whole levels, as
    # the reference takes uint8), so the inverse CDF is tabulated per level and cell of u: one
    # lookup decides over 97% of the values; the rest step up their CDF from the cell's count
    # (almost always 1-2 steps). tf.random.stateless_poisson is exact too but ~10x slower here.
    cdf, _ = poisson_tables(params)
    size = cdf.shape[-1]
    static = static_severity(severity)
    flat_cdf, flat_cells = _poisson_constants(params, static)
    first_row = 0 if static is not None else tf.reshape(
        filters.batch_severity(severity, tf.shape(x)[0]) - 1, [-1, 1, 1, 1]) * 256
    k = draws.halves(tf.size(x), seed)
    row, count = _poisson_lookup(x, first_row, k, flat_cells)
    todo = tf.where(count < 0)[:, 0]
    sub_u = (tf.cast(tf.gather(k, todo), tf.float32) + 0.5) * (1.0 / draws.LEVELS)
    sub_row = tf.gather(row, todo)

    def step(sub_count, _):
        more = tf.gather(flat_cdf, sub_row * size + sub_count) <= sub_u
        return sub_count + tf.cast(more, tf.int32), tf.reduce_any(more)

    sub_count, _ = tf.while_loop(lambda _, more: more, step, (-1 - tf.gather(count, todo), tf.constant(True)))
    count = tf.tensor_scatter_nd_update(count, todo[:, None], sub_count)
    photons = pick(table("shot_noise", params), severity)
    return tf.cast(tf.reshape(count, tf.shape(x)), tf.float32) / photons


@filters.compiled
def _poisson_lookup(x, first_row, k, cells):
    """The table rows (first_row + pixel level) and cell entries of poisson_tables for x and the
    16-bit draws k, flattened: (row [N], entry [N]) int32."""
    row = tf.reshape(tf.cast(tf.clip_by_value(tf.round(x * 255), 0, 255), tf.int32) + first_row, [-1])
    cell = tf.bitwise.right_shift(tf.cast(k, tf.int32), _CELL_BITS)
    return row, tf.cast(tf.gather(cells, row * (draws.LEVELS >> _CELL_BITS) + cell), tf.int32)


def impulse_noise(x, severity, seed, params):
    # skimage.util.random_noise(mode="s&p", salt_vs_pepper=0.5): a value is replaced with
    # probability `amount`, by 1 or 0 with equal odds. One uniform draw decides both.
    # The draw is a 16-bit level k (draws.uniform_levels), replaced when k < amount * 2^16: the
    # probabilities differ from `amount` by under 1e-5. Products instead of tf.where: a select
    # that broadcasts a scalar runs several times slower on CPUs.
    amount = pick(table("impulse_noise", params), severity) * draws.LEVELS
    k = draws.uniform_levels(tf.shape(x), seed)
    salt = tf.cast(k < tf.round(amount / 2), tf.float32)
    keep = tf.cast(k >= tf.round(amount), tf.float32)
    return x * keep + salt


def speckle_noise(x, severity, seed, params):
    std = pick(table("speckle_noise", params), severity)
    return x + x * std * draws.normal(tf.shape(x), seed)
