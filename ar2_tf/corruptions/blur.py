"""Blur corruptions: defocus, glass, motion, zoom and gaussian blur.

x is float32 [B,H,W,3] in [0, 1]; severity an int32 scalar or [B]; seed a stateless seed [2].
"""

import numpy as np
import tensorflow as tf

from ar2_tf.corruptions import filters, geometry
from ar2_tf.corruptions.filters import static_severity
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

    All 2 * iterations offsets of a pixel come from one 32-bit Philox word, as base-(2 max_delta)
    digits of the word modulo (2 max_delta)^(2 iterations) <= 4096 (uniform within 1e-6). The
    index arithmetic and gathers run compiled (filters.compiled).
    """
    words = tf.random.stateless_uniform([tf.shape(x)[0], x.shape[1] * x.shape[2]], seed,
                                        minval=None, maxval=None, dtype=tf.uint32)
    return _glass_copies(x, words, max_delta, iterations)


@filters.compiled
def _glass_copies(x, words, max_delta: int, iterations: int):
    """_glass_shuffle given the Philox words [B, H*W] (uint32)."""
    batch, height, width = tf.shape(x)[0], x.shape[1], x.shape[2]
    size = height * width
    hh, ww = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    visited = ((hh > max_delta) & (hh <= height - max_delta) & (ww > max_delta) & (ww <= width - max_delta))
    here = tf.constant((hh * width + ww).reshape(1, -1), tf.int32)
    visited_flat = tf.constant(visited.reshape(1, -1))
    first = tf.range(batch)[:, None] * size  # each image's offset in the flattened batch
    span = 2 * max_delta
    digits = words % (span ** (2 * iterations))  # < 2^12: exact in int32 after the cast below
    digits = tf.cast(digits, tf.int32)
    sources = None
    for _ in range(iterations):
        dy, dx = digits % span - max_delta, digits // span % span - max_delta
        digits = digits // (span * span)
        source = tf.where(visited_flat, here + dy * width + dx, here)
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
    """The mean of the image and its clipped zooms by each factor of the severity."""
    static = static_severity(severity)
    if static is None:  # no random draws: each severity's images go through their own static zooms
        return filters.by_severity(lambda part, s: zoom_blur(part, s, seed, params), x, severity)
    factors = zoom_factors(params)[static - 1]
    zooms = [geometry.clipped_zoom(x, z, centre_trim=params == "cifar") for z in factors]
    return tf.add_n([x] + zooms) / (len(factors) + 1)
