"""tf.data pipelines that yield a clean and a corrupted view of every image.

Training batches are `((clean, corrupted), labels)`, both views preprocessed
for the model. The order is shuffle -> batch -> map -> prefetch: corruptions
are batched ops (one kernel launch per batch instead of per image), and the
two views come out of the same `map`, so they can never fall out of step.

Everything random is a function of (seed, data epoch, batch index): the shuffle
order of data epoch e uses a seed derived from (seed, e) and batch i's
corruption noise uses the stateless seed (seed + e, i). A run therefore sees the
same batches whether or not it was interrupted, and `start_batch` resumes
mid-schedule exactly.
"""

import functools

import tensorflow as tf

from ar2_tf.choices import UNIFIED
from ar2_tf.corruptions import BENCHMARK_CORRUPTIONS, corrupt
from ar2_tf.data import stateless_seeds
from ar2_tf.data.preprocessing import get_preprocessor

SHUFFLE_BUFFER = 20_000


def corrupt_views(images, corruption, severity, seed, *, params, backend):
    """`corrupt`, plus the unified mode: with corruption "all", the batch gets one of the 15
    benchmark corruptions, drawn uniformly from the batch's stateless seed."""
    if corruption != UNIFIED:
        return corrupt(images, corruption, severity, seed, params=params, backend=backend)
    choice_seed, noise_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    index = tf.random.stateless_uniform([], choice_seed, 0, len(BENCHMARK_CORRUPTIONS), dtype=tf.int32)
    branches = [functools.partial(corrupt, images, name, severity, noise_seed, params=params, backend=backend)
                for name in BENCHMARK_CORRUPTIONS]
    return tf.switch_case(index, branches)


def epoch_batches(split, *, batch_size, seed, total_batches, start_batch=0, shuffle_buffer=SHUFFLE_BUFFER):
    """Batches `(data epoch, index in epoch, (images, labels))` number `start_batch` to `total_batches`.

    Each data epoch is its own dataset, shuffled with the Python-int seed
    `seed * 1_000_003 + epoch` (combined, as every TF op seed is, with TF's global
    seed, which `run_repair` sets to the run's seed), so epoch e's order never
    depends on how many epochs were iterated before: resuming is exact. The
    last partial batch of each epoch is dropped. The split's size must be known
    (`cardinality`), as it is for every `ar2_tf.data.sources` source.
    """
    size = int(split.cardinality())
    if size < 0:
        raise ValueError("the training split's size is unknown; build it from a source with a known size")
    per_epoch = size // batch_size
    if per_epoch < 1:
        raise ValueError(f"the training split has {size} images, fewer than one batch of {batch_size}")
    seed = int(seed)

    def one_epoch(epoch):
        shuffled = split.shuffle(shuffle_buffer, seed=stateless_seeds.shuffle_seed(seed, epoch), reshuffle_each_iteration=False)
        batches = shuffled.batch(batch_size, drop_remainder=True).enumerate()
        return batches.map(lambda index, batch: (tf.constant(epoch, tf.int64), index, batch))

    first, skip = divmod(start_batch, per_epoch)
    epochs = [one_epoch(epoch) for epoch in range(first, -(-total_batches // per_epoch))]
    order = tf.data.Dataset.range(len(epochs)).flat_map(
        lambda position: tf.data.Dataset.from_tensors(position).repeat(per_epoch))
    return tf.data.Dataset.choose_from_datasets(epochs, order).skip(skip).take(total_batches - start_batch)


def repair_pipeline(split, *, corruption, severity, batch_size, preprocessing, total_batches, seed=0,
                    params="cifar", backend="native", start_batch=0, shuffle_buffer=SHUFFLE_BUFFER):
    """`((clean, corrupted), labels)` batches number `start_batch` to `total_batches`, epoch after epoch.

    Args:
        split: unbatched `(uint8 image, label)` pairs.
        corruption, severity, params, backend: see `ar2_tf.corruptions.corrupt`; corruption
            "all" draws one of the 15 benchmark corruptions per batch (the unified model).
        batch_size: images per batch; the last partial batch of each epoch is dropped.
        preprocessing: name of the model's preprocessing (see `ar2_tf.data.preprocessing`).
        total_batches: batches of the whole schedule (the pipeline ends there).
        seed: base seed of shuffling and corruption noise.
        start_batch: number of batches already consumed (for resuming).
    """
    preprocess = get_preprocessor(preprocessing)

    def views(epoch, index, batch):
        images, labels = batch
        noise_seed = stateless_seeds.training_noise_seed(seed, epoch, index)
        corrupted = corrupt_views(images, corruption, severity, noise_seed, params=params, backend=backend)
        return (preprocess(images), preprocess(corrupted)), labels

    # Batches are chosen (and skipped when resuming) before the corruption map: skipping costs no corruption work.
    batches = epoch_batches(split, batch_size=batch_size, seed=seed, total_batches=total_batches,
                            start_batch=start_batch, shuffle_buffer=shuffle_buffer)
    return batches.map(views, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def clean_pipeline(split, *, batch_size, preprocessing, shuffle=False, seed=0):
    """`(images, labels)` batches of preprocessed clean images (pre-training, evaluation)."""
    preprocess = get_preprocessor(preprocessing)
    if shuffle:
        split = split.shuffle(SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
    batches = split.batch(batch_size)
    return batches.map(lambda x, y: (preprocess(x), y), num_parallel_calls=tf.data.AUTOTUNE).prefetch(
        tf.data.AUTOTUNE)


def corrupted_pipeline(split, *, corruption, severity, preprocessing, seed=0, params="cifar", backend="native"):
    """`(images, labels)` batches of one corruption at one severity, in split order.

    Batches hold `stateless_seeds.EVAL_BATCH_SIZE` images and batch i uses
    `stateless_seeds.evaluation_noise_seed(seed, severity, i)`: the same images get the
    same noise for every model evaluated and in every generated test set, so
    errors compare like for like.
    """
    preprocess = get_preprocessor(preprocessing)

    def corrupt_batch(index, batch):
        images, labels = batch
        noise_seed = stateless_seeds.evaluation_noise_seed(seed, severity, index)
        corrupted = corrupt(images, corruption, severity, noise_seed, params=params, backend=backend)
        return preprocess(corrupted), labels

    batches = split.batch(stateless_seeds.EVAL_BATCH_SIZE).enumerate()
    return batches.map(corrupt_batch, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
