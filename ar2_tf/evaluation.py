"""Error rates of a classifier on clean and corrupted test images.

The before/after report of a repair run: clean error and the error at each
severity of the target corruption, on identical corrupted images for every
model (see `ar2_tf.data.corrupted_pipeline`).
"""

import weakref

import tensorflow as tf

from ar2_tf.data import clean_pipeline, corrupted_pipeline


_COUNTERS = weakref.WeakKeyDictionary()  # one compiled error counter per classifier


def _error_counter(classifier):
    if classifier not in _COUNTERS:

        @tf.function(reduce_retracing=True)
        def count(images, labels):
            predicted = tf.argmax(classifier(images, training=False), axis=-1)
            wrong = tf.reduce_sum(tf.cast(predicted != tf.cast(labels, predicted.dtype), tf.int64))
            return wrong, tf.shape(labels, out_type=tf.int64)[0]

        _COUNTERS[classifier] = count
    return _COUNTERS[classifier]


def error_rate(classifier, batches) -> float:
    """Top-1 error (in %) of `classifier` over `(images, labels)` batches."""
    count = _error_counter(classifier)
    wrong = total = 0
    for images, labels in batches:
        batch_wrong, batch_total = count(images, labels)
        wrong, total = wrong + int(batch_wrong), total + int(batch_total)
    if total == 0:
        raise ValueError("cannot compute an error rate on an empty test split")
    return 100.0 * wrong / total


def corruption_errors(classifier, split, *, corruption, severities=(1, 2, 3, 4, 5), batch_size=256,
                      preprocessing, params="cifar", backend="native", seed=0) -> dict:
    """Clean error and the error at each severity of one corruption, in %.

    Returns:
        {"clean": float, "corrupted": {"1": float, ...}, "mean_corrupted": float} (JSON-ready keys)
    """
    clean = error_rate(classifier, clean_pipeline(split, batch_size=batch_size, preprocessing=preprocessing))
    corrupted = {
        str(severity): error_rate(classifier, corrupted_pipeline(
            split, corruption=corruption, severity=severity, batch_size=batch_size,
            preprocessing=preprocessing, seed=seed, params=params, backend=backend))
        for severity in severities
    }
    return {"clean": clean, "corrupted": corrupted, "mean_corrupted": sum(corrupted.values()) / len(corrupted)}
