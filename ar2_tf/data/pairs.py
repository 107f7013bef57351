"""The public input-pipeline piece of the Keras path: `(images, labels)` batches -> `((clean, corrupted), labels)`.

`corrupted_pairs` maps a user's own batched dataset (what
`keras.utils.image_dataset_from_directory` yields) into the batches
`ar2_tf.RepairModel` trains on, at the user's batch size, order and sharding:
both views come out of the same `map`, preprocessed for the classifier.

The noise follows the project's seed rule (`ar2_tf.data.stateless_seeds.training_noise_seed`):
batch i of data epoch e gets the stateless seed (seed + e, i). A data epoch is
one iteration over the returned dataset; `fit` starts a new one every epoch
(unless it is told `steps_per_epoch` over a repeating dataset, whose batches
then all belong to epoch 0 and differ by their index). A counter of
iterations begun, held by the dataset, gives e, so the noise is the same for
the same seed in every process and differs between batches and between epochs.
"""

import tensorflow as tf

from ar2_tf.choices import UNIFIED, check_corruption
from ar2_tf.data import stateless_seeds as seeds
from ar2_tf.data.pipelines import corrupt_views
from ar2_tf.data.preprocessing import get_preprocessor
from ar2_tf.errors import UserError, check_severity


def as_pixels(images):
    """uint8 pixels of a batch given as uint8 or as float 0..255 (Keras' image loaders): rounded, clipped."""
    if images.dtype == tf.uint8:
        return images
    return tf.cast(tf.clip_by_value(tf.round(tf.cast(images, tf.float32)), 0.0, 255.0), tf.uint8)


def check_corruption_choice(corruption, severity) -> tuple:
    """(corruption, severity) checked before any `Dataset.map` traces them: a bad one is a plain `UserError`
    here, not one wrapped in AutoGraph's trace. `corruption` may be "all" (`corrupt_views`)."""
    return (corruption if corruption == UNIFIED else check_corruption(corruption)), check_severity(severity)


def check_batches(dataset, what="the dataset"):
    """A `UserError` unless `dataset` yields `(images [B, H, W, 3], integer labels [B])` batches."""
    spec = dataset.element_spec
    if not isinstance(spec, tuple) or len(spec) != 2:
        raise UserError(f"{what} must yield (images, labels) pairs, got elements {spec}; map it to pairs first.")
    images, labels = spec
    if images.shape.rank != 4 or images.shape[-1] not in (3, None):
        raise UserError(f"{what} yields images of shape {images.shape}; expected batches [B, H, W, 3] "
                        "(call .batch(...) on a dataset of single images, or load RGB images).")
    if not labels.dtype.is_integer or labels.shape.rank != 1:
        raise UserError(f"{what} yields labels of {labels.dtype.name} {labels.shape}; expected integer class "
                        "indices [B] (keras.utils.image_dataset_from_directory with label_mode='int').")


def corrupted_pairs(dataset, corruption, severity=3, *, preprocessing, seed=0, params="cifar", backend="native",
                    new_noise_each_epoch=True):
    """Maps `(images, labels)` batches to `((clean, corrupted), labels)`, both views preprocessed.

    Args:
        dataset: a `tf.data.Dataset` of `(images, labels)` batches: images uint8 or float 0..255
            [B, H, W, 3], integer labels [B] (as `keras.utils.image_dataset_from_directory` yields them).
            Shuffle, batch and shard it as you like before; this map keeps its batches as they are.
        corruption: a name of `ar2_tf.corruptions.ALL_CORRUPTIONS`, or "all" (each batch gets one of the 15
            benchmark corruptions, drawn from its seed).
        severity: 1-5.
        preprocessing: the classifier's input preprocessing (`ar2_tf.data.preprocessing`: "unit", "caffe",
            "tf", "torch", "none" or "meanstd:..."), applied to both views after corrupting the pixels.
        seed: base seed of the corruption noise (module docstring).
        params: the corruption parameter set of `ar2_tf.corruptions.corrupt`: "cifar" for small images,
            "imagenet" for 224 px.
        backend: the corruption implementation of `ar2_tf.corruptions.corrupt`: "native" or "reference".
        new_noise_each_epoch: False gives every iteration the noise of the first (validation data).

    Returns:
        A `tf.data.Dataset` of `((clean, corrupted), labels)`: what `ar2_tf.RepairModel.fit` trains on.

    Example:
        train = keras.utils.image_dataset_from_directory("photos/train", image_size=(96, 96))
        pairs = ar2_tf.corrupted_pairs(train, "fog", 3, preprocessing="tf", seed=0)
    """
    check_batches(dataset)
    corruption, severity = check_corruption_choice(corruption, severity)
    preprocess = get_preprocessor(preprocessing)
    seed = int(seed)
    iterations = tf.Variable(-1, dtype=tf.int64, trainable=False, name="iterations_begun")

    def epoch_of(_):
        # Evaluated once per iteration over the result: the data epoch of its batches.
        return iterations.assign_add(1) if new_noise_each_epoch else tf.constant(0, tf.int64)

    def views(epoch, index, batch):
        images, labels = batch
        images = as_pixels(images)
        noise_seed = seeds.training_noise_seed(seed, epoch, index)
        corrupted = corrupt_views(images, corruption, severity, noise_seed, params=params, backend=backend)
        return (preprocess(images), preprocess(corrupted)), labels

    def one_epoch(epoch):
        return dataset.enumerate().map(lambda index, batch: (epoch, index, batch))

    batches = tf.data.Dataset.from_tensors(0).map(epoch_of).flat_map(one_epoch)
    if int(dataset.cardinality()) >= 0:  # flat_map hides it; Keras reads it to size its epochs
        batches = batches.apply(tf.data.experimental.assert_cardinality(dataset.cardinality()))
    return batches.map(views, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def pixel_split(data, what="data"):
    """Unbatched `(uint8 image, int64 label)` pairs, in order, of a user's images: a `tf.data.Dataset` of
    `(images, labels)` batches or single pairs, or a tuple `(x, y)` of arrays (images uint8 or float 0..255).

    What evaluation and validation read: the pixels that corruptions are defined on.
    """
    if isinstance(data, (tuple, list)) and len(data) == 2 and not isinstance(data[0], tf.data.Dataset):
        data = tf.data.Dataset.from_tensor_slices((data[0], data[1]))
    if not isinstance(data, tf.data.Dataset):
        raise UserError(f"{what} must be a tf.data.Dataset of (images, labels) or a tuple (x, y) of arrays, got "
                        f"{type(data).__name__}.")
    spec = data.element_spec
    if isinstance(spec, tuple) and len(spec) == 2 and spec[0].shape.rank == 3:
        data = data.batch(1024)
    check_batches(data, what)
    return data.map(lambda images, labels: (as_pixels(images), tf.cast(labels, tf.int64))).unbatch()
