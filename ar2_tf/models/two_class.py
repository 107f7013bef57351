"""A sigmoid binary classifier as the two-class softmax classifier with the same probabilities (CAMs are
per class, so AR2 needs one score per class)."""

import keras
import numpy as np

from ar2_tf.errors import UserError


def as_two_class_softmax(model):
    """`model`, a binary classifier ending in Dense(1, sigmoid) (or Dense(1) then Activation("sigmoid")), with
    that ending as Dense(2, softmax): the same probabilities, [1 - p, p] for the model's p, since
    softmax([0, z]) = [1 - σ(z), σ(z)]. Class 1 is the sigmoid's positive class (the second class folder by
    name, as Keras' `image_dataset_from_directory` labels them). The layers before it are shared with `model`."""
    dense = _sigmoid_unit(model.layers[-1])
    kernel, *bias = dense.get_weights()
    two = keras.layers.Dense(2, activation="softmax", name=f"{dense.name}_softmax")
    outputs = two(dense.input)
    bias = bias[0] if bias else np.zeros(1, kernel.dtype)
    two.set_weights([np.concatenate([np.zeros_like(kernel), kernel], axis=1), np.concatenate([[0.0], bias])])
    return keras.Model(model.inputs, outputs, name=model.name)


def _sigmoid_unit(last):
    """The Dense(1) layer whose sigmoid is the model's output, `last` itself or the Dense before its sigmoid."""
    def is_dense(layer, activation):
        return type(layer) is keras.layers.Dense and layer.units == 1 and layer.activation is activation

    if is_dense(last, keras.activations.sigmoid):
        return last
    if type(last) is keras.layers.Activation and last.activation is keras.activations.sigmoid:
        before = last.input._keras_history.operation
        if is_dense(before, keras.activations.linear):
            return before
    raise UserError(f"the model's last layer is {type(last).__name__}({last.name!r}), not Dense(1, "
                    "activation='sigmoid') nor Dense(1) then Activation('sigmoid'): it is not a sigmoid binary "
                    "classifier.")
