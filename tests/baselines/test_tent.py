"""TENT: one step equals entropy minimisation by hand with batch moments (frozen BatchNorm layers too), only
BatchNorm γ/β move, entropy falls on a batch, a stream adapts from a reset each time."""

import numpy as np
import pytest
import tensorflow as tf

from ar2_tf.baselines.tent import Tent, TentCounter, affine_variables, entropy
from ar2_tf.evaluation.multi_model import count_errors
from tests.helpers import frozen_base_classifier, tiny_classifier, with_batchnorm_statistics


def _batch(seed=0):
    return np.random.default_rng(seed).uniform(size=(16, 16, 16, 3)).astype("float32")


def test_entropy_is_the_mean_shannon_entropy_of_the_softmax():
    logits = np.array([[0.0, 0.0], [np.log(3.0), 0.0]], "float32")  # p = (1/2, 1/2) and (3/4, 1/4)
    expected = (np.log(2) + -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))) / 2
    np.testing.assert_allclose(float(entropy(logits)), expected, rtol=1e-6)


def _tent_step_by_hand(model, x, learning_rate):
    """One TENT step on `tiny_classifier` in plain TF: bn1 normalises with the batch's mean and biased variance,
    the logits come from that pass, then Keras' Adam first step on their mean entropy moves γ and β only.
    Returns (logits, γ, β after the step)."""
    conv1, bn1, features, classes = (model.get_layer(name) for name in ("conv1", "bn1", "features", "classes"))
    gamma, beta = tf.Variable(bn1.gamma.numpy()), tf.Variable(bn1.beta.numpy())
    h = conv1(x)
    mean, variance = tf.nn.moments(h, axes=[0, 1, 2])
    with tf.GradientTape() as tape:
        normalised = gamma * (h - mean) / tf.sqrt(variance + bn1.epsilon) + beta
        logits = tf.reduce_mean(features(normalised), axis=[1, 2]) @ classes.kernel + classes.bias
        p = tf.nn.softmax(logits)
        loss = tf.reduce_mean(-tf.reduce_sum(p * tf.math.log(p), axis=-1))
    # Adam's first step from zero moments, Keras' β₂ = 0.999 and ε = 1e-7: lr·√(1-β₂)·g / (√(1-β₂)·|g| + ε).
    root = np.sqrt(1 - 0.999)
    step = [learning_rate * root * g / (root * np.abs(g) + 1e-7) for g in tape.gradient(loss, [gamma, beta])]
    return logits.numpy(), gamma.numpy() - step[0], beta.numpy() - step[1]


@pytest.mark.parametrize("frozen", [False, True])
def test_one_step_equals_entropy_minimisation_by_hand_with_batch_moments(frozen):
    """A BatchNorm layer with trainable=False runs in inference mode in Keras even in training mode; TENT still
    normalises with the batch's moments and updates its γ and β, then gives the layer its flag back."""
    model = with_batchnorm_statistics(tiny_classifier(seed=6))  # source statistics far from the batch's
    bn1 = model.get_layer("bn1")
    bn1.trainable = not frozen
    x = _batch(7)
    expected_logits, expected_gamma, expected_beta = _tent_step_by_hand(model, x, learning_rate=0.05)
    tent = Tent(model, learning_rate=0.05)
    plain = tent.head.logits(tent.backbone(x, training=False)).numpy()
    tent.reset()
    logits, _ = tent.adapt_and_predict(x)
    np.testing.assert_allclose(logits.numpy(), expected_logits, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn1.gamma.numpy(), expected_gamma, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(bn1.beta.numpy(), expected_beta, rtol=1e-4, atol=1e-6)
    assert np.abs(logits.numpy() - plain).max() > 0.1  # not the source statistics' predictions
    gamma = tent.pretrained[[w.path for w in model.weights].index("bn1/gamma")]
    assert np.abs(bn1.gamma.numpy() - gamma).min() > 0.01  # every γ took a step of about the learning rate
    assert (bn1.trainable, bn1.gamma.trainable, bn1.beta.trainable) == (not frozen,) * 3


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


def _uint8_stream_32(count=3):
    rng = np.random.default_rng(8)
    return [(rng.integers(0, 256, (16, 32, 32, 3)).astype("uint8"), np.arange(16) % 6) for _ in range(count)]


def test_the_counter_adapts_a_frozen_base_as_a_trainable_one_and_keeps_it_frozen():
    """Transfer learning's usual model (base.trainable = False): the same counts and adapted weights as the same
    model with a trainable base, γ and β moved, and the base frozen again after the stream."""
    trainable = with_batchnorm_statistics(frozen_base_classifier())
    frozen = frozen_base_classifier()
    frozen.set_weights(trainable.get_weights())
    trainable.get_layer("base").trainable = True
    frozen_paths = [v.path for v in frozen.trainable_variables]
    gamma = frozen.get_layer("base").get_layer("bn1").gamma
    pretrained = gamma.numpy().copy()
    stream = _uint8_stream_32()
    counts, failed = count_errors(stream, {"trainable": TentCounter(trainable, "unit"),
                                           "frozen": TentCounter(frozen, "unit")})
    assert failed == {} and counts["frozen"] == counts["trainable"]
    assert not np.allclose(gamma.numpy(), pretrained, atol=1e-3)  # it adapted
    for adapted, reference in zip(frozen.weights, trainable.weights):
        np.testing.assert_allclose(adapted.numpy(), reference.numpy(), rtol=1e-4, atol=1e-5, err_msg=adapted.path)
    base = frozen.get_layer("base")
    assert base.trainable is False and base.get_layer("bn1").trainable is False
    assert [v.path for v in frozen.trainable_variables] == frozen_paths
