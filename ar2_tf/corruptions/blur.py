"""Blur corruptions: defocus, glass, motion, zoom and gaussian blur.

x is float32 [B,H,W,3] in [0, 1]; severity an int32 scalar or [B]; seed a stateless seed [2].
"""

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


def _glass_shuffle(x, max_delta: int, iterations: int, seed):
    """The reference's local pixel "swaps", exactly.

    The reference visits (h, w) from the bottom-right corner (h, w in (max_delta, n - max_delta])
    and runs `x[h, w], x[h', w'] = x[h', w'], x[h, w]` with (h', w') = (h, w) + an offset in
    [-max_delta, max_delta - 1]^2. On NumPy (and numba) array views that tuple assignment copies
    x[h', w'] into x[h, w] and leaves x[h', w'] unchanged: a sequential copy, not a permutation.
    So pixel p ends with the original pixel at its target t, unless t was visited before p
    (t later in raster order), in which case it ends with t's final pixel. Pointer jumping
    finds the end of those chains for all pixels at once; the iterations compose as index maps,
    and the image moves once.
    """
    batch, height, width = tf.shape(x)[0], x.shape[1], x.shape[2]
    size = height * width
    hh, ww = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    visited = ((hh > max_delta) & (hh <= height - max_delta) & (ww > max_delta) & (ww <= width - max_delta))
    here = tf.constant((hh * width + ww).reshape(1, -1), tf.int32)
    visited_flat = tf.constant(visited.reshape(1, -1))
    first = tf.range(batch)[:, None] * size  # each image's offset in the flattened batch
    sources = None
    for step in range(iterations):
        offset = tf.random.stateless_uniform([batch, size, 2], tf.random.experimental.stateless_fold_in(
            seed, step), -max_delta, max_delta, dtype=tf.int32)
        source = tf.where(visited_flat, here + offset[..., 0] * width + offset[..., 1], here)
        if max_delta > 1:  # with offsets in {-1, 0} no target comes later in raster order: no chains
            target = source
            chained = visited_flat & tf.gather(visited_flat[0], target) & (target > here)
            # Each pixel's next pixel on its chain (itself at a chain's end), as flat indices into the batch.
            parent = tf.reshape(tf.where(chained, target, here) + first, [-1])

            def jump(parent, _):
                grand = tf.gather(parent, parent)
                return grand, tf.reduce_any(grand != parent)

            end, _ = tf.while_loop(lambda _, moved: moved, jump, (parent, tf.constant(True)))
            source = tf.reshape(tf.gather(tf.reshape(target, [-1]), end), [batch, size])
        sources = source if sources is None else tf.gather(sources, source, batch_dims=1)
    flat = tf.reshape(x, [batch, size, x.shape[3]])
    return tf.reshape(tf.gather(flat, sources, batch_dims=1), tf.shape(x))


def glass_blur(x, severity, seed, params):
    rows = table("glass_blur", params)
    sigmas = [r[0] for r in rows]
    # The reference blurs, truncates to uint8, shuffles pixels locally, then blurs again.
    x = tf.floor(filters.gaussian_blur(x, sigmas, severity, "nearest") * 255 + 1e-4) / 255
    # One shuffle per distinct (max_delta, iterations), each with its own sub-seed; an image keeps
    # the one of its severity (a batch with one severity runs just that one).
    specs = sorted({r[1:] for r in rows})
    static = static_severity(severity)
    needed = [rows[static - 1][1:]] if static is not None else specs
    sev = filters.batch_severity(severity, tf.shape(x)[0])
    out = x
    for spec in needed:
        sub_seed = tf.random.experimental.stateless_fold_in(seed, specs.index(spec))
        shuffled = _glass_shuffle(x, spec[0], spec[1], sub_seed)
        keep = tf.gather(tf.constant([r[1:] == spec for r in rows]), sev - 1)[:, None, None, None]
        out = shuffled if len(needed) == 1 else tf.where(keep, shuffled, out)
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
    return geometry.motion_blur(x, weights, dy, dx, geometry.motion_reach(max_width, -45.0, 45.0))


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
