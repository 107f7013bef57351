"""BatchNorm folded into the convolution before it, for inference only.

At inference a BatchNormalization layer is an affine map per channel,
`y = gamma * (x - mean) / sqrt(var + eps) + beta`. When its input is a
convolution's output and nothing else reads that output, the map folds into
the convolution's kernel and bias: per output channel, `kernel' = kernel * s`
and `bias' = (bias - mean) * s + beta` with `s = gamma / sqrt(var + eps)`. The
folded model computes the same function with one op less per pair; measured
on this project's CPU (`python scripts/bench_folding.py`), inference takes
0.63-0.90x the time of the model as it is (docs/results/evaluation.md).

`fold_batchnorm` returns a folded *copy* of the current weights: evaluation
of a fixed model uses it (`ErrorCounter(..., fold=True)`), training
never does. Only exact Keras types fold (`Conv2D`, `DepthwiseConv2D`,
`SeparableConv2D`, channels-last, no activation, followed by a last-axis
`BatchNormalization`), whose maths is known; any other layer is copied as it
is, and a model that is not functional or sequential is returned unchanged.
"""

import keras
import numpy as np

from ar2_tf.models.cloning import clone_layer, copy_model, is_graph_model

_CONVOLUTIONS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)


class FoldedBatchNorm(keras.layers.Layer):
    """Stands where a folded BatchNormalization was: its convolution already applies the map."""

    def call(self, inputs, training=None, mask=None):
        return inputs


def foldable_pairs(model) -> dict:
    """{convolution layer name: the BatchNormalization layer folded into it} for `model`'s own layers."""
    pairs = {}
    outputs = {id(tensor) for tensor in keras.tree.flatten(model.outputs)}
    for layer in model.layers:
        if type(layer) is not keras.layers.BatchNormalization or len(layer._inbound_nodes) != 1:
            continue
        rank = len(layer.input.shape)
        if layer.axis not in (-1, rank - 1) or layer.get_config().get("renorm"):
            continue
        parents = layer._inbound_nodes[0].parent_nodes
        conv = parents[0].operation if len(parents) == 1 else None
        if (type(conv) in _CONVOLUTIONS and conv.data_format == "channels_last"
                and conv.get_config()["activation"] == "linear"
                and len(conv._inbound_nodes) == 1 and len(conv._outbound_nodes) == 1
                and id(conv.output) not in outputs):  # nothing else reads the convolution's own output
            pairs[conv.name] = layer
    return pairs


def folded_weights(conv, batchnorm) -> list:
    """The weights of `conv` with `batchnorm`'s inference map folded in (bias added), in `conv`'s order."""
    moving_mean = np.asarray(batchnorm.moving_mean, np.float64)
    scale = 1.0 / np.sqrt(np.asarray(batchnorm.moving_variance, np.float64) + batchnorm.epsilon)
    if batchnorm.scale:
        scale = scale * np.asarray(batchnorm.gamma, np.float64)
    beta = np.asarray(batchnorm.beta, np.float64) if batchnorm.center else 0.0
    bias = np.asarray(conv.bias, np.float64) if conv.use_bias else 0.0
    new_bias = (bias - moving_mean) * scale + beta
    if type(conv) is keras.layers.SeparableConv2D:  # the pointwise kernel makes the output channels
        return [np.asarray(conv.depthwise_kernel), np.asarray(conv.pointwise_kernel) * scale, new_bias]
    kernel = np.asarray(conv.kernel, np.float64)
    if type(conv) is keras.layers.DepthwiseConv2D:  # output channel = input channel x multiplier
        return [kernel * scale.reshape(kernel.shape[2], kernel.shape[3]), new_bias]
    return [kernel * scale, new_bias]


def folded_count(model) -> int:
    """How many BatchNormalization layers were folded in `model`, a `fold_batchnorm` result (nested models too)."""
    if not is_graph_model(model):
        return 0
    return sum(folded_count(layer) if is_graph_model(layer) else isinstance(layer, FoldedBatchNorm)
               for layer in model.layers)


def fold_batchnorm(model):
    """A copy of `model` with every foldable BatchNormalization folded in; `model` itself if none is.

    Nested functional models are folded too. The copy computes the same outputs
    (to float rounding) from the current weights, for inference (`training=False`).
    """
    if not is_graph_model(model):
        return model
    pairs = foldable_pairs(model)
    nested = {layer.name: fold_batchnorm(layer) for layer in model.layers if is_graph_model(layer)}
    if not pairs and all(nested[name] is model.get_layer(name) for name in nested):
        return model
    # A nested model with nothing to fold is copied too: the copy shares no layer with `model`.
    nested = {name: copy_model(folded) if folded is model.get_layer(name) else folded
              for name, folded in nested.items()}
    folded_names = {batchnorm.name for batchnorm in pairs.values()}

    def clone(layer):
        if layer.name in nested:
            return nested[layer.name]
        if layer.name in folded_names:
            return FoldedBatchNorm(name=layer.name)
        config = layer.get_config()
        if layer.name in pairs:
            config["use_bias"] = True
        return clone_layer(layer, config)

    copy = keras.models.clone_model(model, clone_function=clone)  # nested models: folded above
    for layer in model.layers:
        if layer.name in nested or layer.name in folded_names or not layer.weights:
            continue
        weights = folded_weights(layer, pairs[layer.name]) if layer.name in pairs else layer.get_weights()
        copy.get_layer(layer.name).set_weights(weights)
    return copy
