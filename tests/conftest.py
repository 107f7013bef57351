"""Shared fixtures: the real offline data and model in ../shared (paths in tests/helpers.py), quiet TF logs."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tests.helpers import CIFAR10_EXACT, RESNET20, needs_cifar10, needs_resnet20  # noqa: E402


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


# The fixtures above that read ../shared, and the mark that skips their tests in a checkout without it.
_NEEDS = {"resnet20": needs_resnet20, "cifar10_test": needs_cifar10, "cifar10_class_names": needs_cifar10}


def pytest_collection_modifyitems(items):
    """Under pytest-xdist (`--dist loadgroup`, pytest.ini), the tests of one module run on one worker, so its
    module fixtures are built once; modules that share a session fixture name one `xdist_group` instead. A
    test using a fixture of ../shared gets that fixture's `needs_*` mark (tests/helpers.py)."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
        for fixture in set(_NEEDS) & set(getattr(item, "fixturenames", ())):
            item.add_marker(_NEEDS[fixture])
