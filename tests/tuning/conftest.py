"""The tuning tests' shared model: an untrained classifier for the demo images."""

import pytest

from tests.helpers import tiny_classifier


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """An untrained 6-class classifier for the 32x32 demo images (fast to load and train)."""
    path = str(tmp_path_factory.mktemp("model") / "tiny.keras")
    tiny_classifier(num_classes=6, input_shape=(32, 32, 3)).save(path)
    return path
