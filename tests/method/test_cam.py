"""CAMs (Eq. 1): head discovery on three model families, the batched maths, clear errors."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from ar2_tf.errors import UserError
from ar2_tf.method import cam
from ar2_tf.runs.models import cifar_resnet
from tests.helpers import manual_cams, tiny_classifier


def test_cams_equal_manual_weighted_sum_of_feature_maps():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(3, 4, 5, 6)).astype(np.float32)
    kernel = rng.normal(size=(6, 7)).astype(np.float32)
    classes = np.array([[0, 6], [3, 3], [5, 1]])
    got = cam.class_activation_maps(features, kernel, classes).numpy()
    np.testing.assert_allclose(got, manual_cams(features, kernel, classes), rtol=1e-5, atol=1e-5)
    every = cam.all_class_activation_maps(features, kernel).numpy()
    np.testing.assert_allclose(every[np.arange(3)[:, None], classes], got, rtol=1e-5, atol=1e-5)


def _check_model(model, x):
    """The found head reproduces the model: mean over H, W of M_c plus b_c is the logit of class c."""
    head = cam.find_cam_head(model)
    backbone = cam.build_backbone(model, head)
    dense = model.get_layer(head.dense_layer)
    features = backbone(x, training=False)
    logits = cam.logits_from_features(features, dense.kernel, dense.bias)
    np.testing.assert_allclose(tf.nn.softmax(logits).numpy(), model(x, training=False).numpy(), atol=1e-4)
    maps = cam.all_class_activation_maps(features, dense.kernel)
    np.testing.assert_allclose(tf.reduce_mean(maps, axis=[2, 3]) + dense.bias, logits, rtol=1e-4, atol=1e-4)
    return head


def test_shared_resnet20_avgpool_flatten_softmax_head(resnet20, cifar10_test):
    head = _check_model(resnet20, cifar10_test[0][:8].astype(np.float32) / 255.0)
    assert resnet20.get_layer(head.feature_layer).output.shape[1:] == (8, 8, 64)
    assert head.dense_layer == "dense_1"


def test_keras_applications_resnet50():
    model = keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3), classes=5)
    head = _check_model(model, np.random.default_rng(1).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32))
    assert head == cam.CAMHead("conv5_block3_out", "predictions")


def test_project_cifar_resnet():
    model = cifar_resnet("resnet20", 10)
    head = _check_model(model, np.random.default_rng(2).uniform(size=(2, 32, 32, 3)).astype(np.float32))
    assert head == cam.CAMHead("stage3_block3_out", "predictions")


def test_separate_activation_and_full_window_average_pooling():
    head = _check_model(tiny_classifier(head="avgpool"), np.ones((1, 16, 16, 3), np.float32))
    assert head == cam.CAMHead("features", "classes")


def test_explicit_layer_names_override_the_search():
    model = tiny_classifier()
    head = cam.find_cam_head(model, feature_layer="features", dense_layer="classes")
    assert head == cam.CAMHead("features", "classes")
    with pytest.raises(UserError, match="has 8 channels but Dense layer 'classes' expects 12"):
        cam.find_cam_head(model, feature_layer="conv1")


@pytest.mark.parametrize("build, message", [
    (lambda x: keras.layers.Dense(3)(keras.layers.Flatten()(x)), "must follow global average pooling"),
    (lambda x: keras.layers.Dense(3)(keras.layers.GlobalMaxPooling2D()(x)), "GlobalMaxPooling2D"),
    (lambda x: keras.layers.Conv2D(3, 1)(x), "does not end in a Dense"),
])
def test_model_without_cam_able_head_names_what_it_found_and_the_flags(build, message):
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, build(keras.layers.Conv2D(4, 3)(inputs)))
    with pytest.raises(UserError, match=message) as error:
        cam.find_cam_head(model)
    assert "--feature-layer" in str(error.value) and "--dense-layer" in str(error.value)


def test_unknown_override_layer_is_a_user_error():
    with pytest.raises(UserError, match="no such layer"):
        cam.find_cam_head(tiny_classifier(), dense_layer="nope")
