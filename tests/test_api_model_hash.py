"""The name an in-memory model is written under by `ar2_tf.repair` (`ar2_tf.runs.given_inputs.model_path`): a hash of its
layers, its wiring and its weights, so that a different model is a different run and the same one resumes."""

import os

import keras
import numpy as np
import pytest

from ar2_tf.runs.given_inputs import model_path


def _branches(swapped=False, skip=True, seed=0):
    """Two Dense branches concatenated (in the order `swapped` says), then a Dense with or without a skip
    connection from the first branch; the same layers and weights every time for one `seed`."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((4,))
    first, second = keras.layers.Dense(3)(inputs), keras.layers.Dense(3)(inputs)
    x = keras.layers.Concatenate()([second, first] if swapped else [first, second])
    x = keras.layers.Dense(3)(x)
    x = keras.layers.Add()([x, first if skip else x])
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))


def _name(model, folder):
    return os.path.basename(model_path(str(folder), model))


@pytest.mark.parametrize("change", [{"swapped": True}, {"skip": False}], ids=["inputs swapped", "no skip"])
def test_the_same_layers_and_weights_wired_apart_are_different_models(tmp_path, change):
    model, rewired = _branches(), _branches(**change)
    rewired.set_weights(model.get_weights())  # identical layers, settings and weights: only the wiring differs
    probe = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    assert not np.allclose(model.predict(probe, verbose=0), rewired.predict(probe, verbose=0))
    assert _name(model, tmp_path) != _name(rewired, tmp_path)


def test_the_same_model_built_again_has_the_same_name(tmp_path):
    model, again = _branches(), _branches()  # new layer names (dense_5 ...), the same graph and weights
    assert [layer.name for layer in model.layers] != [layer.name for layer in again.layers]
    assert _name(model, tmp_path) == _name(again, tmp_path)
    assert _name(model, tmp_path) != _name(_branches(seed=1), tmp_path)  # other weights


def test_a_nested_models_wiring_counts_and_a_layer_free_operation_too(tmp_path):
    def wrapped(body_skip=True, offset=1.0):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((4,))
        body = _branches(skip=body_skip)
        return keras.Model(inputs, body(inputs + offset))

    model = wrapped()
    assert _name(model, tmp_path) == _name(wrapped(), tmp_path)
    assert _name(model, tmp_path) != _name(wrapped(body_skip=False), tmp_path)
    assert _name(model, tmp_path) != _name(wrapped(offset=2.0), tmp_path)
