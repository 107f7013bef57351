"""Class activation maps (paper Eq. 1): M_c(x) = sum_k w_k^c f_k(x).

`f` is the last convolutional feature map and `w^c` the Dense weights of class
c that follow global average pooling. This module finds those two pieces in any
Keras classifier with a CAM-able head, exposes the backbone (input -> `f`) as a
weight-sharing sub-model, and computes CAMs for a batch of images and a set of
classes per image in one tensor op.

A CAM-able head is, from the output backwards: optional `Activation`/`Softmax`
layers, a `Dense` layer (any activation), optional `Dropout`/`Flatten`, then a
`GlobalAveragePooling2D`, or an `AveragePooling2D` whose window covers the whole
map (followed by `Flatten`). Explicit layer names override the search.
"""

import dataclasses

import keras
import tensorflow as tf

from ar2_tf.errors import UserError

_PASS_THROUGH_AFTER_DENSE = (keras.layers.Activation, keras.layers.Softmax)
_PASS_THROUGH_BEFORE_DENSE = (keras.layers.Dropout, keras.layers.Flatten)
_OVERRIDE_HINT = (
    "If the model has a global-average-pooling + Dense head under other names, "
    "pass --feature-layer NAME (the last convolutional feature map) and "
    "--dense-layer NAME (the class Dense layer)."
)


@dataclasses.dataclass(frozen=True)
class CAMHead:
    """Where Eq. 1 reads its inputs in a classifier.

    Attributes:
        feature_layer: name of the layer whose output is the feature map f [B,H,W,K].
        dense_layer: name of the Dense layer holding the class weights w [K, classes].
    """

    feature_layer: str
    dense_layer: str


def find_cam_head(model, feature_layer=None, dense_layer=None) -> CAMHead:
    """Finds the feature-map layer and the class Dense layer of `model`.

    Args:
        model: a built Keras classifier.
        feature_layer: optional name overriding the feature-map layer.
        dense_layer: optional name overriding the class Dense layer.

    Raises:
        UserError: the head is not global pooling + Dense, naming what was found.
    """
    layers = list(model.layers)
    if dense_layer is not None:
        dense = _get_layer(model, dense_layer, "--dense-layer")
        if not isinstance(dense, keras.layers.Dense):
            raise UserError(f"--dense-layer {dense_layer!r} is a {type(dense).__name__}, not a Dense layer.")
    else:
        dense = _find_dense(layers)
    if feature_layer is not None:
        feature = _get_layer(model, feature_layer, "--feature-layer")
    else:
        feature = _find_feature_layer(model, layers, dense)
    _check_shapes(feature, dense)
    return CAMHead(feature_layer=feature.name, dense_layer=dense.name)


def _get_layer(model, name, flag):
    try:
        return model.get_layer(name)
    except ValueError:
        names = ", ".join(layer.name for layer in model.layers[-8:])
        raise UserError(f"{flag} {name!r}: the model has no such layer (its last layers: {names}).") from None


def _describe_tail(layers, count=5):
    return " -> ".join(f"{type(layer).__name__}({layer.name})" for layer in layers[-count:])


def _find_dense(layers):
    index = len(layers) - 1
    while index >= 0 and isinstance(layers[index], _PASS_THROUGH_AFTER_DENSE):
        index -= 1
    if index < 0 or not isinstance(layers[index], keras.layers.Dense):
        raise UserError(
            "cannot compute CAMs: the model does not end in a Dense classification layer; "
            f"its head is {_describe_tail(layers)}. {_OVERRIDE_HINT}"
        )
    return layers[index]


def _find_feature_layer(model, layers, dense):
    index = layers.index(dense) - 1
    flattened = False
    while index >= 0 and isinstance(layers[index], _PASS_THROUGH_BEFORE_DENSE):
        flattened = flattened or isinstance(layers[index], keras.layers.Flatten)
        index -= 1
    pool = layers[index] if index >= 0 else None
    if not _is_global_average_pool(pool, flattened):
        found = _describe_tail(layers[: layers.index(dense) + 1])
        raise UserError(
            "cannot compute CAMs: the Dense layer must follow global average pooling "
            "(GlobalAveragePooling2D, or AveragePooling2D over the whole map + Flatten); "
            f"found {found}. {_OVERRIDE_HINT}"
        )
    feature_tensor = pool.input
    for layer in layers:
        if layer is not pool and _outputs(layer, feature_tensor):
            return layer
    raise UserError(f"cannot find the layer producing the input of {pool.name!r}. {_OVERRIDE_HINT}")


def _outputs(layer, tensor):
    try:
        return layer.output is tensor
    except (AttributeError, ValueError):  # layers called several times have no single output
        return False


def _is_global_average_pool(layer, flattened):
    if isinstance(layer, keras.layers.GlobalAveragePooling2D):
        return True
    if isinstance(layer, keras.layers.AveragePooling2D) and flattened:
        height, width = layer.input.shape[1:3]
        out_height, out_width = layer.output.shape[1:3]
        return (height, width) == tuple(layer.pool_size) and (out_height, out_width) == (1, 1)
    return False


def _check_shapes(feature, dense):
    shape = feature.output.shape
    if len(shape) != 4:
        raise UserError(
            f"feature layer {feature.name!r} outputs shape {tuple(shape)}, not a [batch, H, W, channels] map. "
            f"{_OVERRIDE_HINT}"
        )
    if shape[-1] != dense.kernel.shape[0]:
        raise UserError(
            f"feature layer {feature.name!r} has {shape[-1]} channels but Dense layer {dense.name!r} "
            f"expects {dense.kernel.shape[0]} inputs; they are not a pooling + Dense pair. {_OVERRIDE_HINT}"
        )


def build_backbone(model, head: CAMHead):
    """Returns the sub-model input -> feature map; it shares (and trains) `model`'s weights."""
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, model.get_layer(head.feature_layer).output, name=f"{model.name}_backbone")


def class_activation_maps(features, kernel, classes):
    """Eq. 1 for chosen classes: M_c(x) = sum_k w_k^c f_k(x).

    Args:
        features: feature maps f, [B, H, W, K].
        kernel: Dense kernel w, [K, num_classes].
        classes: int class indices per image, [B, C].

    Returns:
        float32 CAMs [B, C, H, W] (bias excluded, as in Eq. 1).
    """
    weights = tf.gather(tf.transpose(tf.cast(kernel, tf.float32)), classes)  # [B, C, K]
    return tf.einsum("bhwk,bck->bchw", tf.cast(features, tf.float32), weights)


def all_class_activation_maps(features, kernel):
    """Eq. 1 for every class: [B, H, W, K] x [K, N] -> float32 [B, N, H, W]."""
    return tf.einsum("bhwk,kn->bnhw", tf.cast(features, tf.float32), tf.cast(kernel, tf.float32))


def logits_from_features(features, kernel, bias=None):
    """The head's pre-activation output: global average pooling, then the Dense layer.

    Equals mean_{h,w} M_c(x) + b_c for every class c, which ties Eq. 1 to the
    model's own prediction. Computed in float32 (CAMs stay float32 under mixed
    precision).
    """
    pooled = tf.reduce_mean(tf.cast(features, tf.float32), axis=[1, 2])
    logits = tf.matmul(pooled, tf.cast(kernel, tf.float32))
    if bias is not None:
        logits = logits + tf.cast(bias, tf.float32)
    return logits
