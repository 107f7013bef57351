"""Copies of a model in memory, Lambda layers included (top level and nested), for every copy a run makes:
the frozen reference, the BatchNorm-folded evaluation copy and the mixed-precision training copy; model
files are still loaded in safe mode."""

import os

import keras
import numpy as np
import pytest

from ar2_tf.errors import UserError
from ar2_tf.method.repair_model import frozen_copy
from ar2_tf.models import loading
from ar2_tf.models.batchnorm_folding import fold_batchnorm
from ar2_tf.models.cloning import copy_model
from ar2_tf.runs import precision
from tests.helpers import with_batchnorm_statistics

L = keras.layers


def _lambda_model(path):
    """A classifier with a Lambda at the top level and another inside a nested Sequential, loaded from a file
    with the opt-in (as `unsafe_model_loading` loads it)."""
    inner = keras.Sequential([keras.Input((8, 8, 4)), L.Lambda(lambda x: x - 0.5), L.Conv2D(4, 3, padding="same"),
                              L.BatchNormalization()], name="inner")
    inputs = keras.Input((8, 8, 3))
    x = inner(L.Conv2D(4, 3, padding="same")(L.Lambda(lambda x: x * 2.0)(inputs)))
    model = keras.Model(inputs, L.Dense(3, activation="softmax")(L.GlobalAveragePooling2D()(x)))
    with_batchnorm_statistics(model).save(path)
    return loading.load_model_file(path, unsafe_model_loading=True)


def test_models_with_lambda_layers_are_copied_for_every_use_and_files_stay_safe(tmp_path):
    path = str(tmp_path / "lambda.keras")
    model = _lambda_model(path)
    x = np.random.default_rng(0).uniform(0, 1, (4, 8, 8, 3)).astype(np.float32)
    expected = model(x, training=False).numpy()

    copy = copy_model(model)
    np.testing.assert_array_equal(copy(x, training=False).numpy(), expected)
    assert not {id(v) for v in copy.weights} & {id(v) for v in model.weights}
    reference = frozen_copy(model)
    assert not reference.trainable_variables
    np.testing.assert_array_equal(reference(x, training=False).numpy(), expected)
    np.testing.assert_allclose(fold_batchnorm(model)(x, training=False).numpy(), expected, atol=1e-6)
    mixed = precision.with_policy(model, "mixed_bfloat16", keep_float32={"dense", "global_average_pooling2d"})
    assert mixed.get_layer("inner").layers[1].compute_dtype == "bfloat16"  # nested layers get the policy too
    np.testing.assert_allclose(mixed(x, training=False).numpy(), expected, atol=0.05)

    with pytest.raises(UserError, match="`unsafe_model_loading`"):  # copying switched nothing off for files
        loading.load_model_file(path)
    assert os.path.exists(path)
