"""Cheaper stateless random draws: two 16-bit values from each 32-bit Philox word.

On a CPU, generating the Philox words is most of the cost of a full-resolution stateless draw
(one word per value costs as much as five to ten elementwise passes over the batch), and
`stateless_normal` adds a Box-Muller transform per value. The noise corruptions need less:
a uniform on a grid of 2^16 levels is 256 times finer than the 8-bit pixels they produce. So
each word is split into two 16-bit halves: half the words, and Box-Muller pairs from one word.
The draws are still stateless: the same seed gives the same values on every call.

The table lookups and gathers that follow a draw run compiled (`filters.compiled`); the Philox
words themselves are drawn outside XLA, whose CPU random number generators are ~30x slower
than TF's kernels.
"""

import math

import tensorflow as tf

LEVELS = 1 << 16  # values of one 16-bit half


def halves(count, seed):
    """`count` (a scalar, may be a tensor) independent uniform integers in [0, 2^16) as uint16 [count],
    from ceil(count / 2) Philox words (a free bitcast splits each word into its two halves)."""
    words = tf.random.stateless_uniform([(count + 1) // 2], seed, minval=None, maxval=None, dtype=tf.uint32)
    return tf.reshape(tf.bitcast(words, tf.uint16), [-1])[:count]


def uniform_levels(shape, seed):
    """Uniform integers in [0, 2^16) of `shape` as float32 (exact): u = (k + 0.5) / 2^16 is then a
    uniform on the grid of 2^16 cell centres, within 2^-17 of a continuous uniform."""
    return tf.reshape(tf.cast(halves(tf.reduce_prod(shape), seed), tf.float32), shape)


def normal(shape, seed):
    """Standard normal values of `shape` by Box-Muller on the two halves of each word:
    r = sqrt(-2 ln u1), (r cos 2 pi u2, r sin 2 pi u2) with u1 = (k1 + 0.5) / 2^16, u2 = k2 / 2^16.

    Exact normal pairs for those uniforms: mean, variance and shape agree with a continuous
    normal except beyond |z| = 4.85 (the largest r; a tail of probability 1.2e-6, which the
    noise corruptions clip at the pixel range anyway).
    """
    count = tf.reduce_prod(shape)
    pairs = (count + 1) // 2
    return tf.reshape(_box_muller(tf.reshape(halves(2 * pairs, seed), [pairs, 2]))[:count], shape)


def _box_muller(k):
    """[P, 2] 16-bit integers -> [2P] normals (all cosines, then all sines). Not compiled: XLA's
    CPU log, cos and sin take twice as long as TF's kernels for the whole transform."""
    k = tf.cast(k, tf.float32)
    radius = tf.sqrt(-2.0 * tf.math.log((k[:, 0] + 0.5) * (1.0 / LEVELS)))
    angle = k[:, 1] * (2 * math.pi / LEVELS)
    return tf.concat([radius * tf.cos(angle), radius * tf.sin(angle)], 0)
