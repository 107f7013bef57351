"""BatchNorm adaptation: the statistics equal a direct computation, nothing trainable moves, a run works."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from ar2_tf import train
from ar2_tf.baselines.bn_adapt import BNAdaptModel, batch_statistics
from ar2_tf.cli import run_main
from tests.helpers import TINY_TRAIN_FLAGS, with_batchnorm_statistics


def two_norm_classifier():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv1")(inputs)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization(name="bn1")(x))
    x = keras.layers.Conv2D(5, 3, padding="same", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.BatchNormalization(name="bn2")(x))
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="classes")(x))


def test_statistics_are_the_average_batch_moments_computed_by_hand_and_nothing_trainable_moves():
    model = two_norm_classifier()
    rng = np.random.default_rng(0)
    batches = [rng.normal(2.0, 3.0, (6, 8, 8, 3)).astype("float32") for _ in range(3)]
    trainable = [v.numpy().copy() for v in model.trainable_variables]
    conv1, bn1, conv2 = (model.get_layer(name) for name in ("conv1", "bn1", "conv2"))
    expected = {"bn1": [], "bn2": []}
    for x in batches:  # by hand: each BatchNorm normalises with its batch's statistics in the forward pass
        h1 = conv1(x).numpy()
        m1, v1 = h1.mean(axis=(0, 1, 2)), h1.var(axis=(0, 1, 2))
        r1 = np.maximum(bn1.gamma.numpy() * (h1 - m1) / np.sqrt(v1 + bn1.epsilon) + bn1.beta.numpy(), 0)
        h2 = conv2(r1).numpy()
        expected["bn1"].append((m1, v1))
        expected["bn2"].append((h2.mean(axis=(0, 1, 2)), h2.var(axis=(0, 1, 2))))
    adapter = BNAdaptModel(model)
    adapter.compile(optimizer=keras.optimizers.SGD(0.1))
    data = tf.data.Dataset.from_tensor_slices(((np.stack(batches), np.stack(batches)), np.zeros((3, 6), "int64")))
    adapter.fit(data, epochs=1, verbose=0)
    for name, moments in expected.items():
        layer = model.get_layer(name)
        np.testing.assert_allclose(layer.moving_mean.numpy(), np.mean([m for m, _ in moments], axis=0), rtol=1e-4,
                                   atol=1e-5)
        np.testing.assert_allclose(layer.moving_variance.numpy(), np.mean([v for _, v in moments], axis=0),
                                   rtol=1e-4, atol=1e-5)
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(trainable, model.trainable_variables))


def test_bn_adapt_run_makes_one_pass_keeps_it_and_reports(tmp_path):
    """One pass over every training image, kept whatever the clean error does (no phase to select)."""
    out = str(tmp_path / "run")
    assert run_main(train.main, TINY_TRAIN_FLAGS + ["--method", "bn-adapt", "--max-clean-drop", "0", "--out",
                                                    out]) == 0
    with open(os.path.join(out, "report.json")) as file:
        report = json.load(file)
    assert report["schedule"] == {"iterations": 1, "refine_steps": 0, "finetune_steps": 1, "unit": "epoch"}
    assert report["config"]["method"] == "bn-adapt" and report["phases_run"] == 1
    assert report["validation"] is None and (report["train_size"], report["val_size"]) == (96, 0)
    assert report["after"] != report["before"]  # the adapted statistics, not the pretrained weights


def _adapt(model, batches):
    adapter = BNAdaptModel(model)
    adapter.compile(optimizer=keras.optimizers.SGD(0.1))
    data = tf.data.Dataset.from_tensor_slices(((np.stack(batches), np.stack(batches)), np.zeros((3, 6), "int64")))
    adapter.fit(data, epochs=1, verbose=0)


def test_batchnorms_inside_a_nested_backbone_adapt_as_in_the_flat_model():
    """Transfer learning's usual model, Sequential([base, pooling, head]): its BatchNorm inputs live in the base's
    own graph (the probe used to fail with a Keras error); the statistics equal the same network's, flat."""
    flat = two_norm_classifier()
    base = keras.Model(flat.inputs, flat.get_layer("bn2").output, name="base")  # conv1 ... bn2, sharing flat's
    nested = keras.Sequential([keras.Input((8, 8, 3)), keras.models.clone_model(base),
                               keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, activation="softmax")])
    nested.get_layer(index=0).set_weights(base.get_weights())
    rng = np.random.default_rng(1)
    batches = [rng.normal(2.0, 3.0, (6, 8, 8, 3)).astype("float32") for _ in range(3)]
    _adapt(flat, batches)
    _adapt(nested, batches)
    inner = nested.get_layer(index=0)
    for name in ("bn1", "bn2"):
        for statistic in ("moving_mean", "moving_variance"):
            np.testing.assert_allclose(getattr(inner.get_layer(name), statistic).numpy(),
                                       getattr(flat.get_layer(name), statistic).numpy(), rtol=1e-5, atol=1e-6)


