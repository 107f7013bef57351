"""Resampling helpers: bilinear sampling with border rules, clipped zoom, motion-blur taps.

All take batches [B,H,W,C] and per-image parameters, so one call serves a
batch whose images have different random draws or severities.
"""

import math

import numpy as np
import tensorflow as tf


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


def bilinear(x, rows, cols, mode: str):
    """Samples x [B,H,W,C] at float coordinates rows, cols [B,h,w] (pixel units) -> [B,h,w,C]."""
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


def zoom_boxes(size_h: int, size_w: int, factors, centre_trim: bool):
    """crop_and_resize boxes reproducing `clipped_zoom` (scipy.ndimage.zoom, order 1) per zoom factor.

    The reference crops ceil(n / z) central pixels, zooms them to round(ceil(n / z) * z)
    pixels (scipy maps output j to input j * (in - 1) / (out - 1)), then keeps n of them:
    the central n (make_cifar_c.py) or the first n (imagecorruptions). Returns boxes
    [len(factors), 4] in crop_and_resize's normalised coordinates, and for each factor how
    many rows / columns exist (a zoomed image smaller than n contributes only there).
    """
    boxes, valid = [], []
    for z in factors:
        box, count = [], []
        for n in (size_h, size_w):
            crop = int(np.ceil(n / float(z)))
            top = (n - crop) // 2
            out = int(round(crop * float(z)))
            trim = (out - n) // 2 if centre_trim else 0
            step = (crop - 1) / (out - 1) if out > 1 else 0.0
            start, end = top + trim * step, top + (trim + n - 1) * step
            box.append((start / (n - 1), end / (n - 1)))
            count.append(min(n, out - trim))
        boxes.append([box[0][0], box[1][0], box[0][1], box[1][1]])
        valid.append(count)
    return np.array(boxes, np.float32), np.array(valid)


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


def motion_blur(x, weights, dy, dx):
    """Sum over taps of edge-clamped shifted copies of x [B,H,W,C]: out(y,x) = sum_i w_i x(y+dy_i, x+dx_i)."""
    height, width = x.shape[1], x.shape[2]
    rows = tf.range(height)[None, :]
    cols = tf.range(width)[None, :]
    out = tf.zeros_like(x)
    for i in range(weights.shape[1]):
        r = tf.clip_by_value(rows + dy[:, i:i + 1], 0, height - 1)
        c = tf.clip_by_value(cols + dx[:, i:i + 1], 0, width - 1)
        shifted = tf.gather(tf.gather(x, r, axis=1, batch_dims=1), c, axis=2, batch_dims=1)
        out += weights[:, i, None, None, None] * shifted
    return out
