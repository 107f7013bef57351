"""Error rates of a classifier on clean and corrupted test images.

The before/after report of a repair run (`corruption_errors`): clean error and
the error at each severity of the target corruption, on identical corrupted
images for every model (see `ar2_tf.data.pipelines.corrupted_pipeline`). The benchmark
of one model (`benchmark_errors`): the error at every (corruption, severity) of a
corrupted-set source (see `ar2_tf.evaluation.corrupted_sets`), one cell at a time, so a
caller can save each result as it comes and a failing corruption does not
lose the others; `ar2_tf.evaluation.multi_model` runs many models in the same pass.
"""

import weakref

import numpy as np
import tensorflow as tf

from ar2_tf.data.pipelines import clean_pipeline, corrupted_pipeline
from ar2_tf.data.preprocessing import get_preprocessor
from ar2_tf.data.stateless_seeds import EVAL_BATCH_SIZE
from ar2_tf.evaluation.multi_model import ErrorCounter, evaluate_cells

# One compiled counter per classifier (of already preprocessed batches). The counter holds its classifier
# weakly: a value that referenced its key strongly would keep every model ever evaluated alive.
_COUNTERS = weakref.WeakKeyDictionary()


def _error_counter(classifier):
    if classifier not in _COUNTERS:
        _COUNTERS[classifier] = ErrorCounter(classifier)
    return _COUNTERS[classifier]


def error_rate(classifier, batches, progress=None) -> float:
    """Top-1 error (in %) of `classifier` over `(images, labels)` batches; `progress(n)` after each batch."""
    count = _error_counter(classifier)
    wrong = total = 0
    for images, labels in batches:
        batch_wrong, batch_total = count(images, labels)
        wrong, total = wrong + int(batch_wrong), total + int(batch_total)
        if progress is not None:
            progress(int(batch_total))
    if total == 0:
        raise ValueError("cannot compute an error rate on an empty test split")
    return 100.0 * wrong / total


def clean_verdicts(classifier, split, preprocessing) -> np.ndarray:
    """bool [n]: whether `classifier` classifies each image of the unbatched `split` correctly, in order (the
    per-image record that paired comparisons of two models need: `ar2_tf.evaluation.clean_rise`)."""
    batches = clean_pipeline(split, batch_size=EVAL_BATCH_SIZE, preprocessing=preprocessing)
    verdicts = [np.argmax(classifier(images, training=False), axis=-1) == labels.numpy() for images, labels in batches]
    return np.concatenate(verdicts) if verdicts else np.zeros(0, bool)


def corruption_errors(classifier, split, *, corruption, severities=(1, 2, 3, 4, 5), preprocessing, params="cifar", backend="native", seed=0) -> dict:
    """Clean error and the error at each severity of one corruption, in %.

    Returns:
        {"clean": float, "corrupted": {"1": float, ...}, "mean_corrupted": float} (JSON-ready keys)
    """
    clean = error_rate(classifier, clean_pipeline(split, batch_size=EVAL_BATCH_SIZE, preprocessing=preprocessing))
    corrupted = {
        str(severity): error_rate(classifier, corrupted_pipeline(
            split, corruption=corruption, severity=severity,
            preprocessing=preprocessing, seed=seed, params=params, backend=backend))
        for severity in severities
    }
    return {"clean": clean, "corrupted": corrupted, "mean_corrupted": sum(corrupted.values()) / len(corrupted)}


def preprocessed(batches, preprocessing):
    """uint8 `(images, labels)` batches -> model inputs, preprocessed in parallel and prefetched."""
    preprocess = get_preprocessor(preprocessing)
    return batches.map(lambda x, y: (preprocess(x), y), num_parallel_calls=tf.data.AUTOTUNE).prefetch(
        tf.data.AUTOTUNE)


def benchmark_errors(classifier, source, *, corruptions, severities, preprocessing, batch_size=EVAL_BATCH_SIZE,
                     done=None, on_result=None, verbose=1) -> dict:
    """Error (in %) at every (corruption, severity) of a corrupted-set source, for one model.

    Args:
        classifier: a Keras classifier (loaded once for all corruptions).
        source: an `ar2_tf.evaluation.corrupted_sets` source (`batches(corruption, severity, batch_size)`).
        corruptions, severities: what to evaluate.
        preprocessing: the model's preprocessing name.
        done: {corruption: {str(severity): error}} already computed (skipped).
        on_result: called as on_result(corruption, severity, error) after each cell, and
            on_result(corruption, None, message) when a corruption fails.
        verbose: one progress bar per corruption.

    Returns:
        {"errors": {corruption: {"1": error, ...}}, "failed": {corruption: message}}.
        A corruption whose data is missing or broken is reported in "failed" and the others go on.
    """
    errors = {c: dict((done or {}).get(c, {})) for c in corruptions}
    failed = {}

    def record(_, corruption, severity, value):
        if severity is None:
            failed[corruption] = value
        else:
            errors[corruption][str(severity)] = value
        if on_result:
            on_result(corruption, severity, value)

    evaluate_cells({"model": ErrorCounter(classifier, preprocessing, fold=True)}, source, corruptions=corruptions,
                   severities=severities, batch_size=batch_size, done={"model": errors}, on_result=record,
                   verbose=verbose)
    return {"errors": {c: e for c, e in errors.items() if e}, "failed": failed}
