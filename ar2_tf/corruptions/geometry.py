"""Resampling helpers: bilinear sampling with border rules, clipped zoom, motion-blur taps.

All take batches [B,H,W,C] and per-image parameters, so one call serves a
batch whose images have different random draws or severities.
"""

import math

import numpy as np
import tensorflow as tf

from ar2_tf.corruptions import filters


def wrap_index(index, n: int, mode: str):
    """Integer tensor indices mapped into [0, n) (see filters.boundary_index for the modes)."""
    if mode == "nearest" or n == 1:
        return tf.clip_by_value(index, 0, n - 1)
    if mode == "reflect":
        index = tf.math.floormod(index, 2 * n)
        return tf.where(index >= n, 2 * n - 1 - index, index)
    if mode == "reflect101":
        index = tf.math.floormod(index, 2 * n - 2)
        return tf.where(index >= n, 2 * n - 2 - index, index)
    raise ValueError(f"unknown boundary mode {mode!r}")


@filters.compiled
def bilinear(x, rows, cols, mode: str):
    """Samples x [B,H,W,C] at float coordinates rows, cols [B,h,w] (pixel units) -> [B,h,w,C].
    Compiled: XLA fuses the index arithmetic and runs the four gathers about 5x faster."""
    height, width, channels = x.shape[1], x.shape[2], x.shape[3]
    flat = tf.reshape(x, [tf.shape(x)[0], height * width, channels])
    r0, c0 = tf.floor(rows), tf.floor(cols)
    fr, fc = (rows - r0)[..., None], (cols - c0)[..., None]
    r0, c0 = tf.cast(r0, tf.int32), tf.cast(c0, tf.int32)
    ra, rb = wrap_index(r0, height, mode) * width, wrap_index(r0 + 1, height, mode) * width
    ca, cb = wrap_index(c0, width, mode), wrap_index(c0 + 1, width, mode)

    def at(index):
        return tf.gather(flat, index, batch_dims=1)

    top = at(ra + ca) * (1 - fc) + at(ra + cb) * fc
    bottom = at(rb + ca) * (1 - fc) + at(rb + cb) * fc
    return top * (1 - fr) + bottom * fr


def zoom_axis(n: int, z: float, centre_trim: bool):
    """One axis of the references' `clipped_zoom`: (top, crop, out, trim).

    The reference crops `crop` = ceil(n / z) central pixels from `top`, zooms them to
    `out` = round(crop * z) pixels with scipy.ndimage.zoom (order 1: output j samples input
    j * (crop - 1) / (out - 1)), then keeps n of them from `trim`: the central n
    (make_cifar_c.py) or the first n (imagecorruptions).
    """
    crop = int(np.ceil(n / float(z)))
    out = int(round(crop * float(z)))
    return (n - crop) // 2, crop, out, (out - n) // 2 if centre_trim else 0


def zoom_boxes(size_h: int, size_w: int, factors, centre_trim: bool):
    """crop_and_resize boxes reproducing `clipped_zoom` (see zoom_axis) per zoom factor.

    Returns boxes [len(factors), 4] in crop_and_resize's normalised coordinates, and for each
    factor how many rows / columns exist (a zoomed image smaller than n contributes only there).
    """
    boxes, valid = [], []
    for z in factors:
        box, count = [], []
        for n in (size_h, size_w):
            top, crop, out, trim = zoom_axis(n, z, centre_trim)
            step = (crop - 1) / (out - 1) if out > 1 else 0.0
            start, end = top + trim * step, top + (trim + n - 1) * step
            box.append((start / (n - 1), end / (n - 1)))
            count.append(min(n, out - trim))
        boxes.append([box[0][0], box[1][0], box[0][1], box[1][1]])
        valid.append(count)
    return np.array(boxes, np.float32), np.array(valid)


def clipped_zoom(x, z: float, centre_trim: bool):
    """The references' `clipped_zoom` of x [B,H,W,C] by one static factor z (see zoom_axis).

    The crop is static, so the zoom is ResizeBilinear with align_corners (scipy's order-1
    mapping) on a slice: it interpolates separably with weights computed once per row and
    column, about twice as fast as crop_and_resize's per-pixel sampling. Where the zoomed image
    is smaller than the original (tiny images), the rest is zeros, as the references leave it.
    """
    (top_h, crop_h, out_h, trim_h), (top_w, crop_w, out_w, trim_w) = (
        zoom_axis(n, z, centre_trim) for n in x.shape[1:3])
    if (crop_h, out_h, crop_w, out_w) == (x.shape[1], x.shape[1], x.shape[2], x.shape[2]):
        return x  # z = 1 (every severity's first factor): the zoom is the identity
    crop = x[:, top_h:top_h + crop_h, top_w:top_w + crop_w]
    zoomed = tf.raw_ops.ResizeBilinear(images=crop, size=[out_h, out_w], align_corners=True)
    height, width = x.shape[1], x.shape[2]
    zoomed = zoomed[:, trim_h:trim_h + height, trim_w:trim_w + width]
    short_h, short_w = height - zoomed.shape[1], width - zoomed.shape[2]
    if short_h or short_w:
        zoomed = tf.pad(zoomed, [[0, 0], [0, short_h], [0, short_w], [0, 0]])
    return zoomed


