"""Many models in one pass: per-model preprocessing from one uint8 batch, failures kept per model, no model
kept alive by its counter."""

import gc
import weakref

import numpy as np
import pytest
import tensorflow as tf

from ar2_tf.data.preprocessing import get_preprocessor
from ar2_tf.evaluation import corrupted_sets
from ar2_tf.evaluation.multi_model import ErrorCounter, count_errors, evaluate_cells
from tests.helpers import trained_tiny_classifier


@pytest.fixture(scope="module")
def classifiers():
    return [trained_tiny_classifier(0), trained_tiny_classifier(1)]


@pytest.fixture(scope="module")
def demo():
    from ar2_tf.data.demo import load_demo

    _, _, images, labels = load_demo(train_size=1, test_size=90, seed=1)
    return images, labels.astype(np.int64)


def _wrong(classifier, images, labels, preprocessing):
    predicted = np.argmax(classifier(get_preprocessor(preprocessing)(images), training=False), axis=-1)
    return int(np.sum(predicted != labels))


def test_each_model_preprocesses_the_shared_uint8_batch_its_own_way(classifiers, demo):
    images, labels = demo
    batches = tf.data.Dataset.from_tensor_slices(demo).batch(32)
    counters = {"unit": ErrorCounter(classifiers[0], "unit"), "tf": ErrorCounter(classifiers[0], "tf"),
                "other": ErrorCounter(classifiers[1], "unit")}
    seen = []
    counts, failed = count_errors(batches, counters, progress=seen.append)
    assert failed == {} and seen == [32, 32, 26]
    assert counts == {"unit": (_wrong(classifiers[0], images, labels, "unit"), 90),
                      "tf": (_wrong(classifiers[0], images, labels, "tf"), 90),
                      "other": (_wrong(classifiers[1], images, labels, "unit"), 90)}
    assert counts["unit"] != counts["tf"]  # the same model, two preprocessings: two different results


def test_a_model_that_fails_leaves_the_pass_and_the_others_go_on(classifiers, demo):
    class Broken:
        def start_stream(self):
            pass

        def __call__(self, images, labels):
            raise tf.errors.InvalidArgumentError(None, None, "Matrix size-incompatible: In[0]: [32,12]\nmore lines")

    counts, failed = count_errors(tf.data.Dataset.from_tensor_slices(demo).batch(32),
                                  {"good": ErrorCounter(classifiers[0], "unit"), "bad": Broken()})
    assert failed == {"bad": "Matrix size-incompatible: In[0]: [32,12]"}
    assert counts == {"good": (_wrong(classifiers[0], *demo, "unit"), 90)}


def test_every_counter_starts_a_stream_before_each_pass(classifiers, demo):
    class Recording(ErrorCounter):
        def __init__(self, *args):
            super().__init__(*args)
            self.events = []

        def start_stream(self):
            self.events.append("start")

        def __call__(self, images, labels):
            self.events.append(len(labels))
            return super().__call__(images, labels)

    counter = Recording(classifiers[0], "unit")
    batches = tf.data.Dataset.from_tensor_slices(demo).batch(50)
    for _ in range(2):
        count_errors(batches, {"model": counter})
    assert counter.events == ["start", 50, 40, "start", 50, 40]


def test_cells_skip_what_is_done_and_a_failing_source_fails_that_corruption_for_every_model(tmp_path, classifiers,
                                                                                            demo):
    images, labels = demo
    rng = np.random.default_rng(0)
    stack = rng.integers(0, 256, (5 * 90, 32, 32, 3), dtype=np.uint8)
    np.save(tmp_path / "contrast.npy", stack)
    np.save(tmp_path / "labels.npy", labels)
    source = corrupted_sets.NumpyCSource(str(tmp_path))
    counters = {0: ErrorCounter(classifiers[0], "unit"), 1: ErrorCounter(classifiers[1], "unit")}
    reads, results = [], []
    batches = source.batches
    source.batches = lambda c, s, b: reads.append((c, s)) or batches(c, s, b)
    evaluate_cells(counters, source, corruptions=("fog", "contrast"), severities=(1, 2), batch_size=64,
                   done={0: {"contrast": {"1": 50.0}}}, on_result=lambda *r: results.append(r), verbose=0)
    assert reads == [("fog", 1), ("contrast", 1), ("contrast", 2)]  # each set read once for both models
    assert [r[:3] for r in results if r[2] is None] == [(0, "fog", None), (1, "fog", None)]
    assert "fog.npy" in results[0][3] and "is missing" in results[0][3]
    measured = {(key, c, s): e for key, c, s, e in results if s is not None}
    assert set(measured) == {(1, "contrast", 1), (0, "contrast", 2), (1, "contrast", 2)}
    second = stack[90:180]
    assert measured[(0, "contrast", 2)] == pytest.approx(100 * _wrong(classifiers[0], second, labels, "unit") / 90)
    assert measured[(1, "contrast", 2)] == pytest.approx(100 * _wrong(classifiers[1], second, labels, "unit") / 90)


def test_a_counter_does_not_keep_its_model_alive(demo):
    classifier = trained_tiny_classifier(2, epochs=1)
    counter = ErrorCounter(classifier, "unit")
    assert int(counter(*[tf.constant(a[:8]) for a in demo])[1]) == 8
    alive = weakref.ref(classifier)
    del classifier
    gc.collect()
    assert alive() is None, "the compiled counter kept the model (and its weights) alive"


def test_a_folding_counter_counts_as_the_model_from_its_own_copy(demo):
    import keras

    from tests.helpers import tiny_classifier

    images, labels = demo
    classifier = tiny_classifier(num_classes=6, input_shape=(32, 32, 3))  # conv -> relu -> BatchNorm, then one
    norm = classifier.get_layer("bn1")
    inputs = keras.Input((32, 32, 3))  # ... and a foldable conv -> BatchNorm in front of it
    x = keras.layers.BatchNormalization()(keras.layers.Conv2D(3, 1, use_bias=False)(inputs))
    classifier = keras.Model(inputs, classifier(x))
    for layer, seed in ((classifier.layers[2], 0), (norm, 1)):
        rng = np.random.default_rng(seed)
        layer.moving_mean.assign(rng.normal(0, 0.3, layer.moving_mean.shape))
        layer.moving_variance.assign(rng.uniform(0.2, 2.0, layer.moving_variance.shape))
    batches = tf.data.Dataset.from_tensor_slices(demo).batch(32)
    counts, _ = count_errors(batches, {"folded": ErrorCounter(classifier, "unit", fold=True),
                                       "as is": ErrorCounter(classifier, "unit")})
    assert counts["folded"] == counts["as is"] == (_wrong(classifier, images, labels, "unit"), len(labels))

    counter = ErrorCounter(classifier, "unit", fold=True)
    alive = weakref.ref(classifier)
    del classifier
    gc.collect()
    assert alive() is None  # the counter keeps its folded copy, not the model
    assert int(counter(tf.constant(images[:8]), tf.constant(labels[:8]))[1]) == 8


def test_several_counters_tracing_once_each_raise_no_retracing_warning(classifiers, demo):
    """Six counters, each compiled for a full and a last, smaller batch: TensorFlow's retracing detector counts them
    as one function (their code is shared) and would warn of a loop that keeps retracing."""
    import logging

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    tf.get_logger().addHandler(handler)
    try:
        images, labels = demo
        for classifier in classifiers * 3:
            counter = ErrorCounter(classifier, "unit")
            counter(images[:64], labels[:64])
            counter(images[64:], labels[64:])
    finally:
        tf.get_logger().removeHandler(handler)
    assert not [record for record in records if "retracing" in record.getMessage()]
