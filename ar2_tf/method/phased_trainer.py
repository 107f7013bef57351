"""The shared base of the repair trainers: a classifier trained in place, in phases compiled once each.

`RepairModel` (AR2: refinement and fine-tuning) and `AugMixModel` (fine-tuning
only) are `PhasedTrainer`s. The schedule callback (`ar2_tf.method.schedule`)
calls `set_phase` between steps; each phase has its own compiled step function,
so switching never retraces and works under tf.distribute strategies (a
`tf.cond` around `optimizer.apply` does not).

The Keras behaviour this relies on (Keras 3, TensorFlow backend), each guarded
by a test in tests/method/test_phased_trainer.py:

1. `fit` calls `make_train_function()` once, then calls `self.train_function`
   for every step, reading the attribute anew each time: a callback that
   replaces it between steps changes what the next step runs.
2. A `tf.function` traces on its first call. A phase's function is only ever
   called while its phase is selected, so `train_step` reads the right phase
   whenever it is traced (retraces included).
3. Callbacks run between calls of `train_function`. With `steps_per_execution`
   s > 1 one call runs s steps, so a phase may only change every s steps:
   `ScheduleCallback` refuses a schedule whose phase boundaries are not
   multiples of s, with a message that says so.

The multi-worker loop (`ar2_tf.runs.distributed_loop`), which cannot use `fit`,
takes its per-phase step functions from the same `phase_functions`.
"""

import keras
import tensorflow as tf

from ar2_tf.method.attention import HeadAttention
from ar2_tf.method.head import build_backbone, find_head

REFINE = "refine"
FINETUNE = "finetune"


def scale_for_replicas(loss):
    """Each replica's mean loss divided by the replica count: the optimizers sum gradients over replicas."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return loss / replicas if replicas > 1 else loss


class PhasedTrainer(keras.Model):
    """A Keras model that trains `classifier` in place, one phase of `PHASES` at a time.

    Args:
        classifier: the pretrained Keras classifier; its weights are updated.
        feature_layer, dense_layer: optional overrides of the head search (`ar2_tf.method.head`).
        attention: "auto", "cam" or "gradcam": the attention maps of the head (`ar2_tf.method.attention`).

    Subclasses set `PHASES` (the last is selected first), fill `self._trackers`
    with their metrics and implement `train_step`, which reads `self.phase`.
    """

    PHASES = (FINETUNE,)

    def __init__(self, classifier, feature_layer=None, dense_layer=None, attention="auto", **kwargs):
        super().__init__(**kwargs)
        self.classifier = classifier
        self.head = find_head(classifier, feature_layer, dense_layer)
        self.backbone = build_backbone(classifier, self.head)
        self.attention = HeadAttention(classifier, self.head, attention)
        self._phase = self.PHASES[-1]
        self._functions = {}  # consumer ("fit", or a custom loop) -> {phase: compiled step function}
        self._trackers = {}

    def call(self, inputs, training=False):
        if isinstance(inputs, (tuple, list)):
            # A training batch's views: Keras builds the model on one symbolically before `fit` under a
            # distribution strategy. The classifier's prediction of the clean view.
            inputs = inputs[0]
        return self.classifier(inputs, training=training)

    @property
    def metrics(self):
        return list(self._trackers.values())

    def logits(self, features, training=False):
        """float32 class scores before the softmax, from the last feature map (the head's layers)."""
        return self.attention.logits(features, training=training)

    def compile(self, optimizer, **kwargs):
        super().compile(optimizer=optimizer, **kwargs)
        # Built on all variables now: a lazily built optimizer would only know the first phase's variables.
        self.optimizer.build(self.classifier.trainable_variables)
        self._functions = {}

    @property
    def phase(self) -> str:
        return self._phase

    def set_phase(self, phase: str):
        """Selects the phase that the next step runs (no retrace after its first use)."""
        if phase not in self.PHASES:
            raise ValueError(f"{type(self).__name__} has no phase {phase!r}; its phases are {self.PHASES}")
        self._phase = phase
        if "fit" in self._functions:
            self.train_function = self._functions["fit"][phase]

    def phase_functions(self, consumer, build) -> dict:
        """{phase: step function} of `consumer`, each made by `build()` once, while its phase is selected."""
        if consumer not in self._functions:
            selected, functions = self._phase, {}
            try:
                for phase in self.PHASES:
                    self._phase = phase
                    functions[phase] = build()
            finally:
                self._phase = selected
            self._functions[consumer] = functions
        return self._functions[consumer]

    def make_train_function(self, force=False):
        if force:
            self._functions.pop("fit", None)
        base = super().make_train_function

        def build():
            base(force=True)
            return self.train_function

        functions = self.phase_functions("fit", build)
        self.train_function = functions[self._phase]
        return self.train_function

    def step_results(self) -> dict:
        return {metric.name: metric.result() for metric in self.metrics}

    def get_config(self):
        return {**super().get_config(), "classifier": keras.saving.serialize_keras_object(self.classifier),
                "feature_layer": self.head.feature_layer, "dense_layer": self.head.class_layer,
                "attention": self.attention.kind}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["classifier"] = keras.saving.deserialize_keras_object(config["classifier"])
        return cls(**config)
