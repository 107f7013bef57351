"""A classifier's head put to work: class scores and attention maps from feature maps.

`HeadAttention` binds a `Head` (`ar2_tf.method.head`) to a classifier's layers.
It computes the class scores before the softmax from the feature map (the
head's layers run again on f, so the backbone runs once per step) and the
attention maps Eq. 2 aligns, of one kind per run:

- "cam": exact CAMs (paper Eq. 1), for linear heads only. The class weights are
  the head's linear layers composed into one kernel [K, classes] (MobileNet:
  pooling -> Dropout -> 1x1 Conv2D -> Reshape); for GAP + Dense it is the Dense kernel.
- "gradcam": Grad-CAM (`ar2_tf.method.cam.grad_cam_maps`) for any head; on a
  linear head it equals the CAM divided by H·W.
- "auto" (the default): "cam" when the head is linear, else "gradcam".
"""

import keras
import tensorflow as tf

from ar2_tf.errors import UserError, check_choice
from ar2_tf.method.cam import class_activation_maps, grad_cam_maps
from ar2_tf.method.head import Head, describe

ATTENTIONS = ("auto", "cam", "gradcam")


def resolve_attention(head: Head, attention: str = "auto") -> str:
    """The attention kind a run uses: "cam" or "gradcam" (UserError for "cam" on a non-linear head)."""
    check_choice("attention", attention, ATTENTIONS)
    if attention == "auto":
        return "cam" if head.linear else "gradcam"
    if attention == "cam" and not head.linear:
        raise UserError(f"`attention` cam needs a linear head after global average pooling; this model's head is "
                        f"{describe(head)}. Use `attention` gradcam (or auto).")
    return attention


class HeadAttention:
    """Class scores and attention maps of `classifier` computed from its feature maps.

    Args:
        classifier: the Keras classifier (its layers are used, not copied).
        head: where its feature map and head are (`ar2_tf.method.head.find_head`).
        attention: "auto", "cam" or "gradcam" (module docstring).
    """

    def __init__(self, classifier, head: Head, attention: str = "auto"):
        self.head = head
        self.kind = resolve_attention(head, attention)
        self.layers = [classifier.get_layer(name) for name in head.layers]
        self.class_layer = classifier.get_layer(head.class_layer)

    @property
    def variables(self):
        """The head's trainable variables: what refinement leaves unchanged."""
        return [variable for layer in self.layers for variable in layer.trainable_variables]

    def logits(self, features, training=False):
        """float32 class scores before the softmax, [B, classes], from feature maps [B, H, W, K]."""
        x = features
        for layer in self.layers:
            x = _pre_activation(layer, x) if layer is self.class_layer else layer(x, training=training)
        return tf.cast(x, tf.float32)

    def linear_map(self):
        """(kernel [K, classes], bias [classes]) of a linear head: logits = mean_{h,w} f @ kernel + bias."""
        kernel = bias = None
        for layer in self.layers[1:]:  # layers[0] is the global average pooling
            if not isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D)):
                continue  # Dropout, Flatten, Reshape, linear Activation: identities on the pooled vector
            weights = tf.reshape(tf.cast(layer.kernel, tf.float32), [-1, layer.kernel.shape[-1]])  # 1x1 conv too
            offset = tf.cast(layer.bias, tf.float32) if layer.use_bias else tf.zeros([weights.shape[-1]])
            kernel, bias = ((weights, offset) if kernel is None
                            else (tf.matmul(kernel, weights), tf.linalg.matvec(weights, bias, transpose_a=True)
                                  + offset))
        return kernel, bias

    def maps(self, features, classes):
        """float32 attention maps [B, C, H, W] of the classes [B, C] per image."""
        if self.kind == "cam":
            return class_activation_maps(features, self.linear_map()[0], classes)
        return grad_cam_maps(features, self.logits, classes)


def _pre_activation(layer, x):
    """The class layer's output before its activation (a softmax Dense gives logits, not probabilities)."""
    if getattr(layer, "activation", None) in (None, keras.activations.linear):
        return layer(x)
    x = keras.ops.matmul(x, layer.kernel)
    return x + layer.bias if layer.use_bias else x
