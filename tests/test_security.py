"""Untrusted model files and folder names: no code runs, no path escapes (issue 10)."""

import os

import keras
import numpy as np
import pytest

from ar2_tf.data import image_folder
from ar2_tf.errors import UserError
from ar2_tf.runs import models


def _touching_lambda(marker):
    return lambda x: (open(marker, "w").close(), x)[1]


def lambda_model(path, marker):
    """A classifier whose Lambda layer would create `marker` when its Python code runs."""
    inputs = keras.Input((8, 8, 3))
    touch = keras.layers.Lambda(_touching_lambda(marker))  # Keras stores a lambda's bytecode in the file
    x = keras.layers.Conv2D(4, 3)(touch(inputs))
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    keras.Model(inputs, outputs).save(path)
    os.remove(marker)  # building the model ran the lambda once; start clean
    return path


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_lambda_layers_are_refused_by_default_and_load_only_when_opted_in(tmp_path, suffix):
    marker = str(tmp_path / "pwned")
    path = lambda_model(str(tmp_path / f"lambda{suffix}"), marker)
    with pytest.raises(UserError, match="--unsafe-model-loading"):
        models.load_model_file(path)
    assert not os.path.exists(marker)
    model = models.load_model_file(path, unsafe=True)
    model(np.zeros((1, 8, 8, 3), np.float32))
    assert os.path.exists(marker)  # the opt-out really runs the file's code


def test_unregistered_custom_objects_are_refused(tmp_path):
    @keras.saving.register_keras_serializable(package="test_only")
    class Doubler(keras.layers.Layer):
        def call(self, x):
            return 2 * x

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3)(Doubler()(inputs))
    path = str(tmp_path / "custom.keras")
    keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x))).save(path)
    keras.saving.get_custom_objects().pop("test_only>Doubler")
    with pytest.raises(UserError, match="custom class or function that is not registered"):
        models.load_model_file(path)


@pytest.mark.parametrize("name", ["~root", "bad\x01name"])
def test_odd_class_folder_names_are_refused(tmp_path, name):
    (tmp_path / "train" / name).mkdir(parents=True)
    with pytest.raises(UserError, match="class folder name"):
        image_folder.list_classes(str(tmp_path / "train"))
