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
    """Per severity: (down starts, down ends, up starts, up ends) along an axis of `size` pixels,
    padded to a common length (padding repeats the last range)."""
    up = pil_box_ranges if params == "cifar" else pil_nearest_ranges  # make_cifar_c: BOX both ways
    plans = []
    for c in table("pixelate", params):
        small = int(size * c)
        plans.append(pil_box_ranges(size, small) + up(small, size))
    longest = max(len(p[0]) for p in plans)
    pad = [tuple(np.pad(a, (0, longest - len(a)), mode="edge") for a in p[:2]) + p[2:] for p in plans]
    return [np.stack([p[k] for p in pad]) for k in range(4)]  # each [5, n]


def _range_mean(x, starts, ends, axis: int):
    """Pillow 8-bit box resampling along `axis` of x (integer pixel values 0..255):
    output = (count_sum * round(2^22 / n) + 2^21) >> 22, Pillow's fixed-point rounding."""
    zeros = tf.zeros_like(tf.gather(x, [0], axis=axis))
    csum = tf.concat([zeros, tf.cumsum(x, axis=axis)], axis=axis)
    total = tf.gather(csum, ends, axis=axis, batch_dims=1) - tf.gather(csum, starts, axis=axis, batch_dims=1)
    n = tf.cast(ends - starts, tf.float64)
    weight = tf.floor(0.5 + 2.0 ** 22 / n)
    shape = [-1] + [1] * (x.shape.rank - 1)
    shape[axis] = tf.shape(n)[1]
    value = (tf.cast(total, tf.float64) * tf.reshape(weight, shape) + 2.0 ** 21) / 2.0 ** 22
    return tf.cast(tf.clip_by_value(tf.floor(value), 0, 255), tf.float32)


def pixelate(x, severity, seed, params):
    height, width = x.shape[1], x.shape[2]
    batch = tf.shape(x)[0]
    sev = filters.batch_severity(severity, batch) - 1
    pixels = tf.round(x * 255)  # the reference resizes the uint8 image with Pillow
    rows, cols = pixelate_plan(height, params), pixelate_plan(width, params)

    def ranges(plan, k):  # padded ranges serve every severity: extra outputs are never read
        return tf.gather(tf.constant(plan[k], tf.int32), sev)

    # Pillow resamples horizontally, then vertically, rounding to uint8 after each pass.
    small = _range_mean(pixels, ranges(cols, 0), ranges(cols, 1), axis=2)
    small = _range_mean(small, ranges(rows, 0), ranges(rows, 1), axis=1)
    big = _range_mean(small, ranges(cols, 2), ranges(cols, 3), axis=2)
    big = _range_mean(big, ranges(rows, 2), ranges(rows, 3), axis=1)
    return big / 255


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
