"""BatchNorm adaptation: re-estimate every BatchNorm layer's statistics on corrupted images, no gradient step.

Schneider et al., "Improving robustness against common corruptions by covariate shift
adaptation", NeurIPS 2020: a model's BatchNorm statistics, re-estimated on images of the
target corruption, recover much of its accuracy there. Here the statistics are estimated
once, on the corrupted views of the training split at the training severity, giving a
per-corruption model like AR2's (exported and evaluated like any run); Schneider et al.'s
source prior N is 0 (the corrupted statistics replace the pretrained ones).

`BNAdaptModel.train_step` runs the classifier in training mode on the corrupted views (each
BatchNorm normalises with its batch's statistics, as in the forward pass that AdaBN and
PyTorch's `momentum=None` use) and sets every layer's moving mean and variance to the
*cumulative average* of its batch means and (biased) batch variances so far: after one
epoch, the average over every corrupted training batch, independent of the order. Nothing
else changes: no optimizer step, no dropout effect on weights.

Frozen BatchNorm layers (`trainable=False`, e.g. a base frozen for transfer learning) are
adapted like trainable ones: Keras would run them in inference mode, normalising each layer's
input with the moving statistics being overwritten. So the step is traced with every BatchNorm
layer trainable (`batch_statistics`), and the user's flags are restored right after: the saved
model keeps them.
"""

import contextlib

import keras
import tensorflow as tf

from ar2_tf.errors import UserError
from ar2_tf.method.phased_trainer import FINETUNE, PhasedTrainer
from ar2_tf.models.cloning import is_graph_model


def batchnorm_layers(classifier):
    """The classifier's BatchNormalization layers, nested models included, in call order."""
    found = []
    for layer in classifier.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        elif isinstance(layer, keras.Model):
            found.extend(batchnorm_layers(layer))
    return found


def batchnorm_probe(classifier, norms):
    """A model sharing `classifier`'s layers that maps its input to the inputs of `norms`, in that order.

    A BatchNorm layer inside a nested model (a `keras.Sequential([base, pooling, head])` around a
    keras.applications base) has its input in the nested model's own graph, which no model on
    `classifier`'s input can return. Such a classifier is run through once more on a new input with every
    nested model's layers called in that one graph (`_inlined`), so each BatchNorm input is a tensor of it.
    Those layers then have a second call node, so the BatchNorm folding of a later evaluation in the same
    process leaves them as they are (same results, unfolded speed; `ar2_tf.models.batchnorm_folding`).
    """
    if all(any(layer is norm for layer in classifier.layers) for norm in norms):  # all at the top level
        return keras.Model(classifier.inputs, [norm.input for norm in norms])
    inputs = keras.Input(classifier.inputs[0].shape[1:], dtype=classifier.inputs[0].dtype)
    seen = {}
    _inlined(classifier, inputs, seen)
    return keras.Model(inputs, [seen[id(norm)] for norm in norms])


def _inlined(model, inputs, seen):
    """`model`'s outputs on `inputs`, nested functional and sequential models run layer by layer in the
    caller's graph; `seen` gets {id(BatchNorm layer): its input} (the first call of a shared one)."""

    def operation(layer):
        if isinstance(layer, keras.layers.BatchNormalization):
            def normalize(x, *args, **kwargs):
                seen.setdefault(id(layer), x)
                return layer(x, *args, **kwargs)
            return normalize
        if is_graph_model(layer):
            return lambda *args, **kwargs: _inlined(layer, args[0] if len(args) == 1 else args, seen)
        return layer

    if isinstance(model, keras.Sequential):
        for layer in model.layers:
            inputs = operation(layer)(inputs)
        return inputs
    return model._run_through_graph(inputs, operation_fn=operation)


@contextlib.contextmanager
def batch_statistics(norms):
    """Every BatchNorm layer of `norms` trainable inside the block, its own flags (and its variables') back after
    it, even on error.

    Keras runs a BatchNormalization layer with `trainable=False` in inference mode even when it is called with
    `training=True`. The flag is read when a call is traced, so a step traced inside this block normalises with
    batch statistics in every later call as well.
    """
    flags = [(layer, layer.trainable, [(v, v.trainable) for v in layer.weights]) for layer in norms]
    try:
        for layer in norms:
            layer.trainable = True
        yield
    finally:
        for layer, trainable, variables in reversed(flags):  # reversed: a layer listed twice gets its first flags
            layer.trainable = trainable
            for variable, flag in variables:
                variable.trainable = flag


def batch_moments(inputs, layer):
    """A BatchNorm layer's batch mean and biased variance of `inputs` over every axis but its own."""
    axes = [axis for axis in range(len(inputs.shape)) if axis != layer.axis % len(inputs.shape)]
    return tf.nn.moments(tf.cast(inputs, tf.float32), axes)


class BNAdaptModel(PhasedTrainer):
    """Re-estimates `classifier`'s BatchNorm statistics in place (see the module docstring).

    Batches are `((clean, corrupted), labels)` like AR2's; only the corrupted views are used.
    One phase ("finetune", so the schedule and checkpoints treat it like a fine-tuning epoch).
    """

    PHASES = (FINETUNE,)

    def __init__(self, classifier, feature_layer=None, dense_layer=None, **kwargs):
        super().__init__(classifier, feature_layer, dense_layer, **kwargs)
        self.norms = batchnorm_layers(classifier)
        if not self.norms:
            raise UserError("`method` bn-adapt needs a model with BatchNormalization layers; this one has none.")
        # One forward pass returning every BatchNorm layer's input (training mode: batch statistics).
        self.probe = batchnorm_probe(classifier, self.norms)
        self.batches_seen = tf.Variable(0.0, trainable=False, name="bn_adapt_batches")
        # The running averages (the layers' own moving statistics also move, by momentum, inside the forward
        # pass; they are overwritten from these after it).
        self.averages = [(tf.Variable(tf.zeros(layer.moving_mean.shape), trainable=False),
                          tf.Variable(tf.zeros(layer.moving_variance.shape), trainable=False)) for layer in self.norms]
        self._trackers = {"corrupted_accuracy": keras.metrics.SparseCategoricalAccuracy(name="corrupted_accuracy")}

    def train_step(self, data):
        (_, corrupted), labels = data
        with batch_statistics(self.norms):  # frozen layers too (module docstring)
            inputs = self.probe(corrupted, training=True)
        inputs = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        self.batches_seen.assign_add(1.0)
        weight = 1.0 / self.batches_seen
        for layer, layer_inputs, averages in zip(self.norms, inputs, self.averages):
            moments = batch_moments(layer_inputs, layer)
            for moving, average, value in zip((layer.moving_mean, layer.moving_variance), averages, moments):
                average.assign(average + (value - average) * weight)  # weight 1 on the first batch
                moving.assign(tf.cast(average, moving.dtype))
        self._trackers["corrupted_accuracy"].update_state(labels, self.classifier(corrupted, training=False))
        return self.step_results()
