"""TENT: only BatchNorm γ/β move, entropy falls on a batch, a stream adapts from a reset each time."""

import numpy as np
import tensorflow as tf

from ar2_tf.baselines.tent import Tent, TentCounter, affine_variables, entropy
from ar2_tf.evaluation.multi_model import count_errors
from tests.helpers import tiny_classifier


def _batch(seed=0):
    return np.random.default_rng(seed).uniform(size=(16, 16, 16, 3)).astype("float32")


def test_entropy_is_the_mean_shannon_entropy_of_the_softmax():
    logits = np.array([[0.0, 0.0], [np.log(3.0), 0.0]], "float32")  # p = (1/2, 1/2) and (3/4, 1/4)
    expected = (np.log(2) + -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))) / 2
    np.testing.assert_allclose(float(entropy(logits)), expected, rtol=1e-6)


def test_only_batchnorm_scale_and_offset_move_and_the_entropy_falls():
    model = tiny_classifier(seed=3)
    tent = Tent(model, learning_rate=0.05)
    tent.reset()
    affine = {v.path for v in affine_variables(model)}
    assert affine == {"bn1/gamma", "bn1/beta"}
    before = [w.numpy().copy() for w in model.weights]
    x = _batch()
    losses = [float(tent.adapt_and_predict(x)[1]) for _ in range(10)]
    assert losses[-1] < losses[0] - 1e-3
    moved = {w.path for w, old in zip(model.weights, before) if not np.array_equal(old, w.numpy())}
    # γ and β adapt; BatchNorm's moving statistics also move in training mode, but TENT never reads them.
    assert affine <= moved <= affine | {"bn1/moving_mean", "bn1/moving_variance"}


def _uint8_stream(count=3):
    return [(np.round(_batch(seed) * 255).astype("uint8"), np.arange(16) % 4) for seed in range(count)]


def test_every_stream_starts_from_the_pretrained_model():
    model = tiny_classifier(seed=4)
    counter = TentCounter(model, "unit")
    stream = tf.data.Dataset.from_tensor_slices(tuple(np.concatenate(a) for a in zip(*_uint8_stream()))).batch(16)
    first, _ = count_errors(stream, {"tent": counter})
    gamma = [w.path for w in model.weights].index("bn1/gamma")
    assert not np.array_equal(model.weights[gamma].numpy(), counter.tent.pretrained[gamma])  # it adapted
    again, _ = count_errors(stream, {"tent": counter})
    assert again == first  # the pass started from a reset: the same stream gives the same errors
    counter.start_stream()
    np.testing.assert_array_equal(model.weights[gamma].numpy(), counter.tent.pretrained[gamma])


def test_the_counter_counts_the_predictions_made_before_each_update():
    """Its counts equal TENT run by hand: batch statistics, the prediction, then the step."""
    stream = _uint8_stream()
    by_hand = Tent(tiny_classifier(seed=5))
    by_hand.reset()
    wrong = 0
    for images, labels in stream:
        logits, _ = by_hand.adapt_and_predict(images.astype("float32") / 255.0)
        wrong += int(np.sum(np.argmax(logits.numpy(), axis=-1) != labels))
    counts, failed = count_errors(stream, {"tent": TentCounter(tiny_classifier(seed=5), "unit")})
    assert failed == {} and counts == {"tent": (wrong, 48)}
