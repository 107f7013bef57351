"""The head search on every head shape real models have, and the attention bound to it."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from ar2_tf.errors import UserError
from ar2_tf.method.attention import HeadAttention, resolve_attention
from ar2_tf.method.head import Head, backbone_variables, build_backbone, check_trainable, find_head, frozen_layers_note
from ar2_tf.models.architectures import cifar_resnet
from tests.helpers import frozen_base_classifier, tiny_classifier

HEADS = {  # tiny_classifier head -> (feature layer, head layers, class layer, linear)
    "gap": ("features", ("pool", "classes"), "classes", True),
    "avgpool": ("features", ("pool", "flatten", "classes"), "classes", True),
    "conv": ("features", ("pool", "dropout", "classes", "reshape"), "classes", True),
    "mlp": ("features", ("pool", "hidden", "classes"), "classes", False),
    "layernorm": ("features", ("pool", "norm", "classes"), "classes", False),
    "flatten": ("pool", ("flatten", "hidden", "classes"), "classes", False),
}


def _check(model, x):
    """The head reproduces the model: softmax of its logits is the model's output; for a linear head
    mean_{h,w} CAM + bias is the logit (Eq. 1 is exact), and Grad-CAM is CAM / (H·W)."""
    head = find_head(model)
    attention = HeadAttention(model, head)
    features = build_backbone(model, head)(x, training=False)
    logits = attention.logits(features)
    np.testing.assert_allclose(tf.nn.softmax(logits).numpy(), model(x, training=False).numpy(), atol=1e-5)
    if head.linear:
        kernel, bias = attention.linear_map()
        maps = tf.einsum("bhwk,kn->bnhw", features, kernel)
        np.testing.assert_allclose(tf.reduce_mean(maps, axis=[2, 3]) + bias, logits, rtol=1e-4, atol=1e-4)
        classes = tf.constant([[0, 1]] * len(x))
        size = features.shape[1] * features.shape[2]
        grad_cam = HeadAttention(model, head, "gradcam").maps(features, classes)
        np.testing.assert_allclose(grad_cam * size, attention.maps(features, classes), rtol=1e-3, atol=1e-4)
    return head


@pytest.mark.parametrize("shape", HEADS)
def test_every_head_shape_is_found_and_reproduces_the_model(shape):
    head = _check(tiny_classifier(head=shape), np.random.default_rng(0).random((3, 16, 16, 3)).astype("float32"))
    assert head == Head(*HEADS[shape])
    assert resolve_attention(head) == ("cam" if head.linear else "gradcam")


def test_shared_resnet20_avgpool_flatten_softmax_head(resnet20, cifar10_test):
    head = _check(resnet20, cifar10_test[0][:8].astype(np.float32) / 255.0)
    assert resnet20.get_layer(head.feature_layer).output.shape[1:] == (8, 8, 64)
    assert head.class_layer == "dense_1" and head.linear


def test_keras_applications_resnet50_and_project_resnet():
    model = keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3), classes=5)
    head = _check(model, np.random.default_rng(1).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32))
    assert head == Head("conv5_block3_out", ("avg_pool", "predictions"), "predictions", True)
    head = _check(cifar_resnet("resnet20", 10), np.random.default_rng(2).uniform(size=(2, 32, 32, 3)).astype("f4"))
    assert head.feature_layer == "stage3_block3_out"


def test_a_nested_backbone_model_is_split_in_the_outer_graph():
    inner = tiny_classifier()
    backbone = keras.Model(inner.inputs, inner.get_layer("features").output, name="base")
    inputs = keras.Input((16, 16, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(backbone(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="top")(pooled))
    assert _check(model, np.ones((2, 16, 16, 3), np.float32)).feature_layer == "base"


def test_cam_on_a_non_linear_head_is_refused_with_the_fix():
    with pytest.raises(UserError, match="`attention` gradcam"):
        resolve_attention(find_head(tiny_classifier(head="mlp")), "cam")


def test_explicit_layer_names_override_the_search():
    model = tiny_classifier(head="mlp")
    assert find_head(model, feature_layer="features", dense_layer="classes") == Head(*HEADS["mlp"])
    with pytest.raises(UserError, match="not a \\[batch, H, W, channels\\] map"):
        find_head(model, feature_layer="pool")  # the pooled vector
    head = find_head(tiny_classifier(head="flatten"), feature_layer="features")  # VGG: the last conv, not its pool
    assert head.layers == ("pool", "flatten", "hidden", "classes") and not head.linear


@pytest.mark.parametrize("build, message", [
    (lambda x: keras.layers.Conv2D(3, 1, activation="softmax")(x), "cannot find the class layer"),
    (lambda x: keras.layers.Dense(3)(x), "cannot find the last feature map"),
])
def test_model_without_a_head_names_what_it_found_and_the_flags(build, message):
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, build(keras.layers.Conv2D(4, 3)(inputs)))
    with pytest.raises(UserError, match=message) as error:
        find_head(model)
    assert "`feature_layer`" in str(error.value) and "`dense_layer`" in str(error.value)


def test_bad_override_layers_are_user_errors():
    with pytest.raises(UserError, match="not on the path"):
        find_head(tiny_classifier(), dense_layer="nope")
    with pytest.raises(UserError, match="no such layer"):
        find_head(tiny_classifier(), feature_layer="nope")
    with pytest.raises(UserError, match="followed by 'classes'"):
        find_head(tiny_classifier(head="mlp"), dense_layer="hidden")


def test_a_model_without_layers_before_its_head_is_refused():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Dense(4, activation="relu")(keras.layers.Flatten()(inputs))
    with pytest.raises(UserError, match="the last feature map found is the model's input image") as error:
        find_head(keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x)))
    assert "`feature_layer` NAME" in str(error.value)


def test_refinement_trains_the_trainable_backbone_and_refuses_a_frozen_one():
    model = frozen_base_classifier()
    head = find_head(model)
    assert head.feature_layer == "base"
    check_trainable(model, head, refines=False)  # fine-tuning still trains the head
    with pytest.raises(UserError, match="every layer up to the feature map 'base' is frozen.*`method` finetune"):
        check_trainable(model, head, refines=True)

    base = model.get_layer("base")
    base.trainable = True
    base.get_layer("conv1").trainable = False  # a partly frozen base: refinement trains the rest
    assert [v.path for v in backbone_variables(model, head)] == ["bn1/gamma", "bn1/beta", "features/kernel",
                                                                 "features/bias"]  # not conv1's, not the head's
    check_trainable(model, head, refines=True)

    model.trainable = False
    with pytest.raises(UserError, match=r"every layer of the model is frozen.*`model.trainable = True`"):
        check_trainable(model, head, refines=False)


def test_the_note_on_frozen_layers_says_what_stays_and_what_trains():
    model = frozen_base_classifier()
    head = find_head(model)
    assert frozen_layers_note(model, head, refines=False) == (
        "note: 3 of 4 layers with weights are frozen (trainable=False) and stay as they are, BatchNorm moving "
        "statistics included; fine-tuning trains the 1 trainable layer; to repair them too, set `trainable = True` "
        "on 'base' and save the model again.")

    base = model.get_layer("base")
    base.trainable = True
    base.get_layer("conv1").trainable = False
    model.get_layer("classes").trainable = False
    assert frozen_layers_note(model, head, refines=True) == (
        "note: 2 of 4 layers with weights are frozen (trainable=False) and stay as they are; AR2's refinement "
        "trains the 2 trainable layers before the feature map 'base', its fine-tuning the 2 trainable layers in "
        "all; to repair them too, set `trainable = True` on 'conv1', 'classes' and save the model again.")

    model.get_layer("classes").trainable = True
    assert frozen_layers_note(model, head, refines=True).startswith(
        "note: 1 of 4 layers with weights is frozen (trainable=False) and stays as it is; AR2's refinement trains "
        "the 2 trainable layers before the feature map 'base', its fine-tuning the 3 trainable layers in all;")
    assert frozen_layers_note(tiny_classifier(), find_head(tiny_classifier()), refines=True) is None
