"""Native backend: the registry of TensorFlow corruptions and the uint8/float plumbing around them.

Every registered function has the signature fn(x, severity, seed, params): x float32
[B,H,W,3] in [0, 1], severity int32 scalar or [B] (1-5), seed int64 [2], params "cifar" or
"imagenet"; it returns the corrupted batch in [0, 1] scale, not yet clipped. The functions
in `ON_PIXELS` instead map uint8 pixels to uint8 pixels, as the references' Pillow code does.
"""

import functools

import tensorflow as tf

from ar2_tf.corruptions import blur, digital, filters, noise, spatter, weather
from ar2_tf.errors import UserError

# One explicit entry per corruption, in the canonical order.
NATIVE = {
    "gaussian_noise": noise.gaussian_noise,
    "shot_noise": noise.shot_noise,
    "impulse_noise": noise.impulse_noise,
    "defocus_blur": blur.defocus_blur,
    "glass_blur": blur.glass_blur,
    "motion_blur": blur.motion_blur,
    "zoom_blur": blur.zoom_blur,
    "snow": weather.snow,
    "frost": weather.frost,
    "fog": weather.fog,
    "brightness": digital.brightness,
    "contrast": digital.contrast,
    "elastic_transform": digital.elastic_transform,
    "pixelate": digital.pixelate,
    "jpeg_compression": digital.jpeg_compression,
    "speckle_noise": noise.speckle_noise,
    "gaussian_blur": blur.gaussian_blur,
    "spatter": spatter.spatter,
    "saturate": digital.saturate,
}

# Pillow resizes and JPEG work on whole pixel levels: uint8 in, uint8 out (float inputs are rounded
# to levels first). At 224 px the float round trip would cost them as much as the op itself.
ON_PIXELS = frozenset({"pixelate", "jpeg_compression"})

# Elementwise ops without random draws: the op and the pixel conversions around it compile into
# one XLA kernel (one pass over the batch instead of one per TF op: 3-5x faster on CPUs). Ops with
# random draws stay out: XLA's CPU random number generators are ~30x slower than TF's kernels.
FUSED = frozenset({"brightness", "contrast", "saturate"})

# A float32 result within this distance below an integer counts as that integer when truncating:
# the reference computes in float64, where such values are usually exact.
_ROUNDOFF = 1e-3


def corrupt_native(images, name, severity, seed, params):
    """Applies NATIVE[name]; uint8 results are truncated like the reference's np.uint8(...)."""
    height, width = images.shape[1], images.shape[2]
    if height is None or width is None:
        raise UserError("the native corruptions need a static image size (H and W known when tracing); "
                        "resize to a fixed size before corrupting, or set the shape with tf.ensure_shape.")
    if name in ON_PIXELS:
        pixels = images if images.dtype == tf.uint8 else tf.cast(tf.clip_by_value(tf.round(images), 0, 255), tf.uint8)
        out = tf.ensure_shape(NATIVE[name](pixels, severity, seed, params), images.shape)
        return tf.cast(out, images.dtype)
    if name in FUSED:
        return tf.ensure_shape(_fused(name, params)(images, severity), images.shape)
    return tf.ensure_shape(_on_float(NATIVE[name], images, severity, seed, params), images.shape)


def _on_float(fn, images, severity, seed, params):
    """fn on the [0, 1] scale: the result clipped to [0, 255], and truncated when images are uint8."""
    return _from_unit(fn(_to_unit(images), severity, seed, params), images.dtype == tf.uint8)


# The conversions are compiled (filters.compiled): one pass over the batch each instead of one per
# TF op (two in, five out), which on CPUs saves about 0.1 ms per 224-px image and corruption.
@filters.compiled
def _to_unit(images):
    """Pixels (uint8 or float32, 0..255) -> float32 in [0, 1]."""
    return tf.cast(images, tf.float32) / 255.0


@filters.compiled
def _from_unit(x, to_uint8: bool):
    """[0, 1] scale -> clipped 0..255 float32, or truncated uint8 pixels."""
    out = tf.clip_by_value(x * 255.0, 0.0, 255.0)
    return tf.cast(tf.floor(out + _ROUNDOFF), tf.uint8) if to_uint8 else out


@functools.lru_cache(maxsize=None)
def _fused(name, params):
    """_on_float(NATIVE[name]) as one XLA-compiled function of (images, severity): built once per
    op, traced once per input signature (the severity is a tensor argument, so one trace serves
    all severities)."""
    def run(images, severity):
        return _on_float(NATIVE[name], images, severity, None, params)

    return filters.compiled(run)
