"""Spatter: water drops (severities 1-3) or mud (4-5), after the reference's OpenCV pipeline.

Water: a thresholded smooth random "liquid" layer, its Canny edges, the distance to them
(truncated at 20), box blur, histogram equalisation, an emboss filter and another box blur
give a shading that tints the image pale turquoise. Mud: the thresholded layer, blurred and
thresholded again, paints brown blotches. Each OpenCV step has a TF counterpart below.
"""

import math

import numpy as np
import tensorflow as tf

from ar2_tf.corruptions import filters
from ar2_tf.corruptions.filters import pick, static_severity
from ar2_tf.corruptions.params import column

# Colours as NumPy constants: a module-level tf.constant would belong to whichever graph first imported us.
WATER = np.array([175, 238, 238], np.float32) / 255  # the reference's pale turquoise, in RGB order
MUD = np.array([63, 42, 20], np.float32) / 255


def _shift(x, dy: int, dx: int, fill):
    """x [B,H,W] shifted so out[y, x] = x[y + dy, x + dx], `fill` outside."""
    padded = tf.pad(x, [[0, 0], [2, 2], [2, 2]], constant_values=fill)
    height, width = x.shape[1], x.shape[2]
    return padded[:, 2 + dy:2 + dy + height, 2 + dx:2 + dx + width]


def _correlate3(x, kernel, mode: str):
    """3x3 correlation of x [B,H,W] with border `mode` ('nearest' or 'reflect101')."""
    padded = filters.pad(x[..., None], 1, 1, 1, 1, mode)
    return tf.nn.conv2d(padded, tf.constant(np.asarray(kernel, np.float32)[:, :, None, None]), 1, "VALID")[..., 0]


def canny(image, low: float = 50.0, high: float = 150.0):
    """cv2.Canny(image, low, high) for uint8-valued image [B,H,W]: Sobel (replicate border), L1
    magnitude, non-maximum suppression in 4 directions, hysteresis (8-connected). Returns bool."""
    gx = _correlate3(image, [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], "nearest")
    gy = _correlate3(image, [[-1, -2, -1], [0, 0, 0], [1, 2, 1]], "nearest")
    mag = tf.abs(gx) + tf.abs(gy)
    ax, ay = tf.abs(gx), tf.abs(gy)
    tan22 = math.tan(math.radians(22.5))
    horizontal = ay < ax * tan22
    vertical = ay > ax / tan22
    sign = tf.where(gx * gy < 0, -1, 1)
    m = lambda dy, dx: _shift(mag, dy, dx, 0.0)  # noqa: E731
    keep_h = (mag > m(0, -1)) & (mag >= m(0, 1))
    keep_v = (mag > m(-1, 0)) & (mag >= m(1, 0))
    keep_d = tf.where(sign < 0, (mag > m(-1, 1)) & (mag > m(1, -1)), (mag > m(-1, -1)) & (mag > m(1, 1)))
    peak = tf.where(horizontal, keep_h, tf.where(vertical, keep_v, keep_d)) & (mag > low)
    strong = peak & (mag > high)

    def grow(edges, _):
        near = tf.nn.max_pool2d(tf.cast(edges, tf.float32)[..., None], 3, 1, "SAME")[..., 0] > 0
        grown = edges | (near & peak)
        return grown, tf.reduce_any(tf.not_equal(grown, edges))

    return tf.while_loop(lambda _, changed: changed, grow, (strong, tf.constant(True)))[0]


