"""Untrusted model files and folder names: no code runs, no path escapes."""

import os
import sys

import keras
import numpy as np
import pytest

from ar2_tf import evaluate, train
from ar2_tf.cli import run_main
from ar2_tf.data import image_folder
from ar2_tf.errors import UserError
from ar2_tf.models import loading
from export.__main__ import main as export_main
from tests.helpers import TINY_TRAIN_FLAGS


def _touching_lambda(marker):
    return lambda x: (open(marker, "w").close(), x)[1]


def lambda_model(path, marker, side=8, classes=3):
    """A classifier whose Lambda layer would create `marker` when its Python code runs."""
    inputs = keras.Input((side, side, 3))
    touch = keras.layers.Lambda(_touching_lambda(marker))  # Keras stores a lambda's bytecode in the file
    x = keras.layers.Conv2D(4, 3)(touch(inputs))
    outputs = keras.layers.Dense(classes, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    keras.Model(inputs, outputs).save(path)
    os.remove(marker)  # building the model ran the lambda once; start clean
    return path


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_lambda_layers_are_refused_by_default_and_load_only_when_opted_in(tmp_path, suffix):
    marker = str(tmp_path / "pwned")
    path = lambda_model(str(tmp_path / f"lambda{suffix}"), marker)
    with pytest.raises(UserError, match="pass `unsafe_model_loading`"):  # a Python caller's name for the opt-in
        loading.load_model_file(path)
    assert not os.path.exists(marker)
    model = loading.load_model_file(path, unsafe_model_loading=True)
    model(np.zeros((1, 8, 8, 3), np.float32))
    assert os.path.exists(marker)  # the opt-out really runs the file's code


EVALUATE_FLAGS = ["--corruptions", "fog", "--severities", "1", "--verbose", "0"]


def test_a_trusted_lambda_model_is_repaired_evaluated_and_exported_with_the_opt_in(tmp_path, capsys):
    """Every copy a run makes of the model (the frozen reference, the folded evaluation copy) copies its Lambda
    too, and every command that loads the file or the run takes the same opt-in."""
    model = lambda_model(str(tmp_path / "lambda.keras"), str(tmp_path / "ran"), side=32, classes=6)
    run = str(tmp_path / "run")
    assert run_main(train.main, TINY_TRAIN_FLAGS + ["--model", model, "--unsafe-model-loading", "--out", run]) == 0
    assert run_main(evaluate.main, ["--model", run, *EVALUATE_FLAGS]) == 2
    assert "--unsafe-model-loading" in capsys.readouterr().err  # a flag the command has
    assert run_main(evaluate.main, ["--model", run, *EVALUATE_FLAGS, "--unsafe-model-loading"]) == 0
    assert run_main(export_main, ["--run", run, "--out", str(tmp_path / "serving"), "--unsafe-model-loading"]) == 0


CUSTOM_LAYERS = """
import keras


@keras.saving.register_keras_serializable("ar2_security_test")
class Doubler(keras.layers.Layer):
    def call(self, x):
        return 2.0 * x
"""


def test_a_model_with_custom_layers_runs_with_the_file_that_registers_them(tmp_path, capsys):
    source = tmp_path / "doubler_layers.py"
    source.write_text(CUSTOM_LAYERS)
    loading.import_custom_objects([str(source)])
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3)(keras.saving.get_registered_object("ar2_security_test>Doubler")()(inputs))
    path = str(tmp_path / "custom.keras")
    keras.Model(inputs, keras.layers.Dense(6, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))).save(path)

    def forget():  # as a new process: the class unregistered, the file not imported
        keras.saving.get_custom_objects().pop("ar2_security_test>Doubler", None)
        sys.modules.pop("_ar2_custom_objects_doubler_layers", None)

    forget()
    try:
        flags = TINY_TRAIN_FLAGS + ["--model", path, "--out", str(tmp_path / "run")]
        assert run_main(train.main, flags) == 2
        assert "pass that Python file with --custom-objects (or import it" in capsys.readouterr().err
        assert run_main(train.main, flags + ["--custom-objects", str(source)]) == 0
        forget()
        assert run_main(evaluate.main, ["--model", str(tmp_path / "run"), *EVALUATE_FLAGS,
                                        "--custom-objects", str(source)]) == 0
    finally:
        forget()


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
        loading.load_model_file(path)


@pytest.mark.parametrize("name", ["~root", "bad\x01name"])
def test_odd_class_folder_names_are_refused(tmp_path, name):
    (tmp_path / "train" / name).mkdir(parents=True)
    with pytest.raises(UserError, match="class folder name"):
        image_folder.list_classes(str(tmp_path / "train"))
