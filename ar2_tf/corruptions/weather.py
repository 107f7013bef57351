"""Weather corruptions: snow, frost, fog (spatter lives in spatter.py).

x is float32 [B,H,W,3] in [0, 1]; severity an int32 scalar or [B]; seed a stateless seed [2].
"""

import functools
import importlib.resources

import numpy as np
import tensorflow as tf

from ar2_tf.corruptions import filters, geometry
from ar2_tf.corruptions.filters import pick, static_severity
from ar2_tf.corruptions.params import column, table

FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg")


# ---------------------------------------------------------------- fog

def plasma_fractal(batch, mapsize: int, decay, seed):
    """Diamond-square height maps [B, mapsize, mapsize] in [0, 1], as the reference's plasma_fractal.

    Each level doubles the grid: square centres, then the two diamond sets, each the mean of its
    4 neighbours (wrapping) plus uniform noise of half-width wibble^2; wibble starts at 100 and is
    divided by `decay` ([B]) per level.
    """
    grid = tf.zeros([batch, 1, 1])
    wibble = tf.fill([batch], 100.0)
    seeds = tf.random.experimental.stateless_split(seed, 3 * int(np.log2(mapsize)))
    level = 0
    while grid.shape[1] < mapsize:
        n = grid.shape[1]
        amp = (wibble * wibble)[:, None, None]

        def noise(k):
            return amp * tf.random.stateless_uniform([batch, n, n], seeds[3 * level + k], -1.0, 1.0)

        corners = grid + tf.roll(grid, -1, axis=1)
        centre = (corners + tf.roll(corners, -1, axis=2)) / 4 + noise(0)
        top = (centre + tf.roll(centre, 1, axis=1) + grid + tf.roll(grid, -1, axis=2)) / 4 + noise(1)
        left = (centre + tf.roll(centre, 1, axis=2) + grid + tf.roll(grid, -1, axis=1)) / 4 + noise(2)
        even = tf.reshape(tf.stack([grid, top], -1), [batch, n, 2 * n])
        odd = tf.reshape(tf.stack([left, centre], -1), [batch, n, 2 * n])
        grid = tf.reshape(tf.stack([even, odd], 2), [batch, 2 * n, 2 * n])
        wibble = wibble / decay
        level += 1
    grid -= tf.reduce_min(grid, axis=[1, 2], keepdims=True)
    return grid / tf.reduce_max(grid, axis=[1, 2], keepdims=True)


def fog(x, severity, seed, params):
    height, width = x.shape[1], x.shape[2]
    mapsize = 1 << (max(height, width) - 1).bit_length()  # next power of two (32 px -> 32, 224 px -> 256)
    strength = pick(column("fog", params, 0), severity)
    decay = pick(column("fog", params, 1), severity, ndim=1)
    decay = tf.broadcast_to(decay, [tf.shape(x)[0]])
    plasma = plasma_fractal(tf.shape(x)[0], mapsize, decay, seed)[:, :height, :width, None]
    max_val = tf.reduce_max(x, axis=[1, 2, 3], keepdims=True)
    return (x + strength * plasma) * max_val / (max_val + strength)


# ---------------------------------------------------------------- frost

