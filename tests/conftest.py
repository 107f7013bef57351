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
