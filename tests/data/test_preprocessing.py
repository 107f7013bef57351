"""The one rule for a model's default preprocessing, and the functions it names."""

import numpy as np
import pytest

from ar2_tf.data.preprocessing import PREPROCESSORS, default_preprocessing, get_preprocessor
from ar2_tf.errors import UserError
from ar2_tf.runs.config import TrainConfig
from ar2_tf.runs.repair_run import model_preprocessing


@pytest.mark.parametrize("model, dataset, expected", [
    ("resnet50", "cifar10", "caffe"), ("resnet20", "imagenet", "unit"), ("m.keras", "cifar10", "unit"),
    ("m.keras", "imagenet", "caffe"), ("m.h5", "folder", "caffe"), ("m.keras", "demo", "unit"),
])
def test_default_follows_the_architecture_then_the_dataset(model, dataset, expected):
    assert default_preprocessing(model, dataset) == expected
    assert default_preprocessing(model, dataset, "torch") == "torch"


def test_a_resnet50_file_trains_with_what_evaluation_uses():
    # Regression: a ResNet-50 .keras file trained with x/255 while python -m ar2_tf.evaluate used "caffe".
    config = TrainConfig(dataset="imagenet", model="/models/resnet50.keras")
    assert model_preprocessing(config) == default_preprocessing(config.model, "imagenet") == "caffe"


def test_functions_map_uint8_pixels_to_float_inputs():
    pixels = np.array([[[[0, 128, 255]]]], np.uint8)
    np.testing.assert_allclose(get_preprocessor("unit")(pixels), [[[[0, 128 / 255, 1]]]], rtol=1e-5)
    np.testing.assert_allclose(get_preprocessor("tf")(pixels), [[[[-1, 128 / 127.5 - 1, 1]]]], atol=1e-6)
    assert set(PREPROCESSORS) == {"unit", "caffe", "tf", "torch", "none"}
    with pytest.raises(UserError, match="unknown preprocessing"):
        get_preprocessor("imagenet")