def motion_taps(radius, sigma, angle_deg, height: int, width: int, max_width: int):
    """Weights and integer offsets of ImageMagick's MotionBlurImage (as imagecorruptions ports it).

    radius, sigma, angle_deg: [B] tensors. Output pixel (y, x) averages input pixels
    (y + dy_i, x + dx_i), i = 0 .. 2 * radius, edge-clamped, with one-sided Gaussian weights
    exp(-i^2 / (2 sigma^2)) normalised over the kernel. imagecorruptions stops at the first
    tap that leaves the image (|dy| >= H or |dx| >= W) without renormalising; so do we.
    Returns weights [B, max_width] and offsets dy, dx [B, max_width] (int32).
    """
    i = tf.range(max_width, dtype=tf.float32)[None, :]
    kernel_width = 2 * radius[:, None] + 1
    weights = tf.exp(-(i * i) / (2 * sigma[:, None] ** 2)) / (math.sqrt(2 * math.pi) * sigma[:, None])
    weights = tf.where(i < kernel_width, weights, 0.0)
    weights = weights / tf.reduce_sum(weights, axis=1, keepdims=True)
    angle = angle_deg[:, None] * (math.pi / 180.0)
    dy = tf.math.ceil(i * tf.sin(angle) - 0.5)
    dx = tf.math.ceil(i * tf.cos(angle) - 0.5)
    inside = tf.logical_and(tf.abs(dy) < height, tf.abs(dx) < width)
    inside = tf.cast(tf.math.cumprod(tf.cast(inside, tf.float32), axis=1), tf.bool)
    weights = tf.where(inside, weights, 0.0)
    return weights, tf.cast(dy, tf.int32), tf.cast(dx, tf.int32)


def motion_reach(max_width: int, angle_lo: float, angle_hi: float):
    """Static bounds (up, down, left, right) of the offsets -dy, dy, -dx, dx that motion_taps gives
    for kernels up to max_width taps and angles in [angle_lo, angle_hi] degrees."""
    i = np.arange(max_width)[:, None]
    angles = np.radians(np.linspace(angle_lo, angle_hi, 721))[None, :]
    dy, dx = np.ceil(i * np.sin(angles) - 0.5), np.ceil(i * np.cos(angles) - 0.5)
    return tuple(int(max(v, 0)) + 1 for v in (-dy.min(), dy.max(), -dx.min(), dx.max()))  # +1: float slack


def motion_blur(x, weights, dy, dx, reach=None):
    """Sum over taps of edge-clamped shifted copies of x [B,H,W,C]: out(y,x) = sum_i w_i x(y+dy_i, x+dx_i).

    Computed as a circular convolution of the edge-padded image with each image's kernel through
    rfft2d (the kernels differ per image, and a direct sum costs two gathers per tap): agrees with
    the direct sum to about 1e-4 grey levels. reach: static bounds (up, down, left, right) of
    -dy, dy, -dx, dx (motion_reach); by default the kernel width on every side.
    """
    height, width = x.shape[1], x.shape[2]
    taps = weights.shape[1]
    up, down, left, right = reach or (taps,) * 4
    n_h, n_w = filters.fft_size(height + up + down), filters.fft_size(width + left + right)
    # Tap i sits at (down - dy_i, right - dx_i) of a zero grid, so the circular convolution's output
    # (up + down + y, left + right + x) sums w_i xp(up + y + dy_i, left + x + dx_i) without wrapping.
    rows = tf.one_hot(down - dy, n_h, axis=1) * weights[:, None, :]              # [B, n_h, taps]
    cols = tf.one_hot(right - dx, n_w)                                           # [B, taps, n_w]
    spectrum = tf.signal.rfft2d(tf.linalg.matmul(rows, cols))[:, None]         # [B, 1, n_h, n_w/2+1]
    return filters.spectral_filter(x, spectrum, (up, down, left, right), "nearest")
