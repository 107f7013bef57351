"""Shared test fixtures: the real offline data and model in ../shared, and quiet TensorFlow logs."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared")
RESNET20 = os.path.join(SHARED, "models", "cifar10_resnet20v1.h5")
CIFAR10_EXACT = os.path.join(SHARED, "data", "cifar10", "cifar10_exact_official_subset.npz")
CIFAR10_JPEG = os.path.join(SHARED, "data", "cifar10", "cifar10_jpeg_bytes_official_order.npz")


@pytest.fixture(scope="session")
def resnet20():
    """The real pretrained CIFAR-10 ResNet-20 (AveragePooling2D + Flatten + Dense + softmax head)."""
    import keras

    return keras.saving.load_model(RESNET20, compile=False)


@pytest.fixture(scope="session")
def cifar10_test():
    """The 1,017 original-pixel CIFAR-10 test images and their labels."""
    with np.load(CIFAR10_EXACT, allow_pickle=False) as data:
        return data["x_test"], data["y_test"].astype(np.int64)


@pytest.fixture(scope="session")
def cifar10_class_names():
    """CIFAR-10's ten class names, as stored beside those images."""
    with np.load(CIFAR10_EXACT, allow_pickle=False) as data:
        return [str(name) for name in data["class_names"]]


def tiny_classifier(num_classes=4, input_shape=(16, 16, 3), head="gap", seed=0):
    """A small conv net with a CAM-able head: "gap" (GlobalAveragePooling2D + Dense softmax),
    "avgpool" (AveragePooling2D over the map + Flatten + Dense + separate softmax Activation)."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.Conv2D(12, 3, strides=2, padding="same", activation="relu", name="features")(x)
    if head == "gap":
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
        outputs = keras.layers.Dense(num_classes, activation="softmax", name="classes")(x)
    else:
        x = keras.layers.AveragePooling2D(x.shape[1], name="pool")(x)
        x = keras.layers.Flatten(name="flatten")(x)
        x = keras.layers.Dense(num_classes, name="classes")(x)
        outputs = keras.layers.Activation("softmax", name="softmax")(x)
    return keras.Model(inputs, outputs)
