"""Blur corruptions: defocus, glass, motion, zoom and gaussian blur.

x is float32 [B,H,W,3] in [0, 1]; severity an int32 scalar or [B]; seed a stateless seed [2].
"""

import functools

import numpy as np
import tensorflow as tf

from ar2_tf.corruptions import filters, geometry
from ar2_tf.corruptions.filters import pick, static_severity
from ar2_tf.corruptions.params import column, table


def disk_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """The reference `disk`: an aliased disk normalised to sum 1, then cv2.GaussianBlur (reflect101)."""
    half = 8 if radius <= 8 else int(radius)
    coords = np.arange(-half, half + 1)
    yy, xx = np.meshgrid(coords, coords)
    disk = ((xx ** 2 + yy ** 2) <= radius ** 2).astype(np.float64)
    disk /= disk.sum()
    ksize = 3 if radius <= 8 else 5
    taps = np.exp(-((np.arange(ksize) - (ksize - 1) / 2) ** 2) / (2 * alias_blur ** 2))
    smooth = filters.filter_matrix(disk.shape[0], taps / taps.sum(), "reflect101")
    return smooth @ disk @ smooth.T


def defocus_blur(x, severity, seed, params):
    kernels = [disk_kernel(r, a) for r, a in table("defocus_blur", params)]
    return filters.conv2d(x, kernels, severity, "reflect101")


def gaussian_blur(x, severity, seed, params):
    return filters.gaussian_blur(x, table("gaussian_blur", params), severity, "nearest")


