"""Digital corruptions: brightness, contrast, saturate, elastic transform, pixelate, JPEG.

x is float32 [B,H,W,3] in [0, 1]; severity an int32 scalar or [B]; seed a stateless seed [2].
"""

import functools

import numpy as np
import tensorflow as tf

from ar2_tf.corruptions import filters, geometry
from ar2_tf.corruptions.filters import pick, static_severity
from ar2_tf.corruptions.params import column, table


def brightness(x, severity, seed, params):
    # skimage rgb2hsv -> V + c -> hsv2rgb, in closed form: with hue and saturation fixed,
    # RGB scales with V; black (V = 0, S = 0) becomes grey V'.
    value = tf.reduce_max(x, axis=-1, keepdims=True)
    new_value = tf.minimum(value + pick(table("brightness", params), severity), 1.0)
    return tf.where(value > 0, x * (new_value / tf.maximum(value, 1e-12)), new_value)


def contrast(x, severity, seed, params):
    means = tf.reduce_mean(x, axis=[1, 2], keepdims=True)
    return (x - means) * pick(table("contrast", params), severity) + means


def saturate(x, severity, seed, params):
    # skimage rgb2hsv -> S * a + b -> hsv2rgb, in closed form: with hue and V fixed, each
    # channel's distance below V scales with S. Greys have S = 0 and hue 0 (red), as in skimage.
    value = tf.reduce_max(x, axis=-1, keepdims=True)
    delta = value - tf.reduce_min(x, axis=-1, keepdims=True)
    sat = tf.where(delta > 0, delta / tf.maximum(value, 1e-12), 0.0)
    new_sat = tf.clip_by_value(sat * pick(column("saturate", params, 0), severity)
                               + pick(column("saturate", params, 1), severity), 0.0, 1.0)
    coloured = value - (value - x) * new_sat * value / tf.maximum(delta, 1e-12)
    grey = value * tf.constant([1.0, 0.0, 0.0]) + value * (1 - new_sat) * tf.constant([0.0, 1.0, 1.0])
    return tf.where(delta > 0, coloured, grey)


# ---------------------------------------------------------------- pixelate (Pillow resize)

def pil_box_ranges(n_in: int, n_out: int):
    """Pillow's BOX resampling (precompute_coeffs): output i averages input [start_i, end_i)."""
    scale = n_in / n_out
    support = 0.5 * max(scale, 1.0)
    starts, ends = [], []
    for i in range(n_out):
        centre = (i + 0.5) * scale
        lo, hi = max(int(centre - support + 0.5), 0), min(int(centre + support + 0.5), n_in)
        taps = [x for x in range(lo, hi) if -0.5 < (x - centre + 0.5) / max(scale, 1.0) <= 0.5]
        starts.append(taps[0])
        ends.append(taps[-1] + 1)
    return np.array(starts), np.array(ends)


def pil_nearest_ranges(n_in: int, n_out: int):
    """Pillow's NEAREST resize: output i copies input floor((i + 0.5) * n_in / n_out)."""
    index = np.floor((np.arange(n_out) + 0.5) * (n_in / n_out)).astype(int)
    return index, index + 1


@functools.lru_cache(maxsize=None)
def pixelate_plan(size: int, params: str):
    """Per severity, along an axis of `size` pixels: 0/1 matrices summing each output's input range
    (down: [n, size], up: [size, n], n padded to the largest low resolution) and Pillow's
    fixed-point weight round(2^22 / count) of each output. Returns 4 arrays, each with 5 rows."""
    up_ranges = pil_box_ranges if params == "cifar" else pil_nearest_ranges  # make_cifar_c: BOX both ways
    smalls = [int(size * c) for c in table("pixelate", params)]
    longest = max(smalls)
    down, down_k = np.zeros((5, longest, size), np.float32), np.zeros((5, longest), np.int32)
    up, up_k = np.zeros((5, size, longest), np.float32), np.zeros((5, size), np.int32)
    for s, small in enumerate(smalls):
        for matrix, weight, (starts, ends) in ((down[s], down_k[s], pil_box_ranges(size, small)),
                                                (up[s], up_k[s], up_ranges(small, size))):
            for i, (a, b) in enumerate(zip(starts, ends)):
                matrix[i, a:b] = 1.0
                weight[i] = int(0.5 + 2 ** 22 / (b - a))
    return down, down_k, up, up_k


def _pil_pass(x, matrix, weight, axis: int):
    """One Pillow 8-bit box pass on x [N,H,W] (integer pixel values) along axis 1 or 2: exact integer
    sums, then (sum * weight + 2^21) >> 22 as Pillow rounds."""
    if axis == 2:
        sums = tf.linalg.matmul(x, matrix, transpose_b=True)
        weight = weight[..., None, :]
    else:
        sums = tf.linalg.matmul(matrix, x)
        weight = weight[..., :, None]
    fixed = tf.cast(sums, tf.int32) * weight + (1 << 21)
    return tf.cast(tf.bitwise.right_shift(fixed, 22), tf.float32)


def pixelate(x, severity, seed, params):
    height, width, channels = x.shape[1], x.shape[2], x.shape[3]
    batch = tf.shape(x)[0]
    static = static_severity(severity)
    sev = filters.batch_severity(severity, batch) - 1

    def plan(size, k):
        array = pixelate_plan(size, params)[k]
        if static is not None:
            return tf.constant(array[static - 1])
        # One matrix per image, repeated per channel (images and channels share the matmul batch).
        return tf.repeat(tf.gather(tf.constant(array), sev), channels, axis=0)

    pixels = tf.reshape(tf.transpose(tf.round(x * 255), [0, 3, 1, 2]), [-1, height, width])
    # Pillow resizes the uint8 image horizontally, then vertically, rounding after each pass.
    small = _pil_pass(pixels, plan(width, 0), plan(width, 1), axis=2)
    small = _pil_pass(small, plan(height, 0), plan(height, 1), axis=1)
    big = _pil_pass(small, plan(width, 2), plan(width, 3), axis=2)
    big = _pil_pass(big, plan(height, 2), plan(height, 3), axis=1)
    return tf.transpose(tf.reshape(big, [batch, channels, height, width]), [0, 2, 3, 1]) / 255


