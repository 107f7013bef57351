"""The AR2 repair model: a classifier, its frozen reference copy and the two training phases.

`RepairModel.train_step` runs the phase selected by `set_phase` (the schedule
callback in `ar2_tf.method.schedule` calls it between batches or epochs):

- refinement ("refine"): the CAM alignment loss of Eq. 2, applied to the
  convolutional backbone only, so the Dense head is untouched;
- fine-tuning ("finetune"): cross-entropy on clean and corrupted images, all
  variables.

Each phase is its own compiled function (built once, reused), so switching
phases never retraces and works under tf.distribute strategies (a `tf.cond`
around `optimizer.apply` does not). Batches are `((clean, corrupted), labels)`
with images already preprocessed for the classifier.
"""

import keras
import tensorflow as tf

from ar2_tf.method.cam import build_backbone, find_cam_head, logits_from_features
from ar2_tf.method.losses import cam_alignment_loss

REFINE = "refine"
FINETUNE = "finetune"
PHASES = (REFINE, FINETUNE)


def _scale_for_replicas(loss):
    # Gradients are summed over replicas, so each replica's mean is divided by their count.
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return loss / replicas if replicas > 1 else loss


def frozen_copy(classifier):
    """A non-trainable clone of `classifier` with its current weights (θ_ref)."""
    reference = keras.models.clone_model(classifier)
    reference.set_weights(classifier.get_weights())
    reference.trainable = False
    return reference


