"""TENT: test-time entropy minimisation (Wang et al., "Tent: fully test-time adaptation by entropy
minimization", ICLR 2021), the baseline for users who cannot retrain.

Protocol (as the authors' code, DequanWang/tent): the model adapts *on the test stream it is
evaluated on*. For every test batch, in order: one forward pass with batch statistics in every
BatchNorm layer (training mode), the batch's predictions taken from that pass, then one Adam
step (learning rate 1e-3) on the mean entropy of those predictions, updating only the
BatchNorm scale and offset (γ, β). Everything is reset to the pretrained weights (and a fresh
optimizer) before each (corruption, severity) stream. So TENT's numbers are not a trained
model's: they depend on the test batches' order and size (`EVAL_BATCH_SIZE`), and no model
is exported.
"""

import keras
import numpy as np
import tensorflow as tf

from ar2_tf.baselines.bn_adapt import batchnorm_layers
from ar2_tf.errors import UserError
from ar2_tf.method.attention import HeadAttention
from ar2_tf.method.head import build_backbone, find_head

LEARNING_RATE = 1e-3  # the authors' setting for CIFAR-10-C and ImageNet-C


def entropy(logits):
    """Mean Shannon entropy (nats) of the softmax of `logits` [B, classes]."""
    log_p = tf.nn.log_softmax(tf.cast(logits, tf.float32))
    return tf.reduce_mean(-tf.reduce_sum(tf.exp(log_p) * log_p, axis=-1))


def affine_variables(classifier):
    """The BatchNorm layers' γ and β: the only variables TENT updates."""
    variables = [v for layer in batchnorm_layers(classifier) for v in (layer.gamma, layer.beta) if v is not None]
    if not variables:
        raise UserError("TENT adapts BatchNorm scale and offset; this model has no BatchNormalization layer with "
                        "them.")
    return variables


class Tent:
    """`classifier` adapted batch by batch on a test stream (see the module docstring).

    Example:
        tent = Tent(model)
        error = tent.error_rate(batches, preprocess)  # resets first; one Adam step per batch
    """

    def __init__(self, classifier, learning_rate=LEARNING_RATE):
        self.classifier = classifier
        head = find_head(classifier)
        self.backbone = build_backbone(classifier, head)
        self.head = HeadAttention(classifier, head)
        self.variables = affine_variables(classifier)
        self.learning_rate = learning_rate
        self.pretrained = [np.array(w) for w in classifier.get_weights()]
        self.optimizer = keras.optimizers.Adam(learning_rate)
        self.optimizer.build(self.variables)
        self.fresh_optimizer = [np.array(v.numpy()) for v in self.optimizer.variables]  # step 0, zero moments
        self._step = tf.function(self._adapt_and_predict)

    def reset(self):
        """The pretrained weights and a fresh Adam state: each stream starts from the same model."""
        self.classifier.set_weights(self.pretrained)
        for variable, value in zip(self.optimizer.variables, self.fresh_optimizer):
            variable.assign(value)

    def _adapt_and_predict(self, inputs):
        with tf.GradientTape() as tape:
            logits = self.head.logits(self.backbone(inputs, training=True), training=True)
            loss = entropy(logits)
        self.optimizer.apply(tape.gradient(loss, self.variables), self.variables)
        return logits, loss

    def adapt_and_predict(self, inputs):
        """One TENT step on a batch of model inputs: (the batch's logits before the update, its entropy)."""
        return self._step(tf.convert_to_tensor(inputs))

    def error_rate(self, batches, preprocess) -> float:
        """Top-1 error (%) on a stream of uint8 `(images, labels)` batches, adapting as it goes (reset first)."""
        self.reset()
        wrong = total = 0
        for images, labels in batches:
            logits, _ = self.adapt_and_predict(preprocess(images))
            predicted = np.argmax(logits.numpy(), axis=-1)
            wrong += int(np.sum(predicted != np.asarray(labels)))
            total += len(predicted)
        return 100.0 * wrong / total