# ---------------------------------------------------------------- JPEG

def jpeg_compression(x, severity, seed, params):
    # Pillow's defaults (4:2:0 chroma, standard tables) match tf.io.encode_jpeg's and its decoder is
    # libjpeg's ISLOW DCT ("INTEGER_ACCURATE"): outputs match byte for byte. libjpeg needs a
    # Python-int quality, so each image picks its quality through a switch when severities vary.
    qualities = table("jpeg_compression", params)
    pixels = tf.cast(tf.clip_by_value(tf.round(x * 255), 0, 255), tf.uint8)

    def roundtrip(image, quality):
        return tf.io.decode_jpeg(tf.io.encode_jpeg(image, quality=quality), channels=3, dct_method="INTEGER_ACCURATE")

    static = static_severity(severity)
    if static is not None:
        out = tf.map_fn(lambda im: roundtrip(im, qualities[static - 1]), pixels)
    else:
        sev = filters.batch_severity(severity, tf.shape(x)[0])
        out = tf.map_fn(
            lambda args: tf.switch_case(args[1] - 1, [functools.partial(roundtrip, args[0], q) for q in qualities]),
            (pixels, sev), fn_output_signature=tf.uint8)
    return tf.cast(tf.ensure_shape(out, x.shape), tf.float32) / 255


# ---------------------------------------------------------------- elastic transform

def _affine_sources(points_src, points_dst, height, width):
    """Per image, the source coordinates (rows, cols) [B,H,W] of cv2.warpAffine for the affine
    map taking points_src to points_dst ([B,3,2] as (x, y)); warpAffine samples src = M^-1(dst)."""
    ones = tf.ones_like(points_dst[..., :1])
    inverse = tf.linalg.solve(tf.concat([points_dst, ones], -1), points_src)  # [B,3,2]: [x y 1] @ inv
    yy, xx = tf.meshgrid(tf.range(height, dtype=tf.float32), tf.range(width, dtype=tf.float32), indexing="ij")
    m = inverse[:, :, None, None, :]                                           # [B,3,1,1,2]
    src = xx[..., None] * m[:, 0] + yy[..., None] * m[:, 1] + m[:, 2]          # [B,H,W,2] as (x, y)
    # OpenCV quantises warp coordinates to 1/32 pixel (INTER_BITS = 5).
    src = tf.round(src * 32) / 32
    return src[..., 1], src[..., 0]


def elastic_transform(x, severity, seed, params):
    height, width = x.shape[1], x.shape[2]
    batch = tf.shape(x)[0]
    seeds = tf.random.experimental.stateless_split(seed, 2)
    rows, cols = tf.meshgrid(tf.range(height, dtype=tf.float32), tf.range(width, dtype=tf.float32), indexing="ij")
    if params == "cifar":
        # make_cifar_c.py: a random affine warp (reflect101 border), then a smooth random displacement.
        size = min(height, width)
        alphas, sigmas, jitters = (tuple(size * v for v in column("elastic_transform", params, k))
                                   for k in range(3))
        centre = np.float32([height // 2, width // 2])
        square = size // 3
        src = np.float32([centre + square, [centre[0] + square, centre[1] - square], centre - square])
        jitter = pick(jitters, severity, ndim=3)
        dst = src[None] + tf.random.stateless_uniform([batch, 3, 2], seeds[0], -1.0, 1.0) * jitter
        src_rows, src_cols = _affine_sources(tf.broadcast_to(src, tf.shape(dst)), dst, height, width)
        x = geometry.bilinear(x, src_rows, src_cols, "reflect101")
        field = tf.random.stateless_uniform([batch, height, width, 2], seeds[1], -1.0, 1.0)
        row_filters = [filters.filter_matrix(height, filters.gaussian_taps(s, 3.0), "reflect") for s in sigmas]
        col_filters = [filters.filter_matrix(width, filters.gaussian_taps(s, 3.0), "reflect") for s in sigmas]
        field = filters.separable(field, filters.pick_array(row_filters, severity),
                                  filters.pick_array(col_filters, severity))
        field *= pick(alphas, severity)
    else:
        # imagecorruptions: no affine; uniform(+-0.5% of H) displacements smoothed by a Gaussian
        # of 1% of each side (truncate 3, scipy 'reflect'), scaled by alpha.
        limit = height * 0.005
        field = tf.random.stateless_uniform([batch, height, width, 2], seeds[1], -limit, limit)
        row_filter = filters.filter_matrix(height, filters.gaussian_taps(0.01 * height, 3.0), "reflect")
        col_filter = filters.filter_matrix(width, filters.gaussian_taps(0.01 * width, 3.0), "reflect")
        field = filters.separable(field, tf.constant(row_filter, tf.float32), tf.constant(col_filter, tf.float32))
        field *= pick(table("elastic_transform", params), severity)
    # field[..., 0] is dx (columns), field[..., 1] is dy (rows); scipy map_coordinates, order 1, 'reflect'.
    return geometry.bilinear(x, rows + field[..., 1], cols + field[..., 0], "reflect")
