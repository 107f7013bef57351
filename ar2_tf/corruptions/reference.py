"""Reference backend: the imagecorruptions package, image by image, via tf.numpy_function.

imagecorruptions repackages the ImageNet-C generators (`make_imagenet_c.py`)
with the ImageNet parameters only; it is slow (per-image NumPy / scikit-image /
OpenCV code on the CPU) but is the behaviour the native ops are tested against.

Determinism: each image gets its own NumPy seed derived from the stateless
`seed` and its index in the batch, and the package's global NumPy state is
used under a lock, so equal seeds give equal outputs even when tf.data runs
several map calls in parallel.
"""

import threading

import numpy as np
import tensorflow as tf

_LOCK = threading.Lock()
# These two take their own seed argument (they do not read NumPy's global state).
_SEEDED = ("impulse_noise", "glass_blur")


def _image_seed(seed, index) -> int:
    return int(np.random.SeedSequence([int(seed[0]) & 0xFFFFFFFF, int(seed[1]) & 0xFFFFFFFF, index])
               .generate_state(1)[0])


def corrupt_numpy(images: np.ndarray, name: str, severities: np.ndarray, seed) -> np.ndarray:
    """Corrupts a uint8 batch [B,H,W,3] with imagecorruptions; returns uint8 (truncated, as the package does)."""
    import imagecorruptions  # imported lazily: it pulls in OpenCV, numba and scikit-image

    out = np.empty_like(images)
    with _LOCK:
        for i, image in enumerate(images):
            image_seed = _image_seed(seed, i)
            np.random.seed(image_seed)
            kwargs = {"seed": image_seed} if name in _SEEDED else {}
            out[i] = imagecorruptions.corrupt(image, corruption_name=name,
                                              severity=int(severities[i]), **kwargs)
    return out


def corrupt_reference(images: tf.Tensor, name: str, severity: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Graph-safe wrapper: float inputs are rounded to uint8 first and returned as float32."""
    dtype = images.dtype
    pixels = images if dtype == tf.uint8 else tf.cast(tf.clip_by_value(tf.round(images), 0, 255), tf.uint8)
    severities = tf.broadcast_to(severity, tf.shape(pixels)[:1])

    def run(x, s, sd):
        return corrupt_numpy(x, name, s, sd)

    out = tf.numpy_function(run, [pixels, severities, seed], tf.uint8, stateful=False)
    out = tf.ensure_shape(out, pixels.shape)
    return out if dtype == tf.uint8 else tf.cast(out, dtype)