def _nested_classifier():
    """`two_norm_classifier`'s layers as a base inside Sequential([base, pooling, head])."""
    flat = two_norm_classifier()
    base = keras.Model(flat.inputs, flat.get_layer("bn2").output, name="base")
    return keras.Sequential([keras.Input((8, 8, 3)), base, keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(3, activation="softmax")])


def _norms(model):
    inner = model.get_layer("base") if any(layer.name == "base" for layer in model.layers) else model
    return [inner.get_layer(name) for name in ("bn1", "bn2")]


@pytest.mark.parametrize("freeze", ["layers", "base"])
def test_frozen_batchnorms_adapt_as_trainable_ones_and_keep_their_flags(freeze):
    """Keras runs a BatchNorm with trainable=False in inference mode even in training mode: bn2's input would be
    normalised by bn1's moving statistics, which the adaptation overwrites batch by batch."""
    trainable = with_batchnorm_statistics(two_norm_classifier() if freeze == "layers" else _nested_classifier())
    frozen = keras.models.clone_model(trainable)
    frozen.set_weights(trainable.get_weights())
    if freeze == "layers":
        for layer in _norms(frozen):
            layer.trainable = False
    else:
        frozen.get_layer("base").trainable = False
    frozen_paths = [v.path for v in frozen.trainable_variables]
    pretrained = [layer.moving_mean.numpy().copy() for layer in _norms(trainable)]
    rng = np.random.default_rng(2)
    batches = [rng.normal(2.0, 3.0, (6, 8, 8, 3)).astype("float32") for _ in range(3)]
    _adapt(trainable, batches)
    _adapt(frozen, batches)
    for adapted, reference, source in zip(_norms(frozen), _norms(trainable), pretrained):
        assert not np.allclose(reference.moving_mean.numpy(), source, atol=0.1)  # the statistics were replaced
        for statistic in ("moving_mean", "moving_variance"):
            np.testing.assert_allclose(getattr(adapted, statistic).numpy(), getattr(reference, statistic).numpy(),
                                       rtol=1e-5, atol=1e-5)
    # The user's flags are what they were: the saved model stays frozen where it was.
    assert [layer.trainable for layer in _norms(frozen)] == [False, False]
    assert [layer.trainable for layer in _norms(trainable)] == [True, True]
    assert [v.path for v in frozen.trainable_variables] == frozen_paths
    if freeze == "base":
        assert frozen.get_layer("base").trainable is False


def test_batch_statistics_restores_every_flag_even_on_error():
    model = two_norm_classifier()
    bn1, bn2 = _norms(model)
    bn1.trainable = False
    with pytest.raises(RuntimeError, match="inside"):
        with batch_statistics([bn1, bn2]):
            assert bn1.trainable and bn2.trainable and bn1.gamma.trainable
            raise RuntimeError("inside")
    assert (bn1.trainable, bn1.gamma.trainable, bn1.beta.trainable) == (False, False, False)
    assert (bn2.trainable, bn2.gamma.trainable, bn2.beta.trainable) == (True, True, True)