@functools.lru_cache(maxsize=None)
def glass_displacements(max_delta: int, iterations: int, size: int = 64, runs: int = 8):
    """Distribution of where the pixel that ends at (h, w) came from, under the reference's swaps.

    The reference walks the image from the bottom-right corner and swaps each pixel with a
    random neighbour at offset in [-max_delta, max_delta - 1]^2, `iterations` times. The walk is
    sequential, so we simulate it once (NumPy, fixed seed) on an index grid and sample each
    output pixel's source offset independently from the measured distribution of interior pixels.
    Returns (cdf [K], offsets [K, 2]).
    """
    rng = np.random.default_rng(12345)
    counts = {}
    margin = 4 * max_delta + 4
    for _ in range(runs):
        grid = np.arange(size * size).reshape(size, size)
        for _ in range(iterations):
            draws = rng.integers(-max_delta, max_delta, size=(size, size, 2))
            for h in range(size - max_delta, max_delta, -1):
                for w in range(size - max_delta, max_delta, -1):
                    dx, dy = draws[h, w]
                    hp, wp = h + dy, w + dx
                    grid[h, w], grid[hp, wp] = grid[hp, wp], grid[h, w]
        inner = grid[margin:-margin, margin:-margin]
        hh, ww = np.meshgrid(np.arange(margin, size - margin), np.arange(margin, size - margin), indexing="ij")
        offsets = np.stack([inner // size - hh, inner % size - ww], -1).reshape(-1, 2)
        for offset in map(tuple, offsets):
            counts[offset] = counts.get(offset, 0) + 1
    keys = sorted(counts)
    probs = np.array([counts[k] for k in keys], np.float64)
    return np.cumsum(probs) / probs.sum(), np.array(keys, np.int32)


def _glass_shuffle(x, max_delta, iterations, seed):
    """Moves every pixel by an offset drawn from `glass_displacements` (edge-clamped)."""
    cdf, offsets = glass_displacements(max_delta, iterations)
    batch, height, width = tf.shape(x)[0], x.shape[1], x.shape[2]
    u = tf.random.stateless_uniform([1, batch * height * width], seed)
    index = tf.minimum(tf.searchsorted(tf.constant(cdf[None], tf.float32), u, side="right"), len(cdf) - 1)
    move = tf.reshape(tf.gather(tf.constant(offsets), index[0]), [batch, height * width, 2])
    rows = tf.clip_by_value(tf.repeat(tf.range(height), width)[None] + move[..., 0], 0, height - 1)
    cols = tf.clip_by_value(tf.tile(tf.range(width), [height])[None] + move[..., 1], 0, width - 1)
    flat = tf.reshape(x, [batch, height * width, 3])
    return tf.reshape(tf.gather(flat, rows * width + cols, batch_dims=1), tf.shape(x))


def glass_blur(x, severity, seed, params):
    rows = table("glass_blur", params)
    sigmas = [r[0] for r in rows]
    # The reference blurs, truncates to uint8, shuffles pixels locally, then blurs again.
    x = tf.floor(filters.gaussian_blur(x, sigmas, severity, "nearest") * 255 + 1e-4) / 255
    static = static_severity(severity)
    if static is not None:
        _, max_delta, iterations = rows[static - 1]
        x = _glass_shuffle(x, max_delta, iterations, seed)
    else:
        # Shuffle with every distinct (max_delta, iterations) of the table, keep each image's own.
        sev = filters.batch_severity(severity, tf.shape(x)[0])
        out = x
        for k, spec in enumerate(sorted({r[1:] for r in rows})):
            uses = tf.constant([r[1:] == spec for r in rows])
            keep = tf.gather(uses, sev - 1)[:, None, None, None]
            sub_seed = tf.random.experimental.stateless_fold_in(seed, k)
            out = tf.where(keep, _glass_shuffle(x, spec[0], spec[1], sub_seed), out)
        x = out
    return filters.gaussian_blur(x, sigmas, severity, "nearest")


def motion_blur(x, severity, seed, params):
    radii, sigmas = column("motion_blur", params, 0), column("motion_blur", params, 1)
    batch = tf.shape(x)[0]
    static = static_severity(severity)
    max_width = 2 * (radii[static - 1] if static is not None else max(radii)) + 1
    sev = filters.batch_severity(severity, batch)
    radius = tf.gather(tf.constant(radii, tf.float32), sev - 1)
    sigma = tf.gather(tf.constant(sigmas, tf.float32), sev - 1)
    angle = tf.random.stateless_uniform([batch], seed, -45.0, 45.0)
    weights, dy, dx = geometry.motion_taps(radius, sigma, angle, x.shape[1], x.shape[2], max_width)
    return geometry.motion_blur(x, weights, dy, dx)


def zoom_factors(params: str):
    """The zoom factors of each severity, exactly as the reference's np.arange produces them."""
    return [np.arange(*spec) for spec in table("zoom_blur", params)]


def zoom_blur(x, severity, seed, params):
    height, width = x.shape[1], x.shape[2]
    factors = zoom_factors(params)
    centre_trim = params == "cifar"
    steps = max(len(f) for f in factors)
    # Per severity and step: the box, whether the step exists, and the valid rows / columns.
    boxes = np.zeros((5, steps, 4), np.float32)
    boxes[..., 2:] = 1.0
    used = np.zeros((5, steps), np.float32)
    valid = np.tile(np.array([height, width]), (5, steps, 1))
    for s, fs in enumerate(factors):
        b, v = geometry.zoom_boxes(height, width, fs, centre_trim)
        boxes[s, :len(fs)], used[s, :len(fs)], valid[s, :len(fs)] = b, 1.0, v
    static = static_severity(severity)
    if static is not None:
        steps = len(factors[static - 1])
    batch = tf.shape(x)[0]
    sev = filters.batch_severity(severity, batch)
    rows, cols = tf.range(height)[None, :, None, None], tf.range(width)[None, None, :, None]
    total = x
    for step in range(steps):
        box = tf.gather(tf.constant(boxes[:, step]), sev - 1)
        zoomed = tf.image.crop_and_resize(x, box, tf.range(batch), [height, width])
        if (valid[:, step] < [height, width]).any():  # the zoomed image is smaller than the original
            v = tf.gather(tf.constant(valid[:, step], tf.int32), sev - 1)
            zoomed *= tf.cast((rows < v[:, 0, None, None, None]) & (cols < v[:, 1, None, None, None]), tf.float32)
        total += zoomed * tf.gather(tf.constant(used[:, step]), sev - 1)[:, None, None, None]
    count = pick([len(f) + 1 for f in factors], severity)
    return total / count
