"""Many models, one pass: every test batch is made once and every model counts its errors on it.

Evaluating M models on a corrupted set used to mean M passes, each reading
(or generating) the whole set again. Here a pass reads the set's uint8
batches once and hands each batch to every model's `ErrorCounter`, which
preprocesses it the model's own way inside its compiled function: models
with different preprocessing share the uint8 batch, never a preprocessed copy.

`evaluate_cells` runs one pass per (corruption, severity) for the models that
still miss that cell (a resumed evaluation skips what it has), so a failing
corruption is reported for the models it concerns and the others go on:

- a source that fails (a missing file, a count mismatch) fails the
  corruption for every model in the pass;
- a model that fails on a batch fails that corruption for that model only.

A counter is anything with `counter(images, labels) -> (wrong, total)` and
`start_stream()`, called before each pass: a no-op for `ErrorCounter`, the
reset of a test-time adaptation (`ar2_tf.baselines.tent.TentCounter`), which
adapts on each test set from the pretrained model.

Nothing here keeps a batch or a dataset after its pass: memory is the
models plus the few batches the source's pipeline holds.
"""

import logging
import weakref

import tensorflow as tf

from ar2_tf.data.preprocessing import get_preprocessor
from ar2_tf.errors import UserError, first_line
from ar2_tf.models.batchnorm_folding import fold_batchnorm


class _CountersTraceOnce(logging.Filter):
    """Drops TensorFlow's "N out of the last M calls to <function ErrorCounter...count> triggered tf.function
    retracing" warning. Each counter compiles its own function, once per batch shape; TensorFlow's detector keys
    its statistics on the function's code, which every counter shares, and so takes several models traced once
    each for one function traced again and again."""

    def filter(self, record):
        message = record.getMessage()
        return not ("triggered tf.function retracing" in message and "ErrorCounter.__init__.<locals>.count" in message)


_COUNTERS_TRACE_ONCE = _CountersTraceOnce()


class ErrorCounter:
    """A classifier's compiled forward pass + error count, with the model's own preprocessing.

    `counter(images, labels)` returns `(wrong, total)` as int64 tensors for one
    batch. The counter holds the classifier weakly: whoever evaluates keeps the
    model, and a counter cached per model (`ar2_tf.evaluation.error_rates`)
    never keeps a model alive after its last use.

    Args:
        classifier: a Keras classifier (kept alive by the caller).
        preprocessing: a preprocessing spec applied inside the compiled function (uint8 batches in);
            None feeds the batches unchanged (already preprocessed).
        fold: count with a copy of the classifier's current weights with BatchNorm folded into the
            convolutions (`ar2_tf.models.batchnorm_folding`, faster inference), kept by the counter: for a model
            that no longer changes (an evaluation), never for one in training.
    """

    def __init__(self, classifier, preprocessing=None, fold=False):
        tf.get_logger().addFilter(_COUNTERS_TRACE_ONCE)  # once: a logger keeps one copy of a filter
        network = fold_batchnorm(classifier) if fold else classifier
        model = weakref.ref(classifier) if network is classifier else (lambda: network)
        preprocess = get_preprocessor(preprocessing) if preprocessing is not None else (lambda images: images)

        @tf.function(reduce_retracing=True)
        def count(images, labels):
            predicted = tf.argmax(model()(preprocess(images), training=False), axis=-1)
            wrong = tf.reduce_sum(tf.cast(predicted != tf.cast(labels, predicted.dtype), tf.int64))
            return wrong, tf.shape(labels, out_type=tf.int64)[0]

        self._count = count

    def start_stream(self):
        """Nothing to do: a fixed model counts every test set alike."""

    def __call__(self, images, labels):
        return self._count(images, labels)