class RepairModel(keras.Model):
    """Repairs `classifier` in place with AR2 (paper Algorithm 1).

    Args:
        classifier: the pretrained Keras classifier θ; its weights are updated.
        k: classes per view in the alignment class set (Eq. 2).
        alpha: weight of the corrupted-view term (Eq. 2).
        cam_normalization: "l2" or "none" (see `ar2_tf.method.losses`).
        topk_from: "repaired" (θ's clean prediction gives topk(x)) or "reference" (θ_ref's).
        feature_layer, dense_layer: optional overrides of the CAM head search.

    Example:
        model = RepairModel(keras.saving.load_model("resnet20.h5"), k=3, alpha=1.0)
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9))
        model.fit(pipeline, epochs=60, callbacks=[ScheduleCallback(schedule)])

    Reference:
        AR2: attention-guided repair for the robustness of CNNs against common corruptions.
    """

    def __init__(self, classifier, k=3, alpha=1.0, cam_normalization="l2", topk_from="repaired",
                 feature_layer=None, dense_layer=None, reference=None, **kwargs):
        super().__init__(**kwargs)
        self.classifier = classifier
        self.reference = reference if reference is not None else frozen_copy(classifier)
        self.k, self.alpha = int(k), float(alpha)
        self.cam_normalization, self.topk_from = cam_normalization, topk_from
        self.head = find_cam_head(classifier, feature_layer, dense_layer)
        self.backbone = build_backbone(classifier, self.head)
        self.reference_backbone = build_backbone(self.reference, self.head)
        self.dense = classifier.get_layer(self.head.dense_layer)
        self.reference_dense = self.reference.get_layer(self.head.dense_layer)
        self.refine_optimizer = None
        self._phase = FINETUNE
        self._phase_functions = {}
        self._trackers = {name: keras.metrics.Mean(name=name) for name in ("align_loss", "ce_loss")}
        self._trackers.update({name: keras.metrics.SparseCategoricalAccuracy(name=name)
                               for name in ("clean_accuracy", "corrupted_accuracy")})

    def call(self, inputs, training=False):
        if isinstance(inputs, (tuple, list)):
            # A training batch's (clean, corrupted) views: Keras builds the model on one
            # symbolically before `fit` under a distribution strategy. θ's prediction of the clean view.
            inputs = inputs[0]
        return self.classifier(inputs, training=training)

    @property
    def metrics(self):
        return list(self._trackers.values())

    @property
    def head_variables(self):
        return list(self.dense.trainable_variables)

    @property
    def backbone_variables(self):
        """Trainable variables of θ except the class Dense layer's: what refinement updates."""
        head = {variable.path for variable in self.head_variables}
        return [v for v in self.classifier.trainable_variables if v.path not in head]

    def compile(self, optimizer, refine_optimizer=None, **kwargs):
        """`optimizer` runs fine-tuning; `refine_optimizer` (default: a copy) runs refinement."""
        super().compile(optimizer=optimizer, **kwargs)
        if refine_optimizer is None:
            refine_optimizer = optimizer.__class__.from_config(optimizer.get_config())
        self.refine_optimizer = refine_optimizer
        # Build both on their full variable lists now: a lazily built optimizer would
        # only know the variables of the first phase it happened to run.
        self.optimizer.build(self.classifier.trainable_variables)
        self.refine_optimizer.build(self.backbone_variables)
        self._phase_functions = {}

    @property
    def phase(self) -> str:
        return self._phase

    def set_phase(self, phase: str):
        """Selects the phase that the next `train_step` runs (no retrace after the first use)."""
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}; choose one of {PHASES}")
        self._phase = phase
        if self._phase_functions:
            self.train_function = self._phase_functions[phase]

    def make_train_function(self, force=False):
        # One compiled function per phase; each only ever runs (and traces) while its
        # phase is selected, so `train_step` reads the right phase at trace time.
        if self._phase_functions and not force:
            self.train_function = self._phase_functions[self._phase]
            return self.train_function
        selected = self._phase
        for phase in PHASES:
            self._phase = phase
            super().make_train_function(force=True)
            self._phase_functions[phase] = self.train_function
        self.set_phase(selected)
        return self.train_function

    def train_step(self, data):
        (clean, corrupted), labels = data
        if self._phase == REFINE:
            self._refine(clean, corrupted, labels)
        else:
            self._finetune(clean, corrupted, labels)
        return {metric.name: metric.result() for metric in self.metrics}

    def _logits(self, features, dense):
        return logits_from_features(features, dense.kernel, dense.bias)

    def _refine(self, clean, corrupted, labels):
        batch = tf.shape(clean)[0]
        reference_features = self.reference_backbone(clean, training=False)
        variables = self.backbone_variables
        with tf.GradientTape() as tape:
            features = self.backbone(tf.concat([clean, corrupted], axis=0), training=True)
            logits = self._logits(features, self.dense)
            clean_logits, corrupted_logits = logits[:batch], logits[batch:]
            if self.topk_from == "reference":
                topk_logits = self._logits(reference_features, self.reference_dense)
            else:
                topk_logits = clean_logits
            loss = cam_alignment_loss(
                features[:batch], features[batch:], reference_features,
                self.dense.kernel, self.reference_dense.kernel, topk_logits, corrupted_logits,
                k=self.k, alpha=self.alpha, normalization=self.cam_normalization)
            scaled = self.refine_optimizer.scale_loss(_scale_for_replicas(loss))
        self.refine_optimizer.apply(tape.gradient(scaled, variables), variables)
        self._trackers["align_loss"].update_state(loss)
        self._update_accuracy(labels, clean_logits, corrupted_logits)

    def _finetune(self, clean, corrupted, labels):
        batch = tf.shape(clean)[0]
        variables = self.classifier.trainable_variables
        with tf.GradientTape() as tape:
            features = self.backbone(tf.concat([clean, corrupted], axis=0), training=True)
            logits = self._logits(features, self.dense)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
                tf.concat([labels, labels], axis=0), logits, from_logits=True))
            scaled = self.optimizer.scale_loss(_scale_for_replicas(loss))
        self.optimizer.apply(tape.gradient(scaled, variables), variables)
        self._trackers["ce_loss"].update_state(loss)
        self._update_accuracy(labels, logits[:batch], logits[batch:])

    def _update_accuracy(self, labels, clean_logits, corrupted_logits):
        self._trackers["clean_accuracy"].update_state(labels, clean_logits)
        self._trackers["corrupted_accuracy"].update_state(labels, corrupted_logits)

    def get_config(self):
        return {
            **super().get_config(),
            "classifier": keras.saving.serialize_keras_object(self.classifier),
            "reference": keras.saving.serialize_keras_object(self.reference),
            "k": self.k, "alpha": self.alpha, "cam_normalization": self.cam_normalization,
            "topk_from": self.topk_from, "feature_layer": self.head.feature_layer,
            "dense_layer": self.head.dense_layer,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["classifier"] = keras.saving.deserialize_keras_object(config["classifier"])
        config["reference"] = keras.saving.deserialize_keras_object(config["reference"])
        config["reference"].trainable = False
        return cls(**config)
