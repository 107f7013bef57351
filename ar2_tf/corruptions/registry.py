"""Input validation shared by both backends.

The corruption names are `ar2_tf.choices`' (TensorFlow-free, for the command lines); the registry
of native ops lives in `ar2_tf.corruptions.native`. This module builds no TensorFlow op, so the
reference backend and the validators can be imported without any.
"""

import numpy as np
import tensorflow as tf

from ar2_tf.errors import UserError, check_severity

DTYPES = (tf.uint8, tf.float32)


def check_images(images) -> tf.Tensor:
    """Returns `images` as a tensor after checking rank 4, 3 channels and dtype uint8/float32."""
    if isinstance(images, tf.Tensor) and images.dtype not in DTYPES:
        raise UserError(f"images must be uint8 or float32 (0..255 pixel scale), got {images.dtype.name}; "
                        "cast them first, e.g. tf.cast(images, tf.float32).")
    images = tf.convert_to_tensor(images)
    if images.dtype not in DTYPES:
        raise UserError(f"images must be uint8 or float32 (0..255 pixel scale), got {images.dtype.name}; "
                        "cast them first, e.g. tf.cast(images, tf.float32).")
    shape = images.shape
    if shape.rank is not None and (shape.rank != 4 or shape[-1] not in (3, None)):
        raise UserError(f"images must be a batch [B, H, W, 3], got shape {shape}; "
                        "corrupt after Dataset.batch, or add a batch axis with images[None].")
    return images


def check_severity_arg(severity, batch_size=None) -> tf.Tensor:
    """Returns the severity as an int32 tensor (scalar or [B]) after checking 1-5.

    Python ints and tensors with a static value are checked here and raise
    `UserError`; severities known only at run time get a graph assertion.
    """
    if not tf.is_tensor(severity) and np.ndim(severity) == 0:  # a Python or NumPy scalar
        if isinstance(severity, (bool, np.bool_)) or not isinstance(severity, (int, np.integer)):
            raise UserError(f"severity must be an integer from 1 to 5, got {severity!r}.")
        return tf.constant(check_severity(severity), tf.int32)
    severity = tf.convert_to_tensor(severity)
    if not severity.dtype.is_integer:
        raise UserError(f"severity must be an integer (1-5), got dtype {severity.dtype.name}; "
                        "pass a Python int or an int32 tensor.")
    if severity.shape.rank not in (None, 0, 1):
        raise UserError(f"severity must be a scalar or a [B] vector, got shape {severity.shape}.")
    severity = tf.cast(severity, tf.int32)
    static = tf.get_static_value(severity)
    if static is not None:
        for value in tf.nest.flatten(static.tolist()):
            check_severity(value)
        return severity
    with tf.control_dependencies([
        tf.debugging.assert_greater_equal(severity, 1, message="severity must be an integer from 1 to 5"),
        tf.debugging.assert_less_equal(severity, 5, message="severity must be an integer from 1 to 5"),
    ]):
        return tf.identity(severity)


def check_seed(seed) -> tf.Tensor:
    """Returns the stateless seed as an int64 tensor of shape [2]."""
    if seed is None:
        raise UserError("seed is required (a stateless seed, e.g. tf.constant([1, 2])); "
                        "draw one per batch with tf.random.experimental.stateless_split.")
    seed = tf.convert_to_tensor(seed)
    if not seed.dtype.is_integer or (seed.shape.rank is not None and seed.shape != (2,)
                                     and seed.shape.as_list() != [2]):
        raise UserError(f"seed must be an integer tensor of shape [2], got {seed.dtype.name} {seed.shape}.")
    return tf.cast(seed, tf.int64)
