"""The names a command's flags accept, TensorFlow-free.

Commands build their help and check their flags before importing TensorFlow (4-8 s), so help
and a mistyped flag answer at once. The modules that implement each choice take the names from
here: `ar2_tf.data.sources` loads the datasets, `ar2_tf.runs.distribution` creates the
strategies, `tuning.search` runs the tuners, `ar2_tf.data.shards` writes the encodings and reads
static shards, `ar2_tf.runs.precision` sets the policies and `ar2_tf.corruptions` (which exports
the corruption names) implements the corruptions, their parameter sets and backends.
"""

import os

from ar2_tf.errors import UserError, check_choice

DATASETS = ("demo", "cifar10", "cifar100", "imagenet", "folder", "npz")
# ImageNet-size datasets: images decoded from files, the short side resized to 256/224 of the input
# size and centre-cropped (ImageNet-C's protocol), 224 px unless `image_size` says otherwise, and
# ImageNet-C's corruption parameters. The others are CIFAR-size arrays, resized whole if at all.
LARGE_IMAGE_DATASETS = ("imagenet", "folder")
LARGE_IMAGE_SIZE = 224
# The datasets that are nothing without `data_dir`, and what it must name (one line of the refusal).
DATA_DIR_NEEDED = {"folder": "DIR with train/<class>/ and val/<class>/ image folders (or <class>/ folders), or a "
                             "prepared TFDS dataset folder",
                   "npz": "FILE.npz, an existing file of x_train, y_train (x_test, y_test) arrays"}
STRATEGIES = ("auto", "mirrored", "multiworker", "default")
TUNERS = ("random", "bayesian", "hyperband")
ENCODINGS = ("png", "jpeg", "raw")  # precomputed shards: png lossless; jpeg quality 95, ~5x smaller; raw uint8 bytes
CORRUPTION_MODES = ("dynamic", "static")  # corrupt each batch on the fly, or read precomputed shards
PRECISION_POLICIES = ("mixed_float16", "mixed_bfloat16")

# The 15 corruptions of the CIFAR-10-C / ImageNet-C benchmarks, in their canonical order.
BENCHMARK_CORRUPTIONS = (
    "gaussian_noise", "shot_noise", "impulse_noise",
    "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness",
    "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)
# The 4 held-out "validation" corruptions of Hendrycks & Dietterich (2019).
EXTRA_CORRUPTIONS = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
ALL_CORRUPTIONS = BENCHMARK_CORRUPTIONS + EXTRA_CORRUPTIONS
UNIFIED = "all"  # the `corruption` "all": one unified model, every batch draws one of the 15
PARAM_SETS = ("cifar", "imagenet")
BACKENDS = ("native", "reference")


def default_image_size(dataset, image_size=None):
    """`image_size` if given, else 224 for ImageNet-size datasets and None (keep) for the others."""
    if image_size:
        return image_size
    return LARGE_IMAGE_SIZE if dataset in LARGE_IMAGE_DATASETS else None


def default_params(dataset, params=None) -> str:
    """The corruption parameter set: `params` if given, else ImageNet-C's for ImageNet-size data."""
    return params or ("imagenet" if dataset in LARGE_IMAGE_DATASETS else "cifar")


def check_corruption(name) -> str:
    """Returns `name` if it is a known corruption, else raises a `UserError`."""
    return check_choice("corruption", name, ALL_CORRUPTIONS, "See ar2_tf.corruptions.ALL_CORRUPTIONS.")


def check_precision_policy(policy):
    """`policy` if it is None (float32) or one of `PRECISION_POLICIES`, else a `UserError`."""
    if policy is not None:
        check_choice("mixed precision policy", policy, PRECISION_POLICIES)
    return policy


def check_data_dir(dataset, data_dir, exists=False):
    """A `UserError` naming what `data_dir` must be for a dataset that needs one (`DATA_DIR_NEEDED`) and has
    none; with `exists`, also for an `npz` path that is no existing `.npz` file (a flag check leaves files to
    the loading)."""
    missing = not data_dir or (exists and dataset == "npz"
                               and not (str(data_dir).endswith(".npz") and os.path.isfile(data_dir)))
    if dataset in DATA_DIR_NEEDED and missing:
        raise UserError(f"`dataset` {dataset} needs `data_dir` {DATA_DIR_NEEDED[dataset]}; got {data_dir!r}.")
