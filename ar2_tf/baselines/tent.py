"""TENT: test-time entropy minimisation (Wang et al., "Tent: fully test-time adaptation by entropy
minimization", ICLR 2021), the baseline for users who cannot retrain.

Protocol (as the authors' code, DequanWang/tent): the model adapts *on the test stream it is
evaluated on*. For every test batch, in order: one forward pass with batch statistics in every
BatchNorm layer (training mode), the batch's predictions taken from that pass, then one Adam
step (learning rate 1e-3) on the mean entropy of those predictions, updating only the
BatchNorm scale and offset (γ, β). Everything is reset to the pretrained weights (and a fresh
optimizer) before each (corruption, severity) stream, and before the clean test stream. So
TENT's numbers are not a trained model's: they depend on the test batches' order and size
(`EVAL_BATCH_SIZE`), and no model is exported. The head (global pooling to logits) runs in
inference mode: a Dropout there would only add noise to the predictions.

Frozen BatchNorm layers (`trainable=False`, e.g. a base frozen for transfer learning) are
adapted like trainable ones, since TENT is defined by adapting exactly them: Keras would run
them in inference mode, normalising with the source statistics instead of the batch's. Each
step is traced with them trainable (`ar2_tf.baselines.bn_adapt.batch_statistics`), and the
model's flags are restored right after.

`TentCounter` is TENT as an evaluation counter (`ar2_tf.evaluation.multi_model`): the
evaluation calls its `start_stream` (the reset) before every test set, so
`python -m ar2_tf.evaluate --tent MODEL` and the benchmark's `methods` "tent" evaluate it
alongside the other models, on the same batches.
"""

import keras
import numpy as np
import tensorflow as tf

from ar2_tf.baselines.bn_adapt import batch_statistics, batchnorm_layers
from ar2_tf.data.preprocessing import get_preprocessor
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
        tent.reset()  # before each stream
        logits, entropy = tent.adapt_and_predict(inputs)  # one Adam step per batch
    """

    def __init__(self, classifier, learning_rate=LEARNING_RATE):
        self.classifier = classifier
        head = find_head(classifier)
        self.backbone = build_backbone(classifier, head)
        self.head = HeadAttention(classifier, head)
        self.norms = batchnorm_layers(classifier)
        self.variables = affine_variables(classifier)
        self.learning_rate = learning_rate
        self.pretrained = [np.array(w) for w in classifier.get_weights()]
        self.optimizer = keras.optimizers.Adam(learning_rate)
        self.optimizer.build(self.variables)
        self.fresh_optimizer = [np.array(v.numpy()) for v in self.optimizer.variables]  # step 0, zero moments
        self._step = tf.function(self.adapt)

    def reset(self):
        """The pretrained weights and a fresh Adam state: each stream starts from the same model."""
        self.classifier.set_weights(self.pretrained)
        for variable, value in zip(self.optimizer.variables, self.fresh_optimizer):
            variable.assign(value)

    def adapt(self, inputs):
        """One TENT step (traceable): the batch's logits with batch statistics, before the update, and their
        entropy; then one Adam step on that entropy for γ and β."""
        with batch_statistics(self.norms), tf.GradientTape() as tape:  # frozen layers too (module docstring)
            logits = self.head.logits(self.backbone(inputs, training=True), training=False)
            loss = entropy(logits)
        self.optimizer.apply(tape.gradient(loss, self.variables), self.variables)
        return logits, loss

    def adapt_and_predict(self, inputs):
        """`adapt`, compiled, on a batch of model inputs."""
        return self._step(tf.convert_to_tensor(inputs))


class TentCounter:
    """TENT as an evaluation counter: `start_stream()` resets, `counter(images, labels)` adapts on the uint8
    batch (preprocessed the model's way, inside the compiled step) and returns its `(wrong, total)`.

    It adapts `classifier` in place: give it a copy of its own, not a model another counter evaluates.
    """

    def __init__(self, classifier, preprocessing=None, learning_rate=LEARNING_RATE):
        self.tent = Tent(classifier, learning_rate)
        preprocess = get_preprocessor(preprocessing) if preprocessing is not None else (lambda images: images)

        @tf.function(reduce_retracing=True)
        def count(images, labels):
            logits, _ = self.tent.adapt(preprocess(images))
            predicted = tf.argmax(logits, axis=-1)
            wrong = tf.reduce_sum(tf.cast(predicted != tf.cast(labels, predicted.dtype), tf.int64))
            return wrong, tf.shape(labels, out_type=tf.int64)[0]

        self._count = count

    def start_stream(self):
        """A new test set: back to the pretrained model and a fresh optimizer."""
        self.tent.reset()

    def __call__(self, images, labels):
        return self._count(images, labels)