def count_errors(batches, counters, progress=None) -> tuple:
    """One pass over `(images, labels)` batches, each batch given to every counter.

    Args:
        batches: an iterable of uint8 `(images, labels)` batches, read once.
        counters: {key: ErrorCounter or another counter (module docstring)}; each starts a new stream.
        progress: called with the batch size after each batch.

    Returns:
        ({key: (wrong, total)}, {key: message}): the counts of the models that
        went through, and the first line of the error of those that failed (a
        failing model leaves the pass; the others go on).

    Raises:
        whatever reading `batches` raises (the source failed: every model is concerned).
    """
    active = dict(counters)
    counts = {key: [0, 0] for key in counters}
    failed = {}
    for counter in counters.values():
        counter.start_stream()
    for images, labels in batches:
        for key, counter in list(active.items()):
            try:
                wrong, total = counter(images, labels)
            except (tf.errors.OpError, ValueError) as problem:  # a model whose graph rejects the batch
                failed[key] = first_line(problem)
                del active[key]
                continue
            counts[key][0] += int(wrong)
            counts[key][1] += int(total)
        if progress is not None:
            progress(len(labels))
        if not active:
            break
    return {key: tuple(counts[key]) for key in active}, failed


def evaluate_cells(counters, source, *, corruptions, severities, batch_size, done, on_result, titles=None,
                   verbose=1):
    """The error (in %) of every model at every (corruption, severity), one pass per cell for all models.

    Args:
        counters: {key: ErrorCounter}, one per model (models loaded once, by the caller).
        source: an `ar2_tf.evaluation.corrupted_sets` source (`batches(corruption, severity, batch_size)`).
        corruptions, severities: what to evaluate.
        batch_size: images per inference batch.
        done: {key: {corruption: {str(severity): error}}} already measured (skipped).
        on_result: called as on_result(key, corruption, severity, error) after each cell, and as
            on_result(key, corruption, None, message) when a corruption fails for that model.
        titles: {key: name} for the progress lines (default: the keys).
        verbose: one progress bar per corruption, then each model's errors.
    """
    titles = titles or {key: str(key) for key in counters}
    for corruption in corruptions:
        todo = {key: [s for s in severities if str(s) not in done.get(key, {}).get(corruption, {})]
                for key in counters}
        active = {key for key, missing in todo.items() if missing}
        cells = [s for s in severities if any(s in todo[key] for key in active)]
        if not cells:
            continue
        size = getattr(source, "size", lambda: None)()
        bar = _Progress(corruption, size * len(cells) if size else None, verbose)
        measured = {key: {} for key in active}
        failures = {}
        for severity in cells:
            wanted = {key: counter for key, counter in counters.items() if key in active and severity in todo[key]}
            try:
                counts, failed = count_errors(source.batches(corruption, severity, batch_size), wanted, bar.add)
                empty = [key for key, (_, total) in counts.items() if total == 0]
                if empty:
                    raise UserError(f"the {corruption} s{severity} set holds no images.")
            except (UserError, tf.errors.OpError, OSError) as problem:
                diagnose = getattr(source, "diagnose", None)  # a source that can name the files to blame
                named = diagnose(corruption, severity) if diagnose and isinstance(problem, tf.errors.OpError) else None
                failed = dict.fromkeys(active, named or first_line(problem))
                counts = {}
            for key, (wrong, total) in counts.items():
                measured[key][str(severity)] = 100.0 * wrong / total
                on_result(key, corruption, severity, measured[key][str(severity)])
            for key, message in failed.items():
                failures[key] = message
                active.discard(key)
                on_result(key, corruption, None, message)
            if not active:
                break
        bar.finish({titles[key]: cells for key, cells in measured.items()},
                   {titles[key]: message for key, message in failures.items()})


class _Progress:
    """One Keras progress bar per corruption, counting images; ends with each model's errors per severity."""

    def __init__(self, title, target, verbose):
        self.bar = None
        if verbose:
            import keras

            print(title)
            self.bar = keras.utils.Progbar(target, verbose=verbose, unit_name="image")
        self.seen = 0

    def add(self, count):
        self.seen += count
        if self.bar:
            self.bar.update(self.seen)

    def finish(self, errors, failures):
        if not self.bar:
            return
        self.bar.update(self.seen, finalize=True)
        for title in list(errors) + [t for t in failures if t not in errors]:
            line = "  ".join(f"s{s} {e:.1f}" for s, e in errors.get(title, {}).items())
            failure = f"  FAILED: {failures[title]}" if title in failures else ""
            print(f"  {title}: error (%) {line}{failure}")
