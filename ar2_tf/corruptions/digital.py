"""Digital corruptions: brightness, contrast, saturate, elastic transform, pixelate, JPEG.

x is float32 [B,H,W,3] in [0, 1]; severity an int32 scalar or [B]; seed a stateless seed [2].
"""

import functools

import numpy as np
import tensorflow as tf

from ar2_tf.corruptions import draws, filters, geometry
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
    """Per severity, along an axis of `size` pixels: Pillow's BOX shrink to the low resolution n as
    the first input and the length of each output's input range, and the enlargement back (BOX for
    make_cifar_c, NEAREST for imagecorruptions) as the input each output copies (the enlargement's
    ranges are all one pixel long). Returns 5 tuples (starts [n], lengths [n], sources [size])."""
    up_ranges = pil_box_ranges if params == "cifar" else pil_nearest_ranges  # make_cifar_c: BOX both ways
    plans = []
    for c in table("pixelate", params):
        starts, ends = pil_box_ranges(size, int(size * c))
        sources, up_ends = up_ranges(len(starts), size)
        assert (up_ends - sources == 1).all()
        for length in set(ends - starts):
            # Pillow's 8-bit rounding, (sum * round(2^22 / L) + 2^21) >> 22, is floor(sum / L + 0.5) for
            # every sum of L levels (a float32 mean can be rounded: L <= 5 and there are no ties).
            sums = np.arange(255 * length + 1)
            assert ((sums * int(0.5 + 2 ** 22 / length) + 2 ** 21) >> 22 == (2 * sums + length) // (2 * length)).all()
        plans.append((starts, ends - starts, sources))
    return tuple(plans)


def _pil_shrink(x, starts, lengths, axis: int):
    """Pillow's 8-bit BOX shrink along axis 1 or 2 of x [B,H,W,C] (whole levels): each output is
    the rounded mean of its input range. Outputs are computed in groups of equal range length
    (one gather, one average pool each), so they come out permuted: returns the float32 result
    and, for each output, its position in the result."""
    parts, order = [], []
    for length in sorted(set(lengths.tolist())):
        outputs = np.flatnonzero(lengths == length)
        inputs = (starts[outputs, None] + np.arange(length)).ravel()
        part = x if np.array_equal(inputs, np.arange(x.shape[axis])) else tf.gather(x, inputs, axis=axis)
        part = tf.cast(part, tf.float32)
        if length > 1:
            window = [1, length] if axis == 2 else [length, 1]
            part = tf.floor(tf.nn.avg_pool2d(part, window, window, "VALID") + 0.5)
        parts.append(part)
        order.append(outputs)
    position = np.argsort(np.concatenate(order))
    return (parts[0] if len(parts) == 1 else tf.concat(parts, axis)), position


def pixelate(pixels, severity, seed, params):
    """Pillow BOX shrink, then BOX (cifar) or NEAREST (imagenet) enlargement, on uint8 pixels -> uint8."""
    static = static_severity(severity)
    if static is None:  # no random draws: each severity's images go through its own plan
        return filters.by_severity(lambda part, s: pixelate(part, s, seed, params), pixels, severity)
    return _pixelate(pixels, static, params)


@filters.compiled
def _pixelate(pixels, severity: int, params: str):
    """pixelate for one static severity, compiled: XLA fuses the casts, roundings and gathers of
    the passes (the enlargement's gathers copy single pixels, which TF's gather does slowly)."""
    (w_starts, w_lengths, w_sources), (h_starts, h_lengths, h_sources) = (
        pixelate_plan(size, params)[severity - 1] for size in (pixels.shape[2], pixels.shape[1]))
    # Pillow resizes horizontally, then vertically, rounding to 8 bits after each pass.
    small, w_position = _pil_shrink(pixels, w_starts, w_lengths, axis=2)
    small, h_position = _pil_shrink(small, h_starts, h_lengths, axis=1)
    small = tf.cast(small, tf.uint8)
    return tf.gather(tf.gather(small, w_position[w_sources], axis=2), h_position[h_sources], axis=1)


# ---------------------------------------------------------------- JPEG

def jpeg_compression(pixels, severity, seed, params):
    """Encodes and decodes uint8 pixels with libjpeg at each severity's quality -> uint8."""
    # Pillow's defaults (4:2:0 chroma, standard tables) match tf.io.encode_jpeg's and its decoder is
    # libjpeg's ISLOW DCT ("INTEGER_ACCURATE"): outputs match byte for byte. libjpeg needs a
    # Python-int quality, so each image picks its quality through a switch when severities vary.
    qualities = table("jpeg_compression", params)

    def roundtrip(image, quality):
        return tf.io.decode_jpeg(tf.io.encode_jpeg(image, quality=quality), channels=3, dct_method="INTEGER_ACCURATE")

    static = static_severity(severity)
    if static is not None:
        out = tf.map_fn(lambda im: roundtrip(im, qualities[static - 1]), pixels)
    else:
        sev = filters.batch_severity(severity, tf.shape(pixels)[0])
        out = tf.map_fn(
            lambda args: tf.switch_case(args[1] - 1, [functools.partial(roundtrip, args[0], q) for q in qualities]),
            (pixels, sev), fn_output_signature=tf.uint8)
    return tf.ensure_shape(out, pixels.shape)


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
        # The uniforms are 16-bit levels (draws.uniform_levels), on a grid 1/32768 of the range.
        limit = height * 0.005
        levels = draws.uniform_levels([batch, height, width, 2], seeds[1])
        field = (levels + 0.5) * (2 * limit / draws.LEVELS) - limit
        row_filter = filters.filter_matrix(height, filters.gaussian_taps(0.01 * height, 3.0), "reflect")
        col_filter = filters.filter_matrix(width, filters.gaussian_taps(0.01 * width, 3.0), "reflect")
        field = filters.separable(field, tf.constant(row_filter, tf.float32), tf.constant(col_filter, tf.float32))
        field *= pick(table("elastic_transform", params), severity)
    # field[..., 0] is dx (columns), field[..., 1] is dy (rows); scipy map_coordinates, order 1, 'reflect'.
    return geometry.bilinear(x, rows + field[..., 1], cols + field[..., 0], "reflect")
