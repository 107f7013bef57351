"""Image corruptions of the CIFAR-10-C / ImageNet-C benchmarks as batched TensorFlow ops.

`corrupt(images, name, severity, seed)` applies one of the 15 benchmark
corruptions (Hendrycks & Dietterich, ICLR 2019) or the 4 extra ones to a batch.
Two backends: "native" (pure TensorFlow, graph-safe, runs in Dataset.map and on
GPU) and "reference" (the imagecorruptions package through tf.numpy_function,
ImageNet parameters only). Two parameter sets: "cifar" (make_cifar_c.py, 32 px)
and "imagenet" (make_imagenet_c.py / imagecorruptions, 224 px).

Example:
    ds = ds.batch(128).map(lambda x, y: (corrupt(x, "fog", 3, seed), y))
"""

import tensorflow as tf

from ar2_tf.choices import (
    ALL_CORRUPTIONS,
    BACKENDS,
    BENCHMARK_CORRUPTIONS,
    EXTRA_CORRUPTIONS,
    PARAM_SETS,
    check_corruption,
)
from ar2_tf.corruptions.native import corrupt_native
from ar2_tf.corruptions.registry import check_images, check_seed, check_severity_arg
from ar2_tf.errors import UserError, check_choice

__all__ = ["ALL_CORRUPTIONS", "BACKENDS", "BENCHMARK_CORRUPTIONS", "EXTRA_CORRUPTIONS",
           "PARAM_SETS", "check_corruption", "corrupt"]


# The ops are plain TensorFlow with Python-level choices only: AutoGraph has nothing to convert, and
# converting the lru-cached helpers inside would break them.
@tf.autograph.experimental.do_not_convert
def corrupt(images, name: str, severity, seed, *, params: str = "cifar", backend: str = "native"):
    """Corrupts a batch of images.

    Args:
        images: uint8 or float32 tensor [B, H, W, 3]; floats are in the 0..255 pixel scale.
        name: one of `ALL_CORRUPTIONS`.
        severity: Python int 1-5, or an int tensor: a scalar for the batch or [B] per image.
        seed: int32/int64 tensor of shape [2]: the stateless seed of every random draw.
        params: "cifar" (CIFAR-10-C / CIFAR-100-C parameters) or "imagenet" (ImageNet-C parameters).
        backend: "native" (TensorFlow ops) or "reference" (imagecorruptions, ImageNet parameters only).

    Returns:
        The corrupted batch, same dtype and shape. uint8 results are truncated
        like the reference generators' `np.uint8(...)`; float32 results are the
        unquantised values clipped to [0, 255].
    """
    name = check_corruption(name)
    check_choice("params", params, PARAM_SETS)
    check_choice("backend", backend, BACKENDS)
    images = check_images(images)
    severity = check_severity_arg(severity)
    seed = check_seed(seed)
    if backend == "reference":
        from ar2_tf.corruptions.reference import corrupt_reference

        if params != "imagenet":
            raise UserError("the reference backend (imagecorruptions) has only the ImageNet parameters; "
                            "pass params='imagenet', or backend='native' for the CIFAR parameters.")
        height, width = images.shape[1], images.shape[2]
        if (height is not None and height < 32) or (width is not None and width < 32):
            raise UserError(f"the reference backend needs images of at least 32x32 px, got {height}x{width}.")
        return corrupt_reference(images, name, severity, seed)
    return corrupt_native(images, name, severity, seed, params)