def _resize_matrix(n_in: int, n_out: int, kind: str, scale: float = None) -> np.ndarray:
    """OpenCV resize (half-pixel centres, edge clamp) as an [n_out, n_in] matrix; 'linear' or 'cubic' (a=-0.75).

    `scale` (input pixels per output pixel) defaults to n_in / n_out; cv2.resize(fx=f) uses 1 / f.
    """
    scale = n_in / n_out if scale is None else scale
    matrix = np.zeros((n_out, n_in))
    for i in range(n_out):
        src = (i + 0.5) * scale - 0.5
        base = int(np.floor(src))
        t = src - base
        if kind == "linear":
            taps = {base: 1 - t, base + 1: t}
        else:
            a = -0.75
            w = [((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a,
                 ((a + 2) * t - (a + 3)) * t * t + 1,
                 ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1]
            w.append(1 - sum(w))
            taps = {base - 1 + k: w[k] for k in range(4)}
        for j, weight in taps.items():
            matrix[i, min(max(j, 0), n_in - 1)] += weight
    return matrix


@functools.lru_cache(maxsize=None)
def frost_bank(params: str, height: int, width: int):
    """The frost pictures of the installed imagecorruptions package, resized as the reference does.

    cifar (make_cifar_c.py): frost1-5 only (the reference draws randint(5)), shrunk by 0.2
    with cv2 INTER_LINEAR. imagenet (imagecorruptions): all 6, enlarged so both sides cover
    the image, times 1.1, with cv2 INTER_CUBIC (also used for CIFAR parameters on images
    larger than the shrunk pictures). Returns (uint8 [n, Hmax, Wmax, 3], sizes [n, 2]).
    """
    from PIL import Image

    folder = importlib.resources.files("imagecorruptions") / "frost"
    pictures = []
    for name in FROST_FILES[:5] if params == "cifar" else FROST_FILES:
        with importlib.resources.as_file(folder / name) as path, Image.open(path) as image:
            frost = np.asarray(image.convert("RGB"), np.float64)
        fh, fw = frost.shape[:2]
        if params == "cifar" and min(round(fh * 0.2) - height, round(fw * 0.2) - width) > 0:
            new_h, new_w, kind, scale = int(round(fh * 0.2)), int(round(fw * 0.2)), "linear", 5.0
        else:  # imagecorruptions' rule (also for CIFAR parameters on images the shrunk pictures cannot cover)
            factor = 1.1 * max(1.0, height / fh, width / fw)
            new_h, new_w, kind, scale = int(np.ceil(fh * factor)), int(np.ceil(fw * factor)), "cubic", None
        rows, cols = _resize_matrix(fh, new_h, kind, scale), _resize_matrix(fw, new_w, kind, scale)
        resized = np.stack([rows @ frost[..., c] @ cols.T for c in range(3)], -1)
        pictures.append(np.clip(np.round(resized), 0, 255).astype(np.uint8))
    sizes = np.array([p.shape[:2] for p in pictures])
    bank = np.zeros((len(pictures), sizes[:, 0].max(), sizes[:, 1].max(), 3), np.uint8)
    for k, p in enumerate(pictures):
        bank[k, :p.shape[0], :p.shape[1]] = p
    return bank, sizes


@functools.lru_cache(maxsize=None)
def _frost_constant(params: str, height: int, width: int):
    bank, _ = frost_bank(params, height, width)
    with tf.init_scope():  # one eager tensor, captured by every graph instead of copied into it
        return tf.constant(bank.reshape(-1, 3))


def frost(x, severity, seed, params):
    height, width = x.shape[1], x.shape[2]
    bank, sizes = frost_bank(params, height, width)
    batch = tf.shape(x)[0]
    seeds = tf.random.experimental.stateless_split(seed, 2)
    which = tf.random.stateless_uniform([batch], seeds[0], 0, len(sizes), dtype=tf.int32)
    room = tf.gather(tf.constant(sizes - [height, width], tf.float32), which)  # randint(0, room): exclusive
    start = tf.cast(tf.floor(tf.random.stateless_uniform([batch, 2], seeds[1]) * room), tf.int32)
    rows = start[:, 0, None, None] + tf.range(height)[None, :, None]
    cols = start[:, 1, None, None] + tf.range(width)[None, None, :]
    index = (which[:, None, None] * bank.shape[1] + rows) * bank.shape[2] + cols
    picture = _frost_crops(_frost_constant(params, height, width), index)
    return pick(column("frost", params, 0), severity) * x + pick(column("frost", params, 1), severity) * picture


@filters.compiled
def _frost_crops(bank, index):
    """The bank's pixels [N, 3] (uint8) at index [B,H,W] as float32 in [0, 1]; compiled: XLA's
    gather is several times faster than TF's for these 3-byte rows."""
    return tf.cast(tf.gather(bank, index), tf.float32) / 255


# ---------------------------------------------------------------- snow

def snow(x, severity, seed, params):
    height, width = x.shape[1], x.shape[2]
    batch = tf.shape(x)[0]
    seeds = tf.random.experimental.stateless_split(seed, 2)
    rows = table("snow", params)

    def p(k, ndim=4):
        return pick(column("snow", params, k), severity, ndim)

    layer = p(0) + p(1) * tf.random.stateless_normal([batch, height, width, 1], seeds[0])
    # clipped_zoom with one factor per severity: make_cifar_c keeps the centre, imagecorruptions the top-left.
    boxes = np.concatenate([geometry.zoom_boxes(height, width, [r[2]], params == "cifar")[0] for r in rows])
    sev = filters.batch_severity(severity, batch)
    layer = tf.image.crop_and_resize(layer, tf.gather(tf.constant(boxes), sev - 1), tf.range(batch),
                                     [height, width])
    layer = tf.clip_by_value(tf.where(layer < p(3), 0.0, layer), 0.0, 1.0)
    if params == "cifar":  # make_cifar_c hands ImageMagick an 8-bit PNG of the layer
        layer = tf.floor(layer * 255) / 255
    static = static_severity(severity)
    radii = column("snow", params, 4)
    max_width = 2 * (radii[static - 1] if static is not None else max(radii)) + 1
    angle = tf.random.stateless_uniform([batch], seeds[1], -135.0, -45.0)
    weights, dy, dx = geometry.motion_taps(tf.gather(tf.constant(radii, tf.float32), sev - 1),
                                           tf.gather(tf.constant(column("snow", params, 5), tf.float32), sev - 1),
                                           angle, height, width, max_width)
    reach = geometry.motion_reach(max_width, -135.0, -45.0)
    layer = tf.round(geometry.motion_blur(layer, weights, dy, dx, reach) * 255) / 255
    grey = tf.reduce_sum(x * tf.constant([0.299, 0.587, 0.114]), axis=-1, keepdims=True)
    blend = p(6)
    x = blend * x + (1 - blend) * tf.maximum(x, grey * 1.5 + 0.5)
    return x + layer + tf.reverse(layer, [1, 2])