def distance_to_edges(edges, limit: float = 20.0):
    """cv2.distanceTransform(DIST_L2, mask 5) of the non-edge pixels, truncated at `limit`.

    The 5x5 chamfer distance (steps 1, 1.4 and 2.1969 for knight moves) is the fixed point of
    relaxing every pixel against its 16 mask neighbours; we relax until nothing changes.
    """
    knights = [(dy * a, dx * b) for dy in (-1, 1) for dx in (-1, 1) for a, b in ((1, 2), (2, 1))]

    def min_pool(d, size):
        return -tf.nn.max_pool2d(-d[..., None], size, 1, "SAME")[..., 0]

    def relax(dist, _):
        near = tf.minimum(min_pool(dist, [1, 3]), min_pool(dist, [3, 1])) + 1.0   # 4-neighbours
        new = tf.minimum(dist, tf.minimum(near, min_pool(dist, [3, 3]) + 1.4))     # diagonals
        for dy, dx in knights:
            new = tf.minimum(new, _shift(dist, dy, dx, limit) + 2.1969)
        return new, tf.reduce_any(new < dist)

    start = tf.where(edges, 0.0, limit)
    return tf.while_loop(lambda _, changed: changed, relax, (start, tf.constant(True)),
                         maximum_iterations=int(limit))[0]


def equalize_hist(image, levels: int):
    """cv2.equalizeHist for integer-valued image [B,H,W] with values in [0, levels)."""
    flat = tf.cast(tf.reshape(image, [tf.shape(image)[0], -1]), tf.int32)
    hist = tf.reduce_sum(tf.one_hot(flat, levels, dtype=tf.float32), axis=1)          # [B, levels]
    total = tf.cast(tf.shape(flat)[1], tf.float32)
    first = tf.argmax(tf.cast(hist > 0, tf.int32), axis=1)
    first_count = tf.gather(hist, first, batch_dims=1)[:, None]
    cum = tf.cumsum(hist, axis=1) - first_count
    scale = 255.0 / tf.maximum(total - first_count, 1.0)
    lut = tf.clip_by_value(tf.round(cum * scale), 0, 255)
    lut = tf.where(first_count == total, tf.cast(first, tf.float32)[:, None], lut)  # a flat image
    return tf.reshape(tf.gather(lut, flat, batch_dims=1), tf.shape(image))


def _water(x, liquid, intensity):
    box = np.full((3, 3), 1 / 9)
    level = tf.clip_by_value(tf.floor(liquid * 255), 0, 255)                          # uint8 layer
    dist = distance_to_edges(canny(level))
    dist = tf.floor(_correlate3(dist, box, "reflect101") + 1e-4)                       # blur -> uint8
    dist = equalize_hist(dist, 21)
    dist = tf.clip_by_value(_correlate3(dist, [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], "reflect101"), 0, 255)
    dist = _correlate3(dist, box, "reflect101")
    m = level * dist
    m = m / tf.maximum(tf.reduce_max(m, axis=[1, 2], keepdims=True), 1e-12)
    return x + (m * intensity)[..., None] * WATER


def _mud(x, liquid, threshold, mask_sigmas, severity):
    mask = tf.cast(liquid > threshold, tf.float32)[..., None]
    mask = filters.gaussian_blur(mask, mask_sigmas, severity, "nearest")
    mask = tf.where(mask < 0.8, 0.0, mask)
    return x * (1 - mask) + MUD * mask


def spatter(x, severity, seed, params):
    height, width = x.shape[1], x.shape[2]
    batch = tf.shape(x)[0]

    def p(k, ndim=3):
        return pick(column("spatter", params, k), severity, ndim)

    liquid = p(0, 4) + p(1, 4) * tf.random.stateless_normal([batch, height, width, 1], seed)
    liquid = filters.gaussian_blur(liquid, column("spatter", params, 2), severity, "nearest")[..., 0]
    liquid = tf.where(liquid < p(3), 0.0, liquid)
    kinds = column("spatter", params, 5)
    static = static_severity(severity)
    if static is not None:
        if kinds[static - 1] == 0:
            return _water(x, liquid, p(4))
        return _mud(x, liquid, p(3), column("spatter", params, 4), severity)
    mud = tf.gather(tf.constant(kinds, tf.float32), filters.batch_severity(severity, batch) - 1)
    return tf.where(mud[:, None, None, None] > 0,
                    _mud(x, liquid, p(3), column("spatter", params, 4), severity),
                    _water(x, liquid, p(4)))
