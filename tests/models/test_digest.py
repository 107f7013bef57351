"""A model's digest names the function it computes: equal for a saved and reloaded copy, different when one
weight value or the architecture differs."""

import keras
import numpy as np

from ar2_tf.models.digest import model_digest
from tests.helpers import trained_tiny_classifier


def test_a_saved_copy_has_the_digest_of_its_original(tmp_path):
    model = trained_tiny_classifier(0)
    model.save(tmp_path / "copy.keras")
    assert model_digest(keras.saving.load_model(tmp_path / "copy.keras", compile=False)) == model_digest(model)


def test_one_changed_weight_value_changes_the_digest():
    model = trained_tiny_classifier(0)
    before = model_digest(model)
    kernel = model.weights[0]
    changed = kernel.numpy().copy()
    changed.flat[0] = np.nextafter(changed.flat[0], np.inf)  # the smallest step a float32 can take
    kernel.assign(changed)
    assert model_digest(model) != before


def test_the_same_weights_in_another_architecture_have_another_digest():
    model = trained_tiny_classifier(0)
    config = model.get_config()
    head = next(layer for layer in config["layers"] if layer["class_name"] == "Dense")
    head["config"]["activation"] = "sigmoid"
    other = keras.Model.from_config(config)
    other.set_weights(model.get_weights())
    assert model_digest(other) != model_digest(model)
